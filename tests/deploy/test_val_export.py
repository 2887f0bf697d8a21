"""`yololab val` takes an exported model directly: an fp32 ONNX / OpenVINO export of the Ultralytics-trained yolov8n
(tests/fixtures) scores the mAP of the .pt itself, and an export of another class count is refused naming it."""

from __future__ import annotations

import json

import pytest

from helpers import REPO, shared_data
from yololab import cli
from yololab.data.synthetic import synth_shapes
from yololab.deploy.export import export_detector
from yololab.deploy.load import build_detector
from yololab.detect.val import load_for_val, val_dataset, validate

FIXTURE = REPO / "tests" / "fixtures" / "yolov8n-shapes.pt"
IMGSZ = 128


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return synth_shapes(tmp_path_factory.mktemp("shapes"), train=1, val=8, imgsz=IMGSZ, seed=5, workers=0,
                        progress=False)


def _val(weights, data, run, *extra) -> dict:
    argv = ["val", "--weights", str(weights), "--data", str(data), "--imgsz", str(IMGSZ), "--workers", "0",
            "--quiet", "--no-plots", "--project", str(run.parent), "--name", run.name, *extra]
    assert cli.main(argv) == 0
    return json.loads((run / "metrics.json").read_text())["metrics"]


def test_val_scores_exports_as_the_pt(shapes, tmp_path, capsys):
    net, names, _ = build_detector(FIXTURE, None, None)
    ov_dynamic = export_detector(net, tmp_path / "ov" / "m.xml", fmt="openvino", imgsz=(IMGSZ, IMGSZ), dynamic=True,
                                 names=names)
    onnx_static = export_detector(net, tmp_path / "m.onnx", imgsz=(IMGSZ, IMGSZ), names=names)
    pt = _val(FIXTURE, shapes, tmp_path / "runs" / "pt")
    assert pt["mAP50-95"] > 0.05  # a trained model: the comparison says something
    # a dynamic export is scored in the same rect batches as the .pt (given by its folder here)
    ov = _val(ov_dynamic.parent, shapes, tmp_path / "runs" / "ov")
    for key in ("mAP50-95", "mAP50", "precision", "recall"):
        assert abs(ov[key] - pt[key]) < 1e-4, (key, ov[key], pt[key])
    # a static export at its own square size: the .pt letterboxed to the same square, scored by the API
    model, _, _ = load_for_val(FIXTURE, shapes, imgsz=IMGSZ, verbose=False)
    square = validate(model, val_dataset(shapes, imgsz=IMGSZ, verbose=False, rect=False)).metrics
    onnx = _val(onnx_static, shapes, tmp_path / "runs" / "onnx", "--model", "yolov8n")
    for key in ("mAP50-95", "mAP50"):
        assert abs(onnx[key] - square[key]) < 1e-4, (key, onnx[key], square[key])
    capsys.readouterr()

    # bad input, one error line naming the file: another class count, another model, --device with an export
    coco8 = shared_data("coco8", "coco8.yaml")
    for argv, expected in (
        (["--data", str(coco8)], f"{onnx_static}: an export of yolov8n with 7 classes, where 80 are expected"),
        (["--data", str(shapes), "--model", "yolo11n"], f"{onnx_static}: an export of yolov8n, not of yolo11n"),
        (["--data", str(shapes), "--device", "cuda"], f"--device cuda: an exported model ({onnx_static}) runs"),
    ):
        rc = cli.main(["val", "--weights", str(onnx_static), *argv, "--project", str(tmp_path / "bad")])
        err = capsys.readouterr().err.splitlines()
        assert rc == 2 and len(err) == 1 and expected in err[0], err
    assert not (tmp_path / "bad").exists()
