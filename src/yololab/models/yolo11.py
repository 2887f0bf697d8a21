"""YOLO11 (Ultralytics, 2024): YOLOv8's layout with C3k2 blocks, a C2PSA attention stage and a lighter head.

Identical (parameters, outputs for the same weights) to ``ultralytics`` 8.4.190 ``yolo11.yaml``.
What changed from YOLOv8:

* C3k2 replaces C2f: a C2f whose inner blocks are either plain bottlenecks or, with ``c3k=True``,
  small C3k blocks (two 3x3 bottlenecks in a CSP). The YAML asks for c3k in the deep stages
  (backbone stages 4 and 5, last neck block); the m/l/x scales use c3k everywhere.
* The first two C3k2 stages use a narrow expansion (e=0.25).
* C2PSA after SPPF: self-attention over the stride-32 map (position-sensitive attention).
* The class branch of the head uses depthwise + pointwise convs (cheaper than two 3x3 convs).

Shapes in comments are for a 640x640 input; w = channel width of the scale (see SCALES).
"""

from __future__ import annotations

import torch
from torch import nn

from yololab.errors import YololabError
from yololab.models.base import Detector, ModelMeta, scale_depth, scale_width
from yololab.nn import C2PSA, C3k2, Concat, Conv, DetectHead, SPPF, Upsample

# scale: (depth multiple, width multiple, max channels), from ultralytics yolo11.yaml
SCALES = {
    "n": (0.50, 0.25, 1024),
    "s": (0.50, 0.50, 1024),
    "m": (0.50, 1.00, 512),
    "l": (1.00, 1.00, 512),
    "x": (1.00, 1.50, 512),
}
STRIDES = [8, 16, 32]
C3K_EVERYWHERE = {"m", "l", "x"}  # Ultralytics' parser forces c3k=True in every C3k2 for these scales


class Backbone(nn.Module):
    """Five stride-2 convs with C3k2 stages between them, then SPPF and the C2PSA attention stage."""

    def __init__(self, depth: float, width: float, max_channels: int, c3k_all: bool):
        super().__init__()

        def ch(c: int) -> int:
            return scale_width(c, width, max_channels)

        n = scale_depth(2, depth)
        self.stem = Conv(3, ch(64), 3, 2)                                            # 0  P1/2  (B, 64w, 320, 320)
        self.down2 = Conv(ch(64), ch(128), 3, 2)                                     # 1  P2/4  (B, 128w, 160, 160)
        self.stage2 = C3k2(ch(128), ch(256), n, c3k=c3k_all, e=0.25)                 # 2        (B, 256w, 160, 160)
        self.down3 = Conv(ch(256), ch(256), 3, 2)                                    # 3  P3/8  (B, 256w, 80, 80)
        self.stage3 = C3k2(ch(256), ch(512), n, c3k=c3k_all, e=0.25)                 # 4        (B, 512w, 80, 80)
        self.down4 = Conv(ch(512), ch(512), 3, 2)                                    # 5  P4/16 (B, 512w, 40, 40)
        self.stage4 = C3k2(ch(512), ch(512), n, c3k=True)                            # 6
        self.down5 = Conv(ch(512), ch(1024), 3, 2)                                   # 7  P5/32 (B, 1024w, 20, 20)
        self.stage5 = C3k2(ch(1024), ch(1024), n, c3k=True)                          # 8
        self.sppf = SPPF(ch(1024), ch(1024), 5)                                      # 9
        self.psa = C2PSA(ch(1024), ch(1024), n)                                      # 10
        self.out_channels = [ch(512), ch(512), ch(1024)]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stage2(self.down2(self.stem(x)))
        p3 = self.stage3(self.down3(x))
        p4 = self.stage4(self.down4(p3))
        p5 = self.psa(self.sppf(self.stage5(self.down5(p4))))
        return [p3, p4, p5]


class Neck(nn.Module):
    """PAN-FPN as in YOLOv8, with C3k2 blocks (c3k only in the last one, except for m/l/x)."""

    def __init__(self, in_channels: list[int], depth: float, width: float, max_channels: int, c3k_all: bool):
        super().__init__()
        c3, c4, c5 = in_channels

        def ch(c: int) -> int:
            return scale_width(c, width, max_channels)

        n = scale_depth(2, depth)
        # top-down
        self.up1 = Upsample()                                                        # 11 P5 -> /16
        self.cat1 = Concat()                                                         # 12 cat backbone P4
        self.td4 = C3k2(c5 + c4, ch(512), n, c3k=c3k_all)                            # 13 (B, 512w, 40, 40)
        self.up2 = Upsample()                                                        # 14 -> /8
        self.cat2 = Concat()                                                         # 15 cat backbone P3
        self.out3 = C3k2(ch(512) + c3, ch(256), n, c3k=c3k_all)                      # 16 P3/8 out (B, 256w, 80, 80)
        # bottom-up
        self.down3 = Conv(ch(256), ch(256), 3, 2)                                    # 17
        self.cat3 = Concat()                                                         # 18 cat td4
        self.out4 = C3k2(ch(256) + ch(512), ch(512), n, c3k=c3k_all)                 # 19 P4/16 out (B, 512w, 40, 40)
        self.down4 = Conv(ch(512), ch(512), 3, 2)                                    # 20
        self.cat4 = Concat()                                                         # 21 cat backbone P5
        self.out5 = C3k2(ch(512) + c5, ch(1024), n, c3k=True)                        # 22 P5/32 out (B, 1024w, 20, 20)
        self.out_channels = [ch(256), ch(512), ch(1024)]

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        p3, p4, p5 = feats
        t4 = self.td4(self.cat1([self.up1(p5), p4]))
        o3 = self.out3(self.cat2([self.up2(t4), p3]))
        o4 = self.out4(self.cat3([self.down3(o3), t4]))
        o5 = self.out5(self.cat4([self.down4(o4), p5]))
        return [o3, o4, o5]


# Our module for each index of ultralytics' yolo11.yaml (model.0 ... model.23).
REFERENCE_LAYERS = [
    "backbone.stem", "backbone.down2", "backbone.stage2", "backbone.down3", "backbone.stage3",
    "backbone.down4", "backbone.stage4", "backbone.down5", "backbone.stage5", "backbone.sppf", "backbone.psa",
    "neck.up1", "neck.cat1", "neck.td4", "neck.up2", "neck.cat2", "neck.out3",
    "neck.down3", "neck.cat3", "neck.out4", "neck.down4", "neck.cat4", "neck.out5",
    "head",
]


def build_yolo11(scale: str, num_classes: int = 80, reg_max: int = 16) -> Detector:
    """YOLO11-{n,s,m,l,x} for ``num_classes`` classes (randomly initialized as the reference does)."""
    if scale not in SCALES:
        raise YololabError(f"unknown YOLO11 scale {scale!r}; expected one of {sorted(SCALES)}")
    depth, width, max_channels = SCALES[scale]
    c3k_all = scale in C3K_EVERYWHERE
    backbone = Backbone(depth, width, max_channels, c3k_all)
    neck = Neck(backbone.out_channels, depth, width, max_channels, c3k_all)
    head = DetectHead(num_classes, neck.out_channels, STRIDES, reg_max=reg_max, dw_cls=True)
    meta = ModelMeta(
        name=f"yolo11{scale}", family="yolo11", scale=scale, num_classes=num_classes, strides=list(STRIDES),
        anchor_based=False,
        backbone="CSPDarknet (C3k2), SPPF, C2PSA attention",
        neck="PAN-FPN (C3k2)",
        head=f"decoupled anchor-free, depthwise cls branch, DFL (reg_max={reg_max})",
        reference="ultralytics 8.4.190 yolo11.yaml",
        extra={"depth_multiple": depth, "width_multiple": width, "max_channels": max_channels, "c3k_all": c3k_all},
    )
    return Detector(backbone, neck, head, meta, REFERENCE_LAYERS)
