"""YOLOv3 (Redmon & Farhadi, 2018) and YOLOv3-tiny: Darknet-53, an upsample-and-concatenate FPN, anchors.

Two styles of the same network (identical parameters, so the same weights fit both):

* ``style="darknet"`` (default): faithful to the original Darknet ``yolov3.cfg`` / ``.weights``:
  LeakyReLU(0.1) and Darknet's box decode ``xy = (sigmoid(t) + cell) * stride``, ``wh = exp(t) * anchor``.
  YOLOv3-tiny's stride-1 max pool ignores cells outside the image, as Darknet does (pads with -inf).
* ``style="yolov5"``: the ``yolov5`` 7.0.14 package's ``models/hub/yolov3*.yaml``: SiLU, the YOLOv5 decode
  ``xy = (2 sigmoid(t) - 0.5 + cell) * stride``, ``wh = (2 sigmoid(t))^2 * anchor``, and the tiny
  model's ZeroPad2d before that pool. Identical to that reference, output for output.

Shapes in comments are for a 640x640 input (Darknet trained at 416: /32 is then 13x13).
"""

from __future__ import annotations

import torch
from torch import nn

from yololab.errors import YololabError
from yololab.models.base import Detector, ModelMeta
from yololab.nn import AnchorHead, Bottleneck, Concat, Conv, DarknetResidual, Upsample, repeat

STYLES = ("darknet", "yolov5")
# anchors (w, h) in input pixels per level, from Darknet's yolov3.cfg (masks 0,1,2 / 3,4,5 / 6,7,8)
ANCHORS = [
    [10, 13, 16, 30, 33, 23],  # P3/8
    [30, 61, 62, 45, 59, 119],  # P4/16
    [116, 90, 156, 198, 373, 326],  # P5/32
]
# from Darknet's yolov3-tiny.cfg: anchors 10,14 23,27 37,58 81,82 135,169 344,319, masks 0,1,2 (P4) and 3,4,5 (P5)
TINY_ANCHORS = [
    [10, 14, 23, 27, 37, 58],  # P4/16
    [81, 82, 135, 169, 344, 319],  # P5/32
]


def _activation(style: str) -> str:
    if style not in STYLES:
        raise YololabError(f"unknown YOLOv3 style {style!r}; expected one of {STYLES}")
    return "leaky" if style == "darknet" else "silu"


class Darknet53(nn.Module):
    """Darknet-53 without its classifier: a 3x3 conv, then five stride-2 convs each followed by 1, 2, 8, 8, 4
    residual units (52 convolutions + the 3 feature outputs C3, C4, C5)."""

    def __init__(self, act: str = "leaky"):
        super().__init__()

        def stage(c: int, n: int) -> nn.Module:
            return repeat(lambda: DarknetResidual(c, c, shortcut=True, act=act), n)

        self.stem = Conv(3, 32, 3, 1, act=act)            # 0          (B, 32, 640, 640)
        self.down1 = Conv(32, 64, 3, 2, act=act)          # 1  P1/2    (B, 64, 320, 320)
        self.stage1 = stage(64, 1)                        # 2
        self.down2 = Conv(64, 128, 3, 2, act=act)         # 3  P2/4    (B, 128, 160, 160)
        self.stage2 = stage(128, 2)                       # 4
        self.down3 = Conv(128, 256, 3, 2, act=act)        # 5  P3/8    (B, 256, 80, 80)
        self.stage3 = stage(256, 8)                       # 6
        self.down4 = Conv(256, 512, 3, 2, act=act)        # 7  P4/16   (B, 512, 40, 40)
        self.stage4 = stage(512, 8)                       # 8
        self.down5 = Conv(512, 1024, 3, 2, act=act)       # 9  P5/32   (B, 1024, 20, 20)
        self.stage5 = stage(1024, 4)                      # 10
        self.out_channels = [256, 512, 1024]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stage2(self.down2(self.stage1(self.down1(self.stem(x)))))
        c3 = self.stage3(self.down3(x))
        c4 = self.stage4(self.down4(c3))
        c5 = self.stage5(self.down5(c4))
        return [c3, c4, c5]


class YOLOv3Neck(nn.Module):
    """YOLOv3's FPN: per level five alternating 1x1 / 3x3 convs, a sixth 3x3 conv producing the level's
    output, and from the fifth a 1x1 conv + 2x upsample concatenated into the next finer level.

    The 1x1 / 3x3 pairs are written as ``Bottleneck(shortcut=False)`` because the reference (yolov5's
    hub/yolov3.yaml) groups them that way; that keeps weight names identical. They have no shortcut, so
    they are not Darknet-53's residual units, and tables and diagrams show them as ``Bottleneck``.
    """

    def __init__(self, in_channels: list[int], act: str = "leaky"):
        super().__init__()
        c3, c4, c5 = in_channels

        def pair(c1: int, c2: int) -> Bottleneck:  # 1x1 to c2/2, then 3x3 to c2, no shortcut
            return Bottleneck(c1, c2, shortcut=False, k=(1, 3), e=0.5, act=act)

        # P5/32 branch                                                     (B, 1024, 20, 20)
        self.p5_pair = pair(c5, 1024)                                    # 11
        self.p5_conv1 = Conv(1024, 512, 1, 1, act=act)                   # 12
        self.p5_conv2 = Conv(512, 1024, 3, 1, act=act)                   # 13
        self.p5_conv3 = Conv(1024, 512, 1, 1, act=act)                   # 14 the branch point
        self.p5_out = Conv(512, 1024, 3, 1, act=act)                     # 15 P5 out (B, 1024, 20, 20)
        # P4/16 branch
        self.p5_reduce = Conv(512, 256, 1, 1, act=act)                   # 16 from 14
        self.up1 = Upsample()                                            # 17
        self.cat1 = Concat()                                             # 18 cat C4: (B, 768, 40, 40)
        self.p4_pair1 = pair(256 + c4, 512)                              # 19
        self.p4_pair2 = pair(512, 512)                                   # 20
        self.p4_conv = Conv(512, 256, 1, 1, act=act)                     # 21 the branch point
        self.p4_out = Conv(256, 512, 3, 1, act=act)                      # 22 P4 out (B, 512, 40, 40)
        # P3/8 branch
        self.p4_reduce = Conv(256, 128, 1, 1, act=act)                   # 23 from 21
        self.up2 = Upsample()                                            # 24
        self.cat2 = Concat()                                             # 25 cat C3: (B, 384, 80, 80)
        self.p3_pair1 = pair(128 + c3, 256)                              # 26
        self.p3_out = repeat(lambda: pair(256, 256), 2)                  # 27 P3 out (B, 256, 80, 80)
        self.out_channels = [256, 512, 1024]

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        c3, c4, c5 = feats
        b5 = self.p5_conv3(self.p5_conv2(self.p5_conv1(self.p5_pair(c5))))
        o5 = self.p5_out(b5)
        x = self.cat1([self.up1(self.p5_reduce(b5)), c4])
        b4 = self.p4_conv(self.p4_pair2(self.p4_pair1(x)))
        o4 = self.p4_out(b4)
        x = self.cat2([self.up2(self.p4_reduce(b4)), c3])
        o3 = self.p3_out(self.p3_pair1(x))
        return [o3, o4, o5]


# Our module for each index of yolov5's hub/yolov3.yaml (model.0 ... model.28).
REFERENCE_LAYERS = [
    "backbone.stem", "backbone.down1", "backbone.stage1", "backbone.down2", "backbone.stage2",
    "backbone.down3", "backbone.stage3", "backbone.down4", "backbone.stage4", "backbone.down5", "backbone.stage5",
    "neck.p5_pair", "neck.p5_conv1", "neck.p5_conv2", "neck.p5_conv3", "neck.p5_out",
    "neck.p5_reduce", "neck.up1", "neck.cat1", "neck.p4_pair1", "neck.p4_pair2", "neck.p4_conv", "neck.p4_out",
    "neck.p4_reduce", "neck.up2", "neck.cat2", "neck.p3_pair1", "neck.p3_out",
    "head",
]


def build_yolov3(num_classes: int = 80, style: str = "darknet", anchors: list[list[float]] | None = None) -> Detector:
    """YOLOv3 (Darknet-53, 3 levels, strides 8/16/32); ``style`` "darknet" (default) or "yolov5" (see module doc)."""
    act = _activation(style)
    backbone = Darknet53(act)
    neck = YOLOv3Neck(backbone.out_channels, act)
    head = AnchorHead(num_classes, anchors or ANCHORS, neck.out_channels, [8, 16, 32],
                      decode="darknet" if style == "darknet" else "yolov5")
    meta = ModelMeta(
        name="yolov3", family="yolov3", scale="", num_classes=num_classes, strides=[8, 16, 32], anchor_based=True,
        backbone=f"Darknet-53 ({'LeakyReLU' if style == 'darknet' else 'SiLU'})",
        neck="FPN (upsample + concatenate)",
        head=f"anchor-based, 3 anchors per level, {style} decode",
        reference="Darknet yolov3.cfg" if style == "darknet" else "yolov5 7.0.14 models/hub/yolov3.yaml",
        extra={"style": style},
    )
    return Detector(backbone, neck, head, meta, REFERENCE_LAYERS)


# --- YOLOv3-tiny -------------------------------------------------------------------------------------------


class TinyBackbone(nn.Module):
    """Seven 3x3 convs with 2x2 max pools between them (no residuals); the last pool has stride 1.

    That stride-1 pool of size 2 needs one extra row and column on the bottom/right to keep the 13x13
    (at 416) size: Darknet ignores the cells outside the image (here: pad with -inf), the yolov5 hub
    YAML pads with zeros (``ZeroPad2d``): the two differ only where a whole window is negative.
    """

    def __init__(self, act: str = "leaky", style: str = "darknet"):
        super().__init__()
        self.conv0 = Conv(3, 16, 3, 1, act=act)           # 0          (B, 16, 640, 640)
        self.pool1 = nn.MaxPool2d(2, 2, 0)                # 1  P1/2
        self.conv2 = Conv(16, 32, 3, 1, act=act)          # 2
        self.pool3 = nn.MaxPool2d(2, 2, 0)                # 3  P2/4
        self.conv4 = Conv(32, 64, 3, 1, act=act)          # 4
        self.pool5 = nn.MaxPool2d(2, 2, 0)                # 5  P3/8
        self.conv6 = Conv(64, 128, 3, 1, act=act)         # 6
        self.pool7 = nn.MaxPool2d(2, 2, 0)                # 7  P4/16
        self.conv8 = Conv(128, 256, 3, 1, act=act)        # 8  C4 out  (B, 256, 40, 40)
        self.pool9 = nn.MaxPool2d(2, 2, 0)                # 9  P5/32
        self.conv10 = Conv(256, 512, 3, 1, act=act)       # 10         (B, 512, 20, 20)
        if style == "darknet":
            self.pad11 = nn.ConstantPad2d((0, 1, 0, 1), float("-inf"))  # 11 (B, 512, 21, 21)
        else:
            self.pad11 = nn.ZeroPad2d((0, 1, 0, 1))
        self.pool12 = nn.MaxPool2d(2, 1, 0)               # 12 C5 out  (B, 512, 20, 20)
        self.out_channels = [256, 512]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.pool7(self.conv6(self.pool5(self.conv4(self.pool3(self.conv2(self.pool1(self.conv0(x))))))))
        c4 = self.conv8(x)
        c5 = self.pool12(self.pad11(self.conv10(self.pool9(c4))))
        return [c4, c5]


class TinyNeck(nn.Module):
    """Two levels: P5 (3x3 1024, 1x1 256, 3x3 512) and P4 (1x1 128 from the 256, upsample, concat C4, 3x3 256)."""

    def __init__(self, in_channels: list[int], act: str = "leaky"):
        super().__init__()
        c4, c5 = in_channels
        self.p5_conv1 = Conv(c5, 1024, 3, 1, act=act)     # 13
        self.p5_conv2 = Conv(1024, 256, 1, 1, act=act)    # 14 the branch point
        self.p5_out = Conv(256, 512, 3, 1, act=act)       # 15 P5 out (B, 512, 20, 20)
        self.p5_reduce = Conv(256, 128, 1, 1, act=act)    # 16 from 14
        self.up = Upsample()                              # 17
        self.cat = Concat()                               # 18 cat C4: (B, 384, 40, 40)
        self.p4_out = Conv(128 + c4, 256, 3, 1, act=act)  # 19 P4 out (B, 256, 40, 40)
        self.out_channels = [256, 512]

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        c4, c5 = feats
        b5 = self.p5_conv2(self.p5_conv1(c5))
        o5 = self.p5_out(b5)
        o4 = self.p4_out(self.cat([self.up(self.p5_reduce(b5)), c4]))
        return [o4, o5]


# Our module for each index of yolov5's hub/yolov3-tiny.yaml (model.0 ... model.20).
TINY_REFERENCE_LAYERS = [
    "backbone.conv0", "backbone.pool1", "backbone.conv2", "backbone.pool3", "backbone.conv4", "backbone.pool5",
    "backbone.conv6", "backbone.pool7", "backbone.conv8", "backbone.pool9", "backbone.conv10", "backbone.pad11",
    "backbone.pool12",
    "neck.p5_conv1", "neck.p5_conv2", "neck.p5_out", "neck.p5_reduce", "neck.up", "neck.cat", "neck.p4_out",
    "head",
]


def build_yolov3_tiny(num_classes: int = 80, style: str = "darknet",
                      anchors: list[list[float]] | None = None) -> Detector:
    """YOLOv3-tiny (2 levels, strides 16/32); ``style`` "darknet" (default) or "yolov5" (see module doc)."""
    act = _activation(style)
    backbone = TinyBackbone(act, style)
    neck = TinyNeck(backbone.out_channels, act)
    head = AnchorHead(num_classes, anchors or TINY_ANCHORS, neck.out_channels, [16, 32],
                      decode="darknet" if style == "darknet" else "yolov5")
    meta = ModelMeta(
        name="yolov3-tiny", family="yolov3", scale="tiny", num_classes=num_classes, strides=[16, 32],
        anchor_based=True,
        backbone=f"7 convs + max pools ({'LeakyReLU' if style == 'darknet' else 'SiLU'})",
        neck="2-level FPN (upsample + concatenate)",
        head=f"anchor-based, 3 anchors per level, {style} decode",
        reference="Darknet yolov3-tiny.cfg" if style == "darknet" else "yolov5 7.0.14 models/hub/yolov3-tiny.yaml",
        extra={"style": style},
    )
    return Detector(backbone, neck, head, meta, TINY_REFERENCE_LAYERS)
