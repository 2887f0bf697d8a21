"""Parity with ``ultralytics predict``: in exact fp32 mode, the same weights give the same boxes, scores and
classes, on the same photos.

The weights, ``tests/fixtures/yolov8n-shapes.pt``, are a yolov8n that Ultralytics' own trainer trained offline
from scratch on yololab's synthetic shapes set (``scripts/train_reference_yolov8n.py``; provenance, epochs and
SHA-256 in ``tests/fixtures/yolov8n-shapes.json``): a trained network, whose scores are spread out as a real
model's are, so that NMS keeps a few confident boxes and ties do not decide the result. The photos are fresh
shapes images (another seed than training) and the real coco8 photos (where a shapes model finds little, which
checks the empty case too). Scores and classes must be equal; boxes are compared on the network input, where
they are equal too: mapped back to the photo, Ultralytics' ``scale_boxes`` recomputes the letterbox from the input
shape and is up to a pixel off on a minimum-rectangle input, ours inverts the letterbox actually applied.

The fixture: 30 epochs on 400 shapes images at 256 px, mAP50-95 0.133 on 50 val images (Ultralytics' own val):
weak, but its scores are a trained network's.
"""

from __future__ import annotations

import math
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


def _ultralytics(photos: list[Path], together: bool, **kw):
    """Ultralytics' boxes per photo: one ``predict`` call per photo, or one call on the whole list (which it runs
    as one batch: a square letterbox, the photos' shapes differing)."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics import YOLO

    model = YOLO(str(WEIGHTS))
    kw = dict(imgsz=IMGSZ, device="cpu", verbose=False, **kw)
    if together:
        return [r.boxes for r in model.predict([str(p) for p in photos], **kw)]
    return [model.predict(str(p), **kw)[0].boxes for p in photos]


def _input_shape(shape: tuple[int, int], together: bool) -> tuple[int, int]:
    """The network input (h, w) of a photo: the minimum rectangle alone, the square in a mixed batch."""
    if together:
        return IMGSZ, IMGSZ
    r = min(IMGSZ / shape[0], IMGSZ / shape[1])
    return tuple(math.ceil(round(s * r) / 32) * 32 for s in shape)


def _to_input(boxes: torch.Tensor, shape: tuple[int, int], together: bool) -> np.ndarray:
    """Our boxes back on the network input, through the letterbox the photo really went through."""
    h, w = _input_shape(shape, together)
    r = min(IMGSZ / shape[0], IMGSZ / shape[1])
    nh, nw = round(shape[0] * r), round(shape[1] * r)
    gy, gx, py, px = nh / shape[0], nw / shape[1], round((h - nh) / 2 - 0.1), round((w - nw) / 2 - 0.1)
    return (boxes.double() * torch.tensor([gx, gy, gx, gy]) + torch.tensor([px, py, px, py])).numpy()


def _ultralytics_to_input(boxes: torch.Tensor, shape: tuple[int, int], together: bool) -> np.ndarray:
    """Ultralytics' boxes back on the network input through the inverse of its ``ops.scale_boxes``, which
    recomputes the letterbox from the input's shape: for a minimum rectangle whose short side was rounded it
    differs from the letterbox applied by up to a pixel (a 640x481 photo at 256: 192 px wide, so it takes a gain of
    192/481 for both sides where the photo was scaled by 256/640 = 0.4 in height). The network's boxes are the
    same; the mapping back to the photo is Ultralytics' approximation, ours the exact inverse."""
    h, w = _input_shape(shape, together)
    g = min(h / shape[0], w / shape[1])
    nh, nw = (max(round(s * g), 1) for s in shape)
    gy, gx, px, py = nh / shape[0], nw / shape[1], round((w - nw) / 2 - 0.1), round((h - nh) / 2 - 0.1)
    return (boxes.double() * torch.tensor([gx, gy, gx, gy]) + torch.tensor([px, py, px, py])).numpy()


def test_the_fixture_is_an_ultralytics_checkpoint_we_recognise():
    det = load_detector(WEIGHTS, mode="fp32")
    assert det.meta.name == "yolov8n" and det.meta.num_classes == 7 and det.meta.names[0] == "circle"


@pytest.mark.parametrize("together", [False, True], ids=["one-by-one", "one-batch"])
@pytest.mark.parametrize("kw", [{}, {"conf": 0.05}, {"conf": 0.05, "iou": 0.5, "agnostic_nms": True}])
def test_same_boxes_scores_classes_as_ultralytics(photos, kw, together):
    theirs = _ultralytics(photos, together, **kw)
    ours = Predictor(WEIGHTS, mode="fp32", imgsz=IMGSZ, conf=kw.get("conf", 0.25), iou=kw.get("iou", 0.7),
                     agnostic=kw.get("agnostic_nms", False), batch=len(photos) if together else 1)(photos)
    found = 0
    for p, r in zip(ours, theirs):
        assert len(p) == len(r), (p.path, len(p), len(r))
        found += len(p)
        order = torch.argsort(r.conf.float(), descending=True, stable=True)
        np.testing.assert_allclose(p.scores.numpy(), r.conf[order].float().numpy(), atol=1e-4)
        np.testing.assert_allclose(_to_input(p.boxes, p.shape, together), _ultralytics_to_input(
            r.xyxy[order].float(), p.shape, together), atol=1e-2)
        assert p.classes.tolist() == r.cls[order].long().tolist()
    assert found >= (3 if "conf" not in kw else 20)  # boxes to compare: the comparison says something
