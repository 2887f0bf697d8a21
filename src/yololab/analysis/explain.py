"""Pictures of the training ideas the architecture notes explain, computed by running our code.

``dfl_figure``: how YOLOv8 / YOLO11 predict one box edge (Distribution Focal Loss, GFL
https://arxiv.org/abs/2006.04388). Each of the four distances from an anchor point to the box sides is a
softmax over ``reg_max = 16`` bins (0 .. 15 strides); the distance is the distribution's expectation, which
:class:`yololab.nn.blocks.DFL` computes. The loss asks for the two bins around the true distance ``y``, with
weights ``(i + 1 - y, y - i)``, so its optimum has expectation exactly ``y``. The figure does not draw a
sketch of this: it optimises 16 logits with that loss (Adam, the head's initial state as the start) and
draws the distribution reached, its expectation as ``DFL`` computes it, and, for an edge labelled in two
places (an ambiguous boundary), the two-peaked distribution that results.

``yololab models explain dfl --out DIR`` writes ``DIR/dfl.{png,svg}``.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from yololab.analysis.diagrams import _folder, finish_figure
from yololab.errors import YololabError
from yololab.nn.blocks import DFL

IDEAS = ("dfl",)  # what `yololab models explain` draws


def dfl_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Distribution Focal Loss of ``logits`` (N, reg_max) for distances ``target`` (N,) in bins, as GFL and the
    reference define it: cross-entropy toward the two neighbouring bins, weighted by closeness."""
    reg_max = logits.shape[-1]
    target = target.clamp(0, reg_max - 1 - 0.01)
    left = target.long()
    w_left = left + 1 - target
    logp = F.log_softmax(logits, -1)
    return -(logp.gather(-1, left[:, None])[:, 0] * w_left + logp.gather(-1, left[:, None] + 1)[:, 0] * (1 - w_left))


def fit_edge(targets: list[float], reg_max: int = 16, steps: int = 200,
             lr: float = 0.2) -> tuple[torch.Tensor, list[float]]:
    """Optimise one edge's ``reg_max`` logits with the DFL loss averaged over ``targets`` (one label, or several
    for an ambiguous edge); start from equal logits, as the head's box bias (2.0 everywhere) starts. Returns the
    final probabilities and the expectation before every step and after the last; the last one is computed by
    :class:`DFL`, the layer the heads decode with."""
    logits = torch.zeros(1, reg_max, requires_grad=True)
    target = torch.tensor(targets)
    bins = torch.arange(reg_max, dtype=torch.float32)
    optimizer = torch.optim.Adam([logits], lr=lr)
    path = []
    for _ in range(steps):
        loss = dfl_loss(logits.expand(len(targets), -1), target).mean()
        optimizer.zero_grad()
        loss.backward()
        path.append(float(logits.detach().softmax(-1)[0] @ bins))
        optimizer.step()
    with torch.no_grad():  # DFL takes (B, 4 * reg_max, A): the same edge four times, one anchor
        path.append(float(DFL(reg_max)(logits.repeat(1, 4)[:, :, None])[0, 0, 0]))
    return logits.detach().softmax(-1)[0], path


def _bars(ax, probs: torch.Tensor, start: torch.Tensor, targets: list[float], expectation: float, title: str) -> None:
    bins = range(len(probs))
    ax.bar(bins, start.tolist(), color="#d9d9d9", width=0.8, label="start (equal logits)")
    ax.bar(bins, probs.tolist(), color="#3182bd", width=0.55, label="after DFL training")
    for i, y in enumerate(targets):
        ax.axvline(y, color="#2ca02c", ls="--", lw=1.4, label="label y" if i == 0 else None)
    ax.axvline(expectation, color="#d62728", lw=2, label=f"expectation = {expectation:.2f} (DFL module)")
    ax.set_xticks(list(bins))
    ax.set_xlabel("bin i: distance in strides", fontsize=9)
    ax.set_ylim(0, 1.0)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7.5, loc="upper right", framealpha=0.9)
    ax.tick_params(labelsize=8)


def _edges_panel(ax, ltrb: tuple[float, float, float, float]) -> None:
    """An anchor point (cell centre) on the grid of one level and its four distances to the box sides."""
    from matplotlib.patches import FancyArrowPatch, Rectangle

    l, t, r, b = ltrb
    cx, cy = 8.5, 8.5  # the centre of cell (8, 8), in strides
    ax.set_xlim(0, 17)
    ax.set_ylim(17, 0)
    ax.set_aspect("equal")
    ax.set_xticks(range(0, 18, 2))
    ax.set_yticks(range(0, 18, 2))
    ax.grid(True, color="#e0e0e0", lw=0.6)
    ax.tick_params(labelsize=7)
    ax.add_patch(Rectangle((cx - l, cy - t), l + r, t + b, fill=False, ec="#333333", lw=1.8))
    ax.plot(cx, cy, "o", color="#d62728", ms=6)
    for (dx, dy), name, value in (((-l, 0), "l", l), ((0, -t), "t", t), ((r, 0), "r", r), ((0, b), "b", b)):
        ax.add_patch(FancyArrowPatch((cx, cy), (cx + dx, cy + dy), arrowstyle="-|>", mutation_scale=9,
                                     color="#3182bd", lw=1.4))
        ax.text(cx + dx / 2 + (0.35 if dx == 0 else 0), cy + dy / 2 - (0.35 if dy == 0 else 0), f"{name} = {value}",
                fontsize=8, color="#08519c", ha="left" if dx == 0 else "center", va="bottom")
    ax.set_title("an anchor point and its four edges\n(grid of one level, units of its stride)", fontsize=10)


def dfl_figure(paths: list[Path], reg_max: int = 16, dpi: int = 150) -> list[Path]:
    """Draw the DFL figure (see the module docstring) into every path of ``paths`` (PNG / SVG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sharp, ambiguous = [5.3], [4.2, 9.6]
    start = torch.full((reg_max,), 1.0 / reg_max)
    p_sharp, path_sharp = fit_edge(sharp, reg_max)
    p_amb, path_amb = fit_edge(ambiguous, reg_max)
    fig, axes = plt.subplots(1, 4, figsize=(17, 4.4), gridspec_kw={"width_ratios": [0.8, 1.15, 1.15, 0.9]})
    _edges_panel(axes[0], (sharp[0], 2.6, 3.9, 6.2))
    _bars(axes[1], p_sharp, start, sharp, path_sharp[-1],
          f"one edge labelled at y = {sharp[0]}: the loss wants bins {int(sharp[0])} and {int(sharp[0]) + 1}\n"
          f"with weights {int(sharp[0]) + 1 - sharp[0]:.1f} / {sharp[0] - int(sharp[0]):.1f}, "
          "so the expectation lands on y")
    _bars(axes[2], p_amb, start, ambiguous, path_amb[-1],
          f"an ambiguous edge (labelled at {ambiguous[0]} and at {ambiguous[1]}):\n"
          "two peaks; the expectation falls between them")
    ax = axes[3]
    ax.plot(path_sharp, color="#3182bd", lw=1.8, label=f"edge labelled {sharp[0]}")
    ax.plot(path_amb, color="#9467bd", lw=1.8, label=f"labelled {ambiguous[0]} and {ambiguous[1]}")
    ax.axhline((reg_max - 1) / 2, color="#999999", lw=0.8, ls=":")
    ax.set_xlabel("Adam steps on the 16 logits (lr 0.2)", fontsize=9)
    ax.set_ylabel("expectation (strides)", fontsize=9)
    ax.set_title("the expectation during training\n(starts at 7.5: equal logits)", fontsize=10)
    ax.legend(fontsize=8)
    ax.tick_params(labelsize=8)
    return finish_figure(fig, f"Distribution Focal Loss: each box edge is a distribution over {reg_max} bins; the "
                              "distance is its expectation",
                         "Computed, not sketched: 16 logits per edge optimised with the DFL loss of GFL "
                         "(arXiv 2006.04388) as Ultralytics 8.4.190 writes it; expectations by yololab.nn.blocks.DFL, "
                         "the layer YOLOv8 / YOLO11 decode with. No network: what the loss asks of one edge's outputs.",
                         paths, dpi, bottom=0.05, top=0.93)


def write_explain(idea: str, out: Path, dpi: int = 150) -> list[Path]:
    """``yololab models explain IDEA --out DIR``: the figure of ``idea`` as ``DIR/IDEA.{png,svg}``."""
    if idea not in IDEAS:
        raise YololabError(f"unknown idea {idea!r}: choose one of {', '.join(IDEAS)}")
    base = _folder(out) / idea
    return dfl_figure([base.with_suffix(".png"), base.with_suffix(".svg")], dpi=dpi)
