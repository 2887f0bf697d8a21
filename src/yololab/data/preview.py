"""``yololab data preview``: a grid of dataset samples with their boxes and class names, before or
after the training augmentations, to see what the model will be fed."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from yololab.data.augment import AugmentConfig
from yololab.data.dataset import DEFAULT_CACHE_DIR, DetectionDataset
from yololab.errors import DataError
from yololab.fileio import write_bytes_atomic
from yololab.ops.boxes import xywhn_to_xyxy


# 20 colours told apart at a glance, neighbours in the list far apart (Trubetskoy's list of distinct colours),
# as RGB; classes beyond them get hues a golden angle apart
PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
           (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195), (128, 128, 0), (255, 215, 180),
           (0, 0, 128), (128, 128, 128)]


def _colour(c: int) -> tuple[int, int, int]:
    """A stable BGR colour per class, distinct from the other classes' colours."""
    if c < len(PALETTE):
        r, g, b = PALETTE[c]
        return b, g, r
    hsv = np.uint8([[[int(c * 137.508 / 2) % 180, 230, 240]]])
    return tuple(int(v) for v in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])


def _text_colour(bgr: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black on light label backgrounds, white on dark ones."""
    b, g, r = bgr
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 140 else (255, 255, 255)


def draw_sample(img_rgb_chw: np.ndarray, cls: np.ndarray, bboxes: np.ndarray, names: list[str],
                tile: int, scores: np.ndarray | None = None) -> np.ndarray:
    """One sample as a ``tile`` x ``tile`` BGR image with its boxes (normalized xywh) and class names (and
    ``scores``, for detections)."""
    img = np.ascontiguousarray(img_rgb_chw.transpose(1, 2, 0)[..., ::-1])
    h, w = img.shape[:2]
    r = tile / max(h, w)
    img = cv2.resize(img, (max(1, round(w * r)), max(1, round(h * r))), interpolation=cv2.INTER_AREA)
    canvas = np.full((tile, tile, 3), 255, np.uint8)
    canvas[:img.shape[0], :img.shape[1]] = img
    th, tw = img.shape[:2]
    cls = cls.reshape(-1).astype(int)
    scores = [None] * len(cls) if scores is None else scores.reshape(-1).tolist()
    for c, s, (x1, y1, x2, y2) in zip(cls, scores, xywhn_to_xyxy(np.asarray(bboxes), tw, th).tolist()):
        p1, p2 = (int(x1), int(y1)), (int(x2), int(y2))
        col = _colour(c)
        cv2.rectangle(canvas, p1, p2, col, 2, cv2.LINE_AA)
        label = (names[c] if 0 <= c < len(names) else str(c)) + ("" if s is None else f" {s:.2f}")
        (lw, lh), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
        ty = max(p1[1], lh + 3)
        cv2.rectangle(canvas, (p1[0], ty - lh - 3), (p1[0] + lw + 2, ty), col, -1)
        cv2.putText(canvas, label, (p1[0] + 1, ty - 2), cv2.FONT_HERSHEY_SIMPLEX, 0.4, _text_colour(col), 1,
                    cv2.LINE_AA)
    return canvas


def preview_grid(data: str | Path, out: str | Path, split: str = "train", augment: bool = False, n: int = 16,
                 seed: int = 0, imgsz: int = 640, tile: int = 320, hyp: AugmentConfig | None = None,
                 cache_dir: str | Path | None = DEFAULT_CACHE_DIR, log: Callable[[str], object] | None = None) -> Path:
    """Write a grid of ``n`` samples of ``split`` (augmented or only letterboxed) to ``out`` (PNG/JPEG).

    Samples are picked at random with ``seed``, each at most once: a split smaller than ``n`` gives a smaller
    grid, and ``log`` (if given) is told so. The same seed gives the same picture.
    """
    out = Path(out)
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise DataError(f"{out}: the output must end in .png, .jpg or .jpeg")
    if n < 1:
        raise DataError(f"--n must be at least 1 (got {n})")
    ds = DetectionDataset(data, split, imgsz=imgsz, augment=augment, hyp=hyp, seed=seed, cache_dir=cache_dir,
                          verbose=False)
    if n > len(ds) and log is not None:
        log(f"note: split '{split}' has {len(ds)} usable images; the grid shows each once ({len(ds)}, not {n})")
    n = min(n, len(ds))
    rng = np.random.default_rng(seed)
    indices = rng.choice(len(ds), size=n, replace=False)
    tiles = []
    for i in indices:
        s = ds[int(i)]
        tiles.append(draw_sample(s["img"].numpy(), s["cls"].numpy(), s["bboxes"].numpy(), ds.cfg.names, tile))
    return write_grid(out, tiles, tile)


def write_grid(out: Path, tiles: list[np.ndarray], tile: int, gap: int = 4) -> Path:
    """Write ``tile`` x ``tile`` BGR images as a near-square grid on white to ``out`` (PNG/JPEG, atomically)."""
    cols = math.ceil(math.sqrt(len(tiles)))
    rows = math.ceil(len(tiles) / cols)
    grid = np.full((rows * (tile + gap) + gap, cols * (tile + gap) + gap, 3), 255, np.uint8)
    for k, t in enumerate(tiles):
        r, c = divmod(k, cols)
        grid[gap + r * (tile + gap):gap + r * (tile + gap) + tile, gap + c * (tile + gap):gap + c * (tile + gap) + tile] = t

    ok, buf = cv2.imencode(out.suffix.lower(), grid)
    if not ok:
        raise DataError(f"{out}: could not encode the image")
    write_bytes_atomic(out, buf.tobytes())
    return out
