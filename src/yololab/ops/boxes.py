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

import math

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


def box_ioa(a: Boxes, b: Boxes) -> Boxes:
    """Pairwise intersection over the area of ``a``'s box: ``(N, 4)``, ``(M, 4)`` -> ``(N, M)``. How much of a
    detection lies inside a crowd region (the COCO protocol's test for ignoring it)."""
    a_t = a if isinstance(a, torch.Tensor) else torch.from_numpy(np.asarray(a, np.float64))
    b_t = b if isinstance(b, torch.Tensor) else torch.from_numpy(np.asarray(b, np.float64))
    wh = (torch.min(a_t[:, None, 2:], b_t[None, :, 2:]) - torch.max(a_t[:, None, :2], b_t[None, :, :2])).clamp(min=0)
    area = ((a_t[:, 2] - a_t[:, 0]) * (a_t[:, 3] - a_t[:, 1]))[:, None]
    ioa = wh.prod(-1) / area.clamp(min=torch.finfo(a_t.dtype).tiny)
    return ioa if isinstance(a, torch.Tensor) else ioa.numpy()


# --- for the training losses (tensors only) ---------------------------------------------------------------


def ciou(box1: torch.Tensor, box2: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Complete IoU (Zheng et al. 2020) of box pairs (..., 4) in x1, y1, x2, y2 tensors, broadcast -> (...,).

    CIoU = IoU - d^2 / c^2 - alpha * v: d is the distance between the centres, c the diagonal of the smallest
    enclosing box, v = 4 / pi^2 (atan(w2/h2) - atan(w1/h1))^2 measures the aspect-ratio mismatch and
    alpha = v / (1 - IoU + v) weighs it (a constant for the gradient, as in the paper).

    Written out rather than taken from ``torchvision.ops.complete_box_iou_loss`` because the references place
    eps differently and the task-aligned assigner ranks candidates by this value, so a last-bit difference can
    swap the 10th and 11th candidate: this follows Ultralytics' ``bbox_iou(xywh=False, CIoU=True)``
    (ultralytics/utils/metrics.py) operation for operation, eps added to both heights and to the union.
    torchvision adds eps to neither height (a zero height divides by zero) and computes the intersection by
    masked indexing. yolov5's ``bbox_iou(CIoU=True)`` (yolov5/utils/metrics.py, used on xywh boxes) adds no eps
    to the heights and writes alpha as v / (v - iou + (1 + eps)); the difference from this function is
    O(eps / h), below 1e-5 relative for boxes of a hundredth of a grid cell and more (the parity tests check it).
    """
    b1_x1, b1_y1, b1_x2, b1_y2 = box1.unbind(-1)
    b2_x1, b2_y1, b2_x2, b2_y2 = box2.unbind(-1)
    w1, h1 = b1_x2 - b1_x1, b1_y2 - b1_y1 + eps
    w2, h2 = b2_x2 - b2_x1, b2_y2 - b2_y1 + eps
    inter = (b1_x2.minimum(b2_x2) - b1_x1.maximum(b2_x1)).clamp_(0) * (
        b1_y2.minimum(b2_y2) - b1_y1.maximum(b2_y1)).clamp_(0)
    union = w1 * h1 + w2 * h2 - inter + eps
    iou = inter / union
    cw = b1_x2.maximum(b2_x2) - b1_x1.minimum(b2_x1)  # smallest enclosing box
    ch = b1_y2.maximum(b2_y2) - b1_y1.minimum(b2_y1)
    c2 = cw.pow(2) + ch.pow(2) + eps
    rho2 = ((b2_x1 + b2_x2 - b1_x1 - b1_x2).pow(2) + (b2_y1 + b2_y2 - b1_y1 - b1_y2).pow(2)) / 4
    v = (4 / math.pi**2) * ((w2 / h2).atan() - (w1 / h1).atan()).pow(2)
    with torch.no_grad():
        alpha = v / (1 - iou + v + eps)
    return iou - (rho2 / c2 + v * alpha)


def batched_box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """Plain IoU of every pair within each image: (B, N, 4) x (B, M, 4) x1y1x2y2 -> (B, N, M).

    ``torchvision.ops.box_iou`` without a batch dimension (which would also pair boxes of different images)."""
    area1 = (boxes1[..., 2] - boxes1[..., 0]) * (boxes1[..., 3] - boxes1[..., 1])
    area2 = (boxes2[..., 2] - boxes2[..., 0]) * (boxes2[..., 3] - boxes2[..., 1])
    lt = torch.maximum(boxes1[:, :, None, :2], boxes2[:, None, :, :2])
    rb = torch.minimum(boxes1[:, :, None, 2:], boxes2[:, None, :, 2:])
    wh = (rb - lt).clamp_(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area1[:, :, None] + area2[:, None, :] - inter)
