"""Real files end to end: coco8 through yololab's detection loader into every loss and into auto-anchor.

coco8 (8 COCO photos, ../shared/data/coco8) is read, never written: the label cache goes to tmp_path.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re

import numpy as np
import pytest
import torch
from helpers import shared_data, yolov5_model
from yolov5.utils.autoanchor import check_anchors as v5_check_anchors
from yolov5.utils.general import LOGGER as V5_LOGGER

from yololab.data.dataset import DetectionDataset, collate_fn
from yololab.detect.autoanchor import anchor_metrics, check_anchors, label_wh
from yololab.detect.loss import DarknetLoss, YOLOv5Loss, YOLOv8Loss, build_loss
from yololab.models import build_model

@pytest.fixture(scope="module")
def train_set(tmp_path_factory):
    return DetectionDataset(shared_data("coco8", "coco8.yaml"), "train", imgsz=160, augment=False, cache_dir=tmp_path_factory.mktemp("cache"),
                            verbose=False)


@pytest.mark.parametrize("name,kwargs,kind", [("yolov8n", {}, YOLOv8Loss), ("yolov5n", {}, YOLOv5Loss),
                                              ("yolov3-tiny", {"style": "darknet"}, DarknetLoss)])
def test_one_training_step_on_coco8(train_set, name, kwargs, kind):
    """The loader's batch dict goes straight into the loss; the loss backpropagates into every head weight."""
    batch = collate_fn([train_set[i] for i in range(4)])
    assert len(batch["cls"]) > 0
    model = build_model(name, num_classes=80, **kwargs).train()
    loss = build_loss(model, imgsz=160)
    assert isinstance(loss, kind)
    total, parts = loss(model(batch["img"].float() / 255), batch)
    assert total.ndim == 0 and torch.isfinite(total) and total > 0
    assert all(torch.isfinite(v) and v >= 0 for v in parts.values())
    total.backward()
    head = [p for p in model.head.parameters() if p.requires_grad]  # (DFL's fixed projection does not)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in head)


def test_autoanchor_on_the_loaders_labels_matches_yolov5(train_set):
    """The loader's ``labels`` and ``shapes`` give the BPR yolov5's check_anchors reports for the same boxes."""
    model = build_model("yolov5n", num_classes=80)
    result = check_anchors(model, train_set.labels, train_set.shapes, 640, gen=100, seed=0)
    assert 0 < result.bpr <= 1 and result.anchors.shape == (9, 2)

    class Dataset:  # what yolov5 reads: shapes as (w, h), labels as class, x, y, w, h
        labels, shapes = train_set.labels, train_set.shapes[:, ::-1].copy()

    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda r: records.append(r.getMessage())
    V5_LOGGER.addHandler(handler)
    level = V5_LOGGER.level
    V5_LOGGER.setLevel(logging.INFO)
    ref = yolov5_model("yolov5n.yaml")
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            np.random.seed(0)
            jitter = np.random.uniform(0.9, 1.1, size=(len(Dataset.labels), 1))
            np.random.seed(0)
            v5_check_anchors(Dataset(), ref, thr=4.0, imgsz=640)
    finally:
        V5_LOGGER.removeHandler(handler)
        V5_LOGGER.setLevel(level)
    found = re.search(r"([\d.]+) anchors/target, ([\d.]+) Best Possible Recall", "\n".join(records))
    assert found, records
    anchors = torch.cat(list(build_model("yolov5n", num_classes=80).head.anchors))
    bpr, aat = anchor_metrics(label_wh(train_set.labels, train_set.shapes, 640, scale=jitter), anchors)
    assert (f"{aat:.2f}", f"{bpr:.3f}") == found.groups()
