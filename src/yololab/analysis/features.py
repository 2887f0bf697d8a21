"""What a detector sees: feature maps of each stage, per-level class / objectness maps, theoretical receptive fields.

``yololab features --weights W --image IMG --out DIR`` writes (:func:`write_features`):

* ``stages/<tap>.png``: each backbone stage's output and each neck output (FPN / PAN) as an image grid (the 16
  channels of highest mean activation, each scaled to its own range);
* ``head_levels.png``: per head level (P3/8, P4/16, P5/32) the best class probability of each cell (anchor-free
  heads) or the objectness (anchor-based heads), over the photo: which scale responds to which object;
* ``receptive_fields.csv`` / ``.md`` and ``receptive_fields.png``: the theoretical receptive field of each
  stage, drawn as squares centred on the photo.

The theoretical receptive field of an output cell is the set of input pixels that any path of the network
connects it to. :func:`receptive_fields` computes it from the architecture itself, not from a formula per
layer type: a copy of the network is made linear and positive (every convolution's weights positive, biases
zero, BatchNorm and activations the identity, max pooling replaced by average pooling of the same window), so
that no path can cancel another, and the input pixels with a non-zero gradient of the centre cell are exactly
the receptive field. For a chain of convolutions this is the textbook recursion
``r_out = r_in + (k - 1) * j_in, j_out = j_in * s`` (tests/analysis/test_features.py checks it by hand).
"""

from __future__ import annotations

import copy
import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from yololab.fileio import write_bytes_atomic, write_text_atomic

ACTIVATIONS = (nn.SiLU, nn.ReLU, nn.LeakyReLU, nn.Hardswish, nn.Mish, nn.GELU, nn.ReLU6, nn.Sigmoid)


@dataclass
class Field:
    """The theoretical receptive field of one tapped output, at the cell nearest the input's centre."""

    tap: str            # e.g. "backbone.stage3", "neck.out[0]"
    stride: int         # input pixels per output cell
    size: tuple[int, int]  # (height, width) in input pixels, clipped to the input
    clipped: bool       # the field reaches the input's border: the true field is larger than ``size``


def linear_positive_copy(model: nn.Module) -> nn.Module:
    """A float64 copy of ``model`` in which no path cancels another (see the module docstring)."""
    model = copy.deepcopy(model).double().eval()

    def replace(parent: nn.Module) -> None:
        for name, child in parent.named_children():
            if isinstance(child, (nn.BatchNorm2d, *ACTIVATIONS)):
                setattr(parent, name, nn.Identity())
            elif isinstance(child, nn.MaxPool2d):
                setattr(parent, name, nn.AvgPool2d(child.kernel_size, child.stride, child.padding))
            else:
                replace(child)

    replace(model)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.fill_(1.0 / m.weight[0].numel())  # positive, and the activations stay near 1
                if m.bias is not None:
                    m.bias.zero_()
    return model


def _outputs(name: str, out) -> list[tuple[str, torch.Tensor]]:
    if isinstance(out, torch.Tensor):
        return [(name, out)]
    return [(f"{name}[{i}]", t) for i, t in enumerate(out) if isinstance(t, torch.Tensor)]


def tapped_outputs(model: nn.Module, taps: dict[str, nn.Module], x: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """Run ``model(x)`` and return the output of each module in ``taps`` (a list output: one entry per item)."""
    found: list[tuple[str, torch.Tensor]] = []
    handles = [m.register_forward_hook(lambda _m, _i, out, name=name: found.extend(_outputs(name, out)))
               for name, m in taps.items()]
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    return found


def receptive_fields(model: nn.Module, taps: dict[str, str], imgsz: int | tuple[int, int]) -> list[Field]:
    """The theoretical receptive field of each tapped output (``taps``: label -> module path in ``model``) at
    the cell nearest the centre, measured on an input of ``imgsz`` (h, w) pixels."""
    h, w = (imgsz, imgsz) if isinstance(imgsz, int) else imgsz
    lin = linear_positive_copy(model)
    x = torch.ones(1, 3, h, w, dtype=torch.float64, requires_grad=True)
    outs = tapped_outputs(lin, {label: lin.get_submodule(path) for label, path in taps.items()}, x)
    fields = []
    for name, out in outs:
        oh, ow = out.shape[-2:]
        stride = round(h / oh)
        (grad,) = torch.autograd.grad(out[0, :, (oh - 1) // 2, (ow - 1) // 2].sum(), x, retain_graph=True)
        rows, cols = torch.nonzero(grad[0].abs().sum(0), as_tuple=True)
        size = (int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1))
        clipped = bool(rows.min() == 0 or cols.min() == 0 or rows.max() == h - 1 or cols.max() == w - 1)
        fields.append(Field(name, stride, size, clipped))
    return fields


def zoo_taps(model: nn.Module) -> dict[str, str]:
    """Each backbone stage (direct child of ``model.backbone``) and the neck's outputs of a zoo detector."""
    taps = {f"backbone.{n}": f"backbone.{n}" for n, _ in model.backbone.named_children()}
    taps["neck"] = "neck"
    return taps


# ------------------------------------------------------------------------------------------------ pictures

def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


def feature_grid(name: str, fmap: torch.Tensor, channels: int = 16) -> bytes:
    """PNG: the ``channels`` channels of highest mean activation of ``fmap`` (C, H, W), each to its own range."""
    import matplotlib.pyplot as plt

    order = fmap.mean((1, 2)).argsort(descending=True)[:channels].tolist()
    cols = min(len(order), 8)
    rows = math.ceil(len(order) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.6 * rows + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, c in zip(axes.flat, order):
        ax.imshow(fmap[c].numpy(), cmap="viridis")
        ax.set_title(f"ch {c}", fontsize=7)
    fig.suptitle(f"{name}: {tuple(fmap.shape)} (C, H, W), top {len(order)} channels by mean activation", fontsize=8)
    data = _png(fig)
    plt.close(fig)
    return data


def head_level_maps(model: nn.Module, feats: list[torch.Tensor]) -> tuple[str, list[torch.Tensor]]:
    """Per head level an (H, W) map in [0, 1]: best class probability (anchor-free) or objectness (anchor-based)."""
    head = model.head
    if hasattr(head, "cv3"):
        return "best class probability", [head.cv3[i](f)[0].sigmoid().amax(0) for i, f in enumerate(feats)]
    maps = []
    for i, f in enumerate(feats):
        raw = head.m[i](f)[0]
        maps.append(raw.view(head.na, head.no, *raw.shape[-2:])[:, 4].sigmoid().amax(0))
    return "objectness", maps


def _overlay_figure(image_rgb: np.ndarray, panels: list[tuple[str, np.ndarray | None]], title: str,
                    draw=None) -> bytes:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4), squeeze=False)
    h, w = image_rgb.shape[:2]
    for ax, (label, heat) in zip(axes[0], panels):
        ax.imshow(image_rgb)
        if heat is not None:
            ax.imshow(heat, cmap="jet", alpha=0.5, extent=(0, w, h, 0), vmin=0, vmax=1)
        if draw is not None:
            draw(ax)
        ax.set_title(label, fontsize=9)
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    data = _png(fig)
    plt.close(fig)
    return data


def receptive_field_figure(image_rgb: np.ndarray, fields: list[Field], gain: float, title: str) -> bytes:
    """PNG: each field as a square centred on the photo (sizes in the photo's pixels)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    h, w = image_rgb.shape[:2]
    colors = plt.get_cmap("plasma")(np.linspace(0, 0.9, len(fields)))

    def draw(ax):
        for f, color in zip(fields, colors):
            fh, fw = f.size[0] / gain, f.size[1] / gain
            ax.add_patch(Rectangle((w / 2 - fw / 2, h / 2 - fh / 2), fw, fh, fill=False, lw=1.5, color=color,
                                   label=f"{f.tap} /{f.stride}: {f.size[0]}{'+' if f.clipped else ''} px"))
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        ax.set_xlim(0, w)
        ax.set_ylim(h, 0)

    return _overlay_figure(image_rgb, [("", None)], title, draw)


def fields_markdown(fields: list[Field], imgsz: int) -> str:
    rows = [f"| {f.tap} | {f.stride} | {f.size[0]} x {f.size[1]}{' (clipped)' if f.clipped else ''} |"
            for f in fields]
    return (f"Theoretical receptive field of the centre cell, on a {imgsz} x {imgsz} input (clipped: the field "
            "reaches the border, the true one is larger).\n\n| output | stride | receptive field (px) |\n"
            "|---|---:|---|\n" + "\n".join(rows) + "\n")


def write_features(model: nn.Module, image_bgr: np.ndarray, out: Path, imgsz: int = 640,
                   channels: int = 16) -> list[Path]:
    """Write everything of the module docstring for ``model`` on one photo into ``out``; return the files."""
    from yololab.data.augment import letterbox

    model = model.float().eval()
    boxed, _, _ = letterbox(image_bgr, (imgsz, imgsz))
    rgb = np.ascontiguousarray(boxed[:, :, ::-1])
    x = torch.from_numpy(rgb.transpose(2, 0, 1).copy()).float().div(255)[None]
    taps = zoo_taps(model)
    written = []
    with torch.no_grad():
        outs = tapped_outputs(model, {k: model.get_submodule(v) for k, v in taps.items()}, x)
        for name, t in outs:
            written.append(write_bytes_atomic(out / "stages" / f"{name}.png", feature_grid(name, t[0], channels)))
        neck = [t for name, t in outs if name.startswith("neck[")]
        what, maps = head_level_maps(model, neck)
    panels = [(f"P{int(math.log2(s))}/{s}: {what}",
               torch.nn.functional.interpolate(m[None, None], size=(imgsz, imgsz), mode="nearest")[0, 0].numpy())
              for s, m in zip(model.meta.strides, maps)]
    written.append(write_bytes_atomic(out / "head_levels.png", _overlay_figure(
        rgb, panels, f"{model.meta.name}: which scale responds where ({what} per head level)")))
    fields = receptive_fields(model, taps, imgsz)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["output", "stride", "height_px", "width_px", "clipped"])
    writer.writerows([f.tap, f.stride, f.size[0], f.size[1], int(f.clipped)] for f in fields)
    written.append(write_text_atomic(out / "receptive_fields.csv", buf.getvalue()))
    written.append(write_text_atomic(out / "receptive_fields.md", fields_markdown(fields, imgsz)))
    written.append(write_bytes_atomic(out / "receptive_fields.png", receptive_field_figure(
        rgb, fields, 1.0, f"{model.meta.name}: theoretical receptive field of each stage, centred ({imgsz} px "
        "input; + : clipped by the input)")))
    return [Path(p) for p in written]
