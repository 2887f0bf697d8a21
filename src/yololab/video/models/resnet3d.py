"""R3D-18 and R(2+1)D-18 (Tran et al., "A Closer Look at Spatiotemporal Convolutions", CVPR 2018).

A ResNet-18 whose convolutions see time: R3D uses full 3x3x3 kernels; R(2+1)D factorizes each into a
1x3x3 spatial convolution, batch norm, ReLU and a 3x1x1 temporal one, with the middle width chosen so
the pair has the parameters of the 3x3x3 kernel (``M = floor(27 N_in N_out / (9 N_in + 3 N_out))``).
Module names follow torchvision's ``r3d_18`` / ``r2plus1d_18``, so their state dicts (Kinetics-400
weights included) load as they are: equal parameters (33,371,472 / 31,505,325 with 400 classes) and
equal outputs (tested).

Input ``(B, 3, T, H, W)``; the stem halves H and W, layers 2-4 halve T, H and W each.
"""

from __future__ import annotations

import torch
from torch import nn

from yololab.video.models.conv3d import Conv3d


def conv3x3x3(c_in: int, c_out: int, stride: int = 1) -> nn.Module:
    return Conv3d(c_in, c_out, 3, stride=stride, padding=1, bias=False)


class Conv2Plus1D(nn.Sequential):
    """1x3x3 spatial conv -> BN -> ReLU -> 3x1x1 temporal conv (stride s splits into (1,s,s) and (s,1,1))."""

    def __init__(self, c_in: int, c_out: int, mid: int, stride: int = 1):
        super().__init__(
            Conv3d(c_in, mid, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1), bias=False),
            nn.BatchNorm3d(mid),
            nn.ReLU(inplace=True),
            Conv3d(mid, c_out, (3, 1, 1), stride=(stride, 1, 1), padding=(1, 0, 0), bias=False),
        )


class BasicBlock3d(nn.Module):
    """Two 3D convolutions (full or (2+1)D) with a residual; a 1x1x1 strided projection when the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1, factorized: bool = False):
        super().__init__()
        mid = (c_in * c_out * 27) // (c_in * 9 + 3 * c_out)  # (2+1)D: as many parameters as 3x3x3

        def conv(a, b, s):
            return Conv2Plus1D(a, b, mid, s) if factorized else conv3x3x3(a, b, s)

        self.conv1 = nn.Sequential(conv(c_in, c_out, stride), nn.BatchNorm3d(c_out), nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(conv(c_out, c_out, 1), nn.BatchNorm3d(c_out))
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(Conv3d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm3d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv2(self.conv1(x)) + identity)


class VideoResNet18(nn.Module):
    """stem -> 4 stages of 2 blocks (64, 128, 256, 512 channels) -> global average pool -> linear."""

    input_layout = "CTHW"

    def __init__(self, num_classes: int = 400, factorized: bool = False):
        super().__init__()
        if factorized:  # (2+1)D stem: 1x7x7 spatial conv to 45 channels, then 3x1x1 temporal conv
            self.stem = nn.Sequential(
                Conv3d(3, 45, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False),
                nn.BatchNorm3d(45), nn.ReLU(inplace=True),
                Conv3d(45, 64, (3, 1, 1), padding=(1, 0, 0), bias=False),
                nn.BatchNorm3d(64), nn.ReLU(inplace=True))
        else:
            self.stem = nn.Sequential(
                Conv3d(3, 64, (3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False),
                nn.BatchNorm3d(64), nn.ReLU(inplace=True))
        widths, c = (64, 128, 256, 512), 64
        for i, w in enumerate(widths, 1):
            stride = 1 if i == 1 else 2
            setattr(self, f"layer{i}", nn.Sequential(BasicBlock3d(c, w, stride, factorized),
                                                     BasicBlock3d(w, w, 1, factorized)))
            c = w
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(512, num_classes)
        for m in self.modules():  # torchvision's initialization
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


def r3d_18(num_classes: int = 400) -> VideoResNet18:
    return VideoResNet18(num_classes, factorized=False)


def r2plus1d_18(num_classes: int = 400) -> VideoResNet18:
    return VideoResNet18(num_classes, factorized=True)
