"""ResNet-18/34/50 from primitives (He et al., "Deep Residual Learning for Image Recognition", 2015).

    stem -> layer1 -> layer2 -> layer3 -> layer4 -> global average pool -> fc

* **Stems.** ``"imagenet"``: 7x7 stride-2 convolution, BatchNorm, ReLU, 3x3 stride-2 max-pool (the
  paper's, for 224 px images: 4x smaller before layer1). ``"cifar"``: one 3x3 stride-1 convolution and
  no max-pool, so a 32 px image keeps 32x32 maps in layer1 (the usual CIFAR adaptation; the paper's own
  CIFAR networks are narrower ones, ResNet-20/56/110, not these).
* **Blocks.** :class:`BasicBlock` (two 3x3 convolutions, ResNet-18/34) and :class:`Bottleneck` (1x1
  reduce, 3x3, 1x1 expand x4, ResNet-50). The stride of a Bottleneck sits on its 3x3 convolution, as
  torchvision does ("ResNet v1.5"), not on the first 1x1 as in the paper.
* **Shortcuts.** Identity where the shape is kept; where a block changes the resolution or the width, a
  projection (1x1 convolution with the block's stride + BatchNorm; the paper's option B).

Attribute names are torchvision's (``conv1``, ``bn1``, ``layer1.0.downsample.0`` ...), so a torchvision
state dict loads unchanged; with the ImageNet stem the network is the same as ``torchvision.models.resnet18``
/ ``resnet50`` (same parameters, same outputs; tests/classify/test_resnet.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class ClassifierMeta:
    """What the inspector (``yololab models summary`` / ``diagram``) reads about a classifier."""

    name: str
    num_classes: int
    strides: list[int]  # the input side must be a multiple of the last one
    family: str = "resnet"
    scale: str = ""
    backbone: str = ""
    head: str = "global average pool, fc"
    reference: str = ""
    extra: dict = field(default_factory=dict)


def conv3x3(c1: int, c2: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c1, c2, 3, stride, 1, bias=False)


def conv1x1(c1: int, c2: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c1, c2, 1, stride, bias=False)


def projection(c1: int, c2: int, stride: int) -> nn.Sequential | None:
    """The projection shortcut (1x1 conv + BN) where a block changes the shape, else None (identity)."""
    if stride == 1 and c1 == c2:
        return None
    return nn.Sequential(conv1x1(c1, c2, stride), nn.BatchNorm2d(c2))


class BasicBlock(nn.Module):
    """relu(x' + bn(conv3x3(relu(bn(conv3x3(x)))))) where x' is x or its projection."""

    expansion = 1

    def __init__(self, c1: int, width: int, stride: int = 1):
        super().__init__()
        self.conv1 = conv3x3(c1, width, stride)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = projection(c1, width, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + shortcut)


class Bottleneck(nn.Module):
    """1x1 reduce to ``width`` -> 3x3 (carries the stride) -> 1x1 expand to ``4 * width``, plus the shortcut."""

    expansion = 4

    def __init__(self, c1: int, width: int, stride: int = 1):
        super().__init__()
        c2 = width * self.expansion
        self.conv1 = conv1x1(c1, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, c2)
        self.bn3 = nn.BatchNorm2d(c2)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = projection(c1, c2, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + shortcut)


class ResNet(nn.Module):
    """A ResNet with ``depths[i]`` blocks in stage ``i``; stage widths ``width * (1, 2, 4, 8)``.

    ``width=64`` is the paper's; smaller widths give tiny networks for tests. ``zero_init_residual``
    starts every residual branch at zero (its last BN's gamma = 0), so each block starts as the identity
    (Goyal et al., 2017); off by default, as in torchvision.
    """

    def __init__(self, block: type[BasicBlock | Bottleneck], depths: tuple[int, int, int, int],
                 num_classes: int = 1000, stem: str = "imagenet", width: int = 64, in_channels: int = 3,
                 zero_init_residual: bool = False):
        super().__init__()
        if stem not in ("imagenet", "cifar"):
            raise ValueError(f"unknown stem {stem!r}: expected 'imagenet' or 'cifar'")
        imagenet = stem == "imagenet"
        self.conv1 = nn.Conv2d(in_channels, width, 7, 2, 3, bias=False) if imagenet else conv3x3(in_channels, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1) if imagenet else nn.Identity()
        c = width
        stages = []
        for i, depth in enumerate(depths):
            stride = 1 if i == 0 else 2
            blocks = []
            for j in range(depth):
                blocks.append(block(c, width * 2 ** i, stride if j == 0 else 1))
                c = width * 2 ** i * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)  # no parameters: the state dict stays torchvision's
        self.fc = nn.Linear(c, num_classes)
        self.num_classes = num_classes
        self.stem = stem
        self.in_channels = in_channels
        self._init_weights(zero_init_residual)
        # for the inspector: the blocks in forward order, grouped as a detector's backbone / head
        self.reference_layers = ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4",
                                 "avgpool", "flatten", "fc"]
        self.reference_groups = {"avgpool": "head", "flatten": "head", "fc": "head"} | {
            p: "backbone" for p in self.reference_layers[:8]}
        depth = {(2, 2, 2, 2): 18, (3, 4, 6, 3): 34 if block is BasicBlock else 50}[tuple(depths)]
        self.meta = ClassifierMeta(
            name=f"resnet{depth}" + ("-cifar" if stem == "cifar" else ""), num_classes=num_classes,
            strides=[32 if imagenet else 8],
            backbone=f"{'7x7/2 conv + 3x3/2 max-pool' if imagenet else '3x3 conv'} stem, 4 stages of "
                     f"{block.__name__} {'-'.join(map(str, depths))}",
            reference=f"torchvision resnet{depth}" if imagenet else "")

    def _init_weights(self, zero_init_residual: bool) -> None:
        """He (fan-out) init for convolutions, BN as the identity; the fc keeps PyTorch's default."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.zeros_(m.bn3.weight)
                elif isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map (``layer4``'s output), before pooling."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flatten(self.avgpool(self.features(x))))


def resnet18(**kwargs) -> ResNet:
    return ResNet(BasicBlock, (2, 2, 2, 2), **kwargs)


def resnet34(**kwargs) -> ResNet:
    return ResNet(BasicBlock, (3, 4, 6, 3), **kwargs)


def resnet50(**kwargs) -> ResNet:
    return ResNet(Bottleneck, (3, 4, 6, 3), **kwargs)
