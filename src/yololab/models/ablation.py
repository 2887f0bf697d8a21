"""The ablation family: YOLOv8n's skeleton with one part swapped at a time (``yololab ablate``).

One backbone + neck, laid out and sized exactly as YOLOv8n (:mod:`yololab.models.yolov8`), in which three
parts are chosen by name, so that a comparison changes one thing only:

* ``block``: the CSP block of every stage and neck node, at the same input / output width and the same
  number of inner blocks: ``c3`` (YOLOv5: two 1x1 branches, bottlenecks on one), ``c2f`` (YOLOv8: every
  bottleneck output concatenated) or ``c3k2`` (YOLO11: a C2f whose inner blocks are narrower bottlenecks, or
  C3k blocks where YOLO11 puts them: backbone stages 4 and 5 and the last neck node). Residual shortcuts
  follow YOLOv8 for every block (in the backbone, not in the neck), so only the block differs;
* ``pool``: the pooling stage after the stride-32 stage: ``sppf`` (three 5x5 max-pools in a row), ``spp``
  (parallel 5, 9, 13 max-pools: the same values and weights as SPPF, so only the speed may differ) or
  ``none``;
* ``head``: ``af``, YOLOv8's anchor-free decoupled DFL head (trained with the TAL loss), or ``ab``, YOLOv5's
  anchor-based head with its COCO anchors (trained with yolov5's loss, after auto-anchor).
  :func:`yololab.detect.loss.build_loss` picks the loss from the head, so nothing else changes.

A variant is named ``ablate-<block>-<pool>-<head>``; ``ablate-c2f-sppf-af`` is YOLOv8n itself (same modules,
state-dict names and parameter count). The names build through the registry (``yololab train --model
ablate-c3-sppf-ab``) but are not part of the zoo (``list_models``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from yololab.errors import YololabError
from yololab.models.registry import ABLATION_NAME as NAME, ABLATION_PARTS
from yololab.models.base import Detector, ModelMeta, scale_depth, scale_width
from yololab.models.yolov5 import ANCHORS
from yololab.models.yolov8 import REFERENCE_LAYERS, SCALES, STRIDES
from yololab.nn import C3, C2f, C3k2, SPP, SPPF, AnchorHead, Concat, Conv, DetectHead, Upsample

BLOCKS, POOLS, HEADS = ABLATION_PARTS.values()
BLOCK_TITLES = {"c3": "C3", "c2f": "C2f", "c3k2": "C3k2"}
POOL_TITLES = {"sppf": "SPPF", "spp": "SPP", "none": "no pooling"}
HEAD_TITLES = {"af": "anchor-free DFL head", "ab": "anchor-based head (YOLOv5)"}


def variant_name(block: str = "c2f", pool: str = "sppf", head: str = "af") -> str:
    """The registry name of a variant, e.g. ``variant_name("c3", "none", "ab") == "ablate-c3-none-ab"``."""
    name = f"ablate-{block}-{pool}-{head}"
    if not NAME.fullmatch(name):
        raise YololabError(f"no ablation variant {name!r}: block is one of {', '.join(BLOCKS)}; pool one of "
                           f"{', '.join(POOLS)}; head one of {', '.join(HEADS)}")
    return name


def csp_block(kind: str) -> Callable[..., nn.Module]:
    """``make(c1, c2, n, shortcut, deep) -> module`` for a block kind; ``deep`` marks YOLO11's C3k positions."""
    if kind == "c3":
        return lambda c1, c2, n, shortcut, deep: C3(c1, c2, n, shortcut=shortcut)
    if kind == "c2f":
        return lambda c1, c2, n, shortcut, deep: C2f(c1, c2, n, shortcut=shortcut)
    return lambda c1, c2, n, shortcut, deep: C3k2(c1, c2, n, c3k=deep, shortcut=shortcut)


class Backbone(nn.Module):
    """YOLOv8's backbone (five stride-2 convs, a CSP stage after each but the first) with the chosen block and
    pooling."""

    def __init__(self, block: str, pool: str, depth: float, width: float, max_channels: int):
        super().__init__()

        def ch(c: int) -> int:
            return scale_width(c, width, max_channels)

        def n(k: int) -> int:
            return scale_depth(k, depth)

        make = csp_block(block)
        self.stem = Conv(3, ch(64), 3, 2)                                        # 0  P1/2
        self.down2 = Conv(ch(64), ch(128), 3, 2)                                 # 1  P2/4
        self.stage2 = make(ch(128), ch(128), n(3), True, False)                  # 2
        self.down3 = Conv(ch(128), ch(256), 3, 2)                                # 3  P3/8
        self.stage3 = make(ch(256), ch(256), n(6), True, False)                  # 4
        self.down4 = Conv(ch(256), ch(512), 3, 2)                                # 5  P4/16
        self.stage4 = make(ch(512), ch(512), n(6), True, True)                   # 6
        self.down5 = Conv(ch(512), ch(1024), 3, 2)                               # 7  P5/32
        self.stage5 = make(ch(1024), ch(1024), n(3), True, True)                 # 8
        self.sppf = {"sppf": lambda c: SPPF(c, c, 5), "spp": lambda c: SPP(c, c, (5, 9, 13)),
                     "none": lambda c: nn.Identity()}[pool](ch(1024))            # 9
        self.out_channels = [ch(256), ch(512), ch(1024)]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stage2(self.down2(self.stem(x)))
        p3 = self.stage3(self.down3(x))
        p4 = self.stage4(self.down4(p3))
        p5 = self.sppf(self.stage5(self.down5(p4)))
        return [p3, p4, p5]


class Neck(nn.Module):
    """YOLOv8's PAN-FPN (top-down, then bottom-up) with the chosen block."""

    def __init__(self, block: str, in_channels: list[int], depth: float, width: float, max_channels: int):
        super().__init__()
        c3, c4, c5 = in_channels

        def ch(c: int) -> int:
            return scale_width(c, width, max_channels)

        n = scale_depth(3, depth)
        make = csp_block(block)
        self.up1 = Upsample()                                                    # 10
        self.cat1 = Concat()                                                     # 11
        self.td4 = make(c5 + c4, ch(512), n, False, False)                       # 12
        self.up2 = Upsample()                                                    # 13
        self.cat2 = Concat()                                                     # 14
        self.out3 = make(ch(512) + c3, ch(256), n, False, False)                 # 15 P3/8 out
        self.down3 = Conv(ch(256), ch(256), 3, 2)                                # 16
        self.cat3 = Concat()                                                     # 17
        self.out4 = make(ch(256) + ch(512), ch(512), n, False, False)            # 18 P4/16 out
        self.down4 = Conv(ch(512), ch(512), 3, 2)                                # 19
        self.cat4 = Concat()                                                     # 20
        self.out5 = make(ch(512) + c5, ch(1024), n, False, True)                 # 21 P5/32 out
        self.out_channels = [ch(256), ch(512), ch(1024)]

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        p3, p4, p5 = feats
        t4 = self.td4(self.cat1([self.up1(p5), p4]))
        o3 = self.out3(self.cat2([self.up2(t4), p3]))
        o4 = self.out4(self.cat3([self.down3(o3), t4]))
        o5 = self.out5(self.cat4([self.down4(o4), p5]))
        return [o3, o4, o5]


def build_ablation(name: str, num_classes: int = 80) -> Detector:
    """The variant ``name`` (``ablate-<block>-<pool>-<head>``, module docstring) at YOLOv8n's size."""
    m = NAME.fullmatch(str(name))
    if m is None:
        raise YololabError(f"no ablation variant {name!r}: expected ablate-<block>-<pool>-<head> with block one of "
                           f"{', '.join(BLOCKS)}, pool one of {', '.join(POOLS)}, head one of {', '.join(HEADS)}")
    block, pool, head_kind = m.groups()
    depth, width, max_channels = SCALES["n"]
    backbone = Backbone(block, pool, depth, width, max_channels)
    neck = Neck(block, backbone.out_channels, depth, width, max_channels)
    if head_kind == "af":
        head = DetectHead(num_classes, neck.out_channels, STRIDES, reg_max=16)
    else:
        head = AnchorHead(num_classes, ANCHORS, neck.out_channels, STRIDES, decode="yolov5")
    meta = ModelMeta(
        name=name, family="ablation", scale="n", num_classes=num_classes, strides=list(STRIDES),
        anchor_based=head_kind == "ab",
        backbone=f"CSPDarknet ({BLOCK_TITLES[block]}), {POOL_TITLES[pool]}",
        neck=f"PAN-FPN ({BLOCK_TITLES[block]})",
        head=HEAD_TITLES[head_kind],
        reference="yololab ablation skeleton (YOLOv8n layout and widths)",
        extra={"block": block, "pool": pool, "head": head_kind, "depth_multiple": depth, "width_multiple": width,
               "max_channels": max_channels},
    )
    return Detector(backbone, neck, head, meta, REFERENCE_LAYERS)
