"""Build a network from a Darknet ``.cfg`` file: the original definition of YOLOv3, YOLOv3-tiny, Darknet-53.

A ``.cfg`` is an INI-like list of sections; every section after ``[net]`` is one layer, and layers refer to
earlier ones by index (``[route] layers = -1, 61``, ``[shortcut] from = -3``). :func:`parse_cfg` reads the
file into :class:`Section` records (keeping line numbers for error messages) and :class:`DarknetNet`
interprets the layer list, the way Darknet itself does, in one readable ``forward``.

Supported sections: ``[net]``, ``[convolutional]``, ``[shortcut]``, ``[route]``, ``[upsample]``, ``[maxpool]``,
``[avgpool]``, ``[softmax]``, ``[yolo]``; anything else is a :class:`~yololab.errors.ConfigError` naming the file,
the section and its line. Training-only keys (learning rate, augmentation, ``jitter`` ...) are accepted and
ignored. Two Darknet details matter for exact outputs:

* ``[maxpool]`` pads with ``-inf`` (Darknet skips cells outside the image), ``padding = size - 1`` by default,
  ``padding // 2`` of it on the top/left. YOLOv3-tiny's ``size=2 stride=1`` pool therefore keeps the size,
  padding one row and column on the bottom/right.
* ``[yolo]`` decodes ``xy = (sigmoid(t) + cell) * stride``, ``wh = exp(t) * anchor`` and sigmoid objectness and
  class scores. In eval mode :class:`DarknetNet` returns all levels as ``(B, A, 5 + nc)``, levels ordered by
  stride ascending (P3, P4, P5), the layout of yololab's anchor-based models, so the two compare one to one.

BatchNorm uses yololab's ``BN_EPS`` (1e-3, that of the yolov5 / Ultralytics references) so that the network
equals ``build_model("yolov3")``; Darknet itself divides by ``sqrt(var) + 1e-6``, a difference far below
fp32 noise for trained variances.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from yololab.errors import ConfigError
from yololab.nn.conv import Conv

# Keys each section may have. Keys in TRAINING_KEYS only matter to Darknet's trainer and are ignored here.
SECTION_KEYS = {
    "net": {"width", "height", "channels"},
    "convolutional": {"batch_normalize", "filters", "size", "stride", "pad", "padding", "activation", "groups"},
    "shortcut": {"from", "activation"},
    "route": {"layers"},
    "upsample": {"stride"},
    "maxpool": {"size", "stride", "padding"},
    "avgpool": set(),
    "softmax": {"groups"},
    "yolo": {"mask", "anchors", "classes", "num"},
}
TRAINING_KEYS = {
    "net": {"batch", "subdivisions", "momentum", "decay", "angle", "saturation", "exposure", "hue",
            "learning_rate", "burn_in", "max_batches", "policy", "steps", "scales", "power", "max_crop",
            "min_crop", "aspect", "mosaic", "flip", "step", "gamma"},
    "yolo": {"jitter", "ignore_thresh", "truth_thresh", "random"},
}
ACTIVATIONS = {"leaky", "linear", "relu", "logistic"}


@dataclass
class Section:
    """One ``[type]`` block of a .cfg: its options as strings and where each came from."""

    type: str
    line: int  # line number of the ``[type]`` header (1-based)
    options: dict[str, str] = field(default_factory=dict)
    option_lines: dict[str, int] = field(default_factory=dict)


def parse_cfg(path: str | os.PathLike) -> list[Section]:
    """Read a Darknet .cfg into sections, checking section types and keys (errors name file, section, line)."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read Darknet cfg ({e})") from None
    sections: list[Section] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise ConfigError(f"{path}:{lineno}: malformed section header {raw.strip()!r}")
            kind = line[1:-1].strip()
            if kind not in SECTION_KEYS:
                raise ConfigError(f"{path}:{lineno}: unsupported section [{kind}]; supported: "
                                  f"{', '.join(f'[{k}]' for k in SECTION_KEYS)}")
            sections.append(Section(kind, lineno))
            continue
        if "=" not in line:
            raise ConfigError(f"{path}:{lineno}: expected 'key=value', found {raw.strip()!r}")
        if not sections:
            raise ConfigError(f"{path}:{lineno}: option {raw.strip()!r} before the first [section]")
        key, value = (s.strip() for s in line.split("=", 1))
        sec = sections[-1]
        if key not in SECTION_KEYS[sec.type] and key not in TRAINING_KEYS.get(sec.type, ()):
            raise ConfigError(f"{path}:{lineno}: unsupported key '{key}' in [{sec.type}] (section at line "
                              f"{sec.line}); supported: {', '.join(sorted(SECTION_KEYS[sec.type])) or 'none'}")
        sec.options[key] = value
        sec.option_lines[key] = lineno
    if not sections or sections[0].type != "net":
        raise ConfigError(f"{path}: a Darknet cfg starts with a [net] section")
    if any(s.type == "net" for s in sections[1:]):
        s = next(s for s in sections[1:] if s.type == "net")
        raise ConfigError(f"{path}:{s.line}: a second [net] section")
    return sections


class _Reader:
    """Typed access to a section's options, with errors naming file, section and line."""

    def __init__(self, path: Path, sec: Section):
        self.path, self.sec = path, sec

    def where(self, key: str | None = None) -> str:
        line = self.sec.option_lines.get(key, self.sec.line) if key else self.sec.line
        return f"{self.path}:{line}: [{self.sec.type}] (section at line {self.sec.line})"

    def error(self, key: str | None, msg: str) -> ConfigError:
        return ConfigError(f"{self.where(key)}: {msg}")

    def int(self, key: str, default: int | None = None) -> int:
        if key not in self.sec.options:
            if default is None:
                raise self.error(None, f"missing required key '{key}'")
            return default
        try:
            return int(self.sec.options[key])
        except ValueError:
            raise self.error(key, f"'{key}' must be an integer, found {self.sec.options[key]!r}") from None

    def ints(self, key: str) -> list[int]:
        if key not in self.sec.options:
            raise self.error(None, f"missing required key '{key}'")
        try:
            return [int(v) for v in self.sec.options[key].split(",") if v.strip()]
        except ValueError:
            raise self.error(key, f"'{key}' must be a comma-separated list of integers, found "
                                  f"{self.sec.options[key]!r}") from None

    def str(self, key: str, default: str) -> str:
        return self.sec.options.get(key, default)


def _activation(r: _Reader, key: str = "activation") -> str:
    act = r.str(key, "logistic" if r.sec.type == "convolutional" else "linear")
    if act not in ACTIVATIONS:
        raise r.error(key, f"unsupported activation {act!r}; supported: {', '.join(sorted(ACTIVATIONS))}")
    return act


def _act_module(act: str) -> nn.Module:
    return {"leaky": nn.LeakyReLU(0.1, inplace=True), "linear": nn.Identity(), "relu": nn.ReLU(inplace=True),
            "logistic": nn.Sigmoid()}[act]


class DarknetMaxPool(nn.Module):
    """Darknet's max pool: ``padding`` (default size - 1) cells of ``-inf``, ``padding // 2`` of them top/left.

    Output size ``(h + padding - size) // stride + 1``, exactly as Darknet computes it.
    """

    def __init__(self, size: int, stride: int, padding: int):
        super().__init__()
        self.size, self.stride, self.padding = size, stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        begin = self.padding // 2
        out_h = (h + self.padding - self.size) // self.stride + 1
        out_w = (w + self.padding - self.size) // self.stride + 1
        end_h = (out_h - 1) * self.stride + self.size - h - begin  # what the last window needs past the edge
        end_w = (out_w - 1) * self.stride + self.size - w - begin
        x = F.pad(x, (begin, max(end_w, 0), begin, max(end_h, 0)), value=float("-inf"))
        return F.max_pool2d(x, self.size, self.stride)[..., :out_h, :out_w]

    def extra_repr(self) -> str:
        return f"size={self.size}, stride={self.stride}, padding={self.padding}"


class YoloLayer(nn.Module):
    """Darknet's ``[yolo]`` output layer: reshapes a conv map and, in eval mode, decodes it.

    ``anchors``: this level's anchors in input pixels (the ``mask``-selected ones), ``(na, 2)``.
    """

    def __init__(self, anchors: list[tuple[float, float]], num_classes: int, stride: int):
        super().__init__()
        self.register_buffer("anchors", torch.tensor(anchors, dtype=torch.float32).view(-1, 2))
        self.na, self.nc, self.no = len(anchors), num_classes, num_classes + 5
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, na * no, H, W) -> (B, na, H, W, no), raw."""
        bs, _, ny, nx = x.shape
        return x.view(bs, self.na, self.no, ny, nx).permute(0, 1, 3, 4, 2).contiguous()

    def decode(self, p: torch.Tensor, input_size: tuple[int, int]) -> torch.Tensor:
        """Raw (B, na, H, W, no) -> (B, na*H*W, no): cx, cy, w, h in input pixels, objectness, class scores."""
        bs, na, ny, nx, no = p.shape
        stride = torch.tensor([input_size[1] / nx, input_size[0] / ny], device=p.device, dtype=p.dtype)
        yv, xv = torch.meshgrid(torch.arange(ny, device=p.device, dtype=p.dtype),
                                torch.arange(nx, device=p.device, dtype=p.dtype), indexing="ij")
        grid = torch.stack((xv, yv), 2).view(1, 1, ny, nx, 2)
        xy = (p[..., :2].sigmoid() + grid) * stride
        wh = torch.exp(p[..., 2:4]) * self.anchors.to(p.dtype).view(1, na, 1, 1, 2)
        return torch.cat((xy, wh, p[..., 4:].sigmoid()), 4).view(bs, na * ny * nx, no)

    def extra_repr(self) -> str:
        return f"anchors={self.anchors.tolist()}, num_classes={self.nc}, stride={self.stride}"


@dataclass
class LayerSpec:
    """One Darknet layer as the interpreter needs it."""

    type: str
    inputs: list[int]  # absolute indices of the layers it reads (route / shortcut); [i - 1] otherwise
    out_channels: int
    stride: int  # total stride of its output w.r.t. the network input
    line: int


class DarknetNet(nn.Module):
    """A network interpreted from a Darknet .cfg, layer by layer, exactly as Darknet runs it.

    ``layers[i]`` is the module of cfg layer ``i`` (counting sections after ``[net]``; ``nn.Identity`` for
    route / shortcut / yolo bookkeeping). ``num_classes`` (optional) rewrites every ``[yolo]`` ``classes`` and
    the ``filters`` of the convolution feeding it, as one would edit the cfg for a custom dataset.

    Forward: detection cfgs return, in training mode, the raw per-level maps ``(B, na, H, W, 5 + nc)`` (stride
    ascending) and in eval mode one ``(B, A, 5 + nc)`` tensor of decoded boxes; a classifier cfg (Darknet-53)
    returns its ``[softmax]`` output ``(B, classes)`` (logits in training mode, probabilities in eval mode).
    """

    def __init__(self, cfg: str | os.PathLike, num_classes: int | None = None):
        super().__init__()
        self.cfg_path = Path(cfg)
        self.sections = parse_cfg(self.cfg_path)
        net = _Reader(self.cfg_path, self.sections[0])
        self.width, self.height = net.int("width", 416), net.int("height", 416)
        in_channels = net.int("channels", 3)
        self.layers = nn.ModuleList()
        self.specs: list[LayerSpec] = []
        body = self.sections[1:]
        if num_classes is not None:
            self._override_classes(body, num_classes)
        channels, stride = in_channels, 1  # of the previous layer's output
        for i, sec in enumerate(body):
            r = _Reader(self.cfg_path, sec)
            module, inputs = nn.Identity(), [i - 1]
            if sec.type == "convolutional":
                filters, size = r.int("filters"), r.int("size", 1)
                s, groups = r.int("stride", 1), r.int("groups", 1)
                pad = size // 2 if r.int("pad", 0) else r.int("padding", 0)
                act = _activation(r)
                if r.int("batch_normalize", 0):
                    module = Conv(channels, filters, size, s, pad, g=groups, act=_act_module(act))
                else:  # the detection convs: plain conv with bias, linear
                    module = nn.Sequential()
                    module.add_module("conv", nn.Conv2d(channels, filters, size, s, pad, groups=groups, bias=True))
                    module.add_module("act", _act_module(act))
                channels, stride = filters, stride * s
            elif sec.type == "maxpool":
                size = r.int("size", 1)
                s = r.int("stride", size)
                module = DarknetMaxPool(size, s, r.int("padding", size - 1))
                stride *= s
            elif sec.type == "avgpool":
                module = nn.AdaptiveAvgPool2d(1)
            elif sec.type == "softmax":
                if r.int("groups", 1) != 1:
                    raise r.error("groups", "only groups=1 is supported")
            elif sec.type == "upsample":
                s = r.int("stride", 2)
                module = nn.Upsample(scale_factor=s, mode="nearest")
                stride //= s
            elif sec.type == "shortcut":
                if _activation(r) != "linear":
                    raise r.error("activation", "only activation=linear is supported for [shortcut]")
                src = self._absolute(r, "from", r.ints("from"), i)
                if len(src) != 1:
                    raise r.error("from", "[shortcut] takes exactly one layer")
                if self.specs[src[0]].out_channels != channels:
                    raise r.error("from", f"adds layer {src[0]} ({self.specs[src[0]].out_channels} channels) to "
                                          f"layer {i - 1} ({channels} channels)")
                inputs = [i - 1, src[0]]
            elif sec.type == "route":
                inputs = self._absolute(r, "layers", r.ints("layers"), i)
                channels = sum(self.specs[j].out_channels for j in inputs)
                stride = self.specs[inputs[0]].stride
            elif sec.type == "yolo":
                module = self._yolo_layer(r, channels, stride)
            self.layers.append(module)
            self.specs.append(LayerSpec(sec.type, inputs, channels, stride, sec.line))
        # detection outputs, ordered like yololab's heads: stride ascending (P3, P4, P5)
        yolo = [i for i, s in enumerate(self.specs) if s.type == "yolo"]
        self.yolo_layers = sorted(yolo, key=lambda i: self.specs[i].stride)
        self.output_layer = len(self.specs) - 1

    @staticmethod
    def _absolute(r: _Reader, key: str, refs: list[int], i: int) -> list[int]:
        out = [i + j if j < 0 else j for j in refs]
        for j in out:
            if not 0 <= j < i:
                raise r.error(key, f"refers to layer {j}, but only layers 0..{i - 1} come before layer {i}")
        return out

    def _yolo_layer(self, r: _Reader, channels: int, stride: int) -> YoloLayer:
        flat = [float(v) for v in r.str("anchors", "").split(",") if v.strip()]
        if not flat or len(flat) % 2:
            raise r.error("anchors", "needs an even number of values (w, h pairs)")
        anchors = list(zip(flat[0::2], flat[1::2]))
        if r.int("num", len(anchors)) != len(anchors):
            raise r.error("num", f"num={r.int('num')} but {len(anchors)} anchors are listed")
        mask = r.ints("mask") if "mask" in r.sec.options else list(range(len(anchors)))
        if any(not 0 <= m < len(anchors) for m in mask):
            raise r.error("mask", f"mask {mask} indexes past the {len(anchors)} anchors")
        nc = r.int("classes", 20)
        if channels != len(mask) * (nc + 5):
            raise r.error(None, f"the layer before has {channels} filters; {len(mask)} anchors x (5 + {nc} "
                                f"classes) needs {len(mask) * (nc + 5)}")
        return YoloLayer([anchors[m] for m in mask], nc, stride)

    def _override_classes(self, body: list[Section], nc: int) -> None:
        for i, sec in enumerate(body):
            if sec.type != "yolo":
                continue
            r = _Reader(self.cfg_path, sec)
            na = len(r.ints("mask")) if "mask" in sec.options else r.int("num")
            sec.options["classes"] = str(nc)
            conv = next((s for s in reversed(body[:i]) if s.type == "convolutional"), None)
            if conv is None:
                raise r.error(None, "no [convolutional] before this [yolo]")
            conv.options["filters"] = str(na * (nc + 5))

    @property
    def num_classes(self) -> int:
        return self.layers[self.yolo_layers[0]].nc if self.yolo_layers else self.specs[-1].out_channels

    def conv_layers(self) -> list[tuple[int, nn.Module]]:
        """(index, module) of every [convolutional] layer in cfg order: the order of a .weights file."""
        return [(i, self.layers[i]) for i, s in enumerate(self.specs) if s.type == "convolutional"]

    def forward(self, x: torch.Tensor):
        input_size = x.shape[-2:]
        outputs: list[torch.Tensor] = []  # every layer's output, for route / shortcut
        raw: dict[int, torch.Tensor] = {}
        for i, (spec, layer) in enumerate(zip(self.specs, self.layers)):
            if spec.type == "route":
                x = torch.cat([outputs[j] for j in spec.inputs], 1)
            elif spec.type == "shortcut":
                x = outputs[-1] + outputs[spec.inputs[1]]
            elif spec.type == "yolo":
                raw[i] = layer(x)  # Darknet passes the conv map on unchanged
            elif spec.type == "softmax":
                x = x.flatten(1)
                x = x if self.training else x.softmax(1)
            else:
                x = layer(x)
            outputs.append(x)
        if not self.yolo_layers:
            return x
        if self.training:
            return [raw[i] for i in self.yolo_layers]
        return torch.cat([self.layers[i].decode(raw[i], input_size) for i in self.yolo_layers], 1)
