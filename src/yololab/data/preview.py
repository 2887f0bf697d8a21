"""``yololab data preview``: a grid of dataset samples with their boxes and class names, before or
after the training augmentations, to see what the model will be fed."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from yololab.data.augment import AugmentConfig
from yololab.data.dataset import DEFAULT_CACHE_DIR, DetectionDataset
from yololab.errors import DataError
from yololab.fileio import write_bytes_atomic
from yololab.ops.boxes import xywhn_to_xyxy


def _colour(c: int) -> tuple[int, int, int]:
    """A stable, saturated BGR colour per class."""
    hsv = np.uint8([[[(c * 47) % 180, 220, 255]]])
    return tuple(int(v) for v in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])


def draw_sample(img_rgb_chw: np.ndarray, cls: np.ndarray, bboxes: np.ndarray, names: list[str],
                tile: int) -> np.ndarray:
    """One sample as a ``tile`` x ``tile`` BGR image with its boxes (normalized xywh) and class names."""
    img = np.ascontiguousarray(img_rgb_chw.transpose(1, 2, 0)[..., ::-1])
    h, w = img.shape[:2]
    r = tile / max(h, w)
    img = cv2.resize(img, (max(1, round(w * r)), max(1, round(h * r))), interpolation=cv2.INTER_AREA)
    canvas = np.full((tile, tile, 3), 255, np.uint8)
    canvas[:img.shape[0], :img.shape[1]] = img
    th, tw = img.shape[:2]
    for c, (x1, y1, x2, y2) in zip(cls.reshape(-1).astype(int), xywhn_to_xyxy(np.asarray(bboxes), tw, th).tolist()):
        p1, p2 = (int(x1), int(y1)), (int(x2), int(y2))
        col = _colour(c)
        cv2.rectangle(canvas, p1, p2, col, 2, cv2.LINE_AA)
        label = names[c] if 0 <= c < len(names) else str(c)
        (lw, lh), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
        ty = max(p1[1], lh + 3)
        cv2.rectangle(canvas, (p1[0], ty - lh - 3), (p1[0] + lw + 2, ty), col, -1)
        cv2.putText(canvas, label, (p1[0] + 1, ty - 2), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return canvas


def preview_grid(data: str | Path, out: str | Path, split: str = "train", augment: bool = False, n: int = 16,
                 seed: int = 0, imgsz: int = 640, tile: int = 320, hyp: AugmentConfig | None = None,
                 cache_dir: str | Path | None = DEFAULT_CACHE_DIR) -> Path:
    """Write a grid of ``n`` samples of ``split`` (augmented or only letterboxed) to ``out`` (PNG/JPEG).

    Samples are picked at random with ``seed``; the same seed gives the same picture.
    """
    out = Path(out)
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise DataError(f"{out}: the output must end in .png, .jpg or .jpeg")
    if n < 1:
        raise DataError(f"--n must be at least 1 (got {n})")
    ds = DetectionDataset(data, split, imgsz=imgsz, augment=augment, hyp=hyp, seed=seed, cache_dir=cache_dir,
                          verbose=False)
    rng = np.random.default_rng(seed)
    indices = rng.choice(len(ds), size=n, replace=n > len(ds))
    tiles = []
    for i in indices:
        s = ds[int(i)]
        tiles.append(draw_sample(s["img"].numpy(), s["cls"].numpy(), s["bboxes"].numpy(), ds.cfg.names, tile))
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    gap = 4
    grid = np.full((rows * (tile + gap) + gap, cols * (tile + gap) + gap, 3), 255, np.uint8)
    for k, t in enumerate(tiles):
        r, c = divmod(k, cols)
        grid[gap + r * (tile + gap):gap + r * (tile + gap) + tile, gap + c * (tile + gap):gap + c * (tile + gap) + tile] = t

    ok, buf = cv2.imencode(out.suffix.lower(), grid)
    if not ok:
        raise DataError(f"{out}: could not encode the image")
    write_bytes_atomic(out, buf.tobytes())
    return out
