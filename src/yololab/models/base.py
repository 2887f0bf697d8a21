"""What every detector in the zoo is: backbone -> neck -> head, plus the facts other code reads.

Other modules rely on this contract (docs/design.md, "Contracts"):

* ``model.backbone(x) -> list[Tensor]`` feature maps the neck needs;
  ``model.neck(feats) -> list[Tensor]`` one map per detection level (P3, P4, P5 or P4, P5);
  ``model.head(maps)`` training mode: the raw per-level maps; eval mode: one decoded tensor in the
  reference's layout: anchor-free ``(B, 4 + nc, A)``, anchor-based ``(B, A, 5 + nc)``, boxes as
  centre-x, centre-y, width, height in input pixels.
* ``model.meta``: :class:`ModelMeta` (name, family, scale, num_classes, strides, anchor_based ...).
* ``model.reference_layers``: dotted module paths, where entry ``i`` is the module that the reference
  implementation calls ``model.{i}`` (the index in its YAML). Weight import and the inspector
  (one row / box per block) both walk this list, so it must list every block, Upsample and Concat
  included, in the reference's order.
* ``model.fuse()`` folds every BatchNorm into the convolution before it, for inference.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
from torch import nn


@dataclass
class ModelMeta:
    name: str  # registry name, e.g. "yolov8s"
    family: str  # "yolov3", "yolov5", "yolov8", "yolo11"
    scale: str  # "n", "s", "m", "l", "x", or "" / "tiny" for yolov3 variants
    num_classes: int
    strides: list[int]
    anchor_based: bool
    backbone: str = ""  # short human description, e.g. "CSPDarknet (C2f), SPPF"
    neck: str = ""
    head: str = ""
    reference: str = ""  # which reference implementation this network is identical to
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


class Detector(nn.Module):
    """backbone -> neck -> head. Subclasses only construct the three parts and set the metadata."""

    def __init__(self, backbone: nn.Module, neck: nn.Module, head: nn.Module, meta: ModelMeta,
                 reference_layers: list[str]):
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.head = head
        self.meta = meta
        self.reference_layers = list(reference_layers)

    def forward(self, x: torch.Tensor):
        return self.head(self.neck(self.backbone(x)))

    @property
    def num_classes(self) -> int:
        return self.meta.num_classes

    @torch.no_grad()
    def fuse(self) -> "Detector":
        """Fold BatchNorm into the preceding convolution everywhere (inference only)."""
        from yololab.nn.conv import fuse_conv_bn_modules

        fuse_conv_bn_modules(self)
        return self


# --- compound scaling, shared by the families (same rules as the yolov5 / Ultralytics YAML parsers) ---

def make_divisible(x: float, divisor: int = 8) -> int:
    """Smallest multiple of ``divisor`` that is >= x (channel counts stay friendly to hardware)."""
    return int(math.ceil(x / divisor) * divisor)


def scale_width(channels: int, width: float, max_channels: float = math.inf) -> int:
    """Channels of a layer at a given width multiple: ``make_divisible(min(c, max_channels) * width, 8)``."""
    return make_divisible(min(channels, max_channels) * width, 8)


def scale_depth(n: int, depth: float) -> int:
    """Repeats of a block at a given depth multiple: ``max(round(n * depth), 1)``; a single block stays single."""
    return max(round(n * depth), 1) if n > 1 else n
