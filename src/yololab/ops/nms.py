"""Non-maximum suppression on top of ``torchvision.ops``: per class, with the candidate cap every YOLO uses."""

from __future__ import annotations

import torch
import torchvision


def nms(boxes: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor | None = None, iou: float = 0.7,
        max_det: int = 300, max_candidates: int = 30000) -> torch.Tensor:
    """Indices of the boxes kept, best score first, at most ``max_det``.

    ``boxes`` (N, 4) corners, ``scores`` (N,), ``classes`` (N,) integer labels: boxes of different classes
    never suppress each other (``torchvision.ops.batched_nms``); ``classes=None`` suppresses across
    classes. Only the ``max_candidates`` best-scoring boxes enter NMS (Ultralytics' and yolov5's
    ``max_nms``): it bounds the time spent on an untrained model that scores everything alike.
    """
    if not 0.0 <= iou <= 1.0:
        raise ValueError(f"iou must be in [0, 1], got {iou}")
    order = torch.arange(len(scores), device=scores.device)
    if len(scores) > max_candidates:
        order = scores.topk(max_candidates).indices
        boxes, scores = boxes[order], scores[order]
        classes = classes[order] if classes is not None else None
    if classes is None:
        keep = torchvision.ops.nms(boxes.float(), scores.float(), iou)
    else:
        keep = torchvision.ops.batched_nms(boxes.float(), scores.float(), classes, iou)
    return order[keep[:max_det]]
