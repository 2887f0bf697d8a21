"""Which frames a clip takes, and which crops of them: the sampling strategies of video classifiers.

- ``uniform``: ``T`` frames evenly spread over the whole video (deterministic).
- ``segment`` (TSN, Wang et al. 2016): the video is cut into ``T`` equal segments and one frame is
  taken from each, at a random place when training and at the centre when testing.
- ``dense``: ``T`` consecutive frames ``stride`` apart from a random start when training; evenly
  spaced starts when testing (the 3D-CNN recipe of C3D / R(2+1)D / SlowFast).

A video shorter than the clip (fewer than ``T`` frames, or than the dense window) is *looped*
(0, 1, 2, 0, 1, ...) or *padded* with its last frame. Multi-clip testing takes ``num_clips`` clips
at different offsets; multi-crop takes 3 square crops along the longer side (MMAction2's ThreeCrop).
"""

from __future__ import annotations

import numpy as np

SAMPLINGS = ("uniform", "segment", "dense")
SHORT_POLICIES = ("loop", "pad")


def _short(num_frames: int, clip_len: int, stride: int, short: str) -> np.ndarray:
    idx = np.arange(clip_len) * stride
    return idx % num_frames if short == "loop" else np.minimum(idx, num_frames - 1)


def sample_indices(num_frames: int, clip_len: int, mode: str = "segment", stride: int = 1,
                   rng: np.random.Generator | None = None, clip: int = 0, num_clips: int = 1,
                   short: str = "loop") -> np.ndarray:
    """Frame indices (``clip_len`` ints in [0, num_frames)) of clip ``clip`` of ``num_clips``.

    ``rng`` given: training (random offsets); None: testing (deterministic, spread by ``clip``).
    """
    if mode not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {SAMPLINGS}, got {mode!r}")
    if short not in SHORT_POLICIES:
        raise ValueError(f"short-video policy must be one of {SHORT_POLICIES}, got {short!r}")
    if num_frames <= 0 or clip_len <= 0 or stride <= 0:
        raise ValueError("num_frames, clip_len and stride must be positive")
    if mode == "dense":
        span = (clip_len - 1) * stride + 1
        if num_frames < span:
            return _short(num_frames, clip_len, stride, short)
        room = num_frames - span
        if rng is not None:
            start = int(rng.integers(0, room + 1))
        else:
            start = round(room * (clip + 0.5) / num_clips)
        return start + np.arange(clip_len) * stride
    if num_frames < clip_len:
        return _short(num_frames, clip_len, 1, short)
    seg = num_frames / clip_len
    if mode == "segment" and rng is not None:
        offsets = rng.random(clip_len)
    else:  # uniform, or segment at test time: clip c sits at (c + 0.5) / num_clips inside each segment
        offsets = np.full(clip_len, (clip + 0.5) / num_clips)
    return np.minimum((np.arange(clip_len) + offsets) * seg, num_frames - 1).astype(np.int64)


def crop_boxes(h: int, w: int, size: int, num_crops: int = 1, rng: np.random.Generator | None = None):
    """(y, x) corners of ``size`` x ``size`` crops: random (``rng``), centre (1) or three along the long side (3)."""
    if size > min(h, w):
        raise ValueError(f"crop {size} is larger than the frame {w}x{h}; resize the short side to >= {size}")
    if rng is not None:
        return [(int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1)))]
    cy, cx = (h - size) // 2, (w - size) // 2
    if num_crops == 1:
        return [(cy, cx)]
    if num_crops != 3:
        raise ValueError(f"num_crops must be 1 or 3, got {num_crops}")
    if w >= h:
        return [(cy, 0), (cy, cx), (cy, w - size)]
    return [(0, cx), (cy, cx), (h - size, cx)]
