"""Detection heads: the anchor-based head of YOLOv3/YOLOv5 and the anchor-free DFL head of YOLOv8/YOLO11.

Both take one feature map per level (strides ascending, e.g. P3/8, P4/16, P5/32) and

* in training mode return the raw per-level maps that the losses consume;
* in eval mode return one decoded tensor in the layout of the reference implementation, boxes as
  centre-x, centre-y, width, height in input pixels:
  ``AnchorHead`` -> ``(B, A, 5 + nc)`` (box, objectness, class scores), A ordered level, anchor, y, x;
  ``DetectHead`` -> ``(B, 4 + nc, A)`` (box, class scores), A ordered level, y, x.

Under autocast (bf16 / fp16 training or inference) the last step of both heads, the 1x1 output convolutions
and the box decoding, still runs in float32 (:func:`float32_under_autocast`): with 8 significant bits a
decoded coordinate near 600 px would be rounded to a multiple of 4 px, and a class logit near -11 (the prior
of an empty cell) to a multiple of 1/16. Those ops are ~1 % of the FLOPs. ``float32_modules()`` lists the
layers whose weights must therefore stay float32 (yololab.deploy stores the other convs in bf16).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import nn

from yololab.errors import YololabError
from yololab.nn.blocks import DFL
from yololab.nn.conv import Conv, DWConv


@contextlib.contextmanager
def float32_under_autocast(device: torch.device) -> Iterator[Callable[[torch.Tensor], torch.Tensor]]:
    """Run the enclosed ops in float32 where autocast is on for ``device``; yields the cast for their inputs.

    Without autocast nothing changes and the cast is the identity (a float16 model stays float16).
    """
    if not (torch.amp.is_autocast_available(device.type) and torch.is_autocast_enabled(device.type)):
        yield lambda t: t
        return
    with torch.autocast(device.type, enabled=False):
        yield lambda t: t.float()


class _GridCache:
    """Anchor grids per feature-map shape(s) and device, built once: every eval call of a head at a given input
    size needs the same ones. Inference-mode tensors are kept apart (they cannot enter autograd later).
    While tracing (ONNX export) the grids are always built afresh, so that the graph computes them from the
    input's shape (an export with dynamic height and width) instead of holding a cached constant."""

    def __init__(self):
        self.grids: dict[tuple, object] = {}

    def get(self, shapes: tuple, device: torch.device, make: Callable[[tuple, torch.device], object]):
        if torch.jit.is_tracing():
            return make(shapes, device)
        key = (shapes, device, torch.is_inference_mode_enabled())
        if key not in self.grids:
            if len(self.grids) >= 16:  # many input sizes (rect batches): keep the cache small
                self.grids.clear()
            self.grids[key] = make(shapes, device)
        return self.grids[key]


def make_anchors(shapes: Sequence[tuple[int, int]], strides: Sequence[int], offset: float = 0.5,
                 device: torch.device | None = None, dtype: torch.dtype = torch.float32
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Anchor points of an anchor-free head: the centre of every grid cell of every level.

    ``shapes`` are the (H, W) of each level. Returns ``points`` (A, 2) as (x, y) in grid units of its
    own level (cell centre = index + offset) and ``stride`` (A, 1), ordered level, y, x.
    """
    points, stride_t = [], []
    for (h, w), s in zip(shapes, strides):
        sx = torch.arange(w, device=device, dtype=dtype) + offset
        sy = torch.arange(h, device=device, dtype=dtype) + offset
        yy, xx = torch.meshgrid(sy, sx, indexing="ij")
        points.append(torch.stack((xx, yy), -1).view(-1, 2))
        stride_t.append(torch.full((h * w, 1), float(s), device=device, dtype=dtype))
    return torch.cat(points), torch.cat(stride_t)


def dist2bbox(distance: torch.Tensor, points: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """(left, top, right, bottom) distances from anchor points -> (cx, cy, w, h), along ``dim``."""
    lt, rb = distance.chunk(2, dim)
    x1y1 = points - lt
    x2y2 = points + rb
    return torch.cat(((x1y1 + x2y2) / 2, x2y2 - x1y1), dim)


class AnchorHead(nn.Module):
    """YOLOv3 / YOLOv5 head: per level, one 1x1 conv predicting ``na`` boxes of ``5 + nc`` values per cell.

    Args:
        num_classes: number of classes (nc).
        anchors: per level, the anchor sizes in input pixels, flat ``[w0, h0, w1, h1, ...]``.
        in_channels: channels of each input level.
        strides: stride of each level (8, 16, 32 ...).
        decode: ``"yolov5"`` -> ``xy = (2 sigmoid(t) - 0.5 + grid) * stride``, ``wh = (2 sigmoid(t))^2 * anchor``;
            ``"darknet"`` -> ``xy = (sigmoid(t) + grid) * stride``, ``wh = exp(t) * anchor``.

    The ``anchors`` buffer is ``(nl, na, 2)`` in input pixels (yolov5 stores them divided by the stride;
    :func:`yololab.checkpoint.reference.reference_state_dict_to_yololab` converts). Training output: per level ``(B, na, H, W, 5 + nc)``.
    """

    def __init__(self, num_classes: int, anchors: Sequence[Sequence[float]], in_channels: Sequence[int],
                 strides: Sequence[int], decode: str = "yolov5"):
        super().__init__()
        if decode not in ("yolov5", "darknet"):
            raise ValueError(f"decode must be 'yolov5' or 'darknet', got {decode!r}")
        if len(anchors) != len(in_channels) or len(strides) != len(in_channels):
            raise YololabError(f"anchors: expected one list per detection level ({len(in_channels)}), "
                               f"got {len(anchors)}")
        if len({len(a) for a in anchors}) != 1 or len(anchors[0]) % 2 or not anchors[0]:
            raise YololabError(f"anchors: every level needs the same number of (w, h) pairs, got {anchors}")
        self.nc = num_classes
        self.no = num_classes + 5  # outputs per anchor: x, y, w, h, objectness, classes
        self.nl = len(anchors)
        self.na = len(anchors[0]) // 2
        self.strides = [int(s) for s in strides]
        self.decode = decode
        self.register_buffer("anchors", torch.tensor(anchors, dtype=torch.float32).view(self.nl, self.na, 2))
        self.m = nn.ModuleList(nn.Conv2d(c, self.no * self.na, 1) for c in in_channels)
        self._grids = _GridCache()
        self._init_biases()

    @torch.no_grad()
    def _init_biases(self) -> None:
        """Prior-probability bias init (focal loss paper, sec. 3.3) as yolov5 does it:
        about 8 objects per 640x640 image, and class probability 0.6 / nc."""
        for conv, s in zip(self.m, self.strides):
            b = conv.bias.view(self.na, -1)
            b[:, 4] += math.log(8 / (640 / s) ** 2)
            b[:, 5:] += math.log(0.6 / (self.nc - 0.99999))

    def float32_modules(self) -> list[nn.Module]:
        """The layers that run in float32 even under autocast (module docstring)."""
        return list(self.m)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor] | torch.Tensor:
        with float32_under_autocast(xs[0].device) as fp32:
            outputs = []
            for conv, x in zip(self.m, xs):
                p = conv(fp32(x))
                bs, _, ny, nx = p.shape
                # (B, na * no, H, W) -> (B, na, H, W, no)
                outputs.append(p.view(bs, self.na, self.no, ny, nx).permute(0, 1, 3, 4, 2).contiguous())
            if self.training:
                return outputs
            return torch.cat([self._decode_level(p, i) for i, p in enumerate(outputs)], 1)

    @staticmethod
    def _make_grid(shape: tuple[int, int], device: torch.device) -> torch.Tensor:
        """The (1, 1, H, W, 2) grid of cell indices (x, y) of one level."""
        ny, nx = shape
        yv, xv = torch.meshgrid(torch.arange(ny, device=device, dtype=torch.float32),
                                torch.arange(nx, device=device, dtype=torch.float32), indexing="ij")
        return torch.stack((xv, yv), 2).view(1, 1, ny, nx, 2)

    def _decode_level(self, p: torch.Tensor, i: int) -> torch.Tensor:
        """(B, na, H, W, no) raw -> (B, na*H*W, no) boxes in pixels, objectness and class probabilities."""
        bs, na, ny, nx, no = p.shape
        stride = self.strides[i]
        grid = self._grids.get((ny, nx), p.device, self._make_grid).to(p.dtype)
        anchor = self.anchors[i].to(p.dtype).view(1, na, 1, 1, 2)
        if self.decode == "yolov5":
            xy, wh, conf = p.sigmoid().split((2, 2, self.nc + 1), 4)
            xy = (xy * 2 + (grid - 0.5)) * stride  # centre may move up to half a cell outside its cell
            wh = (wh * 2) ** 2 * anchor  # at most 4x the anchor
        else:  # darknet
            xy, wh, conf = p.split((2, 2, self.nc + 1), 4)
            xy = (xy.sigmoid() + grid) * stride
            wh = torch.exp(wh) * anchor
            conf = conf.sigmoid()
        return torch.cat((xy, wh, conf), 4).view(bs, na * ny * nx, no)


class DetectHead(nn.Module):
    """YOLOv8 / YOLO11 anchor-free decoupled head with Distribution Focal Loss box regression.

    Per level, two branches of two convs and a 1x1 output conv:
    ``cv2`` (box) -> ``4 * reg_max`` logits: a distribution over the distances (in strides, 0..reg_max-1)
    from the cell centre to each box side; ``cv3`` (cls) -> ``nc`` class logits. With ``dw_cls=True``
    (YOLO11) the class branch uses depthwise + pointwise convs instead of two 3x3 convs.

    Training output: per level ``(B, 4 * reg_max + nc, H, W)``, box logits first.
    Eval output: ``(B, 4 + nc, A)``: decoded cx, cy, w, h in pixels, then class probabilities.
    """

    def __init__(self, num_classes: int, in_channels: Sequence[int], strides: Sequence[int], reg_max: int = 16,
                 dw_cls: bool = False):
        super().__init__()
        self.nc = num_classes
        self.nl = len(in_channels)
        self.reg_max = reg_max
        self.no = num_classes + 4 * reg_max
        self.strides = [int(s) for s in strides]
        c2 = max(16, in_channels[0] // 4, reg_max * 4)  # box branch width
        c3 = max(in_channels[0], min(num_classes, 100))  # class branch width
        self.cv2 = nn.ModuleList(
            nn.Sequential(Conv(c, c2, 3), Conv(c2, c2, 3), nn.Conv2d(c2, 4 * reg_max, 1)) for c in in_channels)
        if dw_cls:
            self.cv3 = nn.ModuleList(
                nn.Sequential(nn.Sequential(DWConv(c, c, 3), Conv(c, c3, 1)),
                              nn.Sequential(DWConv(c3, c3, 3), Conv(c3, c3, 1)),
                              nn.Conv2d(c3, num_classes, 1))
                for c in in_channels)
        else:
            self.cv3 = nn.ModuleList(
                nn.Sequential(Conv(c, c3, 3), Conv(c3, c3, 3), nn.Conv2d(c3, num_classes, 1)) for c in in_channels)
        self.dfl = DFL(reg_max) if reg_max > 1 else nn.Identity()
        self._anchors = _GridCache()
        self._init_biases()

    @torch.no_grad()
    def _init_biases(self) -> None:
        """As the reference: box logits start at 2.0; class bias for ~5 objects per 640x640 image."""
        for box, cls, s in zip(self.cv2, self.cv3, self.strides):
            box[-1].bias.fill_(2.0)
            cls[-1].bias.fill_(math.log(5 / self.nc / (640 / s) ** 2))

    def float32_modules(self) -> list[nn.Module]:
        """The layers that run in float32 even under autocast (module docstring)."""
        return [branch[-1] for branch in (*self.cv2, *self.cv3)] + list(self.dfl.modules())

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor] | torch.Tensor:
        outputs = self.raw(xs)
        return outputs if self.training else self.decode(outputs)

    def raw(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        """Per level ``(B, 4 * reg_max + nc, H, W)``: box distribution logits, then class logits."""
        outputs = []
        for x, box, cls in zip(xs, self.cv2, self.cv3):
            b, c = box[1](box[0](x)), cls[1](cls[0](x))
            with float32_under_autocast(x.device) as fp32:
                outputs.append(torch.cat((box[2](fp32(b)), cls[2](fp32(c))), 1))
        return outputs

    def decode(self, outputs: list[torch.Tensor]) -> torch.Tensor:
        """Per-level raw maps -> (B, 4 + nc, A) boxes (cx, cy, w, h pixels) and class probabilities."""
        with float32_under_autocast(outputs[0].device) as fp32:
            bs = outputs[0].shape[0]
            flat = torch.cat([fp32(o).view(bs, self.no, -1) for o in outputs], 2)  # (B, 4*reg_max + nc, A)
            box_logits, cls_logits = flat.split((4 * self.reg_max, self.nc), 1)
            points, stride = self._anchors.get(tuple(tuple(o.shape[2:]) for o in outputs), flat.device,
                                               lambda shapes, device: make_anchors(shapes, self.strides, device=device))
            points, stride = points.to(flat.dtype), stride.to(flat.dtype)
            dist = self.dfl(box_logits)  # (B, 4, A) ltrb in grid units
            boxes = dist2bbox(dist, points.transpose(0, 1).unsqueeze(0), dim=1) * stride.transpose(0, 1)
            return torch.cat((boxes, cls_logits.sigmoid()), 1)
