"""A detector's eval output -> detections: confidence filter, per-class NMS, boxes back in the original image.

The rules are those of ``ultralytics val`` (``ultralytics.utils.nms.non_max_suppression`` as the detection
validator calls it), so that our mAP is comparable with theirs:

* every (anchor, class) pair scoring above ``conf`` (0.001 for mAP) is a candidate (``multi_label``: one box
  may be kept for several classes);
* at most ``max_nms`` (30000) candidates, the best-scoring, enter NMS;
* NMS per class at IoU ``iou`` (0.7), then the ``max_det`` (300) best remain;
* boxes are mapped back through the letterbox and clipped to the original image.

Anchor-free outputs ``(B, 4 + nc, A)`` score a class by its probability; anchor-based ones ``(B, A, 5 + nc)``
(YOLOv3 / YOLOv5) by objectness times class probability, after dropping anchors whose objectness is below
``conf``, as yolov5's ``val.py`` does.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from yololab.ops.boxes import clip_boxes, cxcywh_to_xyxy
from yololab.ops.nms import nms

VAL_CONF, VAL_IOU, MAX_DET, MAX_NMS = 0.001, 0.7, 300, 30000  # what `ultralytics val` uses for mAP


class Detections(NamedTuple):
    """Detections of one image, best score first."""

    boxes: torch.Tensor  # (N, 4) x1, y1, x2, y2 in pixels
    scores: torch.Tensor  # (N,)
    classes: torch.Tensor  # (N,) int64 class index


def postprocess(pred: torch.Tensor, anchor_based: bool = False, conf: float = VAL_CONF, iou: float = VAL_IOU,
                max_det: int = MAX_DET, max_nms: int = MAX_NMS, multi_label: bool = True, agnostic: bool = False,
                classes: list[int] | None = None) -> list[Detections]:
    """Per image of the batch, the detections of an eval output (see the module docstring).

    ``multi_label=False`` keeps only the best class of each anchor (what ``ultralytics predict`` does).
    ``agnostic``: NMS across classes (a box suppresses overlapping boxes of any class). ``classes``: keep only
    these class indices (before NMS). Boxes are in the input's pixels.
    """
    if not 0.0 <= conf <= 1.0:
        raise ValueError(f"conf must be in [0, 1], got {conf}")
    out = []
    for p in pred.float():
        if anchor_based:  # (A, 5 + nc): box, objectness, classes
            p = p[p[:, 4] > conf]
            boxes, cls_scores = p[:, :4], p[:, 5:] * p[:, 4:5]
        else:  # (4 + nc, A): box, classes
            boxes, cls_scores = p[:4].T, p[4:].T
        if multi_label:
            anchor, cls = (cls_scores > conf).nonzero(as_tuple=True)
            scores = cls_scores[anchor, cls]
        else:
            scores, cls = cls_scores.max(1)
            anchor = (scores > conf).nonzero(as_tuple=True)[0]
            scores, cls = scores[anchor], cls[anchor]
        if classes is not None:
            wanted = torch.isin(cls, torch.as_tensor(classes, dtype=cls.dtype))
            anchor, scores, cls = anchor[wanted], scores[wanted], cls[wanted]
        boxes = cxcywh_to_xyxy(boxes[anchor])
        keep = nms(boxes, scores, None if agnostic else cls, iou=iou, max_det=max_det, max_candidates=max_nms)
        out.append(Detections(boxes[keep], scores[keep], cls[keep]))
    return out


def to_image(det: Detections, gain: tuple[float, float], pad: tuple[int, int],
             shape: tuple[int, int] | None = None) -> Detections:
    """Map detections on a letterboxed input back to the original image (and clip to its (h, w) ``shape``)."""
    boxes = det.boxes.double().clone()
    boxes[:, [0, 2]] = (boxes[:, [0, 2]] - pad[0]) / gain[0]
    boxes[:, [1, 3]] = (boxes[:, [1, 3]] - pad[1]) / gain[1]
    if shape is not None:
        boxes = clip_boxes(boxes, shape[1], shape[0])
    return Detections(boxes, det.scores, det.classes)
