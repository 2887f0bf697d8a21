"""YOLOv8 (Ultralytics, 2023): CSPDarknet with C2f blocks, SPPF, PAN-FPN neck, anchor-free DFL head.

Identical (parameters, outputs for the same weights) to ``ultralytics`` 8.4.190 ``yolov8.yaml``.
What changed from YOLOv5: C2f replaces C3 (every bottleneck output is kept and concatenated), a 3x3
stem replaces the 6x6 one, the neck drops YOLOv5's 1x1 lateral convs, and the head is decoupled
(separate box and class branches) and anchor-free, regressing box sides as distributions (DFL).

Shapes in comments are for a 640x640 input; w = channel width of the scale (see SCALES).
"""

from __future__ import annotations

import torch
from torch import nn

from yololab.errors import YololabError
from yololab.models.base import Detector, ModelMeta, scale_depth, scale_width
from yololab.nn import C2f, Concat, Conv, DetectHead, SPPF, Upsample

# scale: (depth multiple, width multiple, max channels), from ultralytics yolov8.yaml
SCALES = {
    "n": (0.33, 0.25, 1024),
    "s": (0.33, 0.50, 1024),
    "m": (0.67, 0.75, 768),
    "l": (1.00, 1.00, 512),
    "x": (1.00, 1.25, 512),
}
STRIDES = [8, 16, 32]


class Backbone(nn.Module):
    """CSPDarknet with C2f: five stride-2 convs, each (but the first) followed by a C2f stage, then SPPF."""

    def __init__(self, depth: float, width: float, max_channels: int):
        super().__init__()

        def ch(c: int) -> int:
            return scale_width(c, width, max_channels)

        def n(k: int) -> int:
            return scale_depth(k, depth)

        self.stem = Conv(3, ch(64), 3, 2)                              # 0  P1/2  (B, 64w, 320, 320)
        self.down2 = Conv(ch(64), ch(128), 3, 2)                       # 1  P2/4  (B, 128w, 160, 160)
        self.stage2 = C2f(ch(128), ch(128), n(3), shortcut=True)       # 2
        self.down3 = Conv(ch(128), ch(256), 3, 2)                      # 3  P3/8  (B, 256w, 80, 80)
        self.stage3 = C2f(ch(256), ch(256), n(6), shortcut=True)       # 4
        self.down4 = Conv(ch(256), ch(512), 3, 2)                      # 5  P4/16 (B, 512w, 40, 40)
        self.stage4 = C2f(ch(512), ch(512), n(6), shortcut=True)       # 6
        self.down5 = Conv(ch(512), ch(1024), 3, 2)                     # 7  P5/32 (B, 1024w, 20, 20)
        self.stage5 = C2f(ch(1024), ch(1024), n(3), shortcut=True)     # 8
        self.sppf = SPPF(ch(1024), ch(1024), 5)                        # 9
        self.out_channels = [ch(256), ch(512), ch(1024)]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stage2(self.down2(self.stem(x)))
        p3 = self.stage3(self.down3(x))
        p4 = self.stage4(self.down4(p3))
        p5 = self.sppf(self.stage5(self.down5(p4)))
        return [p3, p4, p5]


class Neck(nn.Module):
    """PAN-FPN: a top-down path (upsample P5 into P4, then into P3) and a bottom-up path back to P5."""

    def __init__(self, in_channels: list[int], depth: float, width: float, max_channels: int):
        super().__init__()
        c3, c4, c5 = in_channels

        def ch(c: int) -> int:
            return scale_width(c, width, max_channels)

        n = scale_depth(3, depth)
        # top-down
        self.up1 = Upsample()                                          # 10 P5 -> /16
        self.cat1 = Concat()                                           # 11 cat backbone P4
        self.td4 = C2f(c5 + c4, ch(512), n)                            # 12 (B, 512w, 40, 40)
        self.up2 = Upsample()                                          # 13 -> /8
        self.cat2 = Concat()                                           # 14 cat backbone P3
        self.out3 = C2f(ch(512) + c3, ch(256), n)                      # 15 P3/8 out (B, 256w, 80, 80)
        # bottom-up
        self.down3 = Conv(ch(256), ch(256), 3, 2)                      # 16
        self.cat3 = Concat()                                           # 17 cat td4
        self.out4 = C2f(ch(256) + ch(512), ch(512), n)                 # 18 P4/16 out (B, 512w, 40, 40)
        self.down4 = Conv(ch(512), ch(512), 3, 2)                      # 19
        self.cat4 = Concat()                                           # 20 cat backbone P5
        self.out5 = C2f(ch(512) + c5, ch(1024), n)                     # 21 P5/32 out (B, 1024w, 20, 20)
        self.out_channels = [ch(256), ch(512), ch(1024)]

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        p3, p4, p5 = feats
        t4 = self.td4(self.cat1([self.up1(p5), p4]))
        o3 = self.out3(self.cat2([self.up2(t4), p3]))
        o4 = self.out4(self.cat3([self.down3(o3), t4]))
        o5 = self.out5(self.cat4([self.down4(o4), p5]))
        return [o3, o4, o5]


# Our module for each index of ultralytics' yolov8.yaml (model.0 ... model.22).
REFERENCE_LAYERS = [
    "backbone.stem", "backbone.down2", "backbone.stage2", "backbone.down3", "backbone.stage3",
    "backbone.down4", "backbone.stage4", "backbone.down5", "backbone.stage5", "backbone.sppf",
    "neck.up1", "neck.cat1", "neck.td4", "neck.up2", "neck.cat2", "neck.out3",
    "neck.down3", "neck.cat3", "neck.out4", "neck.down4", "neck.cat4", "neck.out5",
    "head",
]


def build_yolov8(scale: str, num_classes: int = 80, reg_max: int = 16) -> Detector:
    """YOLOv8-{n,s,m,l,x} for ``num_classes`` classes (randomly initialized as the reference does)."""
    if scale not in SCALES:
        raise YololabError(f"unknown YOLOv8 scale {scale!r}; expected one of {sorted(SCALES)}")
    depth, width, max_channels = SCALES[scale]
    backbone = Backbone(depth, width, max_channels)
    neck = Neck(backbone.out_channels, depth, width, max_channels)
    head = DetectHead(num_classes, neck.out_channels, STRIDES, reg_max=reg_max, dw_cls=False)
    meta = ModelMeta(
        name=f"yolov8{scale}", family="yolov8", scale=scale, num_classes=num_classes, strides=list(STRIDES),
        anchor_based=False,
        backbone="CSPDarknet (C2f), SPPF",
        neck="PAN-FPN (C2f)",
        head=f"decoupled anchor-free, DFL (reg_max={reg_max})",
        reference="ultralytics 8.4.190 yolov8.yaml",
        extra={"depth_multiple": depth, "width_multiple": width, "max_channels": max_channels},
    )
    return Detector(backbone, neck, head, meta, REFERENCE_LAYERS)
