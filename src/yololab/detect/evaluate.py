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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from faster_coco_eval import COCO, COCOeval_faster

from yololab.data.dataset import DetectionDataset
from yololab.data.formats import Dataset, ImageRecord, coco_dict, read_ignore_regions, read_yolo, split_base
from yololab.detect.postprocess import Detections
from yololab.errors import DataError
from yololab.ops.boxes import box_iou, xywhn_to_xyxy

# pycocotools' summary, in its order
COCO_STATS = ("mAP50-95", "mAP50", "mAP75", "mAP_small", "mAP_medium", "mAP_large",
              "AR1", "AR10", "AR100", "AR_small", "AR_medium", "AR_large")


def ground_truth(data_yaml: str | os.PathLike, split: str = "val") -> tuple[dict, list[Path]]:
    """(COCO ground-truth dict, image paths in image-id order) of one split of a YOLO dataset."""
    ds = read_yolo(data_yaml)
    if split not in ds.splits:
        raise DataError(f"{data_yaml}: no '{split}' split (has {', '.join(ds.splits)})")
    return coco_dict(ds, split), [rec.path for rec in ds.splits[split]]


def dataset_ground_truth(ds: DetectionDataset) -> dict:
    """The COCO ground-truth dict of a :class:`DetectionDataset`'s split, image ids numbered from 1 in the
    dataset's order (``ds.files``, sorted by aspect ratio for rect batches), ignore regions as crowd boxes."""
    ignore = read_ignore_regions(ds.cfg, ds.split)
    base = split_base(ds.cfg, ds.split)
    records = []
    for path, labels, (h, w) in zip(ds.files, ds.labels, ds.shapes.tolist()):
        rel = Path(path).relative_to(base).as_posix()
        rows = ignore.get(rel, [])
        records.append(ImageRecord(
            path=Path(path), rel=rel, width=w, height=h,
            classes=np.concatenate([labels[:, 0], [r[0] for r in rows]]).astype(np.int64),
            boxes=np.concatenate([xywhn_to_xyxy(labels[:, 1:].astype(np.float64), w, h),
                                  np.array([r[1:5] for r in rows], np.float64).reshape(-1, 4)]),
            ignore=np.arange(len(labels) + len(rows)) >= len(labels)))
    return coco_dict(Dataset(names=ds.cfg.names, splits={ds.split: records}), ds.split)


def coco_results(det: Detections, image_id: int) -> list[dict]:
    """One image's detections (boxes in its own pixels) as COCO result dicts (bbox x, y, width, height)."""
    return [{"image_id": image_id, "category_id": int(c) + 1, "score": float(s),
             "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)]}
            for (x1, y1, x2, y2), s, c in zip(det.boxes.tolist(), det.scores.tolist(), det.classes.tolist())]


@dataclass
class CocoEval:
    """The official protocol's answer: the twelve summary numbers and, per category of the ground truth (in
    its order), AP at IoU 0.50 and 0.50:0.95 (NaN for a category without ground truth) and the precision at
    IoU 0.50 at the 101 recall points (the PR curve; 0 where unreached), all at area 'all', 100 detections."""

    stats: dict[str, float]
    ap50: np.ndarray  # (K,)
    ap: np.ndarray  # (K,)
    pr50: np.ndarray  # (K, 101)

    RECALL = np.linspace(0, 1, 101)  # the recall points of the COCO PR curve


def coco_eval(gt: dict, results: list[dict]) -> CocoEval:
    """Score ``results`` against ``gt`` with faster-coco-eval (pycocotools' numbers, tested).

    No detection at all scores 0 everywhere (pycocotools refuses an empty result list).
    """
    k = len(gt["categories"])
    if not results:
        has_gt = np.isin([c["id"] for c in gt["categories"]], [a["category_id"] for a in gt["annotations"]
                                                              if not a.get("iscrowd")])
        zero = np.where(has_gt, 0.0, np.nan)
        return CocoEval(dict.fromkeys(COCO_STATS, 0.0), zero, zero.copy(), np.zeros((k, 101)))
    coco_gt = COCO(gt)
    ev = COCOeval_faster(coco_gt, coco_gt.loadRes(results), iouType="bbox", print_function=lambda *a, **k: None)
    ev.params.catIds = [c["id"] for c in gt["categories"]]
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    precision = ev.eval["precision"][:, :, :, 0, -1]  # (IoU, recall, category) at area 'all', 100 detections
    valid = precision > -1
    with np.errstate(invalid="ignore"):  # a category without ground truth is -1 everywhere: NaN
        ap = np.where(valid, precision, 0).sum((0, 1)) / valid.sum((0, 1))
        ap50 = np.where(valid[0], precision[0], 0).sum(0) / valid[0].sum(0)
    return CocoEval({name: float(v) for name, v in zip(COCO_STATS, ev.stats)}, ap50, ap,
                    np.clip(precision[0].T, 0, None))


def coco_map(gt: dict, results: list[dict]) -> dict[str, float]:
    """The twelve COCO numbers (:data:`COCO_STATS`) of ``results`` against ``gt`` (see :func:`coco_eval`)."""
    return coco_eval(gt, results).stats


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
