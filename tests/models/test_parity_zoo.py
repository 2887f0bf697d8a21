"""Exactness: with the reference's weights converted into ours, eval outputs are the reference's.

For each model we build the reference network from its YAML (ultralytics / yolov5 package), give
every BatchNorm non-trivial statistics and affine parameters (so a wrong BN order, eps or a missing
layer cannot hide behind identity BNs), convert its state dict with ``convert.py``, load it strictly
and compare eval outputs on one random 640x640 image: max abs diff <= 1e-4.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from helpers import randomize_batchnorm, ultralytics_model, yolov5_model
from yololab.checkpoint.reference import reference_state_dict_to_yololab
from yololab.models import build_model

TOL = 1e-4


def assert_parity(ours: nn.Module, ref: nn.Module, imgsz: int = 640) -> float:
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters())
    torch.manual_seed(0)
    randomize_batchnorm(ref)
    ours.load_state_dict(reference_state_dict_to_yololab(ours, ref.state_dict()), strict=True)
    ours.eval()
    ref.eval()
    x = torch.rand(1, 3, imgsz, imgsz)
    with torch.no_grad():
        y_ref = ref(x)
        y_ref = y_ref[0] if isinstance(y_ref, (tuple, list)) else y_ref
        y = ours(x)
    assert y.shape == y_ref.shape
    diff = (y - y_ref).abs().max().item()
    assert diff <= TOL, f"max abs diff {diff:.3g} > {TOL}"
    return diff


@pytest.mark.slow
@pytest.mark.parametrize("name", ["yolov8n", "yolov8s"])
def test_yolov8_parity(name):
    assert_parity(build_model(name), ultralytics_model(f"{name}.yaml"))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["yolo11n", "yolo11s"])
def test_yolo11_parity(name):
    assert_parity(build_model(name), ultralytics_model(f"{name}.yaml"))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["yolov5n", "yolov5s"])
def test_yolov5_parity(name):
    assert_parity(build_model(name), yolov5_model(f"{name}.yaml"))


@pytest.mark.slow
@pytest.mark.parametrize("name, yaml", [("yolov3", "hub/yolov3.yaml"), ("yolov3-tiny", "hub/yolov3-tiny.yaml")])
def test_yolov3_parity(name, yaml):
    """The yolov5-style YOLOv3s equal the yolov5 package's hub models (same SiLU, decode and zero pad)."""
    assert_parity(build_model(name, style="yolov5"), yolov5_model(yaml))


@pytest.mark.slow
def test_yolo11m_parity_c3k_everywhere():
    """The m/l/x rule of YOLO11 (c3k=True in every C3k2), at 320x320 to keep the test short."""
    assert_parity(build_model("yolo11m"), ultralytics_model("yolo11m.yaml"), imgsz=320)
