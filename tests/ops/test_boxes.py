"""yololab.ops: box conversions (NumPy and torch give the same numbers, torch matches torchvision), IoU, NMS."""

import numpy as np
import pytest
import torch
import torchvision

from yololab.ops.boxes import (box_iou, clip_boxes, cxcywh_to_xyxy, xywhn_to_xyxy, xyxy_to_cxcywh,
                               xyxy_to_xywhn)
from yololab.ops.nms import nms


def _boxes(n=20, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 200, (n, 2))
    return np.concatenate([xy, xy + rng.uniform(1, 100, (n, 2))], 1)


def test_numpy_and_torch_agree_with_torchvision():
    xyxy = _boxes()
    t = torch.from_numpy(xyxy)
    cxcywh = xyxy_to_cxcywh(xyxy)
    np.testing.assert_allclose(cxcywh, torchvision.ops.box_convert(t, "xyxy", "cxcywh").numpy(), rtol=1e-12)
    np.testing.assert_allclose(cxcywh_to_xyxy(cxcywh), xyxy, rtol=1e-12)
    assert torch.equal(cxcywh_to_xyxy(xyxy_to_cxcywh(t)), torchvision.ops.box_convert(
        torchvision.ops.box_convert(t, "xyxy", "cxcywh"), "cxcywh", "xyxy"))
    # normalized <-> pixels, with a pad, both backends
    n = xyxy_to_xywhn(xyxy, 320, 240)
    np.testing.assert_allclose(n[:, 0], (xyxy[:, 0] + xyxy[:, 2]) / 2 / 320)
    np.testing.assert_allclose(n[:, 3], (xyxy[:, 3] - xyxy[:, 1]) / 240)
    np.testing.assert_allclose(xywhn_to_xyxy(n, 320, 240, 5, 7), xyxy + [5, 7, 5, 7], rtol=1e-12)
    np.testing.assert_allclose(xyxy_to_xywhn(t, 320, 240).numpy(), n, rtol=1e-12)
    np.testing.assert_allclose(xywhn_to_xyxy(torch.from_numpy(n), 320, 240, 5, 7).numpy(), xyxy + [5, 7, 5, 7],
                               rtol=1e-12)


def test_dtypes_and_per_box_sizes():
    b32 = np.array([[10, 20, 50, 80]], np.float32)
    assert xyxy_to_xywhn(b32, 100, 200).dtype == np.float32
    np.testing.assert_allclose(xywhn_to_xyxy(xyxy_to_xywhn(b32, 100, 200), 100, 200), b32, atol=1e-4)
    assert cxcywh_to_xyxy(np.array([[4, 4, 2, 2]])).dtype == np.float32  # integers become float32
    # a mosaic scales each box by its own tile's size
    out = xywhn_to_xyxy(np.array([[0.5, 0.5, 0.5, 0.5]] * 2, np.float32), np.array([100, 200]), np.array([10, 20]))
    np.testing.assert_allclose(out, [[25, 2.5, 75, 7.5], [50, 5, 150, 15]])
    assert xyxy_to_cxcywh(np.zeros((0, 4))).shape == (0, 4)


def test_clip_boxes():
    b = np.array([[-5.0, 3, 120, 90], [10, -1, 20, 5]])
    np.testing.assert_array_equal(clip_boxes(b, 100, 80), [[0, 3, 100, 80], [10, 0, 20, 5]])
    assert torch.equal(clip_boxes(torch.from_numpy(b), 100, 80), torch.from_numpy(clip_boxes(b, 100, 80)))


def test_box_iou_is_torchvisions():
    a, b = _boxes(7, 1), _boxes(5, 2)
    expected = torchvision.ops.box_iou(torch.from_numpy(a), torch.from_numpy(b))
    assert torch.equal(box_iou(torch.from_numpy(a), torch.from_numpy(b)), expected)
    np.testing.assert_allclose(box_iou(a, b), expected.numpy())
    assert box_iou(np.array([[0, 0, 10, 10.0]]), np.array([[5, 0, 15, 10.0]]))[0, 0] == pytest.approx(1 / 3)


def test_nms_per_class_agnostic_and_caps():
    boxes = torch.tensor([[0, 0, 10, 10], [1, 0, 11, 10], [0, 0, 10, 10], [50, 50, 60, 60.0]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    classes = torch.tensor([0, 0, 1, 0])
    assert nms(boxes, scores, classes, iou=0.5).tolist() == [0, 2, 3]  # class 1 is not suppressed by class 0
    assert nms(boxes, scores, None, iou=0.5).tolist() == [0, 3]  # agnostic: it is
    assert nms(boxes, scores, classes, iou=0.5, max_det=2).tolist() == [0, 2]
    # only the best max_candidates enter NMS; indices still refer to the input
    assert nms(boxes, scores, classes, iou=0.5, max_candidates=2).tolist() == [0]
    assert nms(boxes[:0], scores[:0], classes[:0]).tolist() == []
    with pytest.raises(ValueError, match="iou"):
        nms(boxes, scores, classes, iou=1.5)
