"""Helpers the tests share (``import helpers``: pyproject puts tests/ on pytest's pythonpath).

The reference packages and ../shared/data are required: a test that needs them fails, naming what is
missing, instead of skipping (parity must really be checked on every landing).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data; the test fails (not skips) when it is not there."""
    path = SHARED_DATA.joinpath(*parts).resolve()
    if not path.exists():
        pytest.fail(f"shared test data not found: {path} (the test suite needs <repo>/../shared/data)")
    return path


def copy_tree(src: Path, dst: Path) -> Path:
    """Copy file contents only (the shared data is read-only; the copy must be writable)."""
    for p in sorted(src.rglob("*")):
        q = dst / p.relative_to(src)
        if p.is_dir():
            q.mkdir(parents=True, exist_ok=True)
        else:
            q.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(p, q)
    return dst


def hash_tree(root: Path) -> dict[str, str]:
    """sha256 of every file below root (and the list of files): to prove nothing was modified."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def randomize_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random running statistics and affine parameters (near the identity) in every BatchNorm, in place, so
    that a wrong layer mapping, BatchNorm order or eps shows in the outputs instead of hiding behind identity
    BatchNorms. Returns the model."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=g) * 0.5 + 0.75)
                m.weight.copy_(torch.rand(c, generator=g) * 0.5 + 0.75)
                m.bias.copy_(torch.randn(c, generator=g) * 0.1)
    return model


def randomize_weights(model: nn.Module, seed: int = 0) -> nn.Module:
    """Every float tensor random (conv weights scaled by fan-in, BatchNorm as above), anchors kept: small
    enough that exp() in Darknet's box decode stays finite. In place; returns the model."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point() or name.endswith("anchors"):
                continue
            if name.endswith("running_var") or name.endswith("bn.weight"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif t.dim() == 4:
                t.copy_(torch.randn(t.shape, generator=g) / t[0].numel() ** 0.5)
            else:
                t.copy_(torch.rand(t.shape, generator=g) * 0.2 - 0.1)
    return model


def quiet(fn, *args, **kwargs):
    """Call a reference constructor without its model summary printout."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return fn(*args, **kwargs)


def ultralytics_model(yaml_name: str, nc: int | None = None) -> nn.Module:
    """Ultralytics' DetectionModel built from its YAML (offline), with ``nc`` classes if given."""
    from ultralytics.nn.tasks import DetectionModel

    return quiet(DetectionModel, yaml_name, nc=nc, verbose=False)


def yolov5_model(rel_yaml: str, nc: int | None = None) -> nn.Module:
    """The yolov5 package's Model from ``yolov5/models/<rel_yaml>``, with ``nc`` classes if given.

    A YAML with an ``activation`` key (hub/yolov5s-LeakyReLU.yaml) makes yolov5 set ``Conv.default_act`` for
    every later model of the process; it is put back, so that tests do not depend on their order.
    """
    import yolov5
    from yolov5.models.common import Conv
    from yolov5.models.yolo import Model
    from yolov5.utils.general import LOGGER

    path = Path(yolov5.__file__).parent / "models" / rel_yaml
    level, act = LOGGER.level, Conv.default_act
    LOGGER.setLevel("ERROR")
    try:
        return quiet(Model, str(path), nc=nc)
    finally:
        LOGGER.setLevel(level)
        Conv.default_act = act
