"""Architecture diagrams drawn from a traced forward pass: PNG / SVG (matplotlib), Mermaid and draw.io.

The input is a :class:`yololab.analysis.summary.Trace` (blocks, shapes, data-flow edges), so a diagram
shows exactly what the code computes. One layout is computed once and rendered to every format:

* three columns, backbone / neck / head, one box per reference block in index order, coloured by block
  type (legend below), with the output size and channel count written in the box, so that at 640 one
  reads the pyramid 80x80 -> 40x40 -> 20x20 down the columns;
* arrows for the data flow: consecutive blocks of a column are joined straight down; every other edge
  (skip and concatenation edges, edges between columns) runs in its own vertical "lane" in the gap to
  the right of its source column, so lines never pass through a box;
* a head whose blocks read only from other columns is placed at the height of its inputs;
* an edge that jumps over a column (say backbone -> head) climbs to row 0, which is empty beside the
  input box, crosses there and comes down in the last gap;
* where a horizontal stretch of one edge crosses a vertical stretch of another, it hops over it with a small
  arc (a bridge), so that two crossing lines never read as a junction (draw.io: its own line jumps).

Coordinates are points (1/72 inch) with y pointing down, the convention of draw.io; matplotlib draws
them on an axis with y inverted.
"""

from __future__ import annotations

import math
import textwrap
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from yololab.errors import YololabError
from yololab.fileio import atomic_path, write_text_atomic
from yololab.analysis.blocks import BlockTrace, Node, parse_block, trace_zoo_block
from yololab.analysis.summary import GROUPS, INPUT, BlockInfo, Trace, fmt_int, fmt_shape, trace_zoo_model

FORMATS = ("png", "svg", "mmd", "drawio")

# One colour per block type, stable across models so that the generations figure compares like with like; the
# types drawn in one diagram (a model, or a block's inside) differ by at least 15 in CIELAB (tests/analysis/test_diagrams.py).
TYPE_COLORS = {
    "input": "#ffffff",
    "Conv": "#9ecae1",
    "DWConv": "#c6dbef",
    "Focus": "#6baed6",
    "DarknetResidual": "#a1d99b",
    "Bottleneck": "#c7e9c0",
    "Sequential": "#74c476",
    "C3": "#fdae6b",
    "C3k": "#fdd0a2",
    "C2f": "#fdd49e",
    "C3k2": "#7fcdbb",  # teal: far from the head it feeds
    "SPP": "#e7969c",
    "SPPF": "#de9ed6",
    "C2PSA": "#9e9ac8",
    "MaxPool2d": "#dfc27d",
    "ZeroPad2d": "#f0f0f0",
    "ConstantPad2d": "#f0f0f0",
    "Upsample": "#d9f0a3",
    "Concat": "#bdbdbd",
    "AnchorHead": "#fb6a4a",
    "DetectHead": "#e7298a",
    # inside a block (``yololab models diagram --block``): submodules and tensor operations
    "Conv2d": "#deebf7",
    "DFL": "#fdbb84",
    "decode": "#fc9272",
    "dist2bbox": "#fc9272",
    "chunk": "#fee391",
    "split": "#fee391",
    "cat": "#bdbdbd",
    "stack": "#bdbdbd",
    "add": "#f2f2f2",
    "sub": "#f2f2f2",
    "mul": "#f2f2f2",
    "div": "#f2f2f2",
    "matmul": "#c994c7",
    "softmax": "#9e9ac8",
    "sigmoid": "#fcc5dd",
    "exp": "#fcc5dd",
}
_FALLBACK = ["#8dd3c7", "#ffffb3", "#bebada", "#80b1d3", "#b3de69", "#fccde5", "#ccebc5", "#ffed6f"]


def type_colors(types: list[str]) -> dict[str, str]:
    """Colour of every block type; types without a fixed colour get one from a palette, in sorted order."""
    unknown = sorted({t for t in types if t not in TYPE_COLORS})
    colors = {t: TYPE_COLORS[t] for t in types if t in TYPE_COLORS}
    colors.update({t: _FALLBACK[i % len(_FALLBACK)] for i, t in enumerate(unknown)})
    return colors


# ------------------------------------------------------------------------------------------------
# Layout
# ------------------------------------------------------------------------------------------------


@dataclass
class Style:
    box_w: float = 150.0  # box size and vertical pitch, points
    box_h: float = 34.0
    row: float = 50.0
    lane: float = 9.0  # distance between two lanes in a gap
    gap_pad: float = 14.0  # free space between a column and its first / last lane
    min_gap: float = 56.0
    margin: float = 18.0
    font: float = 8.0  # title font size; the second line is 1 point smaller
    header_lines: int = 3  # column title + wrapped description
    min_width: float = 0.0  # a narrow drawing (one block's graph) is widened to this, for its title and legend


BLOCK_STYLE = Style(header_lines=3, min_width=360.0)  # a block: no column headers, room for a wrapped title


@dataclass
class Box:
    key: int  # block index, or INPUT for the image
    col: int
    x: float  # top-left corner
    y: float
    w: float
    h: float
    type: str
    title: str  # "12 C2f"
    subtitle: str  # "40x40, 256 ch"

    @property
    def cy(self) -> float:
        return self.y + self.h / 2


@dataclass
class Edge:
    src: int
    dst: int
    points: list[tuple[float, float]]  # polyline from the source port to the target port
    kind: str  # "flow" (straight down), "skip" (same column), "cross" (between columns)


@dataclass
class Layout:
    trace: Trace
    style: Style
    boxes: dict[int, Box]
    edges: list[Edge]
    columns: list[tuple[str, float, str]]  # (group, x of the column, description)
    width: float
    height: float
    top: float  # y where the boxes start (below title and column headers)
    legend_y: float  # y where the legend starts
    colors: dict[str, str] = field(default_factory=dict)


def _box_text(b: BlockInfo) -> tuple[str, str]:
    if isinstance(b, Node):
        return b.title, b.subtitle
    title = f"{b.index} {b.label}"
    out = b.out_shapes[0] if b.out_shapes else ()
    if len(out) == 4:
        sub = f"{out[2]}x{out[3]}, {out[1]} ch"
    else:
        sub = "-> " + fmt_shape(out)
    if len(b.out_shapes) > 1:
        sub += f" (+{len(b.out_shapes) - 1})"
    return title, sub


def _free_lane(lanes: list[list[tuple[float, float]]], lo: float, hi: float, start: int, gap: float) -> int:
    """First lane index >= start whose intervals do not overlap [lo, hi] (with ``gap`` of slack).

    The slack is most of a row, so that two edges sharing a lane never look like one line.
    """
    k = start
    while True:
        if k == len(lanes):
            lanes.append([])
        if all(hi + gap <= a or lo - gap >= b for a, b in lanes[k]):
            lanes[k].append((lo, hi))
            return k
        k += 1


def _place_groups(trace: Trace, s: Style, top: float) -> tuple[dict[int, int], dict[int, float], list[str]]:
    """A model: one column per group (backbone, neck, head), one row per block in index order; the image
    sits above the first backbone block. Returns the column and top y of every box, and the column names."""
    groups = [g for g in GROUPS + ("other",) if trace.group(g)]
    col_of = {g: i for i, g in enumerate(groups)}
    col = {INPUT: 0}
    ys: dict[int, float] = {INPUT: top}
    for g in groups:
        blocks = trace.group(g)
        for b in blocks:
            col[b.index] = col_of[g]
        same_col = any(col.get(src) == col_of[g] for b in blocks for src in b.sources)
        if col_of[g] == 0 or same_col:
            for r, b in enumerate(blocks):
                ys[b.index] = top + (r + 1) * s.row
        else:  # e.g. a lone Detect: at the mean height of its inputs, pushed down to avoid overlaps
            want = sorted((sum(ys[i] for i in b.sources if i in ys) / max(1, len([i for i in b.sources if i in ys]))
                           if any(i in ys for i in b.sources) else top + s.row, b.index) for b in blocks)
            last = -1e9
            for y, i in want:
                y = max(y, last + s.row)
                ys[i] = last = y
    return col, ys, groups


def _place_graph(trace: Trace, s: Style, top: float) -> tuple[dict[int, int], dict[int, float], list[str]]:
    """A block's inner graph: row = longest path from the inputs; a node continues the column of its first
    source, a second consumer of a tensor opens a branch column to the right (or reuses a finished column
    that is free below), so parallel paths (C3's two branches, SPP's pools, a head's levels) stand side by side.
    """
    row: dict[int, int] = {}
    consumers: dict[int, int] = {}
    for b in trace.blocks:  # execution order is a topological order
        row[b.index] = 1 + max((row[i] for i in b.sources if i in row), default=-1)
        for i in b.sources:
            consumers[i] = consumers.get(i, 0) + 1
    order: list[int] = []  # column ids, left to right
    last: dict[int, int] = {}  # column id -> its lowest node
    branches: dict[int, list[int]] = {}  # column id -> columns opened from it
    col_id: dict[int, int] = {}
    placed: dict[int, int] = {}  # node -> consumers placed so far
    continued: set[int] = set()
    for b in trace.blocks:
        r, srcs = row[b.index], [i for i in b.sources if i in col_id]
        if not srcs:  # an input: a column of its own
            c = len(order)
            order.append(c)
        else:
            home = col_id[srcs[0]]
            if row[last[home]] < r and (srcs[0] not in continued or len(srcs) > 1):
                c = home
            else:
                pos = max(order.index(x) for x in [home] + branches.get(home, []))
                free = [x for x in order[order.index(home) + 1:]
                        if row[last[x]] < r and placed.get(last[x], 0) == consumers.get(last[x], 0)]
                if free:
                    c = free[0]
                else:
                    c = len(order)
                    order.insert(pos + 1, c)
                    branches.setdefault(home, []).append(c)
            continued.add(srcs[0])
        for i in srcs:
            placed[i] = placed.get(i, 0) + 1
        col_id[b.index], last[c] = c, b.index
    col = {i: order.index(c) for i, c in col_id.items()}
    ys = {i: top + r * s.row for i, r in row.items()}
    return col, ys, []


def layout(trace: Trace, style: Style | None = None, colors: dict[str, str] | None = None) -> Layout:
    """Place one box per block (a model: in three columns; a block's inner graph: in rows by depth) and route
    every data-flow edge."""
    graph = isinstance(trace, BlockTrace)
    s = style or (BLOCK_STYLE if graph else Style())
    meta = trace.meta
    header_h = s.font * 2.2 + (s.font + 2) * s.header_lines
    top = s.margin + header_h

    # 1. positions: a column and a height for every box
    col, ys, groups = (_place_graph if graph else _place_groups)(trace, s, top)
    n_cols = max(col.values()) + 1

    # 2. classify the edges and attach them to box sides (ports)
    pos_in_col = {}
    for c in range(n_cols):
        for k, i in enumerate(sorted((i for i in col if col[i] == c), key=lambda i: (ys[i], i))):
            pos_in_col[i] = k
    edges = []
    seen = set()
    for src, dst in trace.edges:
        if (src, dst) in seen or src not in col:
            continue
        seen.add((src, dst))
        cs, cd = col[src], col[dst]
        if cs == cd and ys[dst] > ys[src] and pos_in_col[dst] == pos_in_col[src] + 1:
            kind = "flow"
        elif cs == cd:
            kind = "skip"
        else:
            kind = "cross"
        edges.append([src, dst, kind])

    # ports: every edge leaving / entering a box side gets its own height on that side
    sides: dict[tuple[int, str], list[tuple[float, int]]] = {}
    for k, (src, dst, kind) in enumerate(edges):
        if kind == "flow":
            continue
        out_side = "left" if col[dst] < col[src] else "right"
        in_side = "right" if kind == "skip" or col[dst] < col[src] else "left"
        sides.setdefault((src, out_side), []).append((ys[dst], k))
        sides.setdefault((dst, in_side), []).append((ys[src], k))
    # Ports sit evenly along the side, but two horizontal stubs of different edges at the same height
    # in the same gap would read as one line (rows of neighbouring columns line up), so a side whose
    # ports would collide with stubs placed before is shifted up or down a little.
    port_y: dict[tuple[int, int], float] = {}  # (box, edge k) -> y of its port
    used: dict[int, list[tuple[float, int]]] = {}  # gap -> (y, edge) of the stubs placed so far
    for (box, side), items in sorted(sides.items(), key=lambda kv: (ys[kv[0][0]], kv[0][1])):
        items.sort()
        gap = col[box] if side == "right" else col[box] - 1
        step = s.box_h / (len(items) + 1)
        taken = used.setdefault(gap, [])
        chosen = [ys[box] + step * (j + 1) for j in range(len(items))]
        for shift in (0.0, 0.5, -0.5, 0.35, -0.35):
            cand = [ys[box] + step * (j + 1 + shift) for j in range(len(items))]
            if all(abs(y - ty) >= 6 or tk == k for y, (_, k) in zip(cand, items) for ty, tk in taken):
                chosen = cand
                break
        for y, (_, k) in zip(chosen, items):
            port_y[(box, k)] = y
            taken.append((y, k))

    # 3. lanes: each non-flow edge runs vertically in the gap right of min(source, target column)
    lanes: dict[int, list] = {g: [] for g in range(n_cols)}
    lane_of: dict[int, tuple[int, int]] = {}
    skip_first = sorted((k for k, e in enumerate(edges) if e[2] == "skip"),
                        key=lambda k: abs(ys[edges[k][1]] - ys[edges[k][0]]))
    cross = [k for k, e in enumerate(edges) if e[2] == "cross"]
    n_skip_lanes = {g: 0 for g in range(n_cols)}
    for k in skip_first:
        src, dst, _ = edges[k]
        y1, y2 = sorted((port_y[(src, k)], port_y[(dst, k)]))
        g = col[src]
        lane_of[k] = (g, _free_lane(lanes[g], y1, y2, 0, s.row * 0.75))
        n_skip_lanes[g] = len(lanes[g])
    straight = set()
    channel_of: dict[int, float] = {}
    per_row: dict[float, int] = {}
    for k in cross:
        src, dst, _ = edges[k]
        y1, y2 = sorted((port_y[(src, k)], port_y[(dst, k)]))
        g = min(col[src], col[dst])
        if abs(col[src] - col[dst]) == 1 and abs(y1 - y2) < 0.5:
            straight.add(k)  # source and target port at the same height: one horizontal line
            continue
        if abs(col[dst] - col[src]) > 1:  # jumps over a column: to a free channel, across, on in the last gap
            if graph:  # the gap between rows just above the target, a few points apart per edge
                j = per_row[ys[dst]] = per_row.get(ys[dst], -1) + 1
                channel = ys[dst] - (s.row - s.box_h) / 2 + 4 * (j - 1)
            else:  # row 0 is empty beside the input box
                channel = top + s.box_h / 2
            forward = col[dst] > col[src]
            g1, g2 = (col[src], col[dst] - 1) if forward else (col[src] - 1, col[dst])
            channel_of[k] = channel
            span1, span2 = sorted((channel, port_y[(src, k)])), sorted((channel, port_y[(dst, k)]))
            lane_of[k] = (g1, _free_lane(lanes[g1], *span1, n_skip_lanes[g1], s.row * 0.75),
                          g2, _free_lane(lanes[g2], *span2, n_skip_lanes[g2], s.row * 0.75))
            continue
        lane_of[k] = (g, _free_lane(lanes[g], y1, y2, n_skip_lanes[g], s.row * 0.75))

    # 4. horizontal positions: each gap is as wide as its lanes need
    col_x = [s.margin]
    for g in range(n_cols):
        gap = max(s.min_gap, 2 * s.gap_pad + max(0, len(lanes[g]) - 1) * s.lane) if (g < n_cols - 1 or lanes[g]) else 0
        col_x.append(col_x[-1] + s.box_w + gap)
    width = max(col_x[-1] + s.margin, s.min_width)

    def lane_x(g: int, k: int) -> float:
        return col_x[g] + s.box_w + s.gap_pad + k * s.lane

    # 5. boxes and routed edges
    boxes: dict[int, Box] = {}
    if INPUT in col:
        boxes[INPUT] = Box(INPUT, 0, col_x[0], ys[INPUT], s.box_w, s.box_h, "input", "input",
                           fmt_shape(trace.input_shape))
    for b in trace.blocks:
        title, sub = _box_text(b)
        boxes[b.index] = Box(b.index, col[b.index], col_x[col[b.index]], ys[b.index], s.box_w, s.box_h,
                             b.type, title, sub)
    routed = []
    for k, (src, dst, kind) in enumerate(edges):
        a, b = boxes[src], boxes[dst]
        if kind == "flow":
            pts = [(a.x + a.w / 2, a.y + a.h), (b.x + b.w / 2, b.y)]
        else:
            backwards = b.col < a.col
            xa = a.x if backwards else a.x + a.w
            xb = b.x if (kind == "cross" and not backwards) else b.x + b.w
            ya, yb = port_y[(src, k)], port_y[(dst, k)]
            if k in straight:
                pts = [(xa, ya), (xb, ya)]
            elif len(lane_of[k]) == 4:
                x1, x2 = lane_x(*lane_of[k][:2]), lane_x(*lane_of[k][2:])
                ch = channel_of[k]
                pts = [(xa, ya), (x1, ya), (x1, ch), (x2, ch), (x2, yb), (xb, yb)]
            else:
                xl = lane_x(*lane_of[k])
                pts = [(xa, ya), (xl, ya), (xl, yb), (xb, yb)]
        routed.append(Edge(src, dst, pts, kind))

    bottom = max(bx.y + bx.h for bx in boxes.values())
    types = [bx.type for bx in boxes.values()]
    colors = colors or type_colors(types)
    legend_items = len([t for t in dict.fromkeys(types) if t != "input"]) + 3  # + the 3 arrow kinds
    per_row = max(1, int((width - 2 * s.margin) // (s.font * 13)))
    legend_rows = -(-legend_items // per_row)
    legend_y = bottom + s.row * 0.6
    height = legend_y + legend_rows * s.font * 2.2 + s.margin
    columns = [(g, col_x[i], getattr(meta, g, "") if meta is not None else "") for i, g in enumerate(groups)]
    return Layout(trace, s, boxes, routed, columns, width, height, top, legend_y, colors)


def bridged_points(edges: list[Edge], radius: float) -> list[list[tuple[float, float]]]:
    """Each edge's polyline with an arc of ``radius`` wherever one of its horizontal stretches crosses a vertical
    stretch of another edge (y points down, so the arc bulges up)."""
    def stretches(points, horizontal):
        for (x0, y0), (x1, y1) in zip(points, points[1:]):
            if horizontal and abs(y0 - y1) < 1e-6 and abs(x0 - x1) > 1e-6:
                yield x0, x1, y0
            elif not horizontal and abs(x0 - x1) < 1e-6 and abs(y0 - y1) > 1e-6:
                yield y0, y1, x0

    verticals = [list(stretches(e.points, horizontal=False)) for e in edges]
    out = []
    for i, e in enumerate(edges):
        pts = [e.points[0]]
        for (xa, ya), (xb, yb) in zip(e.points, e.points[1:]):
            if abs(ya - yb) < 1e-6 and abs(xa - xb) > 1e-6:  # horizontal: hop over the verticals it crosses
                lo, hi = sorted((xa, xb))
                hops = sorted({x for j, vs in enumerate(verticals) if j != i for y0, y1, x in vs
                               if lo + radius < x < hi - radius and min(y0, y1) + 0.5 < ya < max(y0, y1) - 0.5},
                              reverse=xb < xa)
                step = 1 if xb > xa else -1
                for x in hops:
                    pts += [(x - step * radius * math.cos(t), ya - radius * math.sin(t))
                            for t in (k * math.pi / 8 for k in range(9))]
            pts.append((xb, yb))
        out.append(pts)
    return out


def diagram_title(trace: Trace) -> str:
    if isinstance(trace, BlockTrace):
        return trace.title
    m = trace.meta
    kind = ""
    if m is not None and hasattr(m, "anchor_based"):  # detectors (a classifier's meta has no anchors)
        kind = ", anchor-based" if m.anchor_based else ", anchor-free"
    return (f"{trace.name}: {fmt_int(trace.params)} parameters, {trace.gflops:.1f} GFLOPs at "
            f"{trace.imgsz}x{trace.imgsz}{kind}")


# ------------------------------------------------------------------------------------------------
# Renderers
# ------------------------------------------------------------------------------------------------


def draw_layout(ax, lay: Layout, scale: float = 1.0, legend: bool = True, title: str | None = None) -> None:
    """Draw ``lay`` on a matplotlib axis whose data units are points times ``scale`` on paper."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle

    s = lay.style
    fs = s.font * scale
    ax.set_xlim(0, lay.width)
    ax.set_ylim(lay.height, 0)
    ax.set_aspect("equal")
    ax.axis("off")
    title = title if title is not None else diagram_title(lay.trace)
    chars = int((lay.width - 2 * s.margin) / (s.font * 1.25 * 0.6))  # ~0.6 em per bold character
    ax.text(s.margin, s.margin, textwrap.fill(title, chars) if len(title) > chars else title, fontsize=fs * 1.25,
            fontweight="bold", va="top", ha="left")
    for g, x, desc in lay.columns:
        ax.add_patch(Rectangle((x - 6, lay.top - 8), s.box_w + 12, lay.legend_y - lay.top - s.row * 0.2,
                               facecolor="#f6f6f6", edgecolor="none", zorder=0))
        ax.text(x + s.box_w / 2, s.margin + s.font * 2.4, g, fontsize=fs * 1.1, fontweight="bold",
                ha="center", va="top")
        if desc:
            wrapped = "\n".join(textwrap.wrap(desc, width=int(s.box_w / (s.font * 0.52)))[: s.header_lines - 1])
            ax.text(x + s.box_w / 2, s.margin + s.font * 2.4 + s.font * 1.6, wrapped, fontsize=fs * 0.85,
                    ha="center", va="top", color="#444444", linespacing=1.1)
    for e, pts in zip(lay.edges, bridged_points(lay.edges, radius=3.5)):
        color = "#555555" if e.kind == "flow" else ("#1f77b4" if e.kind == "cross" else "#d62728")
        xs, ys = zip(*pts)
        ax.plot(xs, ys, color=color, lw=0.9 * scale, zorder=1, solid_joinstyle="miter")
        (xa, ya), (xb, yb) = pts[-2], pts[-1]  # the arrow head only: the line is drawn above, bridges and all
        d = max(math.hypot(xb - xa, yb - ya), 1e-9)
        tip = min(d, 6.0)
        ax.add_patch(FancyArrowPatch((xb - (xb - xa) / d * tip, yb - (yb - ya) / d * tip), (xb, yb),
                                     arrowstyle="-|>", mutation_scale=7 * scale, color=color, lw=0.9 * scale,
                                     zorder=2, shrinkA=0, shrinkB=0))
    for bx in lay.boxes.values():
        ax.add_patch(FancyBboxPatch((bx.x, bx.y), bx.w, bx.h, boxstyle="round,pad=0,rounding_size=4",
                                    facecolor=lay.colors.get(bx.type, "#ffffff"), edgecolor="#333333",
                                    lw=0.7 * scale, zorder=3))
        ax.text(bx.x + bx.w / 2, bx.y + bx.h * 0.33, bx.title, fontsize=fs, fontweight="bold",
                ha="center", va="center", zorder=4)
        ax.text(bx.x + bx.w / 2, bx.y + bx.h * 0.72, bx.subtitle, fontsize=fs * 0.9, ha="center",
                va="center", zorder=4, color="#222222")
    if legend:
        draw_legend(ax, lay.colors, [t for t in dict.fromkeys(b.type for b in lay.boxes.values()) if t != "input"],
                    s.margin, lay.legend_y, lay.width - 2 * s.margin, s, scale)


def draw_legend(ax, colors: dict[str, str], types: list[str], x0: float, y0: float, width: float, s: Style,
                scale: float = 1.0) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle

    item_w = s.font * 13
    per_row = max(1, int(width // item_w))
    for i, t in enumerate(types):
        x = x0 + (i % per_row) * item_w
        y = y0 + (i // per_row) * s.font * 2.2
        ax.add_patch(Rectangle((x, y), s.font * 2, s.font * 1.3, facecolor=colors.get(t, "#ffffff"),
                               edgecolor="#333333", lw=0.6 * scale))
        ax.text(x + s.font * 2.6, y + s.font * 0.65, t, fontsize=s.font * scale * 0.95, va="center")
    # what the arrow colours mean, after the block types
    i = len(types)
    for label, color in (("data flow", "#555555"), ("to another column", "#1f77b4"), ("skip", "#d62728")):
        x = x0 + (i % per_row) * item_w
        y = y0 + (i // per_row) * s.font * 2.2 + s.font * 0.65
        ax.add_line(Line2D([x, x + s.font * 2], [y, y], color=color, lw=1.2 * scale))
        ax.text(x + s.font * 2.6, y, label, fontsize=s.font * scale * 0.95, va="center")
        i += 1


def _save_figure(fig, path: Path, dpi: int) -> None:
    """Save a matplotlib figure atomically."""
    import matplotlib

    with atomic_path(path) as tmp:
        # SVG: keep text as text (small, searchable) and make ids reproducible, so regenerating an
        # unchanged diagram gives an identical file
        with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "yololab"}):
            fig.savefig(tmp, dpi=dpi, format=path.suffix[1:],
                        metadata={"Date": None} if path.suffix == ".svg" else None)


def finish_figure(fig, title: str, note: str, paths: list[Path], dpi: int, bottom: float, top: float) -> list[Path]:
    """A figure's bold title and its footnote (where the numbers come from), tight layout, saved to every path
    (atomically), closed. Returns the paths."""
    import matplotlib.pyplot as plt

    fig.suptitle(title, fontsize=12, fontweight="bold")
    fig.text(0.01, 0.01, note, fontsize=8, color="#444444")
    fig.tight_layout(rect=(0, bottom, 1, top))
    try:
        for p in paths:
            _save_figure(fig, Path(p), dpi)
    finally:
        plt.close(fig)
    return [Path(p) for p in paths]


def render_matplotlib(lay: Layout, paths: list[Path], dpi: int = 150) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(lay.width / 72, lay.height / 72))
    ax = fig.add_axes((0, 0, 1, 1))
    draw_layout(ax, lay)
    try:
        for p in paths:
            _save_figure(fig, p, dpi)
    finally:
        plt.close(fig)


def to_mermaid(trace: Trace, colors: dict[str, str] | None = None) -> str:
    """Mermaid flowchart: one node per block (plus the image), one subgraph per column, one edge per flow.

    A block's inner graph (nodes without a group, inputs among them) is drawn without subgraphs."""
    blocks = trace.blocks
    colors = colors or type_colors([b.type for b in blocks])

    def node(i: int) -> str:
        return "input" if i == INPUT else f"b{i}"

    def box(b: BlockInfo) -> str:
        title, sub = _box_text(b)
        return f'{node(b.index)}["{title}<br/>{sub}"]'

    lines = ["flowchart TB", f"  %% {diagram_title(trace)}",
             "  %% generated by `yololab models diagram` from a traced forward pass"]
    if any(src == INPUT for src, _ in trace.edges):
        lines.append(f'  input(["input<br/>{fmt_shape(trace.input_shape)}"])')
    lines += [f"  {box(b)}" for b in blocks if b.group not in GROUPS + ("other",)]
    for g in GROUPS + ("other",):
        gb = trace.group(g)
        if not gb:
            continue
        desc = getattr(trace.meta, g, "") if trace.meta is not None else ""
        label = f"{g}: {desc}" if desc else g
        lines.append(f'  subgraph {g} ["{label.replace(chr(34), "#quot;")}"]')
        lines.append("    direction TB")
        lines += [f"    {box(b)}" for b in gb]
        lines.append("  end")
    for src, dst in dict.fromkeys(trace.edges):
        lines.append(f"  {node(src)} --> {node(dst)}")
    for t in dict.fromkeys(b.type for b in blocks):
        cls = "t_" + "".join(c if c.isalnum() else "_" for c in t)
        lines.append(f"  classDef {cls} fill:{colors[t]},stroke:#333,color:#000")
        lines.append(f"  class {','.join(node(b.index) for b in blocks if b.type == t)} {cls}")
    return "\n".join(lines) + "\n"


def to_drawio(lay: Layout) -> str:
    """Uncompressed draw.io (mxGraph) XML: one vertex per block, one edge per data-flow edge, same layout."""
    trace = lay.trace
    mxfile = ET.Element("mxfile", host="yololab", type="device")
    diagram = ET.SubElement(mxfile, "diagram", id=f"yololab-{trace.name}", name=trace.name)
    model = ET.SubElement(diagram, "mxGraphModel", dx="0", dy="0", grid="0", gridSize="10", guides="1",
                          tooltips="1", connect="1", arrows="1", fold="1", page="1", pageScale="1",
                          pageWidth=str(int(lay.width)), pageHeight=str(int(lay.height)), math="0", shadow="0")
    root = ET.SubElement(model, "root")
    ET.SubElement(root, "mxCell", id="0")
    ET.SubElement(root, "mxCell", id="1", parent="0")

    def vertex(cid: str, value: str, style: str, x: float, y: float, w: float, h: float) -> None:
        c = ET.SubElement(root, "mxCell", id=cid, value=value, style=style, vertex="1", parent="1")
        ET.SubElement(c, "mxGeometry", x=f"{x:.1f}", y=f"{y:.1f}", width=f"{w:.1f}", height=f"{h:.1f}",
                      **{"as": "geometry"})

    s = lay.style
    if isinstance(trace, BlockTrace):  # a long title over a narrow drawing: wrapped, as in the PNG
        vertex("title", diagram_title(trace), "text;html=1;align=left;verticalAlign=top;fontStyle=1;fontSize=13;"
               "whiteSpace=wrap;", s.margin, s.margin, lay.width - 2 * s.margin, lay.top - s.margin - 4)
    else:
        vertex("title", diagram_title(trace), "text;html=1;align=left;verticalAlign=top;fontStyle=1;fontSize=13;",
               s.margin, s.margin, lay.width - 2 * s.margin, 20)
    for g, x, desc in lay.columns:
        vertex(f"column-{g}", f"<b>{g}</b><br>{desc}" if desc else f"<b>{g}</b>",
               "rounded=0;whiteSpace=wrap;html=1;fillColor=#f6f6f6;strokeColor=none;verticalAlign=top;"
               "fontSize=11;", x - 6, s.margin + s.font * 2.4, s.box_w + 12,
               lay.legend_y - s.margin - s.font * 2.4 - s.row * 0.2 + 8)
    for bx in lay.boxes.values():
        cid = "input" if bx.key == INPUT else f"block-{bx.key}"
        vertex(cid, f"<b>{bx.title}</b><br>{bx.subtitle}",
               f"rounded=1;arcSize=12;whiteSpace=wrap;html=1;fillColor={lay.colors.get(bx.type, '#ffffff')};"
               "strokeColor=#333333;fontSize=10;", bx.x, bx.y, bx.w, bx.h)
    for e in lay.edges:
        a, b = lay.boxes[e.src], lay.boxes[e.dst]
        (x0, y0), (x1, y1) = e.points[0], e.points[-1]
        color = "#555555" if e.kind == "flow" else ("#1f77b4" if e.kind == "cross" else "#d62728")
        style = (f"edgeStyle=orthogonalEdgeStyle;rounded=0;html=1;endArrow=block;endSize=5;strokeColor={color};"
                 "jumpStyle=arc;jumpSize=7;"
                 f"exitX={(x0 - a.x) / a.w:.3f};exitY={(y0 - a.y) / a.h:.3f};exitDx=0;exitDy=0;"
                 f"entryX={(x1 - b.x) / b.w:.3f};entryY={(y1 - b.y) / b.h:.3f};entryDx=0;entryDy=0;")
        c = ET.SubElement(root, "mxCell", id=f"edge-{'input' if e.src == INPUT else e.src}-{e.dst}", style=style,
                          edge="1", parent="1", source="input" if e.src == INPUT else f"block-{e.src}",
                          target=f"block-{e.dst}")
        geo = ET.SubElement(c, "mxGeometry", relative="1", **{"as": "geometry"})
        if len(e.points) > 2:
            arr = ET.SubElement(geo, "Array", **{"as": "points"})
            for x, y in e.points[1:-1]:
                ET.SubElement(arr, "mxPoint", x=f"{x:.1f}", y=f"{y:.1f}")
    # legend: one swatch per block type
    item_w = s.font * 13
    per_row = max(1, int((lay.width - 2 * s.margin) // item_w))
    types = [t for t in dict.fromkeys(b.type for b in lay.boxes.values()) if t != "input"]
    for i, t in enumerate(types):
        x = s.margin + (i % per_row) * item_w
        y = lay.legend_y + (i // per_row) * s.font * 2.2
        vertex(f"legend-{t}", t, f"rounded=0;html=1;fillColor={lay.colors[t]};strokeColor=#333333;fontSize=10;"
               "labelPosition=right;align=left;spacingLeft=4;", x, y, s.font * 2, s.font * 1.3)
    ET.indent(mxfile)
    return ET.tostring(mxfile, encoding="unicode") + "\n"


def _folder(out_dir: Path) -> Path:
    """``--out``, created if needed; a file there is an error (never replaced)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise YololabError(f"--out {out_dir} exists and is not a folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir


def write_diagram(trace: Trace, out_dir: Path, formats: list[str] | tuple[str, ...] = FORMATS,
                  dpi: int = 150) -> list[Path]:
    """Write the diagram of ``trace`` as ``out_dir/<name>.<fmt>`` for every format; returns the paths."""
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise YololabError(f"--formats: unknown format(s) {bad or formats}; choose from {','.join(FORMATS)}")
    out_dir = _folder(out_dir)
    lay = layout(trace)
    written = []
    images = [out_dir / f"{trace.name}.{f}" for f in formats if f in ("png", "svg")]
    if images:
        render_matplotlib(lay, images, dpi=dpi)
        written += images
    if "mmd" in formats:
        write_text_atomic(out_dir / f"{trace.name}.mmd", to_mermaid(trace, lay.colors))
        written.append(out_dir / f"{trace.name}.mmd")
    if "drawio" in formats:
        write_text_atomic(out_dir / f"{trace.name}.drawio", to_drawio(lay))
        written.append(out_dir / f"{trace.name}.drawio")
    return written


def side_by_side_figure(traces: list[Trace], paths: list[Path], style: Style, titles: list[str],
                        dpi: int = 110) -> None:
    """The diagrams of several traces side by side in one figure, each under its title, one shared legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    all_types = [b.type for t in traces for b in t.blocks] + ["input"]
    colors = type_colors(all_types)
    lays = [layout(t, style, colors) for t in traces]
    legend_types = [t for t in dict.fromkeys(all_types) if t != "input"]
    total_w = sum(l.width for l in lays)
    per_row = max(1, int((total_w - 2 * style.margin) // (style.font * 13)))
    legend_h = (-(-(len(legend_types) + 3) // per_row)) * style.font * 2.2 + 2 * style.margin
    content_h = max(l.legend_y for l in lays)
    fig = plt.figure(figsize=(total_w / 72, (content_h + legend_h) / 72))
    H = content_h + legend_h
    x = 0.0
    for lay, title in zip(lays, titles):
        lay.height = content_h
        ax = fig.add_axes((x / total_w, legend_h / H, lay.width / total_w, content_h / H))
        draw_layout(ax, lay, legend=False, title=title)
        x += lay.width
    ax = fig.add_axes((0, 0, 1, legend_h / H))
    ax.set_xlim(0, total_w)
    ax.set_ylim(legend_h, 0)
    ax.axis("off")
    draw_legend(ax, colors, legend_types, style.margin, style.margin, total_w - 2 * style.margin, style)
    try:
        for p in paths:
            _save_figure(fig, Path(p), dpi)
    finally:
        plt.close(fig)


def generations_figure(traces: list[Trace], paths: list[Path], dpi: int = 110) -> None:
    """One figure with the diagrams of several models side by side (one shared legend)."""
    style = Style(box_w=118, box_h=30, row=42, lane=7, gap_pad=10, min_gap=40, font=7.0)
    side_by_side_figure(traces, paths, style, [f"{t.name}: {t.params / 1e6:.1f}M params, {t.gflops:.1f} GFLOPs"
                                               for t in traces], dpi)


def blocks_figure(traces: list[BlockTrace], paths: list[Path], dpi: int = 110) -> None:
    """Blocks side by side (C3 against C2f against C3k2, SPP against SPPF, the two heads), one shared legend."""
    style = Style(box_w=130, box_h=30, row=42, lane=7, gap_pad=10, min_gap=40, font=7.0, header_lines=3,
                  min_width=250.0)
    side_by_side_figure(traces, paths, style, [t.short_title for t in traces], dpi)


# ------------------------------------------------------------------------------------------------
# yololab models diagram
# ------------------------------------------------------------------------------------------------


def parse_formats(text: str) -> list[str]:
    """``"png,svg"`` -> ``["png", "svg"]``; unknown formats are a :class:`YololabError`."""
    formats = [f.strip().lower().lstrip(".") for f in text.split(",") if f.strip()]
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise YololabError(f"--formats '{text}': unknown format(s) {bad or '(none)'}; "
                           f"choose a comma-separated subset of {','.join(FORMATS)}")
    return formats


def _figure_paths(base: Path, formats: list[str]) -> list[Path]:
    """A side-by-side figure is an image only: ``base`` in the image formats asked for, else a PNG."""
    return [base.with_suffix(f".{f}") for f in formats if f in ("png", "svg")] or [base.with_suffix(".png")]


def diagram_paths(names: list[str], out: Path, formats: list[str], generations: bool = False) -> list[Path]:
    """The files :func:`write_diagrams` writes for zoo ``names`` (so that a caller can check them first)."""
    paths = [Path(out) / f"{name}.{f}" for name in names for f in formats]
    return paths + (_figure_paths(Path(out) / "generations", formats) if generations else [])


def block_diagram_paths(blocks: list[str], out: Path, formats: list[str],
                        side_by_side: list[str] | tuple[str, ...] = ()) -> list[Path]:
    """The files :func:`write_block_diagrams` writes (so that a caller can check them first); checks the names."""
    paths = [Path(out) / f"{parse_block(b)[0]}.{f}" for b in blocks for f in formats]
    for group in block_groups(blocks, side_by_side):
        paths += _figure_paths(Path(out) / "-".join(parse_block(b)[0] for b in group), formats)
    return paths


def write_diagrams(names: list[str], out: Path, formats: str = ",".join(FORMATS), imgsz: int = 640, dpi: int = 150,
                   generations: bool = False) -> list[Path]:
    """Diagram of every zoo model in ``names`` into ``out`` (and with ``generations`` all of them side by side
    in ``out/generations.*``); returns the files written."""
    formats = parse_formats(formats)
    if generations and len(names) < 2:
        raise YololabError("--generations needs at least two model names")
    traces = [trace_zoo_model(name, imgsz) for name in names]
    written = []
    for trace in traces:
        written += write_diagram(trace, Path(out), formats, dpi=dpi)
    if generations:
        paths = diagram_paths([], out, formats, generations=True)
        generations_figure(traces, paths)
        written += paths
    return written


def block_groups(blocks: list[str], side_by_side: list[str] | tuple[str, ...] = ()) -> list[list[str]]:
    """Check every block name (``--block``, ``--side-by-side``) before any work; returns the side-by-side groups."""
    groups = [[b.strip() for b in g.split(",") if b.strip()] for g in side_by_side]
    for text, group in zip(side_by_side, groups):
        if len(group) < 2:
            raise YololabError(f"--side-by-side {text!r}: expected at least two comma-separated blocks, e.g. C3,C2f")
    for name in list(blocks) + [b for g in groups for b in g]:
        parse_block(name)
    return groups


def write_block_diagrams(blocks: list[str], out: Path, formats: str = ",".join(FORMATS), imgsz: int = 640,
                         dpi: int = 150, side_by_side: list[str] | tuple[str, ...] = ()) -> list[Path]:
    """Inner graph of every block in ``blocks`` (a name of :data:`yololab.analysis.blocks.BLOCKS` or
    ``MODEL:LAYER``) into ``out/<block>.*``; each entry of ``side_by_side`` (``"C3,C2f,C3k2"``) also draws those
    blocks next to each other in ``out/C3-C2f-C3k2.{png,svg}``. Returns the files written."""
    formats = parse_formats(formats)
    groups = block_groups(blocks, side_by_side)
    written = []
    for name in blocks:
        written += write_diagram(trace_zoo_block(name, imgsz), Path(out), formats, dpi=dpi)
    for group in groups:
        traces = [trace_zoo_block(b, imgsz) for b in group]
        paths = _figure_paths(_folder(out) / "-".join(t.name for t in traces), formats)
        blocks_figure(traces, paths, dpi=dpi)
        written += paths
    return written
