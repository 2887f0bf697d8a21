"""Darknet ``.weights`` files: read them into a model and write them back, byte for byte.

The format is a header and then every ``[convolutional]`` layer's numbers, in cfg order, as raw little-endian
float32s with nothing between them:

* header: ``major``, ``minor``, ``revision`` (int32), then ``seen``, the number of training images, as int64
  when ``major * 10 + minor >= 2`` and int32 before;
* per convolution with ``batch_normalize=1``: BN beta (bias), gamma (weight), running mean, running variance,
  then the conv weights ``(out, in, kh, kw)``; without BatchNorm: conv bias, then conv weights.

Nothing in the file says which layer a number belongs to, so the reader needs the list of convolutions in
Darknet's order (:func:`darknet_conv_order`). For a :class:`~yololab.models.darknet_cfg.DarknetNet` that is
the cfg order. yololab's ``yolov3`` / ``yolov3-tiny`` hold the same convolutions in a different order: the
1x1 detection convs live together in the head, while Darknet has each one inside the layer sequence, just
before its ``[yolo]`` layer. :data:`DARKNET_HEAD_AFTER` spells out where each one goes.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from yololab.errors import WeightsError
from yololab.fileio import atomic_write
from yololab.models import registry
from yololab.models.darknet_cfg import DarknetNet


@dataclass
class DarknetHeader:
    """The .weights header. ``seen`` is stored as int64 from version 0.2 on, int32 before."""

    major: int = 0
    minor: int = 2
    revision: int = 0
    seen: int = 0

    @property
    def seen_is_int64(self) -> bool:
        return self.major * 10 + self.minor >= 2

    @property
    def size(self) -> int:
        return 12 + (8 if self.seen_is_int64 else 4)

    def to_bytes(self) -> bytes:
        return struct.pack("<3i", self.major, self.minor, self.revision) + \
            struct.pack("<q" if self.seen_is_int64 else "<i", self.seen)

    @classmethod
    def from_bytes(cls, data: bytes, path: Path | str = "<weights>") -> "DarknetHeader":
        if len(data) < 12:
            raise WeightsError(f"{path}: {len(data)} bytes, too short for a Darknet header")
        major, minor, revision = struct.unpack("<3i", data[:12])
        h = cls(major, minor, revision)
        if len(data) < h.size:
            raise WeightsError(f"{path}: {len(data)} bytes, too short for a Darknet header of {h.size} bytes")
        h.seen = struct.unpack("<q" if h.seen_is_int64 else "<i", data[12:h.size])[0]
        return h

    @classmethod
    def sniff(cls, head: bytes) -> "DarknetHeader | None":
        """The header if ``head`` (a file's first bytes) starts like a .weights file, else None."""
        if len(head) < 12:
            return None
        major, minor, revision = struct.unpack("<3i", head[:12])
        if not (0 <= major < 1000 and 0 <= minor < 1000 and 0 <= revision < 1_000_000):
            return None
        try:
            return cls.from_bytes(head)
        except WeightsError:
            return None


# Where the detection convs go in Darknet's order, for yololab's yolov3 models: {reference layer index ->
# head level}. The head conv of that level comes right after the convolutions of that layer, i.e. after the
# layer that feeds the level (yolov5's Detect "from" list: yolov3 [27, 22, 15], yolov3-tiny [19, 15]).
DARKNET_HEAD_AFTER = {
    "yolov3": {15: 2, 22: 1, 27: 0},
    "yolov3-tiny": {15: 1, 19: 0},
}


@dataclass
class ConvEntry:
    """One Darknet convolution: its conv and (if batch-normalized) its BatchNorm, named for error messages."""

    name: str
    conv: nn.Conv2d
    bn: nn.BatchNorm2d | None

    def tensors(self) -> list[tuple[str, torch.Tensor]]:
        """The tensors in .weights order."""
        if self.bn is not None:
            return [("bn.bias", self.bn.bias), ("bn.weight", self.bn.weight), ("bn.running_mean",
                    self.bn.running_mean), ("bn.running_var", self.bn.running_var), ("conv.weight", self.conv.weight)]
        if self.conv.bias is None:
            raise WeightsError(f"{self.name}: a convolution without BatchNorm must have a bias in Darknet")
        return [("conv.bias", self.conv.bias), ("conv.weight", self.conv.weight)]


def _conv_entry(name: str, module: nn.Module) -> ConvEntry:
    """A Conv (conv + bn + act) or a plain Conv2d / Sequential(conv, act) as one entry."""
    if isinstance(module, nn.Conv2d):
        return ConvEntry(name, module, None)
    conv = getattr(module, "conv", None)
    if not isinstance(conv, nn.Conv2d):
        raise WeightsError(f"{name}: {type(module).__name__} is not a convolution Darknet can store")
    bn = getattr(module, "bn", None)
    if bn is not None and not isinstance(bn, nn.BatchNorm2d):
        raise WeightsError(f"{name}: BatchNorm is already fused ({type(bn).__name__}); use an unfused model")
    return ConvEntry(name, conv, bn)


def _convs_in(prefix: str, module: nn.Module) -> list[ConvEntry]:
    """Every conv unit under ``module`` in registration order (a unit = a module with ``.conv``, or a Conv2d)."""
    out = []
    if isinstance(module, nn.Conv2d) or isinstance(getattr(module, "conv", None), nn.Conv2d):
        return [_conv_entry(prefix, module)]
    for name, child in module.named_children():
        out += _convs_in(f"{prefix}.{name}", child)
    return out


def darknet_conv_order(model: nn.Module) -> list[ConvEntry]:
    """The model's convolutions in the order of a Darknet .weights file.

    Works for a :class:`DarknetNet` (cfg order) and for yololab's ``yolov3`` / ``yolov3-tiny`` detectors,
    whose reference layers follow the cfg except for the detection convs (see :data:`DARKNET_HEAD_AFTER`).
    """
    if isinstance(model, DarknetNet):
        return [_conv_entry(f"layer {i} ([convolutional] at {model.cfg_path.name}:{model.specs[i].line})", m)
                for i, m in model.conv_layers()]
    name = getattr(getattr(model, "meta", None), "name", None)
    if name not in DARKNET_HEAD_AFTER:
        raise WeightsError(f"Darknet .weights hold YOLOv3 / YOLOv3-tiny networks; {name or type(model).__name__} "
                           f"has no Darknet layout (supported: {', '.join(DARKNET_HEAD_AFTER)}, or a DarknetNet)")
    head_after = DARKNET_HEAD_AFTER[name]
    head_convs = list(model.head.m)
    entries: list[ConvEntry] = []
    for i, path in enumerate(model.reference_layers):
        module = model.get_submodule(path)
        if module is model.head:
            continue
        entries += _convs_in(path, module)
        if i in head_after:
            level = head_after[i]
            entries.append(_conv_entry(f"head.m.{level}", head_convs[level]))
    return entries


def read_darknet_file(path: str | os.PathLike) -> tuple[DarknetHeader, np.ndarray]:
    """The header and the float32 payload of a .weights file."""
    path = Path(path)
    data = path.read_bytes()
    header = DarknetHeader.from_bytes(data[:20], path)
    body = data[header.size:]
    if len(body) % 4:
        raise WeightsError(f"{path}: {len(data)} bytes, not a multiple of 4 after a Darknet header of "
                           f"{header.size} bytes")
    return header, np.frombuffer(body, dtype="<f4")


@torch.no_grad()
def load_darknet_weights(model: nn.Module, path: str | os.PathLike) -> DarknetHeader:
    """Fill ``model`` (DarknetNet or yololab yolov3 / yolov3-tiny) from a .weights file; return its header.

    Strict: the file must hold exactly the numbers the model needs. Too few -> the error names the layer and
    tensor where the data ran out; too many -> the error gives the count of extra bytes.
    """
    path = Path(path)
    header, values = read_darknet_file(path)
    entries = darknet_conv_order(model)
    needed = sum(t.numel() for e in entries for _, t in e.tensors())
    model_name = getattr(getattr(model, "meta", None), "name", type(model).__name__)
    pos = 0
    for k, entry in enumerate(entries):
        for tname, t in entry.tensors():
            n = t.numel()
            if pos + n > len(values):
                raise WeightsError(
                    f"{path}: data ran out in convolution {k} of {len(entries)} ({entry.name}, {tname} "
                    f"{tuple(t.shape)}): needs {n} floats, {len(values) - pos} left. The file holds {len(values)} "
                    f"floats, {model_name} needs {needed}: truncated, or another architecture / class count")
            t.copy_(torch.from_numpy(values[pos:pos + n].copy()).view_as(t).to(t.dtype))
            pos += n
    if pos != len(values):
        extra = (len(values) - pos) * 4
        raise WeightsError(f"{path}: {extra} extra bytes ({len(values) - pos} floats) after the last convolution "
                           f"of {model_name} (which needs {needed} floats): another architecture or class count?")
    return header


@torch.no_grad()
def save_darknet_weights(model: nn.Module, path: str | os.PathLike,
                         header: DarknetHeader | None = None) -> Path:
    """Write ``model``'s convolutions as a Darknet .weights file (atomically).

    ``header`` keeps a file's version and image count when writing back what was read
    (read -> write gives identical bytes); the default is version 0.2.0 with ``seen = 0``.
    """

    path = Path(path)
    header = header or DarknetHeader()
    chunks = [header.to_bytes()]
    for entry in darknet_conv_order(model):
        for _, t in entry.tensors():
            chunks.append(t.detach().to("cpu", torch.float32).contiguous().numpy().astype("<f4").tobytes())
    atomic_write(path, lambda f: f.write(b"".join(chunks)), fsync=True)
    return path


def darknet_model_for_size(path: str | os.PathLike) -> tuple[str, int] | None:
    """(name, num_classes) of the zoo yolov3 variant whose Darknet layout needs exactly this file's float count.

    The count is linear in the class count (only the detection convs depend on it), so two meta-device
    models per variant give the line; nothing is allocated.
    """
    path = Path(path)
    with open(path, "rb") as f:
        header = DarknetHeader.from_bytes(f.read(20), path)
    floats = (path.stat().st_size - header.size) // 4

    def needed(name: str, nc: int) -> int:
        with torch.device("meta"):
            model = registry.build(name, num_classes=nc)
        return sum(t.numel() for e in darknet_conv_order(model) for _, t in e.tensors())

    for name in DARKNET_HEAD_AFTER:
        base, per_class = needed(name, 1), needed(name, 2) - needed(name, 1)
        if floats >= base and (floats - base) % per_class == 0:
            return name, 1 + (floats - base) // per_class
    return None
