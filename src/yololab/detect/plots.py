"""The pictures of a validation: PR and F1 curves, confusion matrices, the first batches' images with their
labels and with the model's detections. Matplotlib (Agg), every file written atomically.

Training curves (every loss and metric against the epoch) are the engine's ``results.png``
(:func:`yololab.engine.logs.plot_results`), which draws every column of results.csv, validation metrics included.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from yololab.data.preview import draw_sample, write_grid
from yololab.detect.evaluate import CocoEval
from yololab.detect.metrics import CURVE_POINTS
from yololab.fileio import atomic_path
from yololab.ops.boxes import xyxy_to_xywhn

PRED_CONF = 0.25  # detections drawn on val_batchN_pred.jpg (Ultralytics' threshold for its pictures)
TILE = 320
LEGEND_MAX = 20  # classes named in a legend; more make it unreadable


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=150, format=path.suffix[1:])
    _pyplot().close(fig)
    return path


def plot_validation(save_dir: Path, result, names: list[str], batches: list) -> list[Path]:
    """Every validation picture of ``result`` (a :class:`~yololab.detect.val.ValResult`) into ``save_dir``;
    ``batches``: (loader batch, letterboxed detections) of the batches to draw. Returns the paths written."""
    save_dir.mkdir(parents=True, exist_ok=True)
    paths = [plot_pr_curve(save_dir / "PR_curve.png", result.coco, names),
             plot_f1_curve(save_dir / "F1_curve.png", result.curves, names)]
    paths += [plot_confusion_matrix(save_dir / f"confusion_matrix{'_normalized' * norm}.png", result.confusion.matrix,
                                    names, normalize=norm) for norm in (False, True)]
    for k, (batch, dets) in enumerate(batches):
        paths += plot_batch(save_dir, k, batch, dets, names)
    return paths


def plot_pr_curve(path: Path, coco: CocoEval, names: list[str]) -> Path:
    """Precision against recall at IoU 0.50, per class and the class mean: the official protocol's curve (101
    recall points, precision made monotone), whose area is the AP50 in the legend."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 6), tight_layout=True)
    have = np.flatnonzero(~np.isnan(coco.ap50))
    for c in have:
        label = f"{names[c]} {coco.ap50[c]:.3f}" if len(have) <= LEGEND_MAX else None
        ax.plot(CocoEval.RECALL, coco.pr50[c], linewidth=1, label=label)
    if len(have):
        ax.plot(CocoEval.RECALL, coco.pr50[have].mean(0), linewidth=3, color="blue",
                label=f"all classes {coco.stats['mAP50']:.3f} mAP@0.5")
    ax.set(xlabel="Recall", ylabel="Precision", xlim=(0, 1), ylim=(0, 1.01), title="Precision-Recall curve (COCO)")
    ax.legend(bbox_to_anchor=(1.04, 1), loc="upper left", fontsize=8)
    return _save(fig, path)


def plot_f1_curve(path: Path, curves, names: list[str]) -> Path:
    """F1 against the confidence threshold, per class and the class mean, with the chosen threshold marked."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 6), tight_layout=True)
    for k, c in enumerate(curves.classes):
        ax.plot(CURVE_POINTS, curves.f1[k], linewidth=1, label=names[c] if len(curves.classes) <= LEGEND_MAX else None)
    if len(curves.classes):
        mean = curves.f1.mean(0)
        ax.plot(CURVE_POINTS, mean, linewidth=3, color="blue",
                label=f"all classes {mean[curves.best]:.2f} at {curves.best_conf:.3f}")
        ax.axvline(curves.best_conf, color="grey", linestyle="--", linewidth=1)
    ax.set(xlabel="Confidence", ylabel="F1", xlim=(0, 1), ylim=(0, 1.01), title="F1-Confidence curve")
    ax.legend(bbox_to_anchor=(1.04, 1), loc="upper left", fontsize=8)
    return _save(fig, path)


def plot_confusion_matrix(path: Path, matrix: np.ndarray, names: list[str], normalize: bool) -> Path:
    """The confusion matrix (rows predicted, columns true, background last); ``normalize`` divides each column
    by its total, so a column reads as where that class's boxes went."""
    plt = _pyplot()
    labels = [*names, "background"]
    m = matrix.astype(float)
    if normalize:
        m = m / np.maximum(m.sum(0, keepdims=True), 1)
    n = len(labels)
    size = min(max(6.0, 0.45 * n + 3), 16)
    fig, ax = plt.subplots(figsize=(size, size * 0.85), tight_layout=True)
    shown = np.where(m > (0.005 if normalize else 0), m, np.nan)
    im = ax.imshow(shown, cmap="Blues", vmin=0)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    if n <= 30:
        ticks = range(n)
        ax.set_xticks(ticks, labels, rotation=90, fontsize=8)
        ax.set_yticks(ticks, labels, fontsize=8)
        for (i, j), v in np.ndenumerate(m):
            if v > (0.005 if normalize else 0):
                ax.text(j, i, f"{v:.2f}" if normalize else str(int(v)), ha="center", va="center", fontsize=7,
                        color="white" if v > 0.7 * np.nanmax(shown) else "black")
    ax.set(xlabel="True", ylabel="Predicted",
           title=f"Confusion matrix{' (normalized by true class)' if normalize else ''}")
    return _save(fig, path)


def plot_batch(save_dir: Path, k: int, batch: dict, dets, names: list[str]) -> list[Path]:
    """``val_batch{k}_labels.jpg`` (the letterboxed images with their boxes) and ``val_batch{k}_pred.jpg`` (with
    the detections scoring at least :data:`PRED_CONF`), side by side tile for tile."""
    imgs = batch["img"].numpy()
    labels, preds = [], []
    for i, (img, det) in enumerate(zip(imgs, dets)):
        h, w = img.shape[1:]
        mine = batch["batch_idx"] == i
        labels.append(draw_sample(img, batch["cls"][mine].numpy(), batch["bboxes"][mine].numpy(), names, TILE))
        keep = det.scores >= PRED_CONF
        preds.append(draw_sample(img, det.classes[keep].numpy(), xyxy_to_xywhn(det.boxes[keep].numpy(), w, h),
                                 names, TILE, scores=det.scores[keep].numpy()))
    return [write_grid(save_dir / f"val_batch{k}_labels.jpg", labels, TILE),
            write_grid(save_dir / f"val_batch{k}_pred.jpg", preds, TILE)]
