"""Pictures of the training ideas the architecture notes explain, computed by running our code.

``dfl_figure``: how YOLOv8 / YOLO11 predict one box edge (Distribution Focal Loss, GFL
https://arxiv.org/abs/2006.04388). Each of the four distances from an anchor point to the box sides is a
softmax over ``reg_max = 16`` bins (0 .. 15 strides); the distance is the distribution's expectation, which
:class:`yololab.nn.blocks.DFL` computes. The loss asks for the two bins around the true distance ``y``, with
weights ``(i + 1 - y, y - i)``, so its optimum has expectation exactly ``y``. The figure does not draw a
sketch of this: it optimises 16 logits with that loss (Adam, the head's initial state as the start) and
draws the distribution reached, its expectation as ``DFL`` computes it, and, for an edge labelled in two
places (an ambiguous boundary), the two-peaked distribution that results.

``tal_figure``: how YOLOv8 / YOLO11 choose the anchors that learn each object (the Task-Aligned Assigner of
TOOD, https://arxiv.org/abs/2108.07755, as Ultralytics writes it). It runs a detector on one image, then
:class:`yololab.detect.assign.TaskAlignedAssigner` on its predictions and the image's labels, and draws what
the assigner computed: the candidate anchor points inside each object on the three levels, their alignment
``t = s^0.5 * u^6`` (s the predicted probability of the object's class, u the CIoU of the predicted box), and
the top 10 per object that become positives with their soft targets. With random weights (the default) the
class scores are all equal, so ``t`` follows the IoU of the initial box (7.5 strides on every side, from the
head's bias): the assigner starts by sending each object to the level whose stride suits its size.

``yololab models explain IDEA --out DIR`` writes ``DIR/dfl.{png,svg}`` or ``DIR/tal.png``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from yololab.analysis.diagrams import _folder, finish_figure
from yololab.errors import YololabError
from yololab.nn.blocks import DFL

IDEAS = ("dfl", "tal")  # what `yololab models explain` draws
# the files each writes: a photograph makes the TAL picture a raster one (an SVG would embed it, three times)
FORMATS = {"dfl": ("png", "svg"), "tal": ("png",)}


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


LEVEL_MARKERS = ("o", "s", "^", "D")  # P3, P4, P5 (, P6)
TRUTH_COLOURS = ("#e6550d", "#3182bd", "#31a354", "#756bb1", "#d6616b", "#636363", "#8c6d31", "#17becf")


def read_labels(path: Path) -> np.ndarray:
    """A YOLO label file -> (N, 5) ``class, cx, cy, w, h`` normalised; a bad line is an error naming it."""
    rows = []
    for i, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            values = [float(v) for v in line.split()[:5]]
        except ValueError:
            values = []
        if len(values) != 5:
            raise YololabError(f"{path}:{i}: expected 'class cx cy w h', got {line.strip()!r}")
        rows.append(values)
    return np.array(rows, np.float64).reshape(-1, 5)


def tal_assignment(model: torch.nn.Module, img_bgr: np.ndarray, labels: np.ndarray, imgsz: int = 640) -> dict:
    """Run ``model`` (an anchor-free zoo detector) on one image and its assigner on the predictions and
    ``labels`` (N, 5 normalised ``class cx cy w h`` of the original image). Returns, in letterboxed pixels:
    ``image`` (imgsz, imgsz, 3) RGB, ``gt`` (N, 4) x1y1x2y2, ``gt_cls`` (N,), ``points`` (A, 2), ``stride`` (A,),
    ``level`` (A,), ``cand`` / ``overlaps`` / ``metric`` (N, A), ``fg`` (A,), ``owner`` (A,) the truth each
    positive learns, ``target`` (A,) its soft class target, ``pred`` (A, 4) the predicted boxes."""
    from yololab.detect.loss import YOLOv8Loss, build_loss
    from yololab.detect.preprocess import to_input

    loss = build_loss(model, imgsz=imgsz)
    if not isinstance(loss, YOLOv8Loss):
        raise YololabError("TAL is the assigner of anchor-free heads (YOLOv8 / YOLO11); this model assigns by anchor "
                           "shape")
    x, (gw, gh), (pl, pt) = to_input(img_bgr, imgsz)
    h0, w0 = img_bgr.shape[:2]
    box = labels[:, 1:5] * [w0 * gw, h0 * gh, w0 * gw, h0 * gh] + [pl, pt, 0, 0]  # cxcywh, letterboxed pixels
    batch = {"cls": torch.tensor(labels[:, 0], dtype=torch.float32), "batch_idx": torch.zeros(len(labels)),
             "bboxes": torch.tensor(box / imgsz, dtype=torch.float32)}
    was_training = model.training
    model.train()
    try:
        with torch.no_grad():
            preds = model(x)
    finally:
        model.train(was_training)
    _, scores, boxes, points, stride = loss.decode(preds)
    gt_labels, gt_xyxy, valid = loss.targets(batch, 1, (imgsz, imgsz), x.device)
    assigner = loss.assigner
    cand, overlaps, metric = assigner.align(scores, boxes * stride, points * stride, gt_labels, gt_xyxy, valid)
    fg, _, tboxes, target = assigner(scores, boxes * stride, points * stride, gt_labels, gt_xyxy, valid)
    # the truth each positive learns: the one whose box the assigner gave it
    owner = torch.where(fg[0], (tboxes[0][:, None, :] == gt_xyxy[0][None]).all(-1).float().argmax(1), -1)
    sizes = [p.shape[2] * p.shape[3] for p in preds]
    level = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    return {"image": x[0].permute(1, 2, 0).numpy(), "gt": gt_xyxy[0].numpy(), "gt_cls": gt_labels[0].numpy(),
            "points": (points * stride).numpy(), "stride": stride[:, 0].numpy(), "level": level.numpy(),
            "cand": cand[0].numpy(), "overlaps": overlaps[0].numpy(), "metric": metric[0].numpy(),
            "fg": fg[0].numpy(), "owner": owner.numpy(), "target": target[0].numpy(), "pred": (boxes * stride)[0].numpy(),
            "strides": [int(v) for v in loss.strides], "topk": assigner.topk}


def _image_panel(ax, a: dict, title: str, view: tuple[float, float, float, float]) -> None:
    from matplotlib.patches import Rectangle

    ax.imshow(a["image"])
    for j, (x1, y1, x2, y2) in enumerate(a["gt"]):
        colour = TRUTH_COLOURS[j % len(TRUTH_COLOURS)]
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec=colour, lw=1.6))
        ax.text(x1, y1 - 2, f"#{j} cls {a['gt_cls'][j]}", color=colour, fontsize=6.5, va="bottom")
    x0, y0, x1, y1 = view
    ax.set_xlim(x0, x1)
    ax.set_ylim(y1, y0)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9.5)


def tal_figure(paths: list[Path], a: dict, source: str, dpi: int = 150) -> list[Path]:
    """Draw :func:`tal_assignment`'s result ``a`` (see the module docstring) into every path (PNG / SVG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    gt, points, level, cand = a["gt"], a["points"], a["level"], a["cand"]
    n = len(gt)
    margin = 1.5 * max(a["strides"])
    view = (max(gt[:, 0].min() - margin, 0), max(gt[:, 1].min() - margin, 0),
            min(gt[:, 2].max() + margin, a["image"].shape[1]), min(gt[:, 3].max() + margin, a["image"].shape[0]))
    fig, axes = plt.subplots(1, 4, figsize=(19, 5.2), gridspec_kw={"width_ratios": [1, 1, 1, 0.8]})
    names = [f"P{int(np.log2(s))} (stride {s})" for s in a["strides"]]

    _image_panel(axes[0], a, "1. candidates: anchor points inside each object\n(tiny objects widened to stride 16)", view)
    for j in range(n):
        for lv in range(len(names)):
            idx = cand[j] & (level == lv)
            axes[0].scatter(points[idx, 0], points[idx, 1], s=14 + 10 * lv, marker=LEVEL_MARKERS[lv],
                            facecolors="none", edgecolors=TRUTH_COLOURS[j % len(TRUTH_COLOURS)], linewidths=0.9,
                            label=names[lv] if j == 0 else None)
    axes[0].legend(fontsize=7, loc="lower right", framealpha=0.85)

    _image_panel(axes[1], a, "2. alignment t = s^0.5 x u^6 of every candidate\n(s: class score, u: CIoU of its predicted box)", view)
    shown = cand.any(0)
    best = a["metric"].max(1, keepdims=True)
    rel = np.where(cand, a["metric"] / np.maximum(best, 1e-30), 0).max(0)  # t relative to its object's best
    sc = axes[1].scatter(points[shown, 0], points[shown, 1], c=rel[shown], cmap="viridis", vmin=0, vmax=1,
                         s=[14 + 10 * lv for lv in level[shown]], edgecolors="white", linewidths=0.3)
    fig.colorbar(sc, ax=axes[1], fraction=0.04, pad=0.02).set_label("t / best t of the object", fontsize=7.5)

    _image_panel(axes[2], a, f"3. positives: the top {a['topk']} of each object\n(size: soft class target; dashed: "
                             "best-aligned prediction)", view)
    fg, owner, target = a["fg"], a["owner"], a["target"]
    tmax = max(float(target[fg].max()) if fg.any() else 1.0, 1e-9)
    for j in range(n):
        colour = TRUTH_COLOURS[j % len(TRUTH_COLOURS)]
        for lv in range(len(names)):
            idx = fg & (owner == j) & (level == lv)
            axes[2].scatter(points[idx, 0], points[idx, 1], s=20 + 90 * target[idx] / tmax, marker=LEVEL_MARKERS[lv],
                            color=colour, edgecolors="white", linewidths=0.5)
        if cand[j].any():
            k = int(np.argmax(np.where(cand[j], a["metric"][j], -1)))
            x1, y1, x2, y2 = a["pred"][k]
            axes[2].add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec=colour, lw=1.0, ls="--"))

    ax = axes[3]
    width = 0.8 / max(n, 1)
    for j in range(n):
        colour = TRUTH_COLOURS[j % len(TRUTH_COLOURS)]
        xs = np.arange(len(names)) + (j - (n - 1) / 2) * width
        n_cand = [int((cand[j] & (level == lv)).sum()) for lv in range(len(names))]
        n_pos = [int((fg & (owner == j) & (level == lv)).sum()) for lv in range(len(names))]
        ax.bar(xs, n_cand, width * 0.95, color=colour, alpha=0.25)
        ax.bar(xs, n_pos, width * 0.95, color=colour, label=f"#{j}: {gt[j, 2] - gt[j, 0]:.0f}x{gt[j, 3] - gt[j, 1]:.0f} px")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, fontsize=8)
    ax.set_yscale("symlog", linthresh=10)
    ax.set_ylabel("anchor points (pale: candidates, solid: positives)", fontsize=8)
    ax.set_title("4. where each object is learned\n(candidates and positives per level)", fontsize=9.5)
    ax.legend(fontsize=7, title="object: size", title_fontsize=7)
    ax.tick_params(labelsize=8)
    return finish_figure(fig, "Task-Aligned Assignment: which anchor points learn each object",
                         f"Computed, not sketched: {source}; assignment by yololab.detect.assign.TaskAlignedAssigner "
                         "(topk 10, alpha 0.5, beta 6.0, as Ultralytics 8.4.190), whose parity with Ultralytics' "
                         "assigner the loss tests check. Levels: circle P3, square P4, triangle P5.",
                         paths, dpi, bottom=0.05, top=0.9)


def write_explain(idea: str, out: Path, dpi: int = 150, model: str = "yolov8n", weights: Path | None = None,
                  image: Path | None = None, labels: Path | None = None, imgsz: int = 640) -> list[Path]:
    """``yololab models explain IDEA --out DIR``: the figure of ``idea`` in ``DIR`` (:data:`FORMATS`).

    For ``tal``: ``model`` (a zoo name) with ``weights`` (random when None), on ``image`` with its YOLO
    ``labels`` file (default: the label file beside it in a YOLO layout), or on a synthetic shapes image
    when ``image`` is None."""
    if idea not in IDEAS:
        raise YololabError(f"unknown idea {idea!r}: choose one of {', '.join(IDEAS)}")
    paths = [Path(out) / f"{idea}.{suffix}" for suffix in FORMATS[idea]]
    if idea == "dfl":
        _folder(out)
        return dfl_figure(paths, dpi=dpi)
    from yololab.detect.loss import YOLOv8Loss, build_loss
    from yololab.models import build_model

    if image is None:
        from yololab.data.synthetic import render_image

        img, rows = render_image(2, 0, imgsz)
        where = "a synthetic shapes image (yololab data synth, image 2, seed 0)"
    else:
        from yololab.data.io import read_image
        from yololab.data.yolo import image_to_label_path

        labels = Path(labels) if labels is not None else image_to_label_path(Path(image))
        if not labels.is_file():
            raise YololabError(f"--labels {labels}: no such file (give the image's YOLO label file)")
        rows = read_labels(labels)
        img = read_image(image)
        where = Path(image).name
    if len(rows) == 0:
        raise YololabError(f"{labels}: no objects to assign")
    nc = max(80, int(rows[:, 0].max()) + 1)
    net = build_model(model, num_classes=nc, weights=weights).eval()
    if not isinstance(build_loss(net, imgsz=imgsz), YOLOv8Loss):
        raise YololabError(f"{model}: TAL is the assigner of anchor-free heads (YOLOv8 / YOLO11); this model "
                           "assigns by anchor shape")
    _folder(out)
    state = f"{model} with weights {Path(weights).name}" if weights else f"{model} at initialisation (random weights)"
    return tal_figure(paths, tal_assignment(net, img, rows, imgsz), f"{state} on {where}", dpi=dpi)
