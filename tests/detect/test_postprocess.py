"""Decode + NMS follow `ultralytics val` (and yolov5 val.py for anchor-based outputs); boxes map back to the image."""

import pytest
import torch

from yololab.detect.postprocess import Detections, postprocess, to_image
from yololab.models import build_model


def test_anchor_free_follows_ultralytics_val_rules():
    nc = 3
    out = torch.zeros(1, 4 + nc, 4)
    out[0, :4] = torch.tensor([[50.0, 50.0, 80.0, 50.0],  # per anchor: cx, cy, w, h
                               [50.5, 50.0, 80.0, 50.0],
                               [20.0, 20.0, 20.0, 20.0],
                               [20.0, 20.0, 20.0, 20.0]]).T
    out[0, 4:, 0] = torch.tensor([0.8, 0.0005, 0.6])  # one anchor, two classes above conf: two detections
    out[0, 4:, 1] = torch.tensor([0.7, 0.0, 0.0])     # overlaps anchor 0 (same class, same box): suppressed
    out[0, 4:, 2] = torch.tensor([0.0, 0.3, 0.0])
    out[0, 4:, 3] = torch.tensor([0.0, 0.0009, 0.0])  # below conf 0.001: dropped
    det = postprocess(out)[0]
    assert det.classes.tolist() == [0, 2, 1] and det.scores.tolist() == pytest.approx([0.8, 0.6, 0.3])
    assert det.boxes[2].tolist() == [10.0, 10.0, 30.0, 30.0]
    # box 2 on a letterboxed input (gain 2, pad 10 px left) -> image pixels, clipped to the image
    assert to_image(det, (2.0, 2.0), (10, 0)).boxes[2].tolist() == [0.0, 5.0, 10.0, 15.0]
    assert to_image(det, (2.0, 2.0), (10, 0), shape=(12, 100)).boxes[2].tolist() == [0.0, 5.0, 10.0, 12.0]
    # one label per anchor, a cap on detections
    single = postprocess(out, multi_label=False)[0]
    assert single.classes.tolist() == [0, 1] and len(postprocess(out, max_det=1)[0].boxes) == 1


def test_anchor_based_scores_are_objectness_times_class():
    out = torch.zeros(2, 3, 5 + 2)
    out[0, :, :4] = torch.tensor([[50.0, 50, 20, 20], [150, 50, 20, 20], [250, 50, 20, 20]])
    out[0, 0, 4:] = torch.tensor([0.5, 0.9, 0.1])     # 0.45 for class 0, 0.05 for class 1
    out[0, 1, 4:] = torch.tensor([0.0009, 1.0, 1.0])  # objectness below conf: dropped whatever the classes say
    out[0, 2, 4:] = torch.tensor([0.8, 0.0, 0.5])
    first, second = postprocess(out, anchor_based=True)
    assert first.classes.tolist() == [0, 1, 1] and first.scores.tolist() == pytest.approx([0.45, 0.4, 0.05])
    assert first.boxes[0].tolist() == [40.0, 40.0, 60.0, 60.0]
    assert len(second.boxes) == 0 and isinstance(second, Detections)


@pytest.mark.parametrize("name", ["yolov8n", "yolov5n"])
def test_real_model_outputs(name):
    """Both output layouts of the zoo go through: at most max_det detections, inside the input, sorted."""
    torch.manual_seed(0)
    model = build_model(name, num_classes=3).eval()
    with torch.no_grad():
        pred = model(torch.rand(2, 3, 64, 64))
    dets = postprocess(pred, anchor_based=model.meta.anchor_based, conf=0.0, max_det=50)
    assert len(dets) == 2
    for d in dets:
        assert 0 < len(d.boxes) <= 50 and bool((d.scores[:-1] >= d.scores[1:]).all())
        assert d.classes.dtype == torch.int64 and int(d.classes.max()) < 3
    with pytest.raises(ValueError, match="conf"):
        postprocess(pred, conf=2.0)
