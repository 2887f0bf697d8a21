"""Training augmentations for detection: letterbox, random affine/perspective, HSV, flips, mixup and
Albumentations' photometric extras, with the boxes carried through every geometric step.

Conventions used by every function here:

* images are ``(H, W, 3)`` uint8 BGR NumPy arrays, and stay uint8 from decoding to the batch (no
  float copies of whole images: OpenCV warps, look-up tables and ``cv2.addWeighted`` work on uint8);
* boxes are ``(N, 4)`` float32 ``x1, y1, x2, y2`` in pixels of the current image, classes ``(N,)``
  float32; a function that moves pixels returns the moved boxes, clipped to the image, with the boxes
  that became degenerate removed by :func:`box_candidates` (Ultralytics' rule);
* randomness comes only from the ``numpy.random.Generator`` passed in, so a sample is a pure
  function of its generator's seed (see ``DetectionDataset`` for how seeds are chosen).

Every probability and range is a field of :class:`AugmentConfig`, whose defaults are those of
Ultralytics (``ultralytics/cfg/default.yaml``; Albumentations probabilities from its
``Albumentations`` class).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import cv2
import numpy as np

from yololab.errors import ConfigError

PAD_VALUE = 114  # grey used for letterbox borders, mosaic gaps and warp borders (as YOLOv5/v8)


@dataclass
class AugmentConfig:
    """Augmentation hyperparameters (defaults: Ultralytics)."""

    hsv_h: float = 0.015      # hue shift, fraction of the hue circle (+/-)
    hsv_s: float = 0.7        # saturation gain (+/- fraction)
    hsv_v: float = 0.4        # value (brightness) gain (+/- fraction)
    degrees: float = 0.0      # rotation (+/- degrees)
    translate: float = 0.1    # translation (+/- fraction of the image side)
    scale: float = 0.5        # scale gain (+/- fraction)
    shear: float = 0.0        # shear (+/- degrees)
    perspective: float = 0.0  # perspective (+/- fraction; 0 - 0.001 is typical)
    flipud: float = 0.0       # probability of a vertical flip
    fliplr: float = 0.5       # probability of a horizontal flip
    mosaic: float = 1.0       # probability of a 4-image mosaic
    mixup: float = 0.0        # probability of mixing with a second (mosaic) sample
    close_mosaic: int = 10    # turn mosaic and mixup off for the last N epochs (0: never)
    # Albumentations photometric extras (probabilities; Ultralytics' values)
    blur: float = 0.01
    median_blur: float = 0.01
    to_gray: float = 0.01
    clahe: float = 0.01
    brightness_contrast: float = 0.0
    gamma: float = 0.0
    jpeg: float = 0.0         # JPEG re-compression, quality 75-100
    # box candidate rule after a geometric transform (Ultralytics' box_candidates)
    min_box_wh: float = 2.0      # pixels: narrower or lower boxes are dropped
    min_area_ratio: float = 0.1  # boxes keeping less than this fraction of their (scaled) area are dropped
    max_aspect: float = 100.0    # boxes longer than this ratio are dropped

    def __post_init__(self):
        probabilities = ("flipud", "fliplr", "mosaic", "mixup", "blur", "median_blur", "to_gray", "clahe",
                         "brightness_contrast", "gamma", "jpeg")
        for name in probabilities:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"augmentation field '{name}' is a probability in [0, 1], got {getattr(self, name)}")
        for name in ("hsv_h", "hsv_s", "hsv_v", "scale", "translate"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"augmentation field '{name}' must be in [0, 1), got {getattr(self, name)}")
        if self.close_mosaic < 0:
            raise ConfigError(f"augmentation field 'close_mosaic' must be >= 0, got {self.close_mosaic}")

    @classmethod
    def from_dict(cls, d: dict, where: str = "hyperparameters") -> "AugmentConfig":
        """Build from a mapping (e.g. a YAML file); unknown keys are an error naming the key."""
        known = {f.name: f for f in fields(cls)}
        kwargs = {}
        for k, v in d.items():
            if k not in known:
                raise ConfigError(f"{where}: unknown augmentation field '{k}' (known: {', '.join(known)})")
            try:
                kwargs[k] = int(v) if known[k].type in ("int", int) else float(v)
            except (TypeError, ValueError):
                raise ConfigError(f"{where}: field '{k}' must be a number, got {v!r}") from None
        return cls(**kwargs)


# ---------------------------------------------------------------------------------------------
# Letterbox


def letterbox(img: np.ndarray, new_shape: tuple[int, int], scaleup: bool = True, color: int = PAD_VALUE,
              stride: int | None = None) -> tuple[np.ndarray, tuple[float, float], tuple[int, int]]:
    """Resize keeping the aspect ratio, then pad to ``new_shape`` (h, w) with grey.

    With ``stride``, pad only up to the next multiple of it instead (the minimum rectangle, Ultralytics'
    ``LetterBox(auto=True)`` of ``predict``): a 480x640 photo at 640 stays 480x640.

    Returns (image, (gain_w, gain_h), (pad_left, pad_top)): a pixel ``x`` of the input lands on
    ``x * gain_w + pad_left``. The gains are those of the actual integer size, so the mapping is exact.
    """
    h0, w0 = img.shape[:2]
    nh, nw = new_shape
    r = min(nh / h0, nw / w0)
    if not scaleup:
        r = min(r, 1.0)
    w, h = max(1, int(round(w0 * r))), max(1, int(round(h0 * r)))
    if (w, h) != (w0, h0):
        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
    dw, dh = nw - w, nh - h
    if stride:
        dw, dh = dw % stride, dh % stride
    left, top = int(round(dw / 2 - 0.1)), int(round(dh / 2 - 0.1))
    if dw or dh:
        img = cv2.copyMakeBorder(img, top, dh - top, left, dw - left, cv2.BORDER_CONSTANT,
                                 value=(color, color, color))
    return img, (w / w0, h / h0), (left, top)


def unletterbox_boxes(boxes: np.ndarray, gain: tuple[float, float], pad: tuple[int, int]) -> np.ndarray:
    """Map ``x1, y1, x2, y2`` boxes of a letterboxed image back to the original image's pixels."""
    out = np.asarray(boxes, np.float64).copy()
    out[:, [0, 2]] = (out[:, [0, 2]] - pad[0]) / gain[0]
    out[:, [1, 3]] = (out[:, [1, 3]] - pad[1]) / gain[1]
    return out


# ---------------------------------------------------------------------------------------------
# Geometry


def box_candidates(before: np.ndarray, after: np.ndarray, min_wh: float = 2.0, min_area_ratio: float = 0.1,
                   max_aspect: float = 100.0, eps: float = 1e-16) -> np.ndarray:
    """Which boxes survive a transform: at least ``min_wh`` pixels wide and high, at least
    ``min_area_ratio`` of their area before (already scaled by the transform's scale), and an aspect
    ratio below ``max_aspect``. ``before``/``after``: (N, 4) xyxy. Returns a bool mask (N,)."""
    w1, h1 = before[:, 2] - before[:, 0], before[:, 3] - before[:, 1]
    w2, h2 = after[:, 2] - after[:, 0], after[:, 3] - after[:, 1]
    aspect = np.maximum(w2 / (h2 + eps), h2 / (w2 + eps))
    return (w2 > min_wh) & (h2 > min_wh) & (w2 * h2 / (w1 * h1 + eps) > min_area_ratio) & (aspect < max_aspect)


def transform_boxes(boxes: np.ndarray, M: np.ndarray, width: int, height: int) -> np.ndarray:
    """Apply a 3x3 affine/perspective matrix to boxes: transform their 4 corners, take the enclosing
    box, clip it to the ``width`` x ``height`` image."""
    n = len(boxes)
    if n == 0:
        return boxes.reshape(0, 4).astype(np.float32)
    xy = np.ones((n * 4, 3), np.float64)
    xy[:, :2] = boxes[:, [0, 1, 2, 3, 0, 3, 2, 1]].reshape(n * 4, 2)  # corners x1y1, x2y2, x1y2, x2y1
    xy = xy @ M.T
    xy = xy[:, :2] / xy[:, 2:3] if M[2, 0] or M[2, 1] else xy[:, :2]
    xy = xy.reshape(n, 4, 2)
    out = np.concatenate([xy.min(1), xy.max(1)], 1)
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, width)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, height)
    return out.astype(np.float32)


def scale_translate_into(out: np.ndarray, img: np.ndarray, M: np.ndarray,
                         hsv: np.ndarray | None = None) -> np.ndarray:
    """Paint ``img`` moved by ``x -> s * x + t`` (M = [[s, 0, tx], [0, s, ty], [0, 0, 1]]) into ``out``,
    resizing only the part of the image that lands in ``out``: several times faster than a general
    warp. Returns the matrix of the mapping actually done (whole-pixel crop and paste bounds make it
    differ from M by less than a pixel); transform the boxes with it.

    ``hsv``: an HSV look-up table (:func:`hsv_lut`) to apply to the painted pixels too, on whichever
    side of the resize has fewer pixels. After it when the image shrinks: the pixels are those of HSV
    on the finished output, up to OpenCV's own rounding (its HSV -> BGR gives the last ``width mod 32``
    pixels of a row one level more or less). Before it when the image grows: the output pixels are
    then interpolations of HSV-adjusted pixels instead of HSV of interpolated pixels; HSV works pixel
    by pixel, so the two differ only where interpolation mixes neighbours, by a level or two. ``img``
    itself is never modified.
    """
    s, tx, ty = float(M[0, 0]), float(M[0, 2]), float(M[1, 2])
    h, w = img.shape[:2]
    out_h, out_w = out.shape[:2]
    # source pixels that land inside the output
    x0, x1 = max(0, math.floor(-tx / s)), min(w, math.ceil((out_w - tx) / s))
    y0, y1 = max(0, math.floor(-ty / s)), min(h, math.ceil((out_h - ty) / s))
    if x1 <= x0 or y1 <= y0:
        return M
    # where that crop goes, in whole pixels (may stick out of the output by a pixel or so)
    u0, u1 = int(round(x0 * s + tx)), int(round(x1 * s + tx))
    v0, v1 = int(round(y0 * s + ty)), int(round(y1 * s + ty))
    if u1 <= u0 or v1 <= v0:
        return M
    a, b = max(u0, 0), max(v0, 0)
    c, d = min(u1, out_w), min(v1, out_h)
    src = img[y0:y1, x0:x1]
    hsv_first = hsv is not None and (x1 - x0) * (y1 - y0) < (c - a) * (d - b)
    if hsv_first:
        src = apply_hsv(src, hsv, copy=True)
    if c > a and d > b:
        if (a, b, c, d) == (u0, v0, u1, v1):  # fits: resize straight into the output, no temporary image
            cv2.resize(src, (u1 - u0, v1 - v0), dst=out[b:d, a:c], interpolation=cv2.INTER_LINEAR)
        else:
            crop = cv2.resize(src, (u1 - u0, v1 - v0), interpolation=cv2.INTER_LINEAR)
            out[b:d, a:c] = crop[b - v0:d - v0, a - u0:c - u0]
        if hsv is not None and not hsv_first:
            apply_hsv(out[b:d, a:c], hsv)
    sx, sy = (u1 - u0) / (x1 - x0), (v1 - v0) / (y1 - y0)
    return np.array([[sx, 0, u0 - x0 * sx], [0, sy, v0 - y0 * sy], [0, 0, 1]])


def affine_matrix(in_w: int, in_h: int, out_w: int, out_h: int, hyp: AugmentConfig,
                  rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """A random 3x3 warp from an ``in_w`` x ``in_h`` image to an ``out_w`` x ``out_h`` one, built as
    Ultralytics does: move the centre to the origin, perspective, rotate and scale, shear, then
    translate to a random point near the output's centre. Returns (M, scale)."""
    C = np.eye(3)
    C[0, 2], C[1, 2] = -in_w / 2, -in_h / 2
    P = np.eye(3)
    P[2, 0], P[2, 1] = rng.uniform(-hyp.perspective, hyp.perspective, 2)
    R = np.eye(3)
    angle = rng.uniform(-hyp.degrees, hyp.degrees)
    s = rng.uniform(1 - hyp.scale, 1 + hyp.scale)
    R[:2] = cv2.getRotationMatrix2D((0, 0), angle, s)
    S = np.eye(3)
    S[0, 1], S[1, 0] = np.tan(np.radians(rng.uniform(-hyp.shear, hyp.shear, 2)))
    T = np.eye(3)
    T[0, 2] = rng.uniform(0.5 - hyp.translate, 0.5 + hyp.translate) * out_w
    T[1, 2] = rng.uniform(0.5 - hyp.translate, 0.5 + hyp.translate) * out_h
    return T @ S @ R @ P @ C, s  # right to left


def only_scale_translate(hyp: AugmentConfig) -> bool:
    """True when the random warp can only scale and translate (the default hyperparameters)."""
    return not (hyp.degrees or hyp.shear or hyp.perspective)


def random_affine(img: np.ndarray, cls: np.ndarray, boxes: np.ndarray, hyp: AugmentConfig,
                  rng: np.random.Generator, border: tuple[int, int] = (0, 0)
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random perspective, rotation, scale, shear and translation in one warp (see affine_matrix).

    The output is the input size plus ``2 * border`` (a mosaic canvas of 2s x 2s with border -s/2
    gives an s x s image). Boxes are transformed, clipped, and filtered with box_candidates.
    """
    out_h, out_w = img.shape[0] + 2 * border[0], img.shape[1] + 2 * border[1]
    M, s = affine_matrix(img.shape[1], img.shape[0], out_w, out_h, hyp, rng)
    fill = (PAD_VALUE, PAD_VALUE, PAD_VALUE)
    if hyp.perspective:
        img = cv2.warpPerspective(img, M, (out_w, out_h), borderValue=fill)
    elif only_scale_translate(hyp):
        out = np.full((out_h, out_w, 3), PAD_VALUE, np.uint8)
        M = scale_translate_into(out, img, M)  # the mapping really done
        img = out
    else:
        img = cv2.warpAffine(img, M[:2], (out_w, out_h), borderValue=fill)
    new = transform_boxes(boxes, M, out_w, out_h)
    keep = box_candidates(boxes * s, new, hyp.min_box_wh, hyp.min_area_ratio, hyp.max_aspect)
    return img, cls[keep], new[keep]


def flip_lr(img: np.ndarray, boxes: np.ndarray, inplace: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Mirror left-right (exact: a box [x1, x2] becomes [W - x2, W - x1]). ``inplace``: mirror ``img``
    itself (OpenCV swaps the pixels pairwise) instead of allocating a new image."""
    w = img.shape[1]
    boxes = boxes.copy()
    boxes[:, [0, 2]] = w - boxes[:, [2, 0]]
    return cv2.flip(img, 1, dst=img if inplace else None), boxes


def flip_ud(img: np.ndarray, boxes: np.ndarray, inplace: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Mirror top-bottom (``inplace`` as in :func:`flip_lr`)."""
    h = img.shape[0]
    boxes = boxes.copy()
    boxes[:, [1, 3]] = h - boxes[:, [3, 1]]
    return cv2.flip(img, 0, dst=img if inplace else None), boxes


# ---------------------------------------------------------------------------------------------
# Photometric


def hsv_lut(hyp: AugmentConfig, rng: np.random.Generator) -> np.ndarray | None:
    """Draw the random hue shift and saturation/value gains (as Ultralytics' RandomHSV) and return
    them as one (1, 256, 3) look-up table for OpenCV's uint8 HSV image, or None when all three
    ranges are 0 (nothing drawn then)."""
    if not (hyp.hsv_h or hyp.hsv_s or hyp.hsv_v):
        return None
    dh, gs, gv = rng.uniform(-1, 1, 3) * (hyp.hsv_h, hyp.hsv_s, hyp.hsv_v) + (0, 1, 1)
    x = np.arange(256, dtype=np.float32)
    lut = np.stack([(x + dh * 180) % 180, np.clip(x * gs, 0, 255), np.clip(x * gv, 0, 255)], 1)
    return lut.astype(np.uint8).reshape(1, 256, 3)


def apply_hsv(img: np.ndarray, lut: np.ndarray, copy: bool = False) -> np.ndarray:
    """BGR -> HSV, ``lut`` on the three channels, HSV -> BGR. Written into ``img`` in place (``img``
    may be a view, e.g. one tile of a mosaic) and returned; with ``copy``, ``img`` is left untouched
    and a new image is returned (the HSV buffer, converted back in place).

    In place on purpose: a fresh 640 x 640 image per step cost as much as the colour conversions.
    """
    hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
    cv2.LUT(hsv, lut, dst=hsv)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR, dst=hsv if copy else img)


def hsv_grey(lut: np.ndarray | None, v: int = PAD_VALUE) -> int:
    """What :func:`apply_hsv` makes of the grey ``(v, v, v)``: grey has saturation 0, so only the value
    table acts on it and it stays grey (checked for every v in the tests). Used to fill padding that
    the HSV step never visits with the colour it would have given it."""
    return v if lut is None else int(lut[0, v, 2])


def augment_hsv(img: np.ndarray, hyp: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Random hue shift and saturation/value gains (:func:`hsv_lut`, :func:`apply_hsv`).

    Works in place (``img`` must not be shared with a cache) and returns ``img``.
    """
    lut = hsv_lut(hyp, rng)
    return img if lut is None else apply_hsv(img, lut)


def mixup(img1: np.ndarray, cls1: np.ndarray, boxes1: np.ndarray, img2: np.ndarray, cls2: np.ndarray,
          boxes2: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MixUp (Zhang et al. 2018) as in YOLOv5/v8: blend two same-size images with r ~ Beta(32, 32)
    (close to 0.5) and keep the boxes of both."""
    r = rng.beta(32.0, 32.0)
    img = cv2.addWeighted(img1, r, img2, 1 - r, 0)
    return img, np.concatenate([cls1, cls2]), np.concatenate([boxes1, boxes2])


class Photometric:
    """Albumentations' pixel-level extras (blur, median blur, gray, CLAHE, brightness/contrast,
    gamma, JPEG). None of them moves pixels, so boxes are untouched.

    Built once per dataset (not per image). Each transform is decided with our generator and,
    when it fires, seeded from it, so the result depends only on the sample's seed.
    """

    def __init__(self, hyp: AugmentConfig):
        import os

        os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
        import albumentations as A

        candidates = [
            (hyp.blur, lambda: A.Blur(p=1.0)),
            (hyp.median_blur, lambda: A.MedianBlur(p=1.0)),
            (hyp.to_gray, lambda: A.ToGray(p=1.0)),
            (hyp.clahe, lambda: A.CLAHE(p=1.0)),
            (hyp.brightness_contrast, lambda: A.RandomBrightnessContrast(p=1.0)),
            (hyp.gamma, lambda: A.RandomGamma(p=1.0)),
            (hyp.jpeg, lambda: A.ImageCompression(quality_range=(75, 100), p=1.0)),
        ]
        self.transforms = [(p, make()) for p, make in candidates if p > 0]

    def draw(self, rng: np.random.Generator) -> list:
        """Decide which transforms fire for one sample, each with its own probability, and draw their
        seeds: a list of (transform, seed), usually empty (Ultralytics' defaults give each of four
        transforms 1 %). Drawn before the sample is built, so the caller knows whether any will run."""
        return [(t, int(rng.integers(2**31))) for p, t in self.transforms if rng.random() < p]

    def apply(self, img: np.ndarray, fired: list) -> np.ndarray:
        """Run the transforms ``draw`` chose, in order (Albumentations only runs for those)."""
        for t, seed in fired:
            t.set_random_seed(seed)
            img = t(image=img)["image"]
        return img

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.apply(img, self.draw(rng))
