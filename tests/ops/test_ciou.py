"""``ops.boxes.ciou`` against the three CIoUs it stands in for: Ultralytics' ``bbox_iou(CIoU=True)`` bit for bit
(values and gradients: the task-aligned assigner ranks by it), yolov5's and torchvision's within float
rounding (they place eps differently)."""

from __future__ import annotations

import torch
from torchvision.ops import complete_box_iou_loss
from ultralytics.utils.metrics import bbox_iou as ultralytics_bbox_iou
from yolov5.utils.metrics import bbox_iou as yolov5_bbox_iou

from yololab.ops.boxes import ciou, cxcywh_to_xyxy, xyxy_to_cxcywh


def random_boxes(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairs from far apart to nested, sizes 0.02 to 20 (grid units), xyxy."""
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(2, n, 2, generator=g) * 10
    wh = torch.exp(torch.rand(2, n, 2, generator=g) * 6.9 - 3.9)  # 0.02 .. 20
    return cxcywh_to_xyxy(torch.cat((xy[0], wh[0]), 1)), cxcywh_to_xyxy(torch.cat((xy[1], wh[1]), 1))


def test_ciou_is_ultralytics_bit_for_bit():
    a, b = random_boxes(2000, 0)
    a1, a2 = a.clone().requires_grad_(), a.clone().requires_grad_()
    ours = ciou(a1, b)
    ref = ultralytics_bbox_iou(a2, b, xywh=False, CIoU=True).squeeze(-1)
    assert torch.equal(ours, ref)
    ours.sum().backward()
    ref.sum().backward()
    assert torch.equal(a1.grad, a2.grad)


def test_ciou_matches_yolov5_and_torchvision_within_rounding():
    a, b = random_boxes(2000, 1)
    ours = ciou(a, b).double()
    v5 = yolov5_bbox_iou(xyxy_to_cxcywh(a), xyxy_to_cxcywh(b), CIoU=True).squeeze(-1).double()  # its xywh path
    tv = 1 - complete_box_iou_loss(a, b).double()
    for ref in (v5, tv):  # CIoU lies in [-1, 1]; measured: 7e-7 and 8e-7
        assert (ours - ref).abs().max() < 5e-6
