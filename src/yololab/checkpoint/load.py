"""Which weights format a file holds, and loading any of them into a zoo model: ``build_model(weights=...)``.

Four formats, told apart by the file's bytes, never by its name: yololab checkpoints (:mod:`.native`),
Ultralytics and yolov5 ``.pt`` files (:mod:`.reference`), Darknet ``.weights`` (:mod:`.darknet`).
:func:`load_weights` puts any of them into a model and refuses silent partial loads: every tensor is loaded,
or the error names the first one that does not fit. The one tolerated difference is the class count.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from yololab.checkpoint.darknet import DarknetHeader, load_darknet_weights
from yololab.checkpoint.native import load_checkpoint, model_build_kwargs
from yololab.checkpoint.reference import (ZIP_MAGIC, describe_start, pickle_globals, read_reference_checkpoint,
                                          reference_state_dict_to_yololab)
from yololab.errors import WeightsError
from yololab.models import registry

log = logging.getLogger(__name__)


def detect_format(path: str | os.PathLike) -> str:
    """``"yololab"``, ``"ultralytics"``, ``"yolov5"`` or ``"darknet"``, from the file's bytes.

    A torch archive whose pickle names other objects than plain data and the reference packages' classes is
    ``"torch-pickle"``: loading it goes through the restricted loader, which refuses what it does not know.
    Raises :class:`WeightsError` describing the file when it is none of these.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such weights file")
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(256)
    if head.startswith(ZIP_MAGIC):
        roots = {name.split(".")[0] for name in pickle_globals(path)}
        if "ultralytics" in roots:
            return "ultralytics"
        if roots & {"yolov5", "models"}:
            return "yolov5"
        return "torch-pickle" if roots else "yololab"  # plain data: the format fields are checked on load
    header = DarknetHeader.sniff(head)
    if header is not None and size > header.size:
        if (size - header.size) % 4:
            raise WeightsError(f"{path}: {size} bytes, not a multiple of 4 after a Darknet header of {header.size} "
                               "bytes (a truncated or corrupt .weights file?)")
        return "darknet"
    raise WeightsError(f"{path}: not a weights file this tool knows: it is {describe_start(head)} ({size} bytes). "
                       "Expected a yololab / Ultralytics / yolov5 .pt checkpoint or a Darknet .weights file")


def _model_name(model: nn.Module) -> str:
    return getattr(getattr(model, "meta", None), "name", type(model).__name__)


def _rebuild_like(model: nn.Module, **kwargs) -> nn.Module:
    """A fresh zoo model of the same name and class count with other builder options, on model's device/dtype."""
    new = registry.build(model.meta.name, num_classes=model.meta.num_classes, **kwargs)
    p = next(model.parameters(), None)
    if p is not None:
        new = new.to(device=p.device, dtype=p.dtype)
    return new.train(model.training)


def _class_output_rows(model: nn.Module, key: str, own: torch.Tensor, found: torch.Tensor, file_nc: int):
    """For a head tensor whose shape depends on the class count: the rows (dim 0) that do not depend on the
    classes and can still be loaded, as a bool mask over ``own``'s rows; None if it is not such a tensor.

    Anchor-based heads (``head.m.i``): each anchor's box and objectness rows load, its class rows do not.
    Anchor-free heads: the whole class branch ``head.cv3`` stays at init, since its width is
    ``max(c, min(nc, 100))`` and changes with the class count (Ultralytics fine-tunes the same way).
    """
    nc = model.meta.num_classes
    if nc == file_nc or not key.startswith("head.") or own.dim() != found.dim():
        return None
    na = getattr(model.head, "na", None)
    if (na and key.startswith("head.m.") and own.shape[1:] == found.shape[1:]
            and own.shape[0] == na * (5 + nc) and found.shape[0] == na * (5 + file_nc)):
        rows = torch.zeros(na, 5 + nc, dtype=torch.bool)
        rows[:, :5] = True
        return rows.flatten()
    if key.startswith("head.cv3."):
        return torch.zeros(own.shape[0] if own.dim() else 1, dtype=torch.bool)
    return None


@torch.no_grad()
def _load_state(model: nn.Module, state: dict[str, torch.Tensor], file_nc: int | None, path: Path) -> None:
    """Load ``state`` (yololab keys) into ``model``: every tensor, or an error naming the first that does not fit.

    The one tolerated difference is the class count: then the class outputs of the head keep their
    initialization (box / objectness rows of anchor-based heads are still loaded) and a warning says so.
    """
    own = model.state_dict()
    name = _model_name(model)
    for key in own:
        if key not in state:
            raise WeightsError(f"{path}: the checkpoint has no tensor {key!r} that {name} needs "
                               f"(another architecture?)")
    for key in state:
        if key not in own:
            raise WeightsError(f"{path}: the checkpoint's tensor {key!r} has no counterpart in {name} "
                               f"(another architecture?)")
    nc = getattr(getattr(model, "meta", None), "num_classes", None)
    new, partial = {}, []
    for key, target in own.items():
        value = state[key].to(device=target.device)
        value = value.to(target.dtype) if value.is_floating_point() or not target.is_floating_point() else value
        if value.shape == target.shape:
            new[key] = value
            continue
        rows = _class_output_rows(model, key, target, value, file_nc) if file_nc is not None else None
        if rows is None:
            raise WeightsError(f"{path}: tensor {key!r} does not fit {name} (nc={nc}): expected shape "
                               f"{tuple(target.shape)}, found {tuple(value.shape)} in the file")
        merged = target.clone()
        if rows.any():  # copy the class-independent rows, anchor by anchor
            src_rows = torch.zeros(value.shape[0], dtype=torch.bool)
            na = model.head.na
            src_rows.view(na, -1)[:, :5] = True
            merged[rows] = value[src_rows].to(target.dtype)
        new[key] = merged
        partial.append((key, tuple(target.shape)))
    model.load_state_dict(new, strict=True)
    if partial:
        shapes = ", ".join(f"{k} {s}" for k, s in partial[:4]) + (f" and {len(partial) - 4} more class-dependent "
                                                                   f"tensors" if len(partial) > 4 else "")
        warnings.warn(f"{path}: loaded {len(own) - len(partial)}/{len(own)} tensors; class outputs of shape "
                      f"{shapes} left at init for num_classes={nc} (checkpoint has {file_nc})", stacklevel=4)


def _load_yololab(model: nn.Module, path: Path) -> nn.Module:
    ckpt = load_checkpoint(path)
    name = _model_name(model)
    if ckpt["model_name"] != name:
        raise WeightsError(f"{path}: a yololab checkpoint of {ckpt['model_name']!r}, not of {name!r}; build "
                           f"{ckpt['model_name']!r} to load it")
    kwargs = ckpt.get("model_kwargs") or {}
    if kwargs and kwargs != model_build_kwargs(model):
        log.info("%s: rebuilding %s with %s as saved in the checkpoint", path, name, kwargs)
        model = _rebuild_like(model, **kwargs)
    _load_state(model, ckpt["state_dict"], ckpt.get("num_classes"), path)
    return model


def _load_reference(model: nn.Module, path: Path) -> nn.Module:
    ref = read_reference_checkpoint(path)
    name = _model_name(model)
    if not hasattr(model, "reference_layers"):
        raise WeightsError(f"{path}: a {ref.source} checkpoint loads into a yololab zoo model, not into "
                           f"{type(model).__name__}")
    style = (model.meta.extra or {}).get("style")
    if model.meta.family == "yolov3" and style == "darknet" and "SiLU" in ref.activations:
        # yolov5's hub/yolov3*.yaml networks use SiLU and the yolov5 decode: build that variant instead.
        log.info("%s: SiLU activations in the checkpoint: using %s with style='yolov5'", path, name)
        model = _rebuild_like(model, style="yolov5")
    elif model.meta.family == "yolov3" and style == "yolov5" and "LeakyReLU" in ref.activations \
            and "SiLU" not in ref.activations:
        log.info("%s: LeakyReLU activations in the checkpoint: using %s with style='darknet'", path, name)
        model = _rebuild_like(model, style="darknet")
    ours = {type(m).__name__ for m in model.modules() if type(m).__module__ == "torch.nn.modules.activation"}
    if ref.activations and ours and ref.activations != ours:
        raise WeightsError(f"{path}: the checkpoint's network uses {', '.join(sorted(ref.activations))} "
                           f"activations, {name} uses {', '.join(sorted(ours))}: its outputs would be wrong")
    kwargs = model_build_kwargs(model)
    file_nc = ref.num_classes if ref.num_classes is not None else model.meta.num_classes
    what = f"{ref.source} checkpoint ({ref.yaml_file or ref.class_path}, nc={file_nc})"
    # Map the reference keys onto a model with the file's class count, then fit that into ours.
    try:
        shaped = model if file_nc == model.meta.num_classes else registry.build(name, num_classes=file_nc, **kwargs)
        state = reference_state_dict_to_yololab(shaped, ref.state_dict)
    except WeightsError as e:
        raise WeightsError(f"{path}: the {what} does not fit {name}: {e}") from None
    _load_state(model, state, file_nc, path)
    return model


def load_weights(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load any supported weights file into ``model`` and return the model.

    The returned model may be a new one: yolov3 from a yolov5 checkpoint with SiLU activations is rebuilt
    with ``style="yolov5"``, and a yololab checkpoint rebuilds with the builder options it was saved with.
    Tensors are cast to the model's dtype (reference checkpoints are usually fp16). A different class count
    loads everything except the class outputs, with a warning; anything else that does not fit raises
    :class:`WeightsError` naming the first tensor (name, expected shape, found shape).
    """
    path = Path(path)
    fmt = detect_format(path)
    if fmt == "darknet":
        load_darknet_weights(model, path)
    elif fmt == "yololab":
        model = _load_yololab(model, path)
    else:  # ultralytics, yolov5, or an unknown torch pickle that the restricted unpickler must vet
        model = _load_reference(model, path)
    log.info("loaded %s weights from %s into %s", fmt, path, _model_name(model))
    return model


def build_model(name: str, num_classes: int = 80, weights: str | os.PathLike | None = None, **kwargs) -> nn.Module:
    """Build a zoo detector by name (:func:`yololab.models.registry.build`) and, with ``weights``, load that file
    into it with :func:`load_weights` (the format is detected from the bytes). Public as
    ``yololab.models.build_model``."""
    model = registry.build(name, num_classes=num_classes, **kwargs)
    return model if weights is None else load_weights(model, weights)
