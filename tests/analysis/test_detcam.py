"""CAMs on the zoo's YOLO detectors (yololab.analysis.detcam) and the `yololab cam` command."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from pytorch_grad_cam import GradCAM

from yololab.analysis.detcam import anchor_of, candidates, detection_score, explain_detector
from yololab.detect.postprocess import postprocess
from yololab.detect.preprocess import to_input
from yololab.cli import main
from yololab.errors import YololabError
from yololab.models import build_model

COCO8 = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "coco8"
IMAGE = sorted((COCO8 / "images" / "val").glob("*.jpg"))[0]


def confident(model):
    """Random weights detect nothing; raise every class bias so that NMS has boxes to keep."""
    with torch.no_grad():
        for seq in model.head.cv3:
            seq[-1].bias.fill_(4.0)
    return model.eval()


@pytest.fixture(scope="module")
def yolov8n():
    torch.manual_seed(0)
    return confident(build_model("yolov8n"))


def test_detection_gradcam_equals_grad_cam_package(yolov8n):
    x, _, _ = to_input(cv2.imread(str(IMAGE)), 128)
    with torch.no_grad():
        out = yolov8n(x)
    boxes, scores = candidates(out, anchor_based=False)
    kept = postprocess(out, conf=0.25, iou=0.45, multi_label=False)[0]
    c = int(kept.classes[0])
    a = anchor_of(boxes, scores, kept.boxes[0], c)
    assert float(scores[a, c]) == float(kept.scores[0])
    from yololab.classify.cam import CAM

    ours = CAM(yolov8n, "neck.out3", "gradcam")(x, detection_score(a, c, anchor_based=False))
    ref = GradCAM(model=yolov8n, target_layers=[yolov8n.neck.out3])(
        input_tensor=x, targets=[lambda out: out[4 + c, a]])
    np.testing.assert_allclose(ours, ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ["yolov8n", "yolov5n"])
def test_explain_detector(name):
    torch.manual_seed(0)
    model = confident(build_model(name)) if name == "yolov8n" else build_model(name).eval()
    if name == "yolov5n":
        with torch.no_grad():
            for conv in model.head.m:
                conv.bias.view(3, -1)[:, 4:].fill_(4.0)  # objectness and classes
    img = cv2.imread(str(IMAGE))[..., ::-1]
    heat, dets, explained, note = explain_detector(model, img, "eigencam", imgsz=128)
    assert heat.shape == img.shape[:2] and 0 <= heat.min() and heat.max() <= 1 and explained is None
    assert dets and note == ""
    h, w = img.shape[:2]
    for d in dets:
        assert 0 <= d.box[0] <= d.box[2] <= w and 0 <= d.box[1] <= d.box[3] <= h
    assert [d.score for d in dets] == sorted((d.score for d in dets), reverse=True)
    heat2, _, explained, _ = explain_detector(model, img, "gradcam++", imgsz=128, det=1)
    assert explained == 1 and heat2.shape == heat.shape
    with pytest.raises(YololabError, match=r"--det 999: there are \d+ detections"):
        explain_detector(model, img, "gradcam", imgsz=128, det=999)


def test_cam_cli(tmp_path, capsys):
    out = tmp_path / "cams"
    assert main(["cam", "--model", "yolov8n", "--image", str(IMAGE), "--imgsz", "128", "--method", "eigencam",
                 "--out", str(out)]) == 0
    picture = cv2.imread(str(out / f"{IMAGE.stem}_yolov8n_eigencam.png"))
    assert picture.shape[:2] == cv2.imread(str(IMAGE)).shape[:2]
    assert main(["cam", "--model", "yolov8n", "--image", str(IMAGE), "--imgsz", "128", "--out", str(out)]) == 0
    assert "explaining the highest-scoring prediction instead" in capsys.readouterr().out
    assert main(["cam", "--model", "yolov8n", "--image", str(IMAGE), "--out", str(out)]) == 2  # exists
    assert main(["cam", "--model", "resnet18-cifar", "--image", str(IMAGE), "--layer", "layer5",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "exists; pass --overwrite" in err and "no layer 'layer5' in ResNet; valid names: conv1, bn1" in err
    assert main(["cam", "--model", "resnet18-cifar", "--image", str(IMAGE), "--method", "gradcam++",
                 "--class", "3", "--out", str(out)]) == 0
    assert "gradcam++ on layer4 for class '3'" in capsys.readouterr().out
    gray = tmp_path / "gray.png"
    Image.fromarray(np.zeros((40, 40), np.uint8), "L").save(gray)
    assert main(["cam", "--model", "resnet18-cifar", "--image", str(gray), "--out", str(out)]) == 2
    assert "gray.png: a 1-channel (L) image, but the model takes 3-channel images" in capsys.readouterr().err
