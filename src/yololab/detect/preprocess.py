"""An image file -> the input a detector takes: letterboxed to a square, RGB, float32 in [0, 1], (1, 3, S, S).

The gain and pad returned map boxes back to the original image (:func:`yololab.detect.postprocess.to_image`).
"""

from __future__ import annotations

import os

import numpy as np
import torch

from yololab.data.augment import letterbox
from yololab.data.io import read_image


def to_input(img_bgr: np.ndarray, imgsz: int) -> tuple[torch.Tensor, tuple[float, float], tuple[int, int]]:
    """An (H, W, 3) uint8 BGR image letterboxed to ``imgsz`` x ``imgsz``: (input tensor, (gain_w, gain_h),
    (pad_left, pad_top)), as the validation loader prepares images."""
    img, gain, pad = letterbox(img_bgr, (imgsz, imgsz))
    rgb = np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1))
    return torch.from_numpy(rgb).float().div_(255).unsqueeze(0), gain, pad


def load_input(path: str | os.PathLike, imgsz: int) -> tuple[torch.Tensor, tuple[float, float], tuple[int, int],
                                                          tuple[int, int]]:
    """Read an image file (EXIF orientation applied) and prepare it: (input, gain, pad, original (h, w))."""
    img = read_image(path)
    return (*to_input(img, imgsz), img.shape[:2])
