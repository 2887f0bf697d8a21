"""Class activation maps for the zoo's YOLO detectors (``yololab cam --model yolov8n ...``).

* Grad-CAM / Grad-CAM++ explain **one detection**: the target is that detection's score in the raw
  eval output (the class probability of its anchor for anchor-free heads, objectness x class
  probability for anchor-based ones), so the map shows what raised that one score.
* EigenCAM needs no target: one map for the whole image, with **all** detections drawn over it.

Detections are what :func:`yololab.detect.postprocess.postprocess` keeps (best class per anchor, per-class
NMS); each is traced back to the prediction (anchor) that made it, whose score is the CAM target. The
default layer is the neck, which returns one map per level (P3, P4, P5); each level gets its own CAM
and they are averaged at the input size (:mod:`yololab.classify.cam`). The map is then cut out of the
letterboxed square and resized to the original image.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import nn

from yololab.classify.cam import CAM
from yololab.detect.postprocess import Detections, postprocess, to_image
from yololab.detect.preprocess import to_input
from yololab.errors import YololabError
from yololab.ops.boxes import cxcywh_to_xyxy


@dataclass
class Detection:
    anchor: int       # index of the prediction in the model's raw output that made it
    cls: int
    score: float
    box: np.ndarray   # x1, y1, x2, y2 in the original image's pixels


def candidates(out: torch.Tensor, anchor_based: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw eval output of one image -> every prediction's box (A, 4) x1, y1, x2, y2 and class scores (A, nc),
    computed as :func:`~yololab.detect.postprocess.postprocess` computes them."""
    p = out[0].float()
    if anchor_based:  # (A, 5 + nc)
        return cxcywh_to_xyxy(p[:, :4]), p[:, 5:] * p[:, 4:5]
    return cxcywh_to_xyxy(p[:4].T), p[4:].T  # (4 + nc, A)


def anchor_of(boxes: torch.Tensor, scores: torch.Tensor, box: torch.Tensor, cls: int) -> int:
    """The prediction a kept detection came from: same box and same class score, bit for bit."""
    same = (boxes == box.to(boxes.dtype)).all(1) & (scores[:, cls] > 0)
    idx = torch.nonzero(same).flatten()
    if len(idx) == 0:
        raise AssertionError("a detection that matches no prediction")  # postprocess computes the same numbers
    return int(idx[scores[idx, cls].argmax()])


def detection_score(anchor: int, cls: int, anchor_based: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    """The CAM target: one detection's score in the raw eval output, per image of the batch."""
    if anchor_based:
        return lambda out: out[:, anchor, 4] * out[:, anchor, 5 + cls]
    return lambda out: out[:, 4 + cls, anchor]


def explain_detector(model: nn.Module, img_rgb: np.ndarray, method: str = "eigencam", layer: str | None = None,
                     imgsz: int = 640, conf: float = 0.25, iou: float = 0.45, det: int = 0
                     ) -> tuple[np.ndarray, list[Detection], int | None, str]:
    """CAM of ``img_rgb`` at its own size, the detections (original pixels, best first), the explained one
    and a note.

    Gradient methods explain detection number ``det``; with no detection above ``conf`` they explain the
    highest-scoring prediction instead, and the note says so.
    """
    anchor_based = bool(model.meta.anchor_based)
    h, w = img_rgb.shape[:2]
    x, gain, pad = to_input(np.ascontiguousarray(img_rgb[..., ::-1]), imgsz)
    model.eval()
    with torch.no_grad():
        out = model(x)
    boxes, scores = candidates(out, anchor_based)
    kept = postprocess(out, anchor_based, conf=conf, iou=iou, multi_label=False)[0]
    placed = to_image(kept, gain, pad, (h, w))
    dets = [Detection(anchor_of(boxes, scores, b, int(c)), int(c), float(s), pb.numpy().astype(np.float32))
            for b, c, s, pb in zip(kept.boxes, kept.classes, kept.scores, placed.boxes)]
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
            one = Detections(boxes[a:a + 1], best[a:a + 1], cls[a:a + 1])
            target = Detection(a, int(cls[a]), float(best[a]), to_image(one, gain, pad, (h, w)).boxes[0].numpy())
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
        colour = (255, 255, 255) if i == highlight else tuple(
            int(v) for v in cv2.applyColorMap(np.uint8([[37 * d.cls % 256]]), cv2.COLORMAP_HSV)[0, 0])
        unit = max(1, round(max(out.shape[:2]) / 640))
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, unit * (2 if strong else 1), cv2.LINE_AA)
        label = f"{names[d.cls] if d.cls < len(names) else d.cls} {d.score:.2f}"
        cv2.putText(out, label, (x1 + 2, max(y1 - 4, 12 * unit)), cv2.FONT_HERSHEY_SIMPLEX, 0.45 * unit, colour,
                    unit, cv2.LINE_AA)
    return out
