"""Exactness: with the reference's weights converted into ours, eval outputs are the reference's.

For each model we build the reference network from its YAML (ultralytics / yolov5 package), give
every BatchNorm non-trivial statistics and affine parameters (so a wrong BN order, eps or a missing
layer cannot hide behind identity BNs), convert its state dict with ``convert.py``, load it strictly
and compare eval outputs on one random 640x640 image: max abs diff <= 1e-4.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
import torch
from torch import nn

from yololab.models import build_model
from yololab.models.convert import reference_state_dict_to_yololab

TOL = 1e-4


def randomize_batchnorm(model: nn.Module, seed: int = 0) -> None:
    """Give every BatchNorm random running stats and affine parameters (values near the identity)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=g) * 0.5 + 0.75)
                m.weight.copy_(torch.rand(c, generator=g) * 0.5 + 0.75)
                m.bias.copy_(torch.randn(c, generator=g) * 0.1)


def quiet(fn, *args, **kwargs):
    """Call a reference constructor without its model summary printout."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return fn(*args, **kwargs)


def ultralytics_model(yaml_name: str) -> nn.Module:
    pytest.importorskip("ultralytics")
    from ultralytics.nn.tasks import DetectionModel

    return quiet(DetectionModel, yaml_name, verbose=False)


def yolov5_model(rel_yaml: str) -> nn.Module:
    pytest.importorskip("yolov5")
    import yolov5
    from yolov5.models.yolo import Model

    from yolov5.utils.general import LOGGER

    path = Path(yolov5.__file__).parent / "models" / rel_yaml
    level = LOGGER.level
    LOGGER.setLevel("ERROR")
    try:
        return quiet(Model, str(path))
    finally:
        LOGGER.setLevel(level)


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
