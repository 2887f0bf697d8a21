"""Validate a detector on a dataset split with the COCO protocol: what ``yololab val`` and every training epoch run.

The loader gives letterboxed images (rect batches when the dataset was built with them, as ``ultralytics val``
does); the model's eval output goes through :func:`~yololab.detect.postprocess.postprocess` (conf 0.001, NMS
IoU 0.7, 300 detections) and back into original-image pixels. Then:

* mAP50-95, mAP50, mAP75, per-area APs and AR100 come from the official protocol
  (:func:`~yololab.detect.evaluate.coco_eval`, faster-coco-eval = pycocotools' numbers), ignore regions (crowd,
  VOC difficult) honoured, and so do the per-class AP50 / AP50-95;
* precision, recall and F1 are taken at the confidence where the class-mean F1 peaks
  (:func:`~yololab.detect.metrics.f1_curves`, Ultralytics' choice), a detection counted correct at IoU 0.50
  and one lying in an ignore region left out;
* ``fitness`` = 0.1 mAP50 + 0.9 mAP50-95 picks the best checkpoint during training.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from yololab.checkpoint.convert import model_for_weights
from yololab.data.dataset import DEFAULT_CACHE_DIR, DetectionDataset, collate_fn, seed_worker
from yololab.data.yolo import DataConfig, load_data_yaml
from yololab.detect.evaluate import CocoEval, coco_eval, coco_results, dataset_ground_truth
from yololab.detect.metrics import ConfusionMatrix, F1Curves, correct_detections, f1_curves
from yololab.detect.plots import plot_validation
from yololab.detect.postprocess import Detections, postprocess, to_image
from yololab.engine.hardware import select_device
from yololab.errors import ConfigError, DataError, WeightsError
from yololab.models import build_model
from yololab.progress import progress as progress_bar

PLOTTED_BATCHES = 3  # val_batch{0,1,2}_labels.jpg / _pred.jpg, as Ultralytics draws


@dataclass
class ValResult:
    """What :func:`validate` measured. ``metrics`` keys: precision, recall, f1 (at ``best_conf``), mAP50-95,
    mAP50, mAP75, mAP_small, mAP_medium, mAP_large, AR1, AR10, AR100, AR_small, AR_medium, AR_large, best_conf,
    fitness."""

    metrics: dict[str, float]
    per_class: list[dict]  # per class with ground truth: name, images, instances, precision, recall, AP50, AP50-95
    speed_ms: dict[str, float]  # preprocess / inference / postprocess, per image
    predictions: list[dict] = field(default_factory=list, repr=False)  # COCO results, original-image pixels
    ground_truth: dict = field(default_factory=dict, repr=False)  # the COCO ground truth they were scored on
    # every detection: correct (N, 10) at IoU 0.50:0.95, ignored (in an ignore region), conf, pred_cls; and the
    # classes of the boxes, target_cls (M,)
    detections: dict = field(default_factory=dict, repr=False)
    curves: F1Curves | None = field(default=None, repr=False)
    coco: CocoEval | None = field(default=None, repr=False)
    confusion: ConfusionMatrix | None = field(default=None, repr=False)
    plots: list[Path] = field(default_factory=list)


def val_config(data: str | Path, split: str = "val") -> DataConfig:
    """The data.yaml, refused (naming it) when it lacks ``split``."""
    cfg = load_data_yaml(data)
    if split not in cfg.splits:
        raise DataError(f"{cfg.yaml_path}: no split '{split}' (has {', '.join(cfg.splits)})")
    return cfg


def val_dataset(data: DataConfig | str | Path, split: str = "val", imgsz: int = 640, batch: int = 32,
                stride: int = 32, verbose: bool = True, rect: bool = True, model_name: str = "the model"
                ) -> DetectionDataset:
    """A split prepared as ``ultralytics val`` prepares it: no augmentation, images sorted by aspect ratio into
    rect batches of ``batch``, each letterboxed to its batch's stride-aligned shape (pad 0.5 stride). With
    ``rect=False`` every image is letterboxed to ``imgsz`` x ``imgsz`` (what a static export takes)."""
    if imgsz % stride:
        raise ConfigError(f"imgsz {imgsz} is not a multiple of {model_name}'s largest stride {stride}")
    return DetectionDataset(data, split, imgsz=imgsz, augment=False, rect=rect, batch_size=batch, stride=stride,
                            cache_dir=DEFAULT_CACHE_DIR, verbose=verbose)


def val_loader(dataset: DetectionDataset, batch: int, workers: int) -> DataLoader:
    """Batches in dataset order: the dataset's own aspect-ratio batches if it has them, else ``batch`` images."""
    if getattr(dataset, "rect", False):
        groups = [np.flatnonzero(dataset.batch_index == b).tolist() for b in range(int(dataset.batch_index.max()) + 1)]
    else:
        groups = [list(range(i, min(i + batch, len(dataset)))) for i in range(0, len(dataset), batch)]
    return DataLoader(dataset, batch_sampler=groups, num_workers=workers, collate_fn=collate_fn,
                      worker_init_fn=seed_worker, pin_memory=torch.cuda.is_available())


@torch.no_grad()
def validate(model: nn.Module | Callable[[torch.Tensor], torch.Tensor], dataset: DetectionDataset, *, batch: int = 32, conf: float = 0.001, iou: float = 0.7,
             max_det: int = 300, device: str | torch.device = "cpu",
             autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext, workers: int = 0,
             save_dir: str | Path | None = None, plots: bool = False, progress: bool = False,
             names: list[str] | None = None) -> ValResult:
    """Score ``model`` on ``dataset`` (built with ``augment=False``, e.g. by :func:`val_dataset`); see the module
    docstring. ``model``: a zoo detector on ``device``, or any callable with a ``meta`` holding ``num_classes`` and
    ``anchor_based`` that maps a float32 ``(B, 3, H, W)`` batch to the zoo's eval output (an exported model that
    :func:`yololab.deploy.load.load_detector` runs: detect/ knows no runtime, only this interface). ``batch`` is the batch size unless the dataset has rect
    batches of its own, which are kept. ``autocast``: a context manager factory for the forward pass (the
    trainer's, say). With ``plots`` and ``save_dir``, writes the PR / F1 curves, the confusion matrices and the
    first batches' images beside their labels into ``save_dir`` (:mod:`yololab.detect.plots`)."""
    if dataset.augment:
        raise ConfigError("validation needs a dataset built with augment=False")
    if not 0 <= conf <= 1 or not 0 <= iou <= 1:
        raise ConfigError(f"conf and iou must be in [0, 1], got conf={conf}, iou={iou}")
    if batch < 1 or max_det < 1:
        raise ConfigError(f"batch and max_det must be positive, got batch={batch}, max_det={max_det}")
    names = list(names or dataset.cfg.names)
    nc = model.meta.num_classes
    if nc != len(names):
        raise ConfigError(f"the model predicts {nc} classes, the dataset has {len(names)} ({dataset.cfg.yaml_path})")
    gt = dataset_ground_truth(dataset)
    image_id = {f: i for i, f in enumerate(dataset.files, start=1)}
    boxes_of = _boxes_by_image(gt)
    drawn = []  # (loader batch, its letterboxed detections) of the first batches, for the plots

    module = model if isinstance(model, nn.Module) else None  # train / eval mode exists for torch modules only
    was_training = module is not None and module.training
    if module is not None:
        module.eval()
    results, stats, seen = [], [], 0
    confusion = ConfusionMatrix(nc)
    times = np.zeros(3)
    try:
        loader = val_loader(dataset, batch, workers)
        for k, b in enumerate(progress_bar(loader, enabled=progress, desc="val", unit="batch")):
            t0 = time.perf_counter()
            img = b["img"].to(device, non_blocking=True).float().div_(255)
            t1 = _synchronized(device)
            with autocast():
                out = model(img)
            t2 = _synchronized(device)
            dets = postprocess(out.float().cpu(), model.meta.anchor_based, conf=conf, iou=iou, max_det=max_det)
            for det, f, shape, (gain, pad) in zip(dets, b["im_file"], b["ori_shape"], b["ratio_pad"]):
                orig = to_image(det, gain, pad, shape)
                results += coco_results(orig, image_id[f])
                stats.append(_score_image(orig, boxes_of.get(image_id[f]), confusion))
            t3 = time.perf_counter()
            times += (t1 - t0, t2 - t1, t3 - t2)
            seen += len(dets)
            if k < PLOTTED_BATCHES and plots and save_dir is not None:
                drawn.append((b, dets))
    finally:
        if module is not None:
            module.train(was_training)

    correct, ignored, scores, pred_cls, target_cls = (np.concatenate(x) for x in zip(*stats))  # >= 1 image
    kept = ~ignored
    curves = f1_curves(correct[kept, 0], scores[kept], pred_cls[kept], target_cls)
    coco = coco_eval(gt, results)
    metrics = _metrics(curves, coco)
    result = ValResult(
        metrics=metrics, per_class=_per_class(curves, coco, gt, names),
        speed_ms=dict(zip(("preprocess", "inference", "postprocess"), (1e3 * times / max(seen, 1)).tolist())),
        predictions=results, ground_truth=gt, curves=curves, coco=coco, confusion=confusion,
        detections={"correct": correct, "ignored": ignored, "conf": scores, "pred_cls": pred_cls,
                    "target_cls": target_cls})
    if plots and save_dir is not None:
        result.plots = plot_validation(Path(save_dir), result, names, drawn)
    return result


def _synchronized(device: str | torch.device) -> float:
    """The time once the device has finished its queued work (CUDA runs asynchronously)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def _boxes_by_image(gt: dict) -> dict[int, tuple[np.ndarray, ...]]:
    """image id -> (boxes x1 y1 x2 y2, classes, ignore-region boxes, their classes) in original pixels."""
    per: dict[int, list] = {}
    for a in gt["annotations"]:
        per.setdefault(a["image_id"], []).append(a)
    out = {}
    for i, anns in per.items():
        xyxy = np.array([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)], np.float64).reshape(-1, 4)
        crowd = np.array([bool(a.get("iscrowd")) for a in anns])
        cls = np.array([a["category_id"] - 1 for a in anns], np.int64)
        out[i] = xyxy[~crowd], cls[~crowd], xyxy[crowd], cls[crowd]
    return out


def _score_image(det: Detections, truth, confusion: ConfusionMatrix):
    """One image's detections as (correct, ignored, scores, classes), and the classes of its boxes."""
    gt_boxes, gt_cls, ignore, ignore_cls = truth if truth is not None else (np.zeros((0, 4)), np.zeros(0, np.int64),
                                                                            None, None)
    boxes, scores, classes = det.boxes.double().numpy(), det.scores.numpy(), det.classes.numpy()
    correct, ignored = correct_detections(boxes, classes, gt_boxes, gt_cls, ignore, ignore_cls)
    kept = ~ignored
    confusion.update(boxes[kept], scores[kept], classes[kept], gt_boxes, gt_cls)
    return correct, ignored, scores, classes, gt_cls


def _metrics(curves: F1Curves, coco: CocoEval) -> dict[str, float]:
    p, r, f1 = curves.at_best()
    metrics = {"precision": float(p.mean()) if len(p) else 0.0, "recall": float(r.mean()) if len(r) else 0.0,
               "f1": float(f1.mean()) if len(f1) else 0.0, **coco.stats, "best_conf": curves.best_conf}
    metrics["fitness"] = 0.1 * metrics["mAP50"] + 0.9 * metrics["mAP50-95"]
    return metrics


def _per_class(curves: F1Curves, coco: CocoEval, gt: dict, names: list[str]) -> list[dict]:
    """One row per class with ground truth: its images and instances, P and R at the best-F1 confidence, APs."""
    p, r, _ = curves.at_best()
    images: dict[int, set] = {}
    for a in gt["annotations"]:
        if not a.get("iscrowd"):
            images.setdefault(a["category_id"] - 1, set()).add(a["image_id"])
    return [{"name": names[c], "class": int(c), "images": len(images.get(int(c), ())), "instances": int(n),
             "precision": float(p[k]), "recall": float(r[k]), "AP50": float(coco.ap50[c]),
             "AP50-95": float(coco.ap[c])}
            for k, (c, n) in enumerate(zip(curves.classes, curves.instances))]


def load_for_val(weights: str | Path, data: str | Path, split: str = "val", imgsz: int = 640, batch: int = 32,
                 device: str = "cpu", model: str | None = None, verbose: bool = True
                 ) -> tuple[nn.Module, DetectionDataset, torch.device]:
    """(fused model in eval mode on the device, validation dataset with rect batches, device) for scoring ``weights``
    on ``data``'s ``split``. Refuses, naming the file: a bad data.yaml or split, weights for another class count
    or of another model than ``model``, an image size that is not a multiple of the model's stride, an unknown
    device. (An exported ``.onnx`` / OpenVINO model: :func:`yololab.deploy.load.load_exported_for_val`.)"""
    cfg = val_config(data, split)
    dev = select_device(device)
    name, file_nc, kwargs = model_for_weights(weights, model)
    if file_nc is not None and file_nc != cfg.num_classes:
        raise WeightsError(f"{weights}: the weights predict {file_nc} classes, {cfg.yaml_path} has "
                           f"{cfg.num_classes}; score them on a dataset with their classes")
    net = build_model(name, num_classes=cfg.num_classes, weights=weights, **kwargs)
    dataset = val_dataset(cfg, split, imgsz, batch, max(net.meta.strides), verbose=verbose, model_name=name)
    return net.eval().fuse().to(dev), dataset, dev  # BatchNorm folded into the convs, as `ultralytics val` does
