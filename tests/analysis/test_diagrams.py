"""Tests of yololab.analysis.diagrams: layout geometry and the four output formats, on the real zoo models."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from yololab.cli import main
from yololab.analysis.blocks import BLOCKS, trace_zoo_block
from yololab.analysis.diagrams import generations_figure, layout, to_mermaid, write_block_diagrams, write_diagram
from yololab.analysis.summary import INPUT, trace_zoo_model

FAMILIES = ["yolov3", "yolov3-tiny", "yolov5n", "yolov8n", "yolo11n"]


@pytest.fixture(scope="module")
def traces():
    return {name: trace_zoo_model(name, 640) for name in FAMILIES}


def _inside(x, y, box, pad=0.5):
    return box.x + pad < x < box.x + box.w - pad and box.y + pad < y < box.y + box.h - pad


@pytest.mark.parametrize("name", FAMILIES)
def test_layout_boxes_do_not_overlap_and_edges_avoid_boxes(traces, name):
    lay = layout(traces[name])
    assert len(lay.boxes) == len(traces[name].blocks) + 1  # + the input image
    _check_geometry(lay, traces[name])


@pytest.mark.parametrize("name", list(BLOCKS))
def test_block_layout_boxes_do_not_overlap_and_edges_avoid_boxes(name):
    """A block's inner graph goes through the same layout: its inputs are nodes, parallel paths stand side by side."""
    t = trace_zoo_block(name)
    lay = layout(t)
    assert len(lay.boxes) == len(t.blocks) and INPUT not in lay.boxes and not lay.columns
    _check_geometry(lay, t)
    rows = {}
    for b in lay.boxes.values():
        rows.setdefault(round(b.y), []).append(b)
    inputs = [b for b in lay.boxes.values() if b.type == "input"]
    assert {round(b.y) for b in inputs} == {min(rows)}  # the inputs, and only they, start the graph
    assert len(rows[min(rows)]) == len(inputs)


def test_block_layout_puts_parallel_paths_side_by_side():
    spp, sppf, c3 = layout(trace_zoo_block("SPP")), layout(trace_zoo_block("SPPF")), layout(trace_zoo_block("C3"))
    pools = [b for b in spp.boxes.values() if b.type == "MaxPool2d"]
    assert len({b.y for b in pools}) == 1 and [b.title for b in sorted(pools, key=lambda b: b.x)] == [
        "m.0 MaxPool2d 5x5", "m.1 MaxPool2d 9x9", "m.2 MaxPool2d 13x13"]  # in parallel, in order
    pools = [b for b in sppf.boxes.values() if b.type == "MaxPool2d"]
    assert len({b.x for b in pools}) == 1 and len({b.y for b in pools}) == 3  # in series
    assert {(e.src, e.dst): e.kind for e in sppf.edges}[(2, 3)] == "flow"
    cv1, cv2 = (next(b for b in c3.boxes.values() if b.title == f"{n} Conv 1x1") for n in ("cv1", "cv2"))
    assert cv1.y == cv2.y and cv1.x < cv2.x  # C3's two branches


def _check_geometry(lay, trace):
    boxes = list(lay.boxes.values())
    for i, a in enumerate(boxes):
        assert 0 <= a.x and a.x + a.w <= lay.width and 0 <= a.y and a.y + a.h <= lay.legend_y
        for b in boxes[i + 1:]:
            assert a.x + a.w <= b.x or b.x + b.w <= a.x or a.y + a.h <= b.y or b.y + b.h <= a.y, (a.title, b.title)
    # one routed edge per data-flow edge; no segment passes through a box (sampled along each segment)
    assert len(lay.edges) == len(set(trace.edges))
    for e in lay.edges:
        assert e.points[0] != e.points[-1]
        for (x0, y0), (x1, y1) in zip(e.points, e.points[1:]):
            assert x0 == x1 or y0 == y1  # orthogonal routing
            for t in [k / 20 for k in range(21)]:
                x, y = x0 + (x1 - x0) * t, y0 + (y1 - y0) * t
                hit = [b.title for b in boxes if _inside(x, y, b)]
                assert not hit, f"edge {e.src}->{e.dst} crosses {hit}"


def test_layout_pyramid_and_columns(traces):
    lay = layout(traces["yolov8n"])
    assert [c[0] for c in lay.columns] == ["backbone", "neck", "head"]
    subs = [lay.boxes[i].subtitle for i in (4, 6, 9)]  # P3, P4, P5 of the YOLOv8 backbone
    assert [s.split(",")[0] for s in subs] == ["80x80", "40x40", "20x20"]
    assert lay.boxes[22].col == 2 and lay.boxes[0].col == 0 and lay.boxes[10].col == 1
    kinds = {(e.src, e.dst): e.kind for e in lay.edges}
    assert kinds[(8, 9)] == "flow" and kinds[(6, 11)] == "cross" and kinds[(12, 17)] == "skip"


def test_write_all_formats(traces, tmp_path):
    t = traces["yolov8n"]
    paths = write_diagram(t, tmp_path / "out")
    assert sorted(p.name for p in paths) == ["yolov8n.drawio", "yolov8n.mmd", "yolov8n.png", "yolov8n.svg"]
    edges = set(t.edges)

    # draw.io: uncompressed mxGraph XML, one vertex per block (+ the input), one edge per data-flow edge
    root = ET.parse(tmp_path / "out" / "yolov8n.drawio").getroot()
    assert root.tag == "mxfile" and root.find("diagram/mxGraphModel/root") is not None
    cells = root.iter("mxCell")
    cells = list(cells)
    ids = {c.get("id") for c in cells}
    blocks = [c for c in cells if c.get("vertex") == "1" and c.get("id").startswith("block-")]
    assert len(blocks) == len(t.blocks) == 23
    drawn = [c for c in cells if c.get("edge") == "1"]
    assert len(drawn) == len(edges)
    assert all(c.get("source") in ids and c.get("target") in ids for c in drawn)
    as_pairs = {(-1 if c.get("source") == "input" else int(c.get("source")[6:]), int(c.get("target")[6:]))
                for c in drawn}
    assert as_pairs == edges
    assert "12 C2f" in next(c.get("value") for c in blocks if c.get("id") == "block-12")

    # Mermaid: one node per block, one arrow per edge
    mmd = (tmp_path / "out" / "yolov8n.mmd").read_text()
    assert mmd.count("flowchart TB") == 1
    for b in t.blocks:
        assert mmd.count(f'    b{b.index}["') == 1
    assert mmd.count(" --> ") == len(edges)
    assert "  b6 --> b11" in mmd and "  input --> b0" in mmd

    # SVG is valid XML; the PNG is a sensible size
    svg = ET.parse(tmp_path / "out" / "yolov8n.svg").getroot()
    assert svg.tag.endswith("svg")
    from PIL import Image

    with Image.open(tmp_path / "out" / "yolov8n.png") as im:
        w, h = im.size
    assert 800 < w < 2500 and 1000 < h < 3500


def test_mermaid_toy_ids_are_safe(traces):
    text = to_mermaid(traces["yolov3-tiny"])
    assert "classDef t_MaxPool2d" in text  # class names reduced to identifiers


def test_generations_figure(traces, tmp_path):
    out = tmp_path / "generations.png"
    generations_figure([traces["yolov5n"], traces["yolov8n"]], [out])
    from PIL import Image

    with Image.open(out) as im:
        assert im.size[0] > im.size[1]  # side by side


def test_cli_diagram(tmp_path, capsys):
    assert main(["models", "diagram", "yolo11n", "--out", str(tmp_path), "--formats", "mmd,drawio",
                 "--imgsz", "320"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["yolo11n.drawio", "yolo11n.mmd"]
    assert "10x10, 256 ch" in (tmp_path / "yolo11n.mmd").read_text()  # P5 at 320 / 32
    assert main(["models", "diagram", "yolo11n", "--out", str(tmp_path), "--formats", "jpg"]) == 2
    assert "--formats" in capsys.readouterr().err
    assert main(["models", "diagram", "yolo12n", "--out", str(tmp_path)]) == 2
    assert "unknown model" in capsys.readouterr().err
    f = tmp_path / "a_file"
    f.write_text("keep me")
    assert main(["models", "diagram", "yolo11n", "--out", str(f), "--formats", "mmd"]) == 2
    assert f.read_text() == "keep me"


def test_edge_jumping_a_column_avoids_the_middle_column(tmp_path):
    """A head that also reads a backbone map directly: the edge must not cross the neck's boxes."""
    from yololab.analysis.summary import BlockInfo, Trace

    def blk(i, group, typ, inputs, c, hw):
        return BlockInfo(i, f"{group}.m{i}", group, typ, inputs, [], [(1, c, hw, hw)], 10, 0)

    blocks = [blk(0, "backbone", "Conv", [INPUT], 8, 32), blk(1, "backbone", "Conv", [0], 16, 16),
              blk(2, "backbone", "Conv", [1], 32, 8), blk(3, "neck", "Conv", [2], 32, 8),
              blk(4, "neck", "Conv", [3], 32, 8), blk(5, "neck", "Conv", [4], 32, 8)]
    head = BlockInfo(6, "head", "head", "Head", [1, 5], [], [(1, 10, 84)], 10, 0)
    t = Trace("toy", 64, blocks + [head], 70, 0, None, (1, 3, 64, 64))
    lay = layout(t)
    boxes = list(lay.boxes.values())
    e = next(e for e in lay.edges if (e.src, e.dst) == (1, 6))
    assert len(e.points) == 6
    for (x0, y0), (x1, y1) in zip(e.points, e.points[1:]):
        for k in range(21):
            x, y = x0 + (x1 - x0) * k / 20, y0 + (y1 - y0) * k / 20
            assert not [b.title for b in boxes if _inside(x, y, b)]
    assert write_diagram(t, tmp_path, ["drawio", "mmd"])


def _crossings(lay):
    """(x, y) where a horizontal stretch of one edge crosses a vertical stretch of another, inside both."""
    def stretches(e):
        return list(zip(e.points, e.points[1:]))

    found = []
    for i, a in enumerate(lay.edges):
        for (xa, ya), (xb, yb) in stretches(a):
            if ya != yb:
                continue
            for j, b in enumerate(lay.edges):
                if j == i:
                    continue
                for (xc, yc), (xd, yd) in stretches(b):
                    if xc == xd and min(xa, xb) + 4 < xc < max(xa, xb) - 4 and min(yc, yd) + 1 < ya < max(yc, yd) - 1:
                        found.append((i, xc, ya))
    return found


@pytest.mark.parametrize("name", ["yolov3", "yolo11n"])
def test_crossing_lines_get_a_bridge(traces, name, tmp_path):
    """Where two edges cross, the horizontal one hops over the vertical one, in the PNG/SVG and in draw.io."""
    from yololab.analysis.diagrams import bridged_points

    lay = layout(traces[name])
    crossings = _crossings(lay)
    assert crossings  # both layouts have crossings (backbone features passing lanes on their way to the neck)
    drawn = bridged_points(lay.edges, radius=3.5)
    for i, x, y in crossings:  # the line leaves its height just at the crossing, by the bridge's radius
        assert any(abs(px - x) < 1e-6 and abs(py - (y - 3.5)) < 1e-6 for px, py in drawn[i]), (name, x, y)
    for e, pts in zip(lay.edges, drawn):  # elsewhere the line is the routed one
        assert pts[0] == e.points[0] and pts[-1] == e.points[-1]
    write_diagram(traces[name], tmp_path, formats=("drawio",))
    styles = [c.get("style") for c in ET.parse(tmp_path / f"{name}.drawio").iter("mxCell") if c.get("edge")]
    assert styles and all("jumpStyle=arc" in s for s in styles)


def _lab(hex_colour: str):
    """CIELAB of an sRGB colour (D65), to measure how far apart two colours look."""
    import numpy as np

    c = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)]) / 255
    c = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ c
    f = [t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116 for t in xyz / [0.95047, 1.0, 1.08883]]
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def test_block_colours_of_a_diagram_are_told_apart(traces):
    """Every two types drawn in one diagram (a model, or a block's inside) differ by at least 15 in CIELAB (the old
    C3k2 / DetectHead pair: 20, but one hue; Concat / Upsample: 9; add / cat: 6); the C3k2 of YOLO11 and the head
    it feeds are of different hues."""
    import itertools

    import numpy as np

    from yololab.analysis.diagrams import type_colors

    inside = {name: trace_zoo_block(name) for name in BLOCKS}
    for name, t in {**traces, **inside}.items():
        types = sorted({b.type for b in t.blocks} - {"input", "ZeroPad2d", "ConstantPad2d"})  # plain boxes
        colors = type_colors(types)
        for a, b in itertools.combinations(types, 2):
            assert np.linalg.norm(_lab(colors[a]) - _lab(colors[b])) >= 15, (name, a, b)
    colors = type_colors(["C3k2", "DetectHead"])
    assert np.linalg.norm(_lab(colors["C3k2"]) - _lab(colors["DetectHead"])) > 60


def test_write_block_diagrams_all_formats_and_side_by_side(tmp_path):
    t = trace_zoo_block("C2f")
    written = write_block_diagrams(["C2f"], tmp_path, side_by_side=["C3,C2f,C3k2"])
    assert sorted(p.name for p in written) == ["C2f.drawio", "C2f.mmd", "C2f.png", "C2f.svg",
                                               "C3-C2f-C3k2.png", "C3-C2f-C3k2.svg"]
    edges = set(t.edges)
    mmd = (tmp_path / "C2f.mmd").read_text()
    assert "input([" not in mmd and "subgraph" not in mmd  # the inputs are nodes; no model columns
    assert mmd.count(" --> ") == len(edges) and '  b2["chunk into 2<br/>2 x 80x80, 64 ch"]' in mmd
    assert "  b2 --> b5" in mmd  # the first half goes straight to the concatenation
    root = ET.parse(tmp_path / "C2f.drawio").getroot()
    cells = list(root.iter("mxCell"))
    drawn = {(int(c.get("source")[6:]), int(c.get("target")[6:])) for c in cells if c.get("edge") == "1"}
    assert drawn == edges
    assert len([c for c in cells if (c.get("id") or "").startswith("block-")]) == len(t.blocks)
    assert "whiteSpace=wrap" in next(c.get("style") for c in cells if c.get("id") == "title")
    assert ET.parse(tmp_path / "C2f.svg").getroot().tag.endswith("svg")
    from PIL import Image

    with Image.open(tmp_path / "C3-C2f-C3k2.png") as im:
        assert im.size[0] > im.size[1]  # side by side


def test_cli_diagram_blocks(tmp_path, capsys):
    assert main(["models", "diagram", "--block", "SPPF", "yolov8s:9", "--out", str(tmp_path), "--formats", "mmd"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["SPPF.mmd", "yolov8s-9.mmd"]
    assert "MaxPool2d 5x5 (call 3)" in (tmp_path / "yolov8s-9.mmd").read_text()
    capsys.readouterr()
    for argv, message in ((["--block", "C4"], "expected one of"), (["--side-by-side", "C3"], "at least two"),
                          ([], "nothing to draw"), (["yolov8s", "--block", "C4"], "expected one of")):
        assert main(["models", "diagram", *argv, "--out", str(tmp_path / "new")]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "new").exists()  # every name is checked before anything is written
