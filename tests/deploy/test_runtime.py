"""prepare_for_inference: every mode computes what the plain eval model computes, within its tolerance.

Random networks are BN-calibrated first (torch.optim.swa_utils.update_bn): with the initial running statistics
the outputs are nearly constant and any mode would "match".
"""

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.optim.swa_utils import update_bn

from helpers import shared_data
from yololab.deploy import runtime as inference
from yololab.deploy.runtime import MODES, InferenceModel, best_mode, fused_eval_copy, prepare_for_inference
from yololab.errors import YololabError
from yololab.models import build_model

IMGSZ = 64
FP32_RTOL = 1e-4  # max |diff| relative to the output's max |value|
# bf16 tolerance. Random-weight networks amplify any rounding: merely storing the *input* in bf16 (then
# computing in fp32) already moves their outputs by 1-8 % (relative L2), so a fixed bound says little.
# The bound is relative to that: bf16-cl's error <= BF16_FACTOR x the error of rounding the input alone
# (measured 1.8-6.3x over 3 seeds of yolov8n / yolo11n at 64 px). See benchmarks/README.md.
BF16_FACTOR = 10.0
ROOT = Path(__file__).resolve().parents[2]


def _calibrated(name: str) -> nn.Module:
    torch.manual_seed(0)
    model = build_model(name, num_classes=5)
    update_bn([torch.rand(2, 3, IMGSZ, IMGSZ) for _ in range(2)], model)
    return model.eval()


@pytest.fixture(scope="module")
def yolov8n():
    return _calibrated("yolov8n")


@pytest.fixture(scope="module")
def x():
    torch.manual_seed(1)
    return torch.rand(2, 3, IMGSZ, IMGSZ)


def _need_runtime(mode: str) -> None:
    """Fail, naming the package, where ``mode``'s runtime is not installed (``make test`` installs both)."""
    if not inference.mode_available(mode):
        pytest.fail(f"mode {mode!r} needs {'onnxruntime' if mode == 'onnx' else 'openvino'}, which is not installed")


def _rel_max(y: torch.Tensor, ref: torch.Tensor) -> float:
    return float((y - ref).abs().max() / ref.abs().max())


def test_calibration_makes_outputs_informative(yolov8n, x):
    with torch.no_grad():
        y = yolov8n(x)
    boxes = y[:, :4]
    assert boxes.std(-1).min() > 1.0  # boxes vary across anchors (in px) instead of one constant box


def test_fused_equals_unfused_and_model_untouched(yolov8n, x):
    fused = fused_eval_copy(yolov8n)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in yolov8n.modules())  # the user's model is a copy
    with torch.no_grad():
        ref = yolov8n(x)
        y = fused(x)
    assert _rel_max(y, ref) < FP32_RTOL


@pytest.mark.parametrize("mode", ["fp32", "fp32-cl", "onnx", "openvino"])
def test_fp32_modes_match_eval(yolov8n, x, mode):
    _need_runtime(mode)
    runner = prepare_for_inference(yolov8n, mode)
    assert isinstance(runner, InferenceModel) and runner.mode == mode
    with torch.no_grad():
        ref = yolov8n(x)
    y = runner(x)
    assert y.dtype == torch.float32 and y.shape == ref.shape
    assert _rel_max(y, ref) < FP32_RTOL


@pytest.mark.parametrize("mode", ["bf16-cl", "openvino-bf16"])
@pytest.mark.parametrize("name", ["yolov8n", "yolo11n"])
def test_bf16_mode_within_documented_tolerance(name, mode, x):
    _need_runtime(mode)
    if mode == "openvino-bf16" and not inference.cpu_has_native_bf16():
        pytest.skip("OpenVINO runs the bf16 hint in float32 on CPUs without native bf16")
    model = _calibrated(name)
    with torch.no_grad():
        ref = model(x)
        ref_rounded_input = model(x.bfloat16().float())
    runner = InferenceModel(model, mode)  # directly: no "emulated bf16" warning on CPUs without it
    y = runner(x)
    assert y.dtype == torch.float32 and y.shape == ref.shape

    def rel_l2(a, part):
        return float((a[:, part] - ref[:, part]).norm() / ref[:, part].norm())

    for part in (slice(0, 4), slice(4, None)):  # boxes, class scores
        err, floor = rel_l2(y, part), rel_l2(ref_rounded_input, part)
        assert 0 < err < BF16_FACTOR * floor, (part, err, floor)  # > 0: bf16 really ran
    # the decode ran in float32 (bf16-cl: autocast disabled there; openvino-bf16: a second, float32 model):
    # box coordinates are not all bf16-representable numbers
    boxes = y[:, :4]
    assert (boxes != boxes.bfloat16().float()).float().mean() > 0.5


def test_bf16_keeps_head_outputs_fp32_and_convs_bf16(yolov8n):
    runner = InferenceModel(yolov8n, "bf16-cl")
    head = runner.model.head
    assert all(branch[-1].weight.dtype == torch.float32 for branch in (*head.cv2, *head.cv3))
    assert head.dfl.conv.weight.dtype == torch.float32
    bf16 = [m for m in runner.model.backbone.modules() if isinstance(m, nn.Conv2d)]
    assert bf16 and all(m.weight.dtype == torch.bfloat16 for m in bf16)
    assert all(m.weight.is_contiguous(memory_format=torch.channels_last) for m in bf16 if m.weight.dim() == 4)


def test_anchor_head_bf16_decode_in_fp32():
    """Under bf16 autocast the head's output convs and decode run in float32 by themselves (no patching)."""
    from yololab.nn.heads import AnchorHead

    torch.manual_seed(0)
    head = AnchorHead(3, [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119]], [8, 16], [8, 16]).eval()
    feats = [torch.randn(1, 8, 8, 8), torch.randn(1, 16, 4, 4)]
    assert head.float32_modules() == list(head.m)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        y = head(feats)
        raw = head.train()(feats)
    assert y.dtype == torch.float32 and all(r.dtype == torch.float32 for r in raw)
    with torch.no_grad():
        ref = head.eval()(feats)
    assert _rel_max(y, ref) < FP32_RTOL  # all of it fp32: head input was fp32 already


def test_auto_follows_cpu_flags_and_runtimes(monkeypatch, yolov8n):
    """auto = the module docstring's rule: OpenVINO if installed, bf16 only where the CPU has it natively."""
    expected = {(True, True): "openvino-bf16", (False, True): "openvino",
                (True, False): "bf16-cl", (False, False): "fp32-cl"}
    for (bf16, ov), mode in expected.items():
        monkeypatch.setattr(inference, "cpu_has_native_bf16", lambda bf16=bf16: bf16)
        monkeypatch.setattr(inference, "openvino_available", lambda ov=ov: ov)
        assert best_mode() == mode
    monkeypatch.setattr(inference, "cpu_has_native_bf16", lambda: False)
    monkeypatch.setattr(inference, "openvino_available", lambda: False)
    assert prepare_for_inference(yolov8n, "auto").mode == "fp32-cl"
    with pytest.warns(UserWarning, match="no native bfloat16"):
        prepare_for_inference(yolov8n, "bf16-cl")
    if importlib.util.find_spec("openvino") is not None:  # resolving auto really builds the OpenVINO mode
        monkeypatch.setattr(inference, "openvino_available", lambda: True)
        assert prepare_for_inference(yolov8n, "auto").mode == "openvino"
        with pytest.warns(UserWarning, match="openvino-bf16 is emulated or falls back"):
            prepare_for_inference(yolov8n, "openvino-bf16")


def test_cpu_flags_read_from_proc():
    from yololab.engine.hardware import cpu_flags

    flags = cpu_flags()
    if Path("/proc/cpuinfo").exists():
        assert "fpu" in flags or "fp" in flags or len(flags) > 5


class _TupleNet(nn.Module):
    """Returns a nested structure, as Ultralytics' Detect does in eval: (tensor, [tensor, tensor])."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x):
        y = self.bn(self.conv(x))
        return y.sum(1), [y, y.mean((2, 3))]


@pytest.mark.parametrize("mode", MODES)
def test_output_structure_preserved(mode, tmp_path):
    _need_runtime(mode)
    compiled = mode == "onnx" or mode.startswith("openvino")
    torch.manual_seed(0)
    net = _TupleNet()
    update_bn([torch.rand(2, 3, 16, 16)], net)
    net.eval()
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        ref = net(x)
    runner = prepare_for_inference(net, mode, cache_dir=tmp_path / "onnx" if compiled else None)
    y = runner(x)
    assert isinstance(y, tuple) and isinstance(y[1], list) and len(y[1]) == 2
    tol = 0.1 if "bf16" in mode else 1e-4  # this test is about structure; the means are near 0
    for a, b in zip((y[0], *y[1]), (ref[0], *ref[1])):
        assert a.dtype == torch.float32 and a.shape == b.shape
        assert float((a - b).norm() / b.norm()) < tol
    if compiled:
        files = sorted(p.name for p in (tmp_path / "onnx").iterdir())
        assert files == ["_TupleNet-1x3x16x16.onnx"]  # written atomically: no .tmp left behind
        runner(torch.rand(1, 3, 16, 16))  # the same shape reuses its compiled graph
        assert runner.compiled_shapes == [(1, 3, 16, 16)]
        runner(torch.rand(1, 3, 32, 32))  # a new shape exports and compiles a second graph
        assert runner.compiled_shapes == [(1, 3, 16, 16), (1, 3, 32, 32)]
        assert len(list((tmp_path / "onnx").iterdir())) == 2
    else:
        assert runner.compiled_shapes == []


def test_bad_mode_and_bad_input(yolov8n):
    with pytest.raises(YololabError, match="unknown inference mode 'fp16'"):
        prepare_for_inference(yolov8n, "fp16")
    runner = prepare_for_inference(yolov8n, "fp32")
    with pytest.raises(ValueError, match="float32 \\(B, 3, H, W\\)"):
        runner(torch.rand(3, IMGSZ, IMGSZ))
    with pytest.raises(ValueError, match="float32"):
        runner(torch.rand(1, 3, IMGSZ, IMGSZ).double())


def test_missing_runtime_is_a_clear_error(monkeypatch, yolov8n):
    monkeypatch.setattr(inference, "onnxruntime_available", lambda: False)
    with pytest.raises(YololabError, match="pip install onnxruntime"):
        prepare_for_inference(yolov8n, "onnx")
    monkeypatch.setattr(inference, "openvino_available", lambda: False)
    for mode in ("openvino", "openvino-bf16"):
        with pytest.raises(YololabError, match="pip install openvino"):
            prepare_for_inference(yolov8n, mode)
        assert not inference.mode_available(mode)


def test_openvino_shapes_compiled_once(yolov8n):
    _need_runtime("openvino")
    runner = prepare_for_inference(yolov8n, "openvino")
    x64, x96 = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 96, 96)
    first = runner(x64)
    request = runner._compiled[(1, 3, 64, 64)][0]
    assert torch.equal(runner(x64), first)  # deterministic, and the outputs are copies, not the request's buffer
    assert runner._compiled[(1, 3, 64, 64)][0] is request
    y96 = runner(x96)
    assert runner.compiled_shapes == [(1, 3, 64, 64), (1, 3, 96, 96)]
    with torch.no_grad():
        assert _rel_max(y96, yolov8n(x96)) < FP32_RTOL
    assert runner.openvino_config()["INFERENCE_PRECISION_HINT"] == "f32"


def test_openvino_bf16_splits_zoo_head(yolov8n, tmp_path):
    """openvino-bf16 on a DetectHead model: a bf16 body up to the raw head outputs, a float32 decoding model."""
    _need_runtime("openvino-bf16")
    if not inference.cpu_has_native_bf16():
        pytest.skip("OpenVINO compiles the bf16 hint as float32 on CPUs without native bf16")
    runner = InferenceModel(yolov8n, "openvino-bf16", cache_dir=tmp_path)
    assert runner._split_head and runner.openvino_config()["INFERENCE_PRECISION_HINT"] == "bf16"
    x = torch.rand(1, 3, 64, 64)
    y = runner(x)
    body, tail = runner._compiled[(1, 3, 64, 64)][0]
    precision = {str(r.get_compiled_model().get_property("INFERENCE_PRECISION_HINT")) for r in (body, tail)}
    assert precision == {"<Type: 'bfloat16'>", "<Type: 'float32'>"}, precision
    assert sorted(p.name for p in tmp_path.iterdir()) == ["yolov8n-1x3x64x64-body.onnx", "yolov8n-1x3x64x64-tail.onnx"]
    with torch.no_grad():
        ref = yolov8n(x)
    assert y.shape == ref.shape and y.dtype == torch.float32
    assert float((y - ref).norm() / ref.norm()) < 0.2
    assert not InferenceModel(_TupleNet(), "openvino-bf16")._split_head  # other models: one bf16 graph


def test_ultralytics_model_modes_match():
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(0)
    ref = DetectionModel("yolov8n.yaml", nc=80, verbose=False)
    update_bn([torch.rand(2, 3, IMGSZ, IMGSZ)], ref)
    ref.eval()
    x = torch.rand(1, 3, IMGSZ, IMGSZ)
    with torch.no_grad():
        expected = ref(x)[0]
    for mode in ("fp32", "fp32-cl"):
        y = prepare_for_inference(ref, mode)(x)[0]
        assert _rel_max(y, expected) < FP32_RTOL
    assert any(isinstance(m, nn.BatchNorm2d) for m in ref.modules())  # Ultralytics' fuse() ran on a copy


@pytest.mark.slow
def test_benchmark_script_runs(capsys):
    images = shared_data("coco8", "images")
    spec = importlib.util.spec_from_file_location("bench_models", ROOT / "benchmarks" / "models.py")
    bench = importlib.util.module_from_spec(spec)
    sys.modules["bench_models"] = bench
    spec.loader.exec_module(bench)
    modes = ",".join(m for m in MODES if inference.mode_available(m))
    assert bench.main(["--models", "yolov8n", "--imgsz", "64", "--warmup", "1", "--runs", "2",
                       "--modes", modes, "--images", str(images), "--topk", "10"]) == 0
    out = capsys.readouterr().out
    assert "| yolov8n | ultralytics default |" in out and "| yolov8n | yololab fp32-cl" in out
    parity = out.split("Same weights")[1].splitlines()
    row = next(line for line in parity if line.startswith("| yolov8n"))
    assert float(row.split("|")[2]) < 1e-3  # our fp32 == Ultralytics' with the same weights
    fp32_cl = next(line for line in out.splitlines() if line.startswith("| yolov8n | fp32-cl |"))
    assert "80/80" in fp32_cl  # fp32-cl keeps every top-10 detection on the 8 images
    if inference.openvino_available():
        ov = next(line for line in out.splitlines() if line.startswith("| yolov8n | yololab openvino |")
                  or line.startswith("| yolov8n | yololab openvino (auto) |"))
        assert float(ov.split("|")[7]) < 0.05  # max box diff in px at 64 px: float32 rounding only
