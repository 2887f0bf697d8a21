"""Our GFLOPs (traced with FlopCounterMode, yololab.analysis.summary) agree with the references' own counter (thop) at 640x640: the brief asks 1%, we assert 0.2%.

The two counters do not count the same things, so we compare like with like:

* thop counts a BatchNorm as 2 ops per element (the YAML "GFLOPs" of the references include that, e.g.
  yolov8n 8.9 unfused). PyTorch's FlopCounterMode counts matrix ops only, as the papers' convention does.
  So thop runs on the reference *after its own ``fuse()``* (BatchNorm folded into the convs).
* thop hooks modules, so it misses functional matmuls: YOLO11's attention (``q^T k`` and ``v attn^T``).
  We add those with a forward hook on the reference's Attention modules.
* thop also counts 1 op per output element of nearest upsampling; that is left in (< 0.1%).

Measured (2-core CPU; counts do not depend on the machine), ours vs reference: yolov8n 8.7440 vs 8.7464,
yolo11n 6.5425 vs 6.5450 (6.4835 from thop + 0.0615 attention), yolov5n 4.4681 vs 4.4694, yolov3-tiny 13.1715 vs
13.1719, yolov3 155.891 vs 155.894: all within 0.04%, the rest being thop's upsampling ops. Without the two
corrections the gaps are -1.3% (yolov8n, BatchNorm) and +0.9% (yolo11n fused, attention).

Ultralytics' own ``get_flops`` returns 0.0 with the installed ``thop`` 0.1.1 (it passes a ``stride`` argument
that only ``ultralytics-thop`` accepts), so we call ``thop.profile`` directly, as ``get_flops`` and yolov5's
``model_info`` do.
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
    """The references' counter: thop MACs x 2 on the fused reference, plus attention matmuls thop cannot see."""
    ref = copy.deepcopy(ref).eval()
    with contextlib.redirect_stdout(io.StringIO()):
        ref = ref.fuse()
    attn_macs = []

    def count_attention(m, inputs, output):  # (B, heads, N, N) scores from key_dim, then values of head_dim
        b, _, h, w = inputs[0].shape
        n = h * w
        attn_macs.append(b * m.num_heads * n * n * (m.key_dim + m.head_dim))

    hooks = [m.register_forward_hook(count_attention) for m in ref.modules() if type(m).__name__ == "Attention"]
    macs = quiet(thop.profile, ref, inputs=(torch.zeros(1, 3, imgsz, imgsz),), verbose=False)[0]
    for h in hooks:
        h.remove()
    return (macs + sum(attn_macs)) * 2 / 1e9


def assert_close(ours: float, ref: float, rel: float = 0.002) -> None:
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
