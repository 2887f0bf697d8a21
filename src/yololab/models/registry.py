"""The model zoo: every buildable name and its builder (one registry, one entry point, as timm does)."""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable
from functools import partial

from yololab.errors import YololabError
from yololab.models.base import Detector


# name -> (module, builder function, scale); modules are imported on first use only
_ENTRIES: dict[str, tuple[str, str, str | None]] = {
    "yolov3": ("yololab.models.yolov3", "build_yolov3", None),
    "yolov3-tiny": ("yololab.models.yolov3", "build_yolov3_tiny", None),
    **{f"yolov5{s}": ("yololab.models.yolov5", "build_yolov5", s) for s in "nsmlx"},
    **{f"yolov8{s}": ("yololab.models.yolov8", "build_yolov8", s) for s in "nsmlx"},
    **{f"yolo11{s}": ("yololab.models.yolo11", "build_yolo11", s) for s in "nsmlx"},
}


def _builder(name: str) -> Callable[..., Detector]:
    module, func, scale = _ENTRIES[name]
    fn = getattr(importlib.import_module(module), func)
    return partial(fn, scale) if scale is not None else fn


MODEL_NAMES = list(_ENTRIES)


def list_models() -> list[str]:
    """Every name :func:`build_model` accepts, oldest family first."""
    return list(MODEL_NAMES)


def _check_name(name: str) -> None:
    if name not in MODEL_NAMES:
        close = difflib.get_close_matches(name, MODEL_NAMES, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise YololabError(f"unknown model {name!r}.{hint} Valid names: {', '.join(MODEL_NAMES)}")


def build_model(name: str, num_classes: int = 80, weights: str | None = None, **kwargs) -> Detector:
    """Build a zoo detector by name, e.g. ``build_model("yolov8n", num_classes=3)``.

    ``kwargs`` go to the family builder (e.g. ``style="yolov5"`` for yolov3). With ``weights`` (a file
    path) the weights are loaded by :func:`yololab.models.weights.load_weights`, which detects the format.
    """
    _check_name(name)
    if not isinstance(num_classes, int) or num_classes < 1:
        raise YololabError(f"num_classes must be a positive integer, got {num_classes!r}")
    builder = _builder(name)
    try:  # check the options against the family builder's signature before building anything
        inspect.signature(builder).bind(num_classes=num_classes, **kwargs)
    except TypeError as e:
        raise YololabError(f"cannot build {name!r} with options {kwargs}: {e}") from None
    model = builder(num_classes=num_classes, **kwargs)
    if weights is not None:
        from yololab.models.weights import load_weights

        model = load_weights(model, weights)
    return model


def model_info(name: str) -> dict:
    """The metadata of a zoo model (builds it on the meta device: no memory, no weights initialized)."""
    import torch

    _check_name(name)
    with torch.device("meta"):
        model = _builder(name)()
    info = model.meta.to_dict()
    info["parameters"] = sum(p.numel() for p in model.parameters())
    return info
