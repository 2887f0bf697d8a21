"""Detection metrics beside the COCO numbers: which detections are correct, precision / recall / F1 at the
best-F1 confidence, and the confusion matrix, with the rules ``ultralytics val`` uses (so the figures read
the same), plus :func:`ultralytics_map`, their own AP on the same detections for comparison.

mAP itself comes from the official protocol (:mod:`yololab.detect.evaluate`); what is here works on one
list of all detections of a split: ``tp`` (N, 10) correct at IoU 0.50:0.95, ``conf`` (N,), ``pred_cls`` (N,),
and the classes of the ground-truth boxes ``target_cls`` (M,).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from yololab.ops.boxes import box_ioa, box_iou

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
CURVE_POINTS = np.linspace(0, 1, 1000)  # the confidence axis of the P, R and F1 curves


def correct_detections(boxes: np.ndarray, classes: np.ndarray, gt_boxes: np.ndarray, gt_classes: np.ndarray,
                        ignore_boxes: np.ndarray | None = None, ignore_classes: np.ndarray | None = None,
                        thresholds: np.ndarray = IOU_THRESHOLDS) -> tuple[np.ndarray, np.ndarray]:
    """One image's detections (best score first) against its boxes: (correct (N, T) per IoU threshold, ignored (N,)).

    At each threshold, detections in score order each take the unclaimed box of their class with the highest
    IoU, if it reaches the threshold (Ultralytics' ``match_predictions`` and the COCO protocol both do this).
    A detection that matches nothing at IoU 0.50 but lies at least half inside an ignore region of its class (a
    crowd box, a VOC difficult object) is ``ignored``: neither right nor wrong, as the COCO protocol treats it
    at IoU 0.50.
    """
    n = len(boxes)
    correct = np.zeros((n, len(thresholds)), dtype=bool)
    if n and len(gt_boxes):
        iou = box_iou(gt_boxes, boxes) * (gt_classes[:, None] == classes[None, :])
        claimed = np.zeros((len(gt_boxes), len(thresholds)), dtype=bool)
        for j in np.flatnonzero((iou >= thresholds.min()).any(0)):
            available = np.where(claimed, 0, iou[:, j, None])
            k = available.argmax(0)
            correct[j] = available[k, range(len(thresholds))] >= thresholds
            claimed[k, range(len(thresholds))] |= correct[j]
    ignored = np.zeros(n, dtype=bool)
    if n and ignore_boxes is not None and len(ignore_boxes):
        inside = (box_ioa(boxes, ignore_boxes) >= 0.5) & (classes[:, None] == ignore_classes[None, :])
        ignored = ~correct[:, 0] & inside.any(1)
    return correct, ignored


def smooth(y: np.ndarray, fraction: float) -> np.ndarray:
    """A box filter ``fraction`` of the length wide (odd), edges padded with the end values."""
    width = round(len(y) * fraction * 2) // 2 + 1
    pad = width // 2
    padded = np.concatenate([np.full(pad, y[0]), y, np.full(pad, y[-1])])
    return np.convolve(padded, np.ones(width) / width, mode="valid")


@dataclass
class F1Curves:
    """Precision, recall and F1 of each class against the confidence threshold (:data:`CURVE_POINTS`), and the
    values at the threshold where the class-mean F1 (smoothed) peaks, as Ultralytics picks it."""

    classes: np.ndarray  # (K,) the classes that have ground truth, in increasing order
    instances: np.ndarray  # (K,) their ground-truth counts
    precision: np.ndarray  # (K, 1000)
    recall: np.ndarray
    f1: np.ndarray
    best: int  # index into CURVE_POINTS

    @property
    def best_conf(self) -> float:
        return float(CURVE_POINTS[self.best])

    def at_best(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(precision, recall, F1) per class at the best-F1 confidence."""
        return self.precision[:, self.best], self.recall[:, self.best], self.f1[:, self.best]


def f1_curves(correct: np.ndarray, conf: np.ndarray, pred_cls: np.ndarray, target_cls: np.ndarray) -> F1Curves:
    """The curves of :class:`F1Curves` from ``correct`` at IoU 0.50 (N,), scores and classes of all detections."""
    order = np.argsort(-conf, kind="stable")
    correct, conf, pred_cls = correct[order].astype(float), conf[order], pred_cls[order]
    classes, instances = np.unique(target_cls, return_counts=True)
    x = CURVE_POINTS
    p, r = np.zeros((len(classes), len(x))), np.zeros((len(classes), len(x)))
    for k, c in enumerate(classes):
        mine = pred_cls == c
        if not mine.any():
            continue
        tps = correct[mine].cumsum()
        recall = tps / instances[k]
        precision = tps / np.arange(1, len(tps) + 1)
        # scores decrease along the list: interpolate on the negated axis; above the best score nothing is
        # detected (recall 0, precision taken as 1)
        r[k] = np.interp(-x, -conf[mine], recall, left=0)
        p[k] = np.interp(-x, -conf[mine], precision, left=1)
    f1 = 2 * p * r / (p + r + 1e-16)
    best = int(smooth(f1.mean(0), 0.1).argmax()) if len(classes) else 0
    return F1Curves(classes.astype(int), instances, p, r, f1, best)


def ultralytics_map(correct: np.ndarray, conf: np.ndarray, pred_cls: np.ndarray, target_cls: np.ndarray
                    ) -> dict[str, float]:
    """mAP50-95, mAP50 and mAP75 as ``ultralytics val`` computes them (``ap_per_class``: all detections, all
    ground-truth boxes, crowd regions unknown to it; its own interpolation), on the same detections."""
    from ultralytics.utils.metrics import ap_per_class

    ap = ap_per_class(correct, conf, pred_cls, target_cls)[5]  # (K, 10)
    if not len(ap):
        return {"mAP50-95": 0.0, "mAP50": 0.0, "mAP75": 0.0}
    return {"mAP50-95": float(ap.mean()), "mAP50": float(ap[:, 0].mean()), "mAP75": float(ap[:, 5].mean())}


class ConfusionMatrix:
    """Counts of (predicted class, true class), with a background row (boxes nothing detected) and column
    (detections of nothing): rows predicted, columns true, both indexed by class with ``nc`` = background.

    Per image, detections above ``conf`` in score order each take the not yet taken box (any class) they
    overlap most, if above ``iou`` (Ultralytics' rules; 0.25 and 0.45 are its defaults).
    """

    def __init__(self, nc: int, conf: float = 0.25, iou: float = 0.45):
        self.nc, self.conf, self.iou = nc, conf, iou
        self.matrix = np.zeros((nc + 1, nc + 1), dtype=np.int64)

    def update(self, boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, gt_boxes: np.ndarray,
               gt_classes: np.ndarray) -> None:
        """Add one image (detections best score first; ignored ones already left out)."""
        keep = scores > self.conf
        boxes, classes = boxes[keep], classes[keep].astype(int)
        gt_classes = gt_classes.astype(int)
        taken_by = np.full(len(gt_boxes), -1)
        if len(boxes) and len(gt_boxes):
            iou = box_iou(gt_boxes, boxes)
            for j in np.flatnonzero((iou > self.iou).any(0)):
                k = iou[:, j].argmax()
                if iou[k, j] > self.iou:
                    taken_by[k] = j
                    iou[k] = 0
        for k, c in enumerate(gt_classes):
            self.matrix[classes[taken_by[k]] if taken_by[k] >= 0 else self.nc, c] += 1
        unmatched = np.ones(len(boxes), dtype=bool)
        unmatched[taken_by[taken_by >= 0]] = False
        np.add.at(self.matrix, (classes[unmatched], self.nc), 1)
