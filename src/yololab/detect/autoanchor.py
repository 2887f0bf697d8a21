"""Auto-anchor for anchor-based detectors (YOLOv3, YOLOv5), as yolov5 7.0.14 does it (yolov5/utils/autoanchor.py).

Before training, :func:`check_anchors` measures how well the model's anchors fit the dataset's boxes: a truth
can be learned only by an anchor whose width and height are both within a factor ``thr`` (``anchor_t``, 4) of
its own (the yolov5 loss's matching rule). The best possible recall (BPR) is the fraction of truths that at
least one anchor can learn. Below 0.98 new anchors are computed: k-means on the boxes' (whitened) sizes, then
a genetic evolution that mutates them to maximise the mean best-anchor ratio (ratios under ``1/thr`` count
0). The new anchors replace the old only if their BPR is higher. They are written into the head's ``anchors``
buffer, which is part of the state dict, so every checkpoint carries them.

Sizes are those the model sees: every image resized so that its longer side is ``imgsz``; the BPR check also
scales each image by a random factor in [0.9, 1.1] (training's scale augmentation), seeded here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from yololab.detect.loss import anchor_levels
from yololab.errors import DataError
from yololab.progress import progress


def label_wh(labels: Sequence[np.ndarray], shapes: np.ndarray, imgsz: int,
             scale: np.ndarray | None = None) -> torch.Tensor:
    """(N, 2) width and height in pixels of every box, each image resized to ``imgsz`` on its longer side.

    ``labels``: per image (n, 5) rows ``class, x, y, w, h`` normalised; ``shapes``: per image (h, w) as
    ``DetectionDataset.shapes`` holds them; ``scale``: optional (images, 1) factors (the BPR check's jitter).
    """
    shapes = np.asarray(shapes, dtype=np.float64).reshape(-1, 2)[:, ::-1]  # (w, h)
    if len(shapes) != len(labels):
        raise DataError(f"auto-anchor: {len(labels)} label arrays but {len(shapes)} image shapes")
    sizes = imgsz * shapes / shapes.max(1, keepdims=True)
    if scale is not None:
        sizes = sizes * scale
    wh = [np.asarray(lb, dtype=np.float64).reshape(-1, 5)[:, 3:5] * s for s, lb in zip(sizes, labels)]
    wh = np.concatenate(wh) if wh else np.zeros((0, 2))
    if not len(wh):
        raise DataError("auto-anchor: the dataset has no boxes")
    return torch.tensor(wh, dtype=torch.float32)


def _ratio(wh: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """(N, K): for each truth and anchor the worse of the width and height ratios, as a fraction <= 1."""
    r = wh[:, None] / anchors[None]
    return torch.min(r, 1 / r).min(2)[0]


def anchor_metrics(wh: torch.Tensor, anchors: torch.Tensor, thr: float = 4.0) -> tuple[float, float]:
    """(best possible recall, anchors above threshold per truth) of ``anchors`` (K, 2) for truths ``wh`` (N, 2)."""
    x = _ratio(wh, anchors.float())
    bpr = (x.max(1)[0] > 1 / thr).float().mean()
    aat = (x > 1 / thr).float().sum(1).mean()
    return bpr.item(), aat.item()


def anchor_fitness(wh: torch.Tensor, anchors: torch.Tensor, thr: float = 4.0) -> float:
    """What the evolution maximises: the mean best ratio, truths no anchor can learn counting 0."""
    best = _ratio(wh, anchors.float()).max(1)[0]
    return (best * (best > 1 / thr).float()).mean().item()


def kmeans(points: torch.Tensor, k: int, restarts: int = 30, generator: torch.Generator | None = None,
           tol: float = 1e-5, max_iter: int = 300) -> torch.Tensor:
    """Lloyd's k-means as ``scipy.cluster.vq.kmeans(points, k, iter=restarts)``: each restart starts from k
    distinct random points and stops when the mean distance to the nearest centroid improves by less than
    ``tol``; the centroids of the lowest mean distance win. (k, D)."""
    best, best_d = None, float("inf")
    for _ in range(restarts):
        c = points[torch.randperm(len(points), generator=generator)[:k]].clone()
        prev = float("inf")
        for _ in range(max_iter):
            d, near = torch.cdist(points, c).min(1)
            dist = d.mean().item()
            counts = torch.bincount(near, minlength=k)
            sums = torch.zeros_like(c).index_add_(0, near, points)
            c = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None], c)  # empty: stays
            if prev - dist <= tol:
                break
            prev = dist
        if dist < best_d:
            best, best_d = c, dist
    return best


def kmean_anchors(wh: torch.Tensor, n: int, thr: float = 4.0, gen: int = 1000, seed: int = 0,
                  verbose: bool = False) -> torch.Tensor:
    """``n`` anchors (n, 2) in pixels, sorted by area, fitted to truths ``wh`` (N, 2) in pixels.

    As yolov5's ``kmean_anchors``: boxes under 2 px on both sides are left out; k-means on the sizes divided
    by their standard deviation (so width and height weigh alike), then ``gen`` generations of mutation
    (each anchor value x a factor near 1 with probability 0.9, sigma 0.1, clipped to [0.3, 3]; anchors at
    least 2 px), a mutant kept when its :func:`anchor_fitness` is higher. Seeded: the same inputs and seed
    give the same anchors.
    """
    wh = wh[(wh >= 2.0).any(1)]
    if len(wh) < n:
        raise DataError(f"auto-anchor: {len(wh)} boxes of 2 px or more, fewer than the {n} anchors to fit")
    g = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    s = wh.std(0)
    k = (kmeans(wh / s, n, generator=g) * s).double().numpy()
    f = anchor_fitness(wh, torch.from_numpy(k).float(), thr)
    shape, mp, sigma = k.shape, 0.9, 0.1  # mutation probability and sigma
    bar = progress(range(gen), desc="auto-anchor: evolving", enabled=verbose)
    for _ in bar:
        v = np.ones(shape)
        while (v == 1).all():  # mutate until something changes
            v = ((rng.random(shape) < mp) * rng.random() * rng.standard_normal(shape) * sigma + 1).clip(0.3, 3.0)
        kg = (k * v).clip(min=2.0)
        fg = anchor_fitness(wh, torch.from_numpy(kg).float(), thr)
        if fg > f:
            f, k = fg, kg
            bar.set_postfix(fitness=f"{f:.4f}")
    k = torch.from_numpy(k).float()
    return k[torch.argsort(k.prod(1))]


def apply_anchors(model: nn.Module, anchors: torch.Tensor) -> None:
    """Write ``anchors`` (nl * na, 2) pixels into the model's anchor buffers: sorted by area, the smallest na to
    the finest level (stride 8 or 16) and so on, as yolov5's ``check_anchor_order`` wants them."""
    levels, _ = anchor_levels(model)
    total = sum(len(a) for a in levels)
    if anchors.shape != (total, 2):
        raise DataError(f"auto-anchor: the model has {total} anchors, got a tensor of shape {tuple(anchors.shape)}")
    anchors = anchors[torch.argsort(anchors.prod(1))]
    with torch.no_grad():
        for buf, new in zip(levels, anchors.split([len(a) for a in levels])):
            buf.copy_(new)


@dataclass
class AnchorCheck:
    """What :func:`check_anchors` found and did."""

    bpr: float  # best possible recall of the model's anchors
    aat: float  # anchors above threshold per truth
    new_bpr: float | None  # of the computed anchors (None: not computed)
    replaced: bool
    anchors: torch.Tensor  # the anchors the model has now, (nl * na, 2) pixels
    message: str


def check_anchors(model: nn.Module, labels: Sequence[np.ndarray], shapes: np.ndarray, imgsz: int,
                  thr: float = 4.0, gen: int = 1000, seed: int = 0, verbose: bool = False) -> AnchorCheck:
    """yolov5's ``check_anchors``: keep the anchors if their BPR exceeds 0.98, else fit new ones
    (:func:`kmean_anchors`) and take them when their BPR is higher. ``labels``, ``shapes``: as
    :func:`label_wh` (a ``DetectionDataset``'s ``labels`` and ``shapes``)."""
    rng = np.random.default_rng(seed)
    wh = label_wh(labels, shapes, imgsz, scale=rng.uniform(0.9, 1.1, size=(len(labels), 1)))
    anchors = torch.cat(anchor_levels(model)[0]).detach().cpu().float()
    bpr, aat = anchor_metrics(wh, anchors, thr)
    head = f"auto-anchor: {aat:.2f} anchors/target, best possible recall {bpr:.4f}"
    if bpr > 0.98:
        return AnchorCheck(bpr, aat, None, False, anchors, f"{head}: the anchors fit the dataset")
    try:
        new = kmean_anchors(label_wh(labels, shapes, imgsz), len(anchors), thr, gen, seed, verbose)
    except DataError as e:
        return AnchorCheck(bpr, aat, None, False, anchors, f"{head}; kept the anchors: {e}")
    new_bpr = anchor_metrics(wh, new, thr)[0]
    if new_bpr <= bpr:
        return AnchorCheck(bpr, aat, new_bpr, False, anchors,
                           f"{head}; new anchors reach {new_bpr:.4f}, no better: kept the anchors")
    apply_anchors(model, new)
    now = torch.cat(anchor_levels(model)[0]).detach().cpu().float()
    listed = ", ".join(f"{w:.0f}x{h:.0f}" for w, h in now.tolist())
    return AnchorCheck(bpr, aat, new_bpr, True, now, f"{head}; new anchors reach {new_bpr:.4f}: {listed}")
