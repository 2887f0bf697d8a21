"""The ablation family (models/ablation.py): one YOLOv8n skeleton, one part swapped at a time."""

from __future__ import annotations

import itertools

import pytest
import torch

from yololab.detect.loss import YOLOv5Loss, YOLOv8Loss, build_loss
from yololab.errors import YololabError
from yololab.models import list_models
from yololab.models.ablation import BLOCKS, HEADS, POOLS, variant_name
from yololab.models.registry import build, resolve_name
from yololab.nn import Bottleneck, C3k


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def test_the_baseline_variant_is_yolov8n():
    """Same modules, names, shapes and, from the same seed, the same outputs as the zoo's yolov8n."""
    torch.manual_seed(0)
    ours = build("ablate-c2f-sppf-af", num_classes=3).eval()
    torch.manual_seed(0)
    zoo = build("yolov8n", num_classes=3).eval()
    assert n_params(ours) == n_params(zoo) == 3_011_433
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in zoo.state_dict().items()}
    x = torch.rand(1, 3, 64, 64)
    torch.testing.assert_close(ours(x), zoo(x), rtol=0, atol=0)


def test_the_anchor_based_head_is_yolov5n_head_and_gets_yolov5_loss():
    ab, v5 = build("ablate-c2f-sppf-ab", num_classes=3), build("yolov5n", num_classes=3)
    assert n_params(ab.head) == n_params(v5.head)  # the same neck widths (64, 128, 256) feed it
    torch.testing.assert_close(ab.head.anchors, v5.head.anchors)
    assert ab.meta.anchor_based and isinstance(build_loss(ab, imgsz=64), YOLOv5Loss)
    assert isinstance(build_loss(build("ablate-c2f-sppf-af", num_classes=3)), YOLOv8Loss)


def test_blocks_keep_the_width_and_pools_change_only_the_pooling():
    """Every block gives the same feature shapes (equal width); SPP and SPPF are the same function with the same
    weights; no pooling removes exactly SPPF's parameters."""
    x = torch.rand(1, 3, 64, 64)
    shapes = {}
    for block in BLOCKS:
        model = build(variant_name(block), num_classes=3).eval()
        shapes[block] = [tuple(f.shape) for f in model.neck(model.backbone(x))]
    assert shapes["c3"] == shapes["c2f"] == shapes["c3k2"]
    c3k2 = build("ablate-c3k2-sppf-af", num_classes=3)
    assert [type(c3k2.backbone.stage4.m[0]), type(c3k2.backbone.stage3.m[0])] == [C3k, Bottleneck]  # YOLO11's places
    sppf, spp = build("ablate-c3-sppf-af", num_classes=3).eval(), build("ablate-c3-spp-af", num_classes=3).eval()
    spp.load_state_dict(sppf.state_dict())
    torch.testing.assert_close(spp(x), sppf(x), rtol=0, atol=0)
    none = build("ablate-c3-none-af", num_classes=3)
    assert n_params(sppf) - n_params(none) == n_params(sppf.backbone.sppf)


def test_names_resolve_build_and_stay_out_of_the_zoo():
    names = [variant_name(b, p, h) for b, p, h in itertools.product(BLOCKS, POOLS, HEADS)]
    assert len(names) == 18 and not set(names) & set(list_models())
    assert resolve_name(" Ablate-C3k2-None-AB ") == "ablate-c3k2-none-ab"
    model = build("ablate-c3k2-none-ab", num_classes=2)
    assert {k: model.meta.extra[k] for k in ("block", "pool", "head")} == {"block": "c3k2", "pool": "none", "head": "ab"}
    with pytest.raises(YololabError, match="no ablation variant 'ablate-c4-sppf-af'"):
        variant_name("c4")
    with pytest.raises(YololabError, match="unknown model 'ablate-c4-sppf-af'"):
        build("ablate-c4-sppf-af")
