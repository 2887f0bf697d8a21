"""Tests of yololab.analysis.summary: tracing, tables and the `yololab models` commands.

A tiny detector built here from torch.nn modules (following yololab.models.base.Detector) makes the
tracing tests independent of the zoo; the zoo tests then check the real models.
"""

from __future__ import annotations

import csv

import pytest
import torch
from torch import nn

from yololab.models.base import Detector, ModelMeta
from yololab.analysis.summary import INPUT, fmt_shape, format_summary, trace_model


class Concat(nn.Module):
    def forward(self, xs):
        return torch.cat(xs, 1)


def conv(c1, c2, s=1):
    return nn.Sequential(nn.Conv2d(c1, c2, 3, s, 1, bias=False), nn.BatchNorm2d(c2), nn.SiLU())


class ToyBackbone(nn.Module):
    def __init__(self):
        super().__init__()
        self.b0 = conv(3, 4, 2)   # /2
        self.b1 = conv(4, 8, 2)   # /4
        self.b2 = conv(8, 8, 2)   # /8  -> P3
        self.b3 = conv(8, 16, 2)  # /16 -> P4

    def forward(self, x):
        p3 = self.b2(self.b1(self.b0(x)))
        return [p3, self.b3(p3)]


class ToyNeck(nn.Module):
    def __init__(self):
        super().__init__()
        self.up = nn.Upsample(scale_factor=2)
        self.cat1 = Concat()
        self.c1 = conv(24, 8)      # P3 out
        self.down = conv(8, 8, 2)
        self.cat2 = Concat()
        self.c2 = conv(24, 16)     # P4 out

    def forward(self, feats):
        p3, p4 = feats
        n3 = self.c1(self.cat1([self.up(p4), p3]))
        n4 = self.c2(self.cat2([self.down(n3), p4]))
        return [n3, n4]


class ToyHead(nn.Module):
    def __init__(self, nc=2):
        super().__init__()
        self.no = 4 + nc
        self.m = nn.ModuleList([nn.Conv2d(8, self.no, 1), nn.Conv2d(16, self.no, 1)])

    def forward(self, maps):
        out = [m(x) for m, x in zip(self.m, maps)]
        if self.training:
            return out
        return torch.cat([o.flatten(2) for o in out], 2)


def toy_detector() -> Detector:
    meta = ModelMeta(name="toy", family="toy", scale="", num_classes=2, strides=[8, 16], anchor_based=False,
                     backbone="4 convs", neck="FPN+PAN", head="1x1 convs")
    layers = ["backbone.b0", "backbone.b1", "backbone.b2", "backbone.b3",
              "neck.up", "neck.cat1", "neck.c1", "neck.down", "neck.cat2", "neck.c2", "head"]
    return Detector(ToyBackbone(), ToyNeck(), ToyHead(), meta, layers)


def test_trace_toy_shapes_edges_params():
    model = toy_detector()
    t = trace_model(model, imgsz=64)
    assert [b.group for b in t.blocks] == ["backbone"] * 4 + ["neck"] * 6 + ["head"]
    assert [b.type for b in t.blocks][4:6] == ["Upsample", "Concat"]
    assert t.blocks[0].inputs == [INPUT]
    assert fmt_shape(t.blocks[2].out_shapes[0]) == "8x8x8"  # P3 at stride 8 of 64
    # data flow: skip edge backbone P3 -> concat, concat takes upsample + P3, head reads both outputs
    assert t.blocks[5].inputs == [4, 2]
    assert t.blocks[8].inputs == [7, 3]
    assert t.blocks[10].inputs == [6, 9]
    assert (3, 4) in t.edges and (2, 5) in t.edges and (-1, 0) in t.edges
    assert len(t.edges) == 1 + 3 + 1 + 2 + 1 + 1 + 2 + 1 + 2  # every received tensor, by source
    # every parameter belongs to exactly one block here
    assert sum(b.params for b in t.blocks) == t.params == sum(p.numel() for p in model.parameters())
    assert t.blocks[4].params == 0 and t.blocks[4].flops == 0
    # conv FLOPs: 2 * Cout * Cin * k * k * Hout * Wout
    assert t.blocks[0].flops == 2 * 4 * 3 * 9 * 32 * 32
    assert sum(b.flops for b in t.blocks) == t.flops
    assert model.training  # the mode is restored


def test_trace_meta_device_matches_cpu():
    cpu = trace_model(toy_detector(), imgsz=64)
    with torch.device("meta"):
        model = toy_detector()
    meta = trace_model(model, imgsz=64)
    assert [(b.inputs, b.out_shapes, b.params, b.flops) for b in meta.blocks] == \
           [(b.inputs, b.out_shapes, b.params, b.flops) for b in cpu.blocks]


def test_trace_rejects_bad_reference_layers():
    from yololab.errors import ConfigError

    model = toy_detector()
    model.reference_layers.append("neck.nope")
    with pytest.raises(ConfigError, match="neck.nope"):
        trace_model(model, 64)
    model.reference_layers[-1] = "neck"  # exists, but is that a block? it runs, so it is accepted
    trace_model(model, 64)
    unused = toy_detector()
    unused.neck.spare = nn.Conv2d(1, 1, 1)
    unused.reference_layers.append("neck.spare")
    with pytest.raises(ConfigError, match="never ran"):
        trace_model(unused, 64)


def test_summary_text_toy():
    text = format_summary(trace_model(toy_detector(), imgsz=64))
    assert "backbone" in text and "neck" in text and "head" in text
    assert "16x4x4 -> 16x8x8" in text  # the upsample
    assert "model total (11 blocks)" in text


# ------------------------------------------------------------------------------------------------
# The real zoo
# ------------------------------------------------------------------------------------------------

from yololab.cli import main  # noqa: E402
from yololab.models import build_model, list_models  # noqa: E402
from yololab.analysis.summary import trace_zoo_model, write_compare, zoo_rows  # noqa: E402

# published by the references (Ultralytics / yolov5 model summaries at 640): GFLOPs rounded to 0.1
REFERENCE_GFLOPS = {"yolov8n": 8.7, "yolov8s": 28.6, "yolov8m": 78.9, "yolov5n": 4.5}


@pytest.fixture(scope="module")
def rows():
    return {r.name: r for r in zoo_rows(640, progress=False)}


def test_every_zoo_model_traces_completely(rows):
    """Each parameter belongs to exactly one block, each block's inputs are known, strides match the meta."""
    assert list(rows) == list_models()
    for name in list_models():
        t = trace_zoo_model(name, 640)
        assert sum(b.params for b in t.blocks) == t.params == rows[name].params, name
        assert sum(b.flops for b in t.blocks) == t.flops, name
        assert all(i is not None for b in t.blocks for i in b.inputs), name
        assert all(src < dst for src, dst in t.edges), name  # data flows forward through the list
        head = t.group("head")[-1]
        assert head.sources and all(t.blocks[i].group == "neck" for i in head.sources), name
        strides = [round(640 / t.blocks[i].out_shapes[0][2]) for i in head.sources]
        assert strides == rows[name].strides, name


def test_gflops_match_reference_and_real_run(rows):
    for name, g in REFERENCE_GFLOPS.items():
        assert round(rows[name].gflops, 1) == g, name
    # the meta-device count is the count of a real forward pass (checked at 640 for one model)
    real = trace_zoo_model("yolov8n", 640)
    cpu = build_model("yolov8n")
    from yololab.analysis.summary import trace_model

    on_cpu = trace_model(cpu, 640)
    assert on_cpu.flops == real.flops and on_cpu.edges == real.edges
    assert [b.out_shapes for b in on_cpu.blocks] == [b.out_shapes for b in real.blocks]


def test_cli_list_summary_compare(tmp_path, capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in list_models())
    assert "3,157,200" in out and "anchor-free" in out and "anchor-based" in out

    assert main(["models", "summary", "yolov8n", "--imgsz", "320"]) == 0
    out = capsys.readouterr().out
    assert "64x40x40 + 128x40x40" not in out  # at 320 the maps are 40/20/10
    assert "64x40x40" in out and " 22  15,18,21  DetectHead" in out and "model total (23 blocks)" in out

    csv_path = tmp_path / "docs" / "arch.csv"
    assert main(["models", "compare", "--out", str(csv_path)]) == 0
    with open(csv_path) as f:
        recs = list(csv.DictReader(f))
    assert [r["model"] for r in recs] == list_models()
    v8s = next(r for r in recs if r["model"] == "yolov8s")
    assert v8s["parameters"] == "11166560" and v8s["anchors"] == "anchor-free" and v8s["version"] == "YOLOv8"
    assert v8s["COCO mAP50-95"] == "44.9" and v8s["mAP source"].startswith("https://github.com/ultralytics/")
    md = csv_path.with_suffix(".md").read_text()
    assert md.count("\n| yolo") == 2 * len(list_models()) and "| 11,166,560 | 28.60 | 44.9 |" in md
    assert "## Accuracy beside cost" in md and "](arch-accuracy.png)" in md
    assert (tmp_path / "docs" / "arch-accuracy.png").stat().st_size > 10_000
    # a rerun rewrites the generated regions and keeps what was written around them
    csv_path.with_suffix(".md").write_text(md + "\nA hand-written note.\n")
    write_compare(zoo_rows(320, names=["yolov8n", "yolo11n"], progress=False), csv_path)
    md = csv_path.with_suffix(".md").read_text()
    assert md.endswith("\nA hand-written note.\n") and "at 320x320" in md and md.count("\n| yolo") == 2
    assert "run `yololab models compare --imgsz 640` for this section" in md
    # a Markdown file that compare did not write is not replaced
    foreign = tmp_path / "notes.md"
    foreign.write_text("# my notes\n")
    assert main(["models", "compare", "--out", str(tmp_path / "notes.csv")]) == 2  # it exists: --overwrite to replace
    assert "notes.md exists; pass --overwrite" in capsys.readouterr().err
    assert main(["models", "compare", "--out", str(tmp_path / "notes.csv"), "--overwrite"]) == 2  # not even then
    assert "generated:zoo" in capsys.readouterr().err
    assert foreign.read_text() == "# my notes\n" and not (tmp_path / "notes.csv").exists()

    assert main(["models", "summary", "yolov9n"]) == 2
    assert "unknown model" in capsys.readouterr().err
    assert main(["models", "compare", "--out", str(tmp_path / "arch.txt")]) == 2
    assert ".csv" in capsys.readouterr().err
    assert main(["models", "summary", "yolov8n", "--imgsz", "0"]) == 2
    assert main(["models", "summary", "yolov8n", "--imgsz", "100"]) == 2
    assert "multiple of the model's largest stride (32)" in capsys.readouterr().err


def test_yolov3_neck_pairs_are_labelled_bottleneck():
    """The neck's 1x1 / 3x3 pairs have no shortcut: not Darknet-53 residuals (review finding)."""
    t = trace_zoo_model("yolov3", 640)
    assert [b.label for b in t.blocks if b.path in ("backbone.stage3", "neck.p5_pair", "neck.p3_out")] == \
        ["DarknetResidual x8", "Bottleneck", "Bottleneck x2"]
    assert all(b.type != "DarknetResidual" for b in t.group("neck"))

