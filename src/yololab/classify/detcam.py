"""Class activation maps for the zoo's YOLO detectors (``yololab cam --model yolov8n ...``).

* Grad-CAM / Grad-CAM++ explain **one detection**: the target is that detection's score in the raw
  eval output (the class probability of its anchor for anchor-free heads, objectness x class
  probability for anchor-based ones), so the map shows what raised that one score.
* EigenCAM needs no target: one map for the whole image, with **all** detections drawn over it.

The default layer is the neck, which returns one map per level (P3, P4, P5); each level gets its own
CAM, and they are averaged at the input size (see :mod:`yololab.classify.cam`).

Decoding and NMS: the detection post-processing is being moved to ``yololab.detect.postprocess`` by
a parallel change; until it is there, :func:`nms` below is the small version this needs
(best class per anchor, score threshold, ``torchvision.ops.batched_nms`` per class).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import nn
from torchvision.ops import batched_nms

from yololab.classify.cam import CAM
from yololab.data.augment import letterbox, unletterbox_boxes
from yololab.errors import YololabError


@dataclass
class Detection:
    anchor: int       # index into the model's raw output (which prediction made it)
    cls: int
    score: float
    box: np.ndarray   # x1, y1, x2, y2 in the original image's pixels


def letterbox_tensor(img_rgb: np.ndarray, imgsz: int) -> tuple[torch.Tensor, tuple[float, float], tuple[int, int]]:
    """RGB uint8 image -> (1, 3, imgsz, imgsz) float in [0, 1], letterboxed as the detectors are trained."""
    lb, gain, pad = letterbox(img_rgb, (imgsz, imgsz))
    return torch.from_numpy(np.ascontiguousarray(lb)).permute(2, 0, 1)[None].float() / 255, gain, pad


def candidates(out: torch.Tensor, anchor_based: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw eval output of one image -> boxes (A, 4) x1, y1, x2, y2 and class scores (A, nc)."""
    if anchor_based:  # (B, A, 5 + nc)
        p = out[0]
        xywh, scores = p[:, :4], p[:, 5:] * p[:, 4:5]
    else:             # (B, 4 + nc, A)
        p = out[0].T
        xywh, scores = p[:, :4], p[:, 4:]
    xy, wh = xywh[:, :2], xywh[:, 2:]
    return torch.cat([xy - wh / 2, xy + wh / 2], 1), scores


def nms(boxes: torch.Tensor, scores: torch.Tensor, conf: float, iou: float, max_det: int = 100) -> list[tuple]:
    """(anchor, class, score, box) of the kept detections, best first: best class per anchor, score >= conf,
    per-class NMS at ``iou``."""
    best, cls = scores.max(1)
    idx = torch.nonzero(best >= conf).squeeze(1)
    keep = batched_nms(boxes[idx].float(), best[idx].float(), cls[idx], iou)[:max_det]
    idx = idx[keep]
    return [(int(a), int(cls[a]), float(best[a]), boxes[a]) for a in idx]


def detection_score(anchor: int, cls: int, anchor_based: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    """The CAM target: one detection's score in the raw eval output, per image of the batch."""
    if anchor_based:
        return lambda out: out[:, anchor, 4] * out[:, anchor, 5 + cls]
    return lambda out: out[:, 4 + cls, anchor]


def explain_detector(model: nn.Module, img_rgb: np.ndarray, method: str = "eigencam", layer: str | None = None,
                     imgsz: int = 640, conf: float = 0.25, iou: float = 0.45, det: int = 0
                     ) -> tuple[np.ndarray, list[Detection], int | None, str]:
    """CAM of ``img_rgb`` at its own size, the detections (original pixels), the explained one and a note.

    Gradient methods explain detection number ``det`` (best first); with no detection above ``conf`` they
    explain the highest-scoring prediction instead, and the note says so.
    """
    anchor_based = bool(model.meta.anchor_based)
    x, gain, pad = letterbox_tensor(img_rgb, imgsz)
    model.eval()
    with torch.no_grad():
        boxes, scores = candidates(model(x), anchor_based)
    kept = nms(boxes, scores, conf, iou)
    h, w = img_rgb.shape[:2]

    def to_image(box: torch.Tensor) -> np.ndarray:
        b = unletterbox_boxes(box.detach().numpy()[None], gain, pad)[0]
        return np.clip(b, 0, [w, h, w, h]).astype(np.float32)

    dets = [Detection(a, c, s, to_image(b)) for a, c, s, b in kept]
    cam = CAM(model, layer, method)
    explained, note = None, ""
    if method == "eigencam":
        maps = cam(x)
    else:
        if dets:
            if not 0 <= det < len(dets):
                raise YololabError(f"--det {det}: there are {len(dets)} detections (0 .. {len(dets) - 1})")
            target, explained = dets[det], det
        else:
            best, cls = scores.max(1)
            a = int(best.argmax())
            target = Detection(a, int(cls[a]), float(best[a]), to_image(boxes[a]))
            dets, explained = [target], 0
            note = (f"no detection with score >= {conf}; explaining the highest-scoring prediction instead "
                    f"(score {target.score:.3g})")
        maps = cam(x, detection_score(target.anchor, target.cls, anchor_based))
    # back from the letterboxed square to the original image
    (gw, gh), (left, top) = gain, pad
    crop = maps[0][top:top + int(round(h * gh)), left:left + int(round(w * gw))]
    return cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR), dets, explained, note


def draw_detections(img: np.ndarray, dets: list[Detection], names: list[str], highlight: int | None = None
                    ) -> np.ndarray:
    """Boxes with class and score; the explained detection thick and white, the others thin and coloured."""
    out = np.ascontiguousarray(img.copy())
    for i, d in enumerate(dets):
        x1, y1, x2, y2 = (int(round(v)) for v in d.box)
        strong = highlight is None or i == highlight
        colour = (255, 255, 255) if i == highlight else tuple(int(v) for v in
                                                               np.array(cv2.applyColorMap(np.uint8([[37 * d.cls % 256]]),
                                                                                          cv2.COLORMAP_HSV))[0, 0])
        unit = max(1, round(max(out.shape[:2]) / 640))
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, unit * (2 if strong else 1), cv2.LINE_AA)
        label = f"{names[d.cls] if d.cls < len(names) else d.cls} {d.score:.2f}"
        cv2.putText(out, label, (x1 + 2, max(y1 - 4, 12 * unit)), cv2.FONT_HERSHEY_SIMPLEX, 0.45 * unit, colour,
                    unit, cv2.LINE_AA)
    return out
