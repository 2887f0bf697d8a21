"""Pictures of a video classifier: normalized confusion matrix, accuracy and loss curves, sample clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from yololab.fileio import atomic_path


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return Path(path)


def plot_confusion(cm: np.ndarray, classes: list[str], path: Path, title: str = "") -> Path:
    """Rows: true class, columns: predicted; each row divided by its count (recall on the diagonal)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = cm.sum(1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)
    n = len(classes)
    fig, ax = plt.subplots(figsize=(1.2 + 0.55 * n, 1 + 0.5 * n))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), classes, rotation=45, ha="right")
    ax.set_yticks(range(n), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= 30:
        for i in range(n):
            for j in range(n):
                if norm[i, j] >= 0.005:
                    ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, fraction=0.046)
    ax.set_title(title or "confusion matrix (normalized by true class)")
    return _save(fig, path)


def plot_curves(history: list[dict], path: Path) -> Path:
    """Training and validation loss, and validation top-1 / top-5, per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
    for key, label in (("train/loss", "train loss"), ("val/loss", "val loss")):
        pts = [(r["epoch"], r[key]) for r in history if key in r]
        if pts:
            a1.plot(*zip(*pts), marker="o", ms=3, label=label)
    for key, label in (("metrics/top1", "val top-1"), ("metrics/top5", "val top-5")):
        pts = [(r["epoch"], r[key]) for r in history if key in r]
        if pts:
            a2.plot(*zip(*pts), marker="o", ms=3, label=label)
    a1.set_xlabel("epoch")
    a1.set_title("loss")
    a2.set_xlabel("epoch")
    a2.set_title("accuracy")
    a2.set_ylim(0, 1.02)
    for a in (a1, a2):
        a.grid(alpha=0.3)
        a.legend()
    return _save(fig, path)


def plot_samples(clips: list[np.ndarray], true: list[str], pred: list[str], path: Path, frames: int = 4) -> Path:
    """One row per clip: ``frames`` evenly spaced frames of the RGB uint8 ``(T, H, W, 3)`` clip, titled
    with the true and predicted class (green when right, red when wrong)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(clips)
    fig, axes = plt.subplots(n, frames, figsize=(1.6 * frames, 1.7 * n), squeeze=False)
    for r, (clip, t, p) in enumerate(zip(clips, true, pred)):
        picks = np.linspace(0, len(clip) - 1, frames).round().astype(int)
        for c, i in enumerate(picks):
            ax = axes[r, c]
            ax.imshow(clip[i])
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_title(f"true {t} / pred {p}", fontsize=8, loc="left", color="green" if t == p else "red")
    return _save(fig, path)
