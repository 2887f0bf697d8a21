"""The model zoo: every buildable name and its builder (one registry, as timm does).

:func:`build` makes the architecture only. ``yololab.models.build_model(name, weights=...)`` adds weights from
any file format; it lives in :mod:`yololab.checkpoint.load`, above this module, so that the checkpoint code can
build zoo models without the registry ever importing it. Importing this module imports neither torch nor the
families: each family module is imported the first time one of its models is built.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from yololab.errors import YololabError

if TYPE_CHECKING:
    from yololab.models.base import Detector


# name -> (module, builder function, scale); modules are imported on first use only
_ENTRIES: dict[str, tuple[str, str, str | None]] = {
    "yolov3": ("yololab.models.yolov3", "build_yolov3", None),
    "yolov3-tiny": ("yololab.models.yolov3", "build_yolov3_tiny", None),
    **{f"yolov5{s}": ("yololab.models.yolov5", "build_yolov5", s) for s in "nsmlx"},
    **{f"yolov8{s}": ("yololab.models.yolov8", "build_yolov8", s) for s in "nsmlx"},
    **{f"yolo11{s}": ("yololab.models.yolo11", "build_yolo11", s) for s in "nsmlx"},
}


# The ablation family (models/ablation.py): YOLOv8n's skeleton with a chosen block, pooling and head, one name
# per combination (``ablate-c3-sppf-ab``). Buildable by name, so `yololab train --model` takes them, but not part
# of the zoo: list_models and the zoo tables leave them out.
ABLATION_PARTS = {"block": ("c3", "c2f", "c3k2"), "pool": ("sppf", "spp", "none"), "head": ("af", "ab")}
ABLATION_NAME = re.compile("ablate-" + "-".join(f"({'|'.join(c)})" for c in ABLATION_PARTS.values()))


def _builder(name: str) -> Callable[..., Detector]:
    if ABLATION_NAME.fullmatch(name):
        return partial(importlib.import_module("yololab.models.ablation").build_ablation, name)
    module, func, scale = _ENTRIES[name]
    fn = getattr(importlib.import_module(module), func)
    return partial(fn, scale) if scale is not None else fn


MODEL_NAMES = list(_ENTRIES)


def list_models() -> list[str]:
    """Every name :func:`build` (and ``yololab.models.build_model``) accepts, oldest family first."""
    return list(MODEL_NAMES)


# version -> the family's names, for suggestions that follow the family ("yolov9" -> the families there are)
FAMILIES = {"3": ["yolov3", "yolov3-tiny"], **{v: [f"yolo{'v' if v != '11' else ''}{v}{s}" for s in "nsmlx"]
                                               for v in ("5", "8", "11")}}


def resolve_name(name: str) -> str:
    """The zoo name for ``name``, ignoring case and surrounding spaces (``"YOLOv8n"`` -> ``"yolov8n"``).

    An unknown name is a :class:`YololabError` whose suggestion follows the family: ``yolov8`` or ``yolo8x6``
    get the YOLOv8 names, ``yolov9`` (a family the zoo lacks) the list of families; only a name that is no
    YOLO name at all falls back to the closest spelling.
    """
    key = str(name).strip().lower()
    if key in _ENTRIES or ABLATION_NAME.fullmatch(key):
        return key
    families = "; ".join(f"YOLO{'v' if v != '11' else ''}{v}: {', '.join(names)}" for v, names in FAMILIES.items())
    m = re.fullmatch(r"yolo[-_ ]?v?(\d+)(.*)", key)
    if m and m.group(1) in FAMILIES:
        names = FAMILIES[m.group(1)]
        best = difflib.get_close_matches(key, names, n=1, cutoff=0.0)
        hint = f"did you mean {best[0]!r}? The family has {', '.join(names)}" if m.group(2) else \
            f"add a scale: {', '.join(names)}"
    elif m:
        hint = f"the zoo has no YOLO version {m.group(1)}; its families are {families}"
    else:
        close = difflib.get_close_matches(key, MODEL_NAMES, n=1, cutoff=0.75)
        hint = (f"did you mean {close[0]!r}? The" if close else "the") + f" zoo's families are {families}"
    raise YololabError(f"unknown model {name!r}; {hint} (see `yololab models list`)")


def build(name: str, num_classes: int = 80, **kwargs) -> Detector:
    """Build a zoo detector by name with fresh weights, e.g. ``build("yolov8n", num_classes=3)``.

    ``kwargs`` go to the family builder (e.g. ``style="yolov5"`` for yolov3) and are checked against its
    signature before anything is built.
    """
    name = resolve_name(name)
    if not isinstance(num_classes, int) or num_classes < 1:
        raise YololabError(f"num_classes must be a positive integer, got {num_classes!r}")
    builder = _builder(name)
    try:
        inspect.signature(builder).bind(num_classes=num_classes, **kwargs)
    except TypeError as e:
        raise YololabError(f"cannot build {name!r} with options {kwargs}: {e}") from None
    return builder(num_classes=num_classes, **kwargs)


def model_info(name: str) -> dict:
    """The metadata of a zoo model (builds it on the meta device: no memory, no weights initialized)."""
    import torch

    name = resolve_name(name)
    with torch.device("meta"):
        model = _builder(name)()
    info = model.meta.to_dict()
    info["parameters"] = sum(p.numel() for p in model.parameters())
    return info
