"""YOLOv5 v7.0 (Ultralytics, 2020-2022): CSPDarknet with C3 blocks, SPPF, PANet neck, anchor-based head.

Identical (parameters, outputs for the same weights) to the ``yolov5`` 7.0.14 package's
``models/yolov5{n,s,m,l,x}.yaml``. What changed from YOLOv3: CSP stages (C3) instead of plain
residual stacks, a 6x6 stride-2 stem conv (v6.0 replaced the Focus layer), SPPF, a PANet neck with a
bottom-up path, SiLU activations, and a box decode bounded to 4x the anchor.

Shapes in comments are for a 640x640 input; w = channel width of the scale (see SCALES).
"""

from __future__ import annotations

import torch
from torch import nn

from yololab.errors import YololabError
from yololab.models.base import Detector, ModelMeta, scale_depth, scale_width
from yololab.nn import C3, SPPF, AnchorHead, Concat, Conv, Upsample

# scale: (depth multiple, width multiple), from yolov5 v7.0 models/yolov5{n,s,m,l,x}.yaml
SCALES = {
    "n": (0.33, 0.25),
    "s": (0.33, 0.50),
    "m": (0.67, 0.75),
    "l": (1.00, 1.00),
    "x": (1.33, 1.25),
}
STRIDES = [8, 16, 32]
# anchor (w, h) pairs in input pixels for P3/8, P4/16, P5/32 (the YAML's, found by k-means on COCO)
ANCHORS = [
    [10, 13, 16, 30, 33, 23],
    [30, 61, 62, 45, 59, 119],
    [116, 90, 156, 198, 373, 326],
]


class Backbone(nn.Module):
    """CSPDarknet: 6x6 stem, four stride-2 convs each followed by a C3 stage, then SPPF."""

    def __init__(self, depth: float, width: float):
        super().__init__()

        def ch(c: int) -> int:
            return scale_width(c, width)

        def n(k: int) -> int:
            return scale_depth(k, depth)

        self.stem = Conv(3, ch(64), 6, 2, 2)                          # 0  P1/2  (B, 64w, 320, 320)
        self.down2 = Conv(ch(64), ch(128), 3, 2)                      # 1  P2/4  (B, 128w, 160, 160)
        self.stage2 = C3(ch(128), ch(128), n(3))                      # 2
        self.down3 = Conv(ch(128), ch(256), 3, 2)                     # 3  P3/8  (B, 256w, 80, 80)
        self.stage3 = C3(ch(256), ch(256), n(6))                      # 4
        self.down4 = Conv(ch(256), ch(512), 3, 2)                     # 5  P4/16 (B, 512w, 40, 40)
        self.stage4 = C3(ch(512), ch(512), n(9))                      # 6
        self.down5 = Conv(ch(512), ch(1024), 3, 2)                    # 7  P5/32 (B, 1024w, 20, 20)
        self.stage5 = C3(ch(1024), ch(1024), n(3))                    # 8
        self.sppf = SPPF(ch(1024), ch(1024), 5)                       # 9
        self.out_channels = [ch(256), ch(512), ch(1024)]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stage2(self.down2(self.stem(x)))
        p3 = self.stage3(self.down3(x))
        p4 = self.stage4(self.down4(p3))
        p5 = self.sppf(self.stage5(self.down5(p4)))
        return [p3, p4, p5]


class Neck(nn.Module):
    """PANet: top-down FPN path (1x1 lateral conv, upsample, concat, C3) then a bottom-up path.

    The bottom-up path concatenates with the *lateral conv outputs* (indices 14 and 10), not with
    the C3 outputs, as in the YAML.
    """

    def __init__(self, in_channels: list[int], depth: float, width: float):
        super().__init__()
        c3, c4, c5 = in_channels

        def ch(c: int) -> int:
            return scale_width(c, width)

        n = scale_depth(3, depth)
        # top-down
        self.lat5 = Conv(c5, ch(512), 1, 1)                           # 10 (B, 512w, 20, 20)
        self.up1 = Upsample()                                         # 11
        self.cat1 = Concat()                                          # 12 cat backbone P4
        self.td4 = C3(ch(512) + c4, ch(512), n, shortcut=False)       # 13 (B, 512w, 40, 40)
        self.lat4 = Conv(ch(512), ch(256), 1, 1)                      # 14 (B, 256w, 40, 40)
        self.up2 = Upsample()                                         # 15
        self.cat2 = Concat()                                          # 16 cat backbone P3
        self.out3 = C3(ch(256) + c3, ch(256), n, shortcut=False)      # 17 P3/8 out (B, 256w, 80, 80)
        # bottom-up
        self.down3 = Conv(ch(256), ch(256), 3, 2)                     # 18
        self.cat3 = Concat()                                          # 19 cat lat4
        self.out4 = C3(ch(256) + ch(256), ch(512), n, shortcut=False) # 20 P4/16 out (B, 512w, 40, 40)
        self.down4 = Conv(ch(512), ch(512), 3, 2)                     # 21
        self.cat4 = Concat()                                          # 22 cat lat5
        self.out5 = C3(ch(512) + ch(512), ch(1024), n, shortcut=False)  # 23 P5/32 out (B, 1024w, 20, 20)
        self.out_channels = [ch(256), ch(512), ch(1024)]

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        p3, p4, p5 = feats
        l5 = self.lat5(p5)
        l4 = self.lat4(self.td4(self.cat1([self.up1(l5), p4])))
        o3 = self.out3(self.cat2([self.up2(l4), p3]))
        o4 = self.out4(self.cat3([self.down3(o3), l4]))
        o5 = self.out5(self.cat4([self.down4(o4), l5]))
        return [o3, o4, o5]


# Our module for each index of yolov5's yolov5{n,s,m,l,x}.yaml (model.0 ... model.24).
REFERENCE_LAYERS = [
    "backbone.stem", "backbone.down2", "backbone.stage2", "backbone.down3", "backbone.stage3",
    "backbone.down4", "backbone.stage4", "backbone.down5", "backbone.stage5", "backbone.sppf",
    "neck.lat5", "neck.up1", "neck.cat1", "neck.td4", "neck.lat4", "neck.up2", "neck.cat2", "neck.out3",
    "neck.down3", "neck.cat3", "neck.out4", "neck.down4", "neck.cat4", "neck.out5",
    "head",
]


def build_yolov5(scale: str, num_classes: int = 80, anchors: list[list[float]] | None = None) -> Detector:
    """YOLOv5-{n,s,m,l,x} v7.0 for ``num_classes`` classes; ``anchors`` in pixels per level (default COCO's)."""
    if scale not in SCALES:
        raise YololabError(f"unknown YOLOv5 scale {scale!r}; expected one of {sorted(SCALES)}")
    depth, width = SCALES[scale]
    backbone = Backbone(depth, width)
    neck = Neck(backbone.out_channels, depth, width)
    head = AnchorHead(num_classes, anchors or ANCHORS, neck.out_channels, STRIDES, decode="yolov5")
    meta = ModelMeta(
        name=f"yolov5{scale}", family="yolov5", scale=scale, num_classes=num_classes, strides=list(STRIDES),
        anchor_based=True,
        backbone="CSPDarknet (C3), 6x6 stem, SPPF",
        neck="PANet (C3)",
        head="anchor-based, 3 anchors per level, yolov5 decode",
        reference="yolov5 7.0.14 models/yolov5" + scale + ".yaml",
        extra={"depth_multiple": depth, "width_multiple": width},
    )
    return Detector(backbone, neck, head, meta, REFERENCE_LAYERS)
