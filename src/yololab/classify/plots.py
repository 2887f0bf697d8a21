"""The classification run's pictures (the seed plan's names): curves_cls.png, confusion_matrix.png,
preds_grid.png, miscls_grid.png and gradcam_<method>.png.

Every function takes plain arrays and writes one PNG atomically; matplotlib ``Figure`` objects are used
without pyplot, so nothing depends on a display or a global backend.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from yololab.fileio import atomic_path


def _save(fig, path: Path, dpi: int = 110) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png", bbox_inches="tight")
    return path


def _figure(w: float, h: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h))


def read_results(csv_path: Path) -> dict[str, list[float]]:
    """Columns of the engine's results.csv as float lists (blank cells as NaN; header cells stripped)."""
    with open(csv_path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows:
        return {}
    header = [h.strip() for h in rows[0]]
    cols: dict[str, list[float]] = {h: [] for h in header}
    for row in rows[1:]:
        for h, v in zip(header, row):
            try:
                cols[h].append(float(v))
            except ValueError:
                cols[h].append(math.nan)
    return cols


def plot_curves(results: dict[str, list[float]], path: Path, title: str = "") -> Path:
    """Losses (left) and top-1 / top-5 accuracy (right) against the epoch."""
    epochs = results.get("epoch") or list(range(1, 1 + max((len(v) for v in results.values()), default=0)))
    fig = _figure(11, 4)
    ax_loss, ax_acc = fig.subplots(1, 2)
    for key, vals in results.items():
        if key == "epoch" or not vals:
            continue
        short = key.split("/")[-1]
        if "loss" in short:
            ax_loss.plot(epochs[:len(vals)], vals, marker=".", label=key)
        elif short in ("top1", "top5", "pointing_game"):
            ax_acc.plot(epochs[:len(vals)], vals, marker=".", label=key)
    for ax, name in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    ax_acc.set_ylim(0, 1.01)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_confusion(confusion: np.ndarray, names: list[str], path: Path, title: str = "") -> Path:
    """Row-normalized confusion matrix (true class in rows), with counts written in the cells."""
    nc = len(names)
    rows = confusion.sum(1, keepdims=True)
    norm = np.divide(confusion, rows, out=np.zeros(confusion.shape), where=rows > 0)
    side = max(4.0, 0.45 * nc + 2)
    fig = _figure(side + 1, side)
    ax = fig.subplots()
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    if nc <= 30:
        ax.set_xticks(range(nc), names, rotation=90, fontsize=8)
        ax.set_yticks(range(nc), names, fontsize=8)
        for i in range(nc):
            for j in range(nc):
                if confusion[i, j]:
                    ax.text(j, i, str(confusion[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or f"confusion matrix ({confusion.sum()} images)")
    return _save(fig, path)


def _grid(images: list[np.ndarray], captions: list[str], colours: list[str], path: Path, title: str,
          cols: int = 8) -> Path:
    n = max(len(images), 1)
    rows = math.ceil(n / cols)
    fig = _figure(1.6 * cols, 1.8 * rows + 0.4)
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, img, cap, col in zip(axes, images, captions, colours):
        ax.imshow(img.squeeze(), cmap="gray" if img.ndim == 2 or img.shape[-1] == 1 else None,
                  interpolation="nearest")
        ax.set_title(cap, fontsize=7, color=col)
    if not images:
        axes[0].text(0.5, 0.5, "nothing to show", ha="center", va="center")
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def plot_predictions(images: np.ndarray, labels: np.ndarray, preds: np.ndarray, conf: np.ndarray, names: list[str],
                     path: Path, n: int = 32) -> Path:
    """The first ``n`` images: predicted class and confidence, green when right, red when wrong (true class)."""
    idx = np.arange(min(n, len(images)))
    caps = [f"{names[preds[i]]} {conf[i]:.2f}" + ("" if preds[i] == labels[i] else f"\n(true {names[labels[i]]})")
            for i in idx]
    cols = ["green" if preds[i] == labels[i] else "red" for i in idx]
    return _grid([images[i] for i in idx], caps, cols, path, "predictions on validation images (confidence)")


def plot_misclassified(images: np.ndarray, labels: np.ndarray, preds: np.ndarray, conf: np.ndarray,
                       names: list[str], path: Path, total: int) -> Path:
    """Mistakes (the caller picks them, e.g. the most confident ones): true -> predicted (confidence)."""
    caps = [f"{names[t]} -> {names[p]}\n{c:.2f}" for t, p, c in zip(labels, preds, conf)]
    return _grid(list(images), caps, ["red"] * len(caps), path,
                 f"most confident mistakes ({len(caps)} of {total} shown)")


def plot_cams(images: np.ndarray, cams: np.ndarray, captions: list[str], path: Path, title: str,
              boxes: np.ndarray | None = None, hits: np.ndarray | None = None) -> Path:
    """Pairs of (image, CAM overlay); the object's box and the CAM maximum (x) where known."""
    from yololab.classify.cam import overlay

    n = len(images)
    cols = min(n, 8)
    rows = 2 * math.ceil(n / max(cols, 1))
    fig = _figure(1.6 * cols, 1.7 * rows + 0.4)
    axes = np.atleast_2d(fig.subplots(rows, cols))
    for ax in axes.ravel():
        ax.axis("off")
    for k in range(n):
        r, c = 2 * (k // cols), k % cols
        img = images[k]
        axes[r, c].imshow(img.squeeze(), cmap="gray" if img.shape[-1] == 1 else None, interpolation="nearest")
        axes[r, c].set_title(captions[k], fontsize=7)
        axes[r + 1, c].imshow(overlay(img, cams[k]), interpolation="bilinear")
        h, w = cams[k].shape
        y, x = divmod(int(cams[k].argmax()), w)
        sx, sy = img.shape[1] / w, img.shape[0] / h
        axes[r + 1, c].plot([(x + 0.5) * sx - 0.5], [(y + 0.5) * sy - 0.5], "wx", ms=6, mew=2)
        if boxes is not None:
            x1, y1, x2, y2 = boxes[k]
            colour = "lime" if hits is None or hits[k] else "red"
            from matplotlib.patches import Rectangle

            axes[r + 1, c].add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, ec=colour, lw=1.2))
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)
