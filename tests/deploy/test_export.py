"""yololab export: ONNX Runtime and OpenVINO fp32 outputs equal PyTorch fp32 for every family; exported files
carry their metadata, refuse another model or class count, and predict runs them directly.

Random networks are BN-calibrated first (as in test_runtime.py): with the initial running statistics the outputs
are nearly constant and any export would "match".
"""

from __future__ import annotations

import pytest
import torch
from torch.optim.swa_utils import update_bn

from helpers import REPO, shared_data
from yololab import cli
from yololab.deploy.export import export_detector
from yololab.deploy.load import load_detector
from yololab.deploy.predict import Predictor
from yololab.errors import WeightsError
from yololab.models import build_model

IMGSZ = 64
RTOL = 1e-4  # max |diff| relative to the output's max |value|
FAMILIES = ("yolov3-tiny", "yolov5n", "yolov8n", "yolo11n")


def _calibrated(name: str, nc: int = 3):
    torch.manual_seed(0)
    model = build_model(name, num_classes=nc)
    update_bn([torch.rand(2, 3, IMGSZ, IMGSZ) for _ in range(2)], model)
    return model.eval()


def _rel_max(y: torch.Tensor, ref: torch.Tensor) -> float:
    return float((y - ref).abs().max() / ref.abs().max())


@pytest.mark.slow
@pytest.mark.parametrize("name", FAMILIES)
def test_onnxruntime_and_openvino_equal_pytorch(name, tmp_path):
    model = _calibrated(name)
    x = torch.rand(1, 3, IMGSZ, IMGSZ, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = model(x)
        ref = ref[0] if isinstance(ref, tuple) else ref
    for fmt, out in (("onnx", tmp_path / "m.onnx"), ("openvino", tmp_path / "ov" / "m.xml")):
        path = export_detector(model, out, fmt=fmt, imgsz=(IMGSZ, IMGSZ), names=["a", "b", "c"])
        det = load_detector(path)
        assert det.meta.name == name and det.meta.names == ["a", "b", "c"] and det.meta.imgsz == (IMGSZ, IMGSZ)
        y = det(x)
        assert y.shape == ref.shape and _rel_max(y, ref) < RTOL, (fmt, _rel_max(y, ref))


def test_dynamic_onnx_takes_other_batches_and_sizes(tmp_path):
    model = _calibrated("yolov8n")
    path = export_detector(model, tmp_path / "d.onnx", imgsz=(IMGSZ, IMGSZ), dynamic=True)
    x = torch.rand(2, 3, 96, 128, generator=torch.Generator().manual_seed(2))
    det = load_detector(path)
    assert det.meta.imgsz is None
    with torch.no_grad():
        assert _rel_max(det(x), model(x)) < RTOL


def test_exported_model_of_another_model_or_class_count_is_refused(tmp_path):
    path = export_detector(_calibrated("yolov8n"), tmp_path / "m.onnx", imgsz=(IMGSZ, IMGSZ))
    with pytest.raises(WeightsError, match="an export of yolov8n, not of yolo11n"):
        load_detector(path, model="yolo11n")
    with pytest.raises(WeightsError, match="with 3 classes, where 80 are expected"):
        load_detector(path, num_classes=80)
    foreign = tmp_path / "foreign.onnx"
    torch.onnx.export(torch.nn.Conv2d(3, 3, 1), (torch.zeros(1, 3, 8, 8),), str(foreign), dynamo=False)
    with pytest.raises(WeightsError, match="without yololab metadata"):
        load_detector(foreign)


def test_predict_runs_an_export_from_the_cli(tmp_path, capsys):
    """`yololab export` then `yololab predict --weights model.onnx`: the same detections as PyTorch fp32."""
    model = _calibrated("yolov8n")
    weights = tmp_path / "w.pt"
    from yololab.checkpoint.native import save_checkpoint

    save_checkpoint(model, weights)
    onnx = tmp_path / "w.onnx"
    assert cli.main(["export", "--weights", str(weights), "--imgsz", str(IMGSZ), "--out", str(onnx)]) == 0
    photos = shared_data("coco8", "images", "val")
    opts = dict(imgsz=IMGSZ, conf=0.0, max_det=10, rect=False)
    ours = Predictor(onnx, **opts)(photos)
    torch_fp32 = Predictor(weights, mode="fp32", **opts)(photos)
    for a, b in zip(ours, torch_fp32):
        assert torch.allclose(a.scores, b.scores, atol=1e-5) and torch.allclose(a.boxes, b.boxes, atol=1e-2)
    capsys.readouterr()
    argv = ["predict", "--weights", str(onnx), "--source", str(photos), "--project", str(tmp_path), "--name", "p",
            "--imgsz", str(IMGSZ), "--quiet"]
    assert cli.main(argv) == 0 and len(list((tmp_path / "p" / "labels").glob("*.json"))) == 4


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
def test_int8_keeps_the_outputs_close(fmt, tmp_path):
    """INT8 of a trained yolov8n (the Ultralytics-trained fixture of test_predict_parity.py), calibrated on 8
    shapes images, stays near fp32 on 2 others: box coordinates within 1 px at the median (the box decoding
    stays float), every class score within 0.05."""
    from yololab.data.synthetic import synth_shapes
    from yololab.deploy.load import build_detector
    from yololab.deploy.quantize import calibration_inputs

    net, names, _ = build_detector(REPO / "tests" / "fixtures" / "yolov8n-shapes.pt", None, None)
    data = synth_shapes(tmp_path / "shapes", train=8, val=2, imgsz=128, seed=5, progress=False)
    calib = calibration_inputs(data, (128, 128), n=8)
    out = tmp_path / ("q.onnx" if fmt == "onnx" else "q/q.xml")
    det = load_detector(export_detector(net.eval(), out, fmt=fmt, imgsz=(128, 128), int8=True, calibration=calib,
                                        names=names))
    assert det.meta.precision == "int8" and det.meta.names == names
    for x in calibration_inputs(data, (128, 128), n=2, split="val"):
        with torch.no_grad():
            ref = net(x)
        y = det(x)
        assert (y[:, :4] - ref[:, :4]).abs().median() < 1.0 and (y[:, 4:] - ref[:, 4:]).abs().max() < 0.05
