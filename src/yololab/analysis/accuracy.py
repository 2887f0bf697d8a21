"""Accuracy beside cost: the zoo's published COCO mAP against the GFLOPs and parameters we trace.

``yololab models compare`` draws it next to its table (``docs/architectures-accuracy.png`` for ``make
diagrams``): two panels, mAP against GFLOPs and mAP against parameters, one line per generation through its
scales, so that one reads how much accuracy each generation buys at a given cost. The accuracy is each
release's published figure (a row of ``yololab/study/sota_table.csv``, chosen by ``zoo_accuracy``); the cost
is yololab's own count from one traced forward pass at 640 (``summary.zoo_rows``).
"""

from __future__ import annotations

from pathlib import Path

from yololab.analysis.diagrams import finish_figure
from yololab.analysis.summary import ZooRow, _family_title

GENERATION_COLORS = {"yolov3": "#7f7f7f", "yolov5": "#1f77b4", "yolov8": "#2ca02c", "yolo11": "#d62728"}
# where a point's scale label goes (points, alignment): the newest generation above its line, the others below,
# so that labels of neighbouring lines (yolo11m beside yolov8m) do not collide
LABEL_OFFSETS = {"yolo11": ((-5, 5), "right"), "default": ((5, -11), "left")}
TICKS = (1, 2, 5, 10, 20, 50, 100, 200, 500)


def _scale_label(row: ZooRow) -> str:
    """The point label: the scale letter (``n`` ... ``x``), ``tiny`` or the model name for YOLOv3."""
    return row.scale or ("tiny" if row.name.endswith("tiny") else row.name)


def plot_accuracy(rows: list[ZooRow], accuracy: dict, paths: list[Path], dpi: int = 150) -> list[Path]:
    """Draw mAP against GFLOPs (left) and parameters (right) for every model of ``rows`` found in ``accuracy``
    (model name -> SOTA table row), one line per generation, into every path of ``paths`` (PNG / SVG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_family: dict[str, list[ZooRow]] = {}
    for r in rows:
        if r.name in accuracy:
            by_family.setdefault(r.family, []).append(r)
    imgsz = rows[0].imgsz if rows else 640
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), sharey=True)
    for ax, cost, label in ((axes[0], lambda r: r.gflops, f"GFLOPs at {imgsz}x{imgsz} (yololab's count, log scale)"),
                            (axes[1], lambda r: r.params / 1e6, "parameters (millions, log scale)")):
        for family, members in by_family.items():
            members = sorted(members, key=cost)
            xs, ys = [cost(r) for r in members], [accuracy[r.name].value for r in members]
            color = GENERATION_COLORS.get(family, "#9467bd")
            ax.plot(xs, ys, "-o", color=color, lw=1.6, ms=5, label=_family_title(family))
            offset, ha = LABEL_OFFSETS.get(family, LABEL_OFFSETS["default"])
            for r, x, y in zip(members, xs, ys):
                ax.annotate(_scale_label(r), (x, y), xytext=offset, textcoords="offset points", fontsize=8.5,
                            color=color, ha=ha)
        ax.set_xscale("log")
        lo, hi = ax.get_xlim()
        ax.set_xticks([t for t in TICKS if lo <= t <= hi], [str(t) for t in TICKS if lo <= t <= hi])
        ax.set_xlabel(label, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.tick_params(labelsize=9)
    values = [accuracy[r.name].value for members in by_family.values() for r in members]
    axes[0].set_ylim(min(values) - 3, max(values) + 3)  # room for the labels above and below the lines
    axes[0].set_ylabel("COCO val2017 mAP50-95 at 640 (published)", fontsize=10)
    axes[0].legend(loc="lower right", fontsize=9, title="generation", title_fontsize=9)
    return finish_figure(fig, "Accuracy beside cost across four YOLO generations",
                         "mAP: each release's published COCO val2017 figure (src/yololab/study/sota_table.csv, one "
                         "row per model with its source); each checkpoint has its own training recipe.\n"
                         "Cost: one traced forward pass of yololab's model, equal in parameters to the reference "
                         "(FLOPs counted as docs/architectures.md says).", paths, dpi, bottom=0.06, top=0.95)
