"""The ablation family: YOLOv8n with one part swapped at a time (``yololab ablate``).

Each variant is YOLOv8n's own backbone and neck (:mod:`yololab.models.yolov8`) in which three parts are chosen
by name, so that a comparison changes one thing only:

* ``block``: the CSP block of every backbone stage and neck node, at the same input / output width and the
  same number of inner blocks as YOLOv8n's C2f there: ``c2f`` (YOLOv8: every bottleneck output concatenated),
  ``c3`` (YOLOv5: two 1x1 branches, bottlenecks on one) or ``c3k2`` (YOLO11: a C2f with narrower bottlenecks,
  or C3k blocks where YOLO11 puts them: backbone stages 4 and 5 and the last neck node). The residual
  shortcuts stay YOLOv8's (in the backbone, not in the neck);
* ``pool``: the pooling stage after the stride-32 stage: ``sppf`` (three 5x5 max-pools in a row), ``spp``
  (parallel 5, 9 and 13 max-pools: the same values with the same weights as SPPF, so only the speed may
  differ) or ``none``;
* ``head``: ``af``, YOLOv8's anchor-free decoupled DFL head (trained with the TAL loss), or ``ab``, YOLOv5's
  anchor-based head with its COCO anchors (yolov5's loss, after auto-anchor). The neck's widths (64, 128,
  256) are YOLOv5n's too, so this head is exactly yolov5n's. :func:`yololab.detect.loss.build_loss` picks
  the loss from the head, so nothing else changes.

A variant is named ``ablate-<block>-<pool>-<head>``; ``ablate-c2f-sppf-af`` is YOLOv8n itself (the same
modules, and from the same seed the same weights). The names build through the registry (``yololab train
--model ablate-c3-sppf-ab``) but are not part of the zoo (``list_models``).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from yololab.errors import YololabError
from yololab.models.base import Detector, ModelMeta
from yololab.models.registry import ABLATION_NAME as NAME, ABLATION_PARTS
from yololab.models.yolov5 import ANCHORS
from yololab.models.yolov8 import REFERENCE_LAYERS, STRIDES, build_yolov8
from yololab.nn import C3, C2f, C3k2, SPP, AnchorHead

BLOCKS, POOLS, HEADS = ABLATION_PARTS.values()
BLOCK_TITLES = {"c3": "C3", "c2f": "C2f", "c3k2": "C3k2"}
POOL_TITLES = {"sppf": "SPPF", "spp": "SPP", "none": "no pooling"}
HEAD_TITLES = {"af": "anchor-free DFL head (YOLOv8)", "ab": "anchor-based head (YOLOv5, 3 anchors per level)"}
# YOLOv8n's C2f blocks, and where YOLO11 uses C3k inner blocks in its C3k2 (n scale)
STAGES = ("backbone.stage2", "backbone.stage3", "backbone.stage4", "backbone.stage5",
          "neck.td4", "neck.out3", "neck.out4", "neck.out5")
C3K_AT = {"backbone.stage4", "backbone.stage5", "neck.out5"}


def variant_name(block: str = "c2f", pool: str = "sppf", head: str = "af") -> str:
    """The registry name of a variant, e.g. ``variant_name("c3", "none", "ab") == "ablate-c3-none-ab"``."""
    name = f"ablate-{block}-{pool}-{head}"
    if not NAME.fullmatch(name):
        raise YololabError(f"no ablation variant {name!r}: block is one of {', '.join(BLOCKS)}; pool one of "
                           f"{', '.join(POOLS)}; head one of {', '.join(HEADS)}")
    return name


def csp_block(kind: str) -> Callable[[int, int, int, bool, bool], nn.Module]:
    """``make(c1, c2, n, shortcut, c3k) -> block`` of a kind; ``c3k`` marks YOLO11's C3k positions (C3k2 only)."""
    return {"c3": lambda c1, c2, n, shortcut, c3k: C3(c1, c2, n, shortcut=shortcut),
            "c2f": lambda c1, c2, n, shortcut, c3k: C2f(c1, c2, n, shortcut=shortcut),
            "c3k2": lambda c1, c2, n, shortcut, c3k: C3k2(c1, c2, n, c3k=c3k, shortcut=shortcut)}[kind]


def build_ablation(name: str, num_classes: int = 80) -> Detector:
    """The variant ``name`` (``ablate-<block>-<pool>-<head>``, module docstring): YOLOv8n with its parts swapped."""
    m = NAME.fullmatch(str(name))
    if m is None:
        raise YololabError(f"no ablation variant {name!r}: expected ablate-<block>-<pool>-<head> with block one of "
                           f"{', '.join(BLOCKS)}, pool one of {', '.join(POOLS)}, head one of {', '.join(HEADS)}")
    block, pool, head_kind = m.groups()
    net = build_yolov8("n", num_classes)
    if block != "c2f":
        make = csp_block(block)
        for path in STAGES:
            part, attr = path.split(".")
            old: C2f = getattr(getattr(net, part), attr)
            c1, c2, n = old.cv1.conv.in_channels, old.cv2.conv.out_channels, len(old.m)
            setattr(getattr(net, part), attr, make(c1, c2, n, old.m[0].add, path in C3K_AT))
    if pool != "sppf":
        c = net.backbone.sppf.cv2.conv.out_channels
        net.backbone.sppf = SPP(c, c, (5, 9, 13)) if pool == "spp" else nn.Identity()
    head = net.head
    if head_kind == "ab":
        head = AnchorHead(num_classes, ANCHORS, net.neck.out_channels, STRIDES, decode="yolov5")
    meta = ModelMeta(
        name=name, family="ablation", scale="n", num_classes=num_classes, strides=list(STRIDES),
        anchor_based=head_kind == "ab",
        backbone=f"CSPDarknet ({BLOCK_TITLES[block]}), {POOL_TITLES[pool]}",
        neck=f"PAN-FPN ({BLOCK_TITLES[block]})",
        head=HEAD_TITLES[head_kind],
        reference="YOLOv8n (ultralytics 8.4.190 yolov8.yaml) with the parts above swapped",
        extra={**net.meta.extra, "block": block, "pool": pool, "head": head_kind},
    )
    return Detector(net.backbone, net.neck, head, meta, REFERENCE_LAYERS)
