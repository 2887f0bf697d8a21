"""COCO-protocol evaluation: detections -> COCO results -> mAP with faster-coco-eval (pycocotools' numbers).

Ground truth is a COCO dict (:func:`ground_truth` makes one from any YOLO dataset, ignore regions as crowd
boxes); image ids and category ids follow :func:`yololab.data.formats.coco_dict` (images numbered from 1 in
split order, category ``class index + 1``). :func:`coco_map` runs the official protocol (101-point
interpolated AP over IoU 0.50:0.95, areas small / medium / large, 100 detections for AR); the tests check
its numbers against pycocotools on the same input.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import torch
from faster_coco_eval import COCO, COCOeval_faster

from yololab.data.formats import coco_dict, read_yolo
from yololab.detect.postprocess import Detections
from yololab.errors import DataError
from yololab.ops.boxes import box_iou

# pycocotools' summary, in its order
COCO_STATS = ("mAP50-95", "mAP50", "mAP75", "mAP_small", "mAP_medium", "mAP_large",
              "AR1", "AR10", "AR100", "AR_small", "AR_medium", "AR_large")


def ground_truth(data_yaml: str | os.PathLike, split: str = "val") -> tuple[dict, list[Path]]:
    """(COCO ground-truth dict, image paths in image-id order) of one split of a YOLO dataset."""
    ds = read_yolo(data_yaml)
    if split not in ds.splits:
        raise DataError(f"{data_yaml}: no '{split}' split (has {', '.join(ds.splits)})")
    return coco_dict(ds, split), [rec.path for rec in ds.splits[split]]


def coco_results(det: Detections, image_id: int) -> list[dict]:
    """One image's detections (boxes in its own pixels) as COCO result dicts (bbox x, y, width, height)."""
    return [{"image_id": image_id, "category_id": int(c) + 1, "score": float(s),
             "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)]}
            for (x1, y1, x2, y2), s, c in zip(det.boxes.tolist(), det.scores.tolist(), det.classes.tolist())]


def coco_map(gt: dict, results: list[dict]) -> dict[str, float]:
    """The twelve COCO numbers (:data:`COCO_STATS`) of ``results`` against ``gt``, with faster-coco-eval.

    No detection at all scores 0 everywhere (pycocotools refuses an empty result list).
    """
    if not results:
        return dict.fromkeys(COCO_STATS, 0.0)
    coco_gt = COCO(gt)
    ev = COCOeval_faster(coco_gt, coco_gt.loadRes(results), iouType="bbox", print_function=lambda *a, **k: None)
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return {name: float(v) for name, v in zip(COCO_STATS, ev.stats)}


def match_detections(a: Detections, b: Detections, iou: float = 0.9) -> Iterator[tuple[int, int, float]]:
    """Pair ``a``'s detections with ``b``'s: same class, highest IoU at least ``iou``, greedily in ``a``'s order
    (best score first), each of ``b`` used once. Yields (index in a, index in b, IoU) per pair.

    For comparing two runs of one model (an execution mode against float32, say), not for scoring.
    """
    if not len(a.boxes) or not len(b.boxes):
        return
    ious = box_iou(a.boxes.double(), b.boxes.double())
    ious[a.classes[:, None] != b.classes[None, :]] = 0
    used = torch.zeros(len(b.boxes), dtype=torch.bool)
    for i in range(len(a.boxes)):
        row = ious[i].masked_fill(used, 0)
        j = int(row.argmax())
        if row[j] >= iou:
            used[j] = True
            yield i, j, float(row[j])
