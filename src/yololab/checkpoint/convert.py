"""Turn any supported weights file into a yololab checkpoint (``yololab models convert-weights``)."""

from __future__ import annotations

import os
from pathlib import Path

from torch import nn

from yololab.checkpoint.darknet import darknet_model_for_size
from yololab.checkpoint.load import build_model, detect_format
from yololab.checkpoint.native import load_checkpoint, save_checkpoint
from yololab.checkpoint.reference import read_reference_checkpoint
from yololab.errors import WeightsError
from yololab.models.registry import list_models, resolve_name


def infer_model(path: str | os.PathLike) -> tuple[str, int | None, dict]:
    """Guess (zoo name, num_classes, builder kwargs) of the model a weights file holds; raise if it cannot.

    yololab checkpoints say it; Darknet files are matched by their float count (yolov3 / yolov3-tiny at some
    class count); reference checkpoints by the model YAML they were built from.
    """
    path = Path(path)
    fmt = detect_format(path)
    if fmt == "yololab":
        ckpt = load_checkpoint(path)
        return ckpt["model_name"], ckpt["num_classes"], ckpt.get("model_kwargs") or {}
    if fmt == "darknet":
        found = darknet_model_for_size(path)
        if found is None:
            raise WeightsError(f"{path}: a Darknet .weights file whose size fits neither yolov3 nor yolov3-tiny "
                               "for any class count")
        return found[0], found[1], {}
    ref = read_reference_checkpoint(path)
    stem = Path(str(ref.yaml_file or "")).stem  # "yolov8n", "yolov3-tiny", or "yolov8" + yaml scale
    scale = ref.yaml.get("scale") or ""
    for name in (stem, stem + scale):
        if name in list_models():
            return name, ref.num_classes, {}
    raise WeightsError(f"{path}: cannot tell which zoo model this {ref.source} checkpoint is (yaml file "
                       f"{ref.yaml_file!r}); pass --model NAME")


def model_for_weights(path: str | os.PathLike, model: str | None = None) -> tuple[str, int | None, dict]:
    """(zoo name, the file's class count or None, builder kwargs) to load a weights file into, with ``model``
    (a zoo name, any spelling) from the user: it names the model when the file cannot tell (:func:`infer_model`
    raises; the class count is then unknown), and must agree with the file when it can. What ``yololab val``,
    ``predict``, ``export`` and ``features`` resolve ``--weights`` / ``--model`` with."""
    try:
        name, nc, kwargs = infer_model(path)
    except WeightsError:
        if model is None:
            raise
        return resolve_name(model), None, {}
    if model is not None and resolve_name(model) != name:
        raise WeightsError(f"{path}: holds a {name}, not a {resolve_name(model)}")
    return name, nc, kwargs


def convert_weights(src: str | os.PathLike, dst: str | os.PathLike, model: str | None = None,
                    num_classes: int | None = None, overwrite: bool = False) -> tuple[nn.Module, str]:
    """Load ``src`` (any format) into its zoo model and write ``dst`` as a yololab checkpoint, atomically.

    ``model`` / ``num_classes`` default to what :func:`infer_model` finds. Never replaces ``src``; replaces an
    existing ``dst`` only with ``overwrite``. Returns the model and the source format.
    """
    src, dst = Path(src), Path(dst)
    if dst.exists() and (dst.resolve() == src.resolve() or not overwrite):
        raise WeightsError(f"{dst}: exists; choose another name or pass --overwrite to replace it"
                           if dst.resolve() != src.resolve() else f"{dst}: would overwrite the source file")
    fmt = detect_format(src)
    name, nc, kwargs = infer_model(src) if model is None else (model, None, {})
    net = build_model(name, num_classes=num_classes or nc or 80, weights=src, **kwargs)
    save_checkpoint(net, dst, source_file=src.name, source_format=fmt)
    return net, fmt
