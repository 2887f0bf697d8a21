"""yololab's own checkpoint: a plain dict in a torch zip archive, readable with ``torch.load(weights_only=True)``.

Contents (version 1)::

    {"format": "yololab", "version": 1,
     "model_name": "yolov8n",            # the zoo name: build_model(model_name) rebuilds the network
     "num_classes": 80,
     "model_kwargs": {"style": ...},     # builder options not implied by the name (yolov3's style)
     "state_dict": {name: tensor},       # on CPU, the model's dtype
     **extra}                            # plain data only: epoch, optimizer / scheduler / scaler state,
                                         # EMA state dict, RNG states, run arguments ... (the engine's)

Everything in it is plain data (dicts, lists, numbers, strings, tensors), so reading never runs code from the
file. Written atomically (``yololab.fileio``), so a crash mid-save leaves the previous file intact.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from yololab.errors import WeightsError
from yololab.fileio import atomic_write

CHECKPOINT_FORMAT = "yololab"
CHECKPOINT_VERSION = 1
REQUIRED_FIELDS = ("model_name", "num_classes", "state_dict")


def model_build_kwargs(model: nn.Module) -> dict:
    """Builder keyword arguments that are not implied by the name (e.g. yolov3 ``style``), from the meta."""
    meta = getattr(model, "meta", None)
    extra = getattr(meta, "extra", None) or {}
    return {k: extra[k] for k in ("style",) if k in extra}


def save_checkpoint(model: nn.Module, path: str | os.PathLike, **extra) -> Path:
    """Write a yololab checkpoint of ``model`` atomically; ``extra`` entries are added to the dict.

    ``extra`` must be plain data (``torch.load(weights_only=True)`` reads it back) and may not replace a
    field of the format.
    """
    path = Path(path)
    meta = getattr(model, "meta", None)
    ckpt = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "model_name": getattr(meta, "name", type(model).__name__),
        "num_classes": getattr(meta, "num_classes", None),
        "model_kwargs": model_build_kwargs(model),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    for key in extra:
        if key in ckpt:
            raise ValueError(f"save_checkpoint: extra key {key!r} would overwrite a checkpoint field")
    ckpt.update(extra)
    atomic_write(path, lambda f: torch.save(ckpt, f), fsync=True)
    return path


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a yololab checkpoint (``weights_only=True``: plain data only) and check its format fields."""
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise WeightsError(f"{path}: not a readable yololab checkpoint ({type(e).__name__}: "
                           f"{str(e).splitlines()[0][:200]})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        what = f"a dict with keys {sorted(map(str, ckpt))[:8]}" if isinstance(ckpt, dict) else type(ckpt).__name__
        raise WeightsError(f"{path}: a torch file but not a yololab checkpoint: it holds {what}; expected "
                           f"'format': '{CHECKPOINT_FORMAT}'")
    if ckpt.get("version") != CHECKPOINT_VERSION:
        raise WeightsError(f"{path}: yololab checkpoint version {ckpt.get('version')!r}; this yololab reads "
                           f"version {CHECKPOINT_VERSION}")
    for key in REQUIRED_FIELDS:
        if key not in ckpt:
            raise WeightsError(f"{path}: yololab checkpoint without the field '{key}'")
    return ckpt
