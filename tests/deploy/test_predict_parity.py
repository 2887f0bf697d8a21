"""Parity with ``ultralytics predict``: in exact fp32 mode, the same weights give the same boxes, scores and
classes, on the same photos.

The weights, ``tests/fixtures/yolov8n-shapes.pt``, are a yolov8n that Ultralytics' own trainer trained offline
from scratch on yololab's synthetic shapes set (``scripts/train_reference_yolov8n.py``; provenance, epochs and
SHA-256 in ``tests/fixtures/yolov8n-shapes.json``): a trained network, whose scores are spread out as a real
model's are, so that NMS keeps a few confident boxes and ties do not decide the result. The photos are fresh
shapes images (another seed than training) and the real coco8 photos (where a shapes model finds little, which
checks the empty case too).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import REPO, shared_data
from yololab.data.synthetic import synth_shapes
from yololab.deploy.load import load_detector
from yololab.deploy.predict import Predictor

WEIGHTS = REPO / "tests" / "fixtures" / "yolov8n-shapes.pt"
IMGSZ = 256


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> list[Path]:
    data = synth_shapes(tmp_path_factory.mktemp("shapes"), train=1, val=6, imgsz=IMGSZ, seed=123, progress=False)
    shapes = sorted((data.parent / "images" / "val").glob("*.jpg"))
    return shapes + sorted(shared_data("coco8", "images", "val").glob("*.jpg"))


def _ultralytics(photos: list[Path], **kw):
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics import YOLO

    model = YOLO(str(WEIGHTS))
    return [r.boxes for r in model.predict([str(p) for p in photos], imgsz=IMGSZ, device="cpu", verbose=False,
                                           **kw)]


def test_the_fixture_is_an_ultralytics_checkpoint_we_recognise():
    det = load_detector(WEIGHTS, mode="fp32")
    assert det.meta.name == "yolov8n" and det.meta.num_classes == 7 and det.meta.names[0] == "circle"


@pytest.mark.parametrize("kw", [{}, {"conf": 0.1, "iou": 0.5, "agnostic_nms": True}])
def test_same_boxes_scores_classes_as_ultralytics(photos, kw):
    theirs = _ultralytics(photos, **kw)
    ours = Predictor(WEIGHTS, mode="fp32", imgsz=IMGSZ, conf=kw.get("conf", 0.25), iou=kw.get("iou", 0.7),
                     agnostic=kw.get("agnostic_nms", False))(photos)
    found = 0
    for p, r in zip(ours, theirs):
        assert len(p) == len(r), (p.path, len(p), len(r))
        found += len(p)
        order = torch.argsort(r.conf.float(), descending=True, stable=True)
        np.testing.assert_allclose(p.scores.numpy(), r.conf[order].float().numpy(), atol=1e-4)
        np.testing.assert_allclose(p.boxes.numpy(), r.xyxy[order].float().numpy(), atol=1e-2)
        assert p.classes.tolist() == r.cls[order].long().tolist()
    assert found >= 6  # the shapes photos hold confident detections: the comparison says something
