"""Convolution primitives shared by every YOLO: Conv (conv + BatchNorm + activation), DWConv, BN folding.

Every YOLO from v3 to 11 is built almost entirely from one unit: a bias-free 2-D convolution, a
BatchNorm and an activation (LeakyReLU(0.1) in Darknet/YOLOv3, SiLU from YOLOv5 on). The attribute
names ``conv`` / ``bn`` / ``act`` are those of the yolov5 and Ultralytics references, so their
checkpoints load into ours by renaming the layer prefix only.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils import fuse_conv_bn_eval

# BatchNorm settings of the references (yolov5 and Ultralytics overwrite PyTorch's 1e-5 / 0.1 with these).
BN_EPS = 1e-3
BN_MOMENTUM = 0.03


def autopad(k: int | tuple[int, int], p: int | None = None, d: int = 1) -> int | list[int]:
    """Padding that keeps the spatial size at stride 1 ("same" padding) for an odd kernel ``k``."""
    if d > 1:  # effective kernel size of a dilated convolution
        k = d * (k - 1) + 1 if isinstance(k, int) else [d * (x - 1) + 1 for x in k]
    if p is None:
        p = k // 2 if isinstance(k, int) else [x // 2 for x in k]
    return p


def make_activation(act: bool | str | nn.Module | None) -> nn.Module:
    """``True`` / ``"silu"`` -> SiLU, ``"leaky"`` -> LeakyReLU(0.1) (Darknet), ``False`` / ``None`` -> Identity."""
    if isinstance(act, nn.Module):
        return act
    if act is True or act == "silu":
        return nn.SiLU(inplace=True)
    if act == "leaky":
        return nn.LeakyReLU(0.1, inplace=True)
    if act is False or act is None or act == "linear":
        return nn.Identity()
    raise ValueError(f"unknown activation {act!r}: expected True/'silu', 'leaky', False/'linear' or an nn.Module")


class Conv(nn.Module):
    """Conv2d (no bias) -> BatchNorm2d -> activation, with "same" padding by default.

    ``act``: True or "silu" (default, YOLOv5/v8/11), "leaky" (LeakyReLU(0.1), Darknet), False (none).
    After :func:`fuse_conv_bn_modules` the BatchNorm is an ``nn.Identity`` and the conv carries a bias.
    """

    def __init__(self, c1: int, c2: int, k: int | tuple[int, int] = 1, s: int = 1, p: int | None = None,
                 g: int = 1, d: int = 1, act: bool | str | nn.Module = True):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, autopad(k, p, d), groups=g, dilation=d, bias=False)
        self.bn = nn.BatchNorm2d(c2, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.act = make_activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class DWConv(Conv):
    """Depthwise convolution: a Conv with ``groups = gcd(c1, c2)`` (one filter per channel when c1 == c2)."""

    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1, d: int = 1, act: bool | str | nn.Module = True):
        super().__init__(c1, c2, k, s, g=math.gcd(c1, c2), d=d, act=act)


@torch.no_grad()
def fuse_conv_bn_modules(module: nn.Module) -> nn.Module:
    """Fold every :class:`Conv`'s BatchNorm into its convolution, in place; the BN becomes ``nn.Identity``.

    BatchNorm in eval mode is a per-channel affine map, so it folds into the convolution before it
    (``torch.nn.utils.fuse_conv_bn_eval``). Use for inference only: the fused network computes what the
    unfused one computes in eval mode. Returns ``module`` for chaining.
    """
    for m in module.modules():
        if isinstance(m, Conv) and isinstance(m.bn, nn.BatchNorm2d):
            m.conv = fuse_conv_bn_eval(m.conv.eval(), m.bn.eval())
            m.bn = nn.Identity()
    return module
