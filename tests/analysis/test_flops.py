"""Our GFLOPs (traced with FlopCounterMode, yololab.analysis.summary) equal the references' own counter at 640x640.

The references count with ``thop`` (the ``ultralytics-thop`` package, pinned in the Makefile: the old PyPI ``thop``
installs the same module name, misses YOLO11's attention matmuls and made the reference depend on install order).
thop counts a BatchNorm as 2 ops per element, which the YAML "GFLOPs" of the references include (yolov8n 8.9
unfused); PyTorch's FlopCounterMode counts matrix ops only, as the papers do. So thop runs on the reference
*after its own ``fuse()``* (BatchNorm folded into the convs), as their fused summaries do.

Measured with ultralytics-thop 2.2.3 (counts do not depend on the machine), ours vs reference: yolov8n 8.7440 vs
8.7440, yolo11n 6.5425 vs 6.5425, yolov5n 4.4681 vs 4.4681, yolov3-tiny 13.1715 vs 13.1715: equal to the digits
printed. The brief asks 1%; we assert 0.01%.
"""

from __future__ import annotations

import contextlib
import copy
import io

import pytest
import thop
import torch
from helpers import quiet, ultralytics_model, yolov5_model

from yololab.analysis.summary import trace_model, trace_zoo_model
from yololab.models import build_model


def thop_gflops(ref: torch.nn.Module, imgsz: int = 640) -> float:
    """The references' counter: thop MACs x 2 on the fused reference."""
    ref = copy.deepcopy(ref).eval()
    with contextlib.redirect_stdout(io.StringIO()):
        ref = ref.fuse()
    macs = quiet(thop.profile, ref, inputs=(torch.zeros(1, 3, imgsz, imgsz),), verbose=False)[0]
    return macs * 2 / 1e9


def assert_close(ours: float, ref: float, rel: float = 1e-4) -> None:
    assert abs(ours - ref) <= rel * ref, f"ours {ours:.4f} GFLOPs vs reference {ref:.4f} ({(ours / ref - 1):+.2%})"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["yolov8n", "yolo11n"])
def test_flops_ultralytics(name):
    ours = trace_zoo_model(name, 640).gflops
    assert_close(ours, thop_gflops(ultralytics_model(f"{name}.yaml")))


@pytest.mark.slow
@pytest.mark.parametrize("name, yaml", [("yolov5n", "yolov5n.yaml"), ("yolov3-tiny", "hub/yolov3-tiny.yaml")])
def test_flops_yolov5(name, yaml):
    ours = trace_model(build_model(name, **({"style": "yolov5"} if name.startswith("yolov3") else {})), 640).gflops
    assert_close(ours, thop_gflops(yolov5_model(yaml)))


def test_flops_scale_with_input_area():
    """The count depends on shapes only: a 640 input costs exactly four times a 320 one."""
    assert trace_zoo_model("yolov8n", 640).flops == 4 * trace_zoo_model("yolov8n", 320).flops
