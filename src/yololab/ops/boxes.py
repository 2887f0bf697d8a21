"""Box formats and IoU, one set for the whole package: NumPy arrays (data pipeline) and torch tensors (models).

Formats, by the names torchvision uses:

* ``xyxy``: corners x1, y1, x2, y2 in pixels;
* ``cxcywh``: centre-x, centre-y, width, height in pixels (what the detectors output);
* ``xywhn``: centre-x, centre-y, width, height divided by the image width and height (YOLO label files).

Tensors go through ``torchvision.ops`` (``box_convert``, ``box_iou``). NumPy arrays are converted with the
same arithmetic written out: the training loader calls these per sample, and a round trip through torch
would cost more than the conversion. Every function takes ``(..., 4)`` boxes and keeps a floating dtype
(integer input becomes float32).
"""

from __future__ import annotations

import numpy as np
import torch
import torchvision

Boxes = np.ndarray | torch.Tensor


def _empty_like(boxes: np.ndarray) -> np.ndarray:
    dtype = boxes.dtype if np.issubdtype(boxes.dtype, np.floating) else np.float32
    return np.empty(boxes.shape, dtype)


def cxcywh_to_xyxy(boxes: Boxes) -> Boxes:
    """Centre, width, height -> corners."""
    if isinstance(boxes, torch.Tensor):
        return torchvision.ops.box_convert(boxes, "cxcywh", "xyxy")
    boxes = np.asarray(boxes)
    out = _empty_like(boxes)
    out[..., 0] = boxes[..., 0] - boxes[..., 2] / 2
    out[..., 1] = boxes[..., 1] - boxes[..., 3] / 2
    out[..., 2] = boxes[..., 0] + boxes[..., 2] / 2
    out[..., 3] = boxes[..., 1] + boxes[..., 3] / 2
    return out


def xyxy_to_cxcywh(boxes: Boxes) -> Boxes:
    """Corners -> centre, width, height."""
    if isinstance(boxes, torch.Tensor):
        return torchvision.ops.box_convert(boxes, "xyxy", "cxcywh")
    boxes = np.asarray(boxes)
    out = _empty_like(boxes)
    out[..., 0] = (boxes[..., 0] + boxes[..., 2]) / 2
    out[..., 1] = (boxes[..., 1] + boxes[..., 3]) / 2
    out[..., 2] = boxes[..., 2] - boxes[..., 0]
    out[..., 3] = boxes[..., 3] - boxes[..., 1]
    return out


def xywhn_to_xyxy(boxes: Boxes, w: float | np.ndarray, h: float | np.ndarray, padw: float = 0.0,
                  padh: float = 0.0) -> Boxes:
    """Normalized centre, width, height -> pixel corners in a ``w`` x ``h`` image, shifted by (padw, padh).

    ``w`` and ``h`` may be per-box arrays (a mosaic scales each tile's boxes by that tile's size).
    """
    if isinstance(boxes, torch.Tensor):
        scale = torch.stack(torch.broadcast_tensors(*(torch.as_tensor(v, dtype=boxes.dtype, device=boxes.device)
                                                      for v in (w, h, w, h))), -1)
        return cxcywh_to_xyxy(boxes) * scale + torch.tensor([padw, padh, padw, padh], dtype=boxes.dtype,
                                                            device=boxes.device)
    boxes = np.asarray(boxes)
    out = _empty_like(boxes)
    out[..., 0] = w * (boxes[..., 0] - boxes[..., 2] / 2) + padw
    out[..., 1] = h * (boxes[..., 1] - boxes[..., 3] / 2) + padh
    out[..., 2] = w * (boxes[..., 0] + boxes[..., 2] / 2) + padw
    out[..., 3] = h * (boxes[..., 1] + boxes[..., 3] / 2) + padh
    return out


def xyxy_to_xywhn(boxes: Boxes, w: float, h: float) -> Boxes:
    """Pixel corners in a ``w`` x ``h`` image -> normalized centre, width, height (no clipping)."""
    if isinstance(boxes, torch.Tensor):
        return xyxy_to_cxcywh(boxes) / torch.tensor([w, h, w, h], dtype=boxes.dtype, device=boxes.device)
    boxes = np.asarray(boxes)
    out = _empty_like(boxes)
    out[..., 0] = (boxes[..., 0] + boxes[..., 2]) / (2 * w)
    out[..., 1] = (boxes[..., 1] + boxes[..., 3]) / (2 * h)
    out[..., 2] = (boxes[..., 2] - boxes[..., 0]) / w
    out[..., 3] = (boxes[..., 3] - boxes[..., 1]) / h
    return out


def clip_boxes(boxes: Boxes, w: float, h: float) -> Boxes:
    """Corners clipped to the image ``[0, w] x [0, h]`` (a new array / tensor)."""
    if isinstance(boxes, torch.Tensor):
        out = boxes.clone()
        out[..., 0::2] = boxes[..., 0::2].clamp(0, w)
        out[..., 1::2] = boxes[..., 1::2].clamp(0, h)
        return out
    boxes = np.asarray(boxes)
    out = _empty_like(boxes)
    out[..., 0::2] = np.clip(boxes[..., 0::2], 0, w)
    out[..., 1::2] = np.clip(boxes[..., 1::2], 0, h)
    return out


def box_iou(a: Boxes, b: Boxes) -> Boxes:
    """Pairwise IoU of two sets of corner boxes: ``(N, 4)``, ``(M, 4)`` -> ``(N, M)`` (torchvision.ops.box_iou)."""
    if isinstance(a, torch.Tensor):
        return torchvision.ops.box_iou(a, b)
    return torchvision.ops.box_iou(torch.from_numpy(np.asarray(a, np.float64)),
                                   torch.from_numpy(np.asarray(b, np.float64))).numpy()
