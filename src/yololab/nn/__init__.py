"""Primitives every YOLO in the zoo is built from (see conv.py, blocks.py, heads.py)."""

from yololab.nn.blocks import (C2PSA, C3, DFL, SPP, SPPF, Attention, Bottleneck, C2f, C3k, C3k2, Concat,
                               DarknetResidual, PSABlock, Upsample, repeat)
from yololab.nn.conv import Conv, DWConv, autopad, fuse_conv_bn_modules
from yololab.nn.heads import AnchorHead, DetectHead, dist2bbox, make_anchors

__all__ = [
    "Conv", "DWConv", "autopad", "fuse_conv_bn_modules",
    "Bottleneck", "DarknetResidual", "C3", "C3k", "C2f", "C3k2", "SPP", "SPPF", "Attention", "PSABlock", "C2PSA",
    "Concat", "Upsample", "DFL", "repeat",
    "AnchorHead", "DetectHead", "make_anchors", "dist2bbox",
]
