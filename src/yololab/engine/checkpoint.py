"""Training checkpoints in yololab's native checkpoint format, written atomically; RNG state capture.

A checkpoint is one plain dict (``torch.load(weights_only=True)`` reads it):

* the native fields that ``build_model(name, weights=...)`` reads: ``format``, ``version``,
  ``model_name``, ``num_classes``, ``model_kwargs`` and ``state_dict``: the weights to use (the EMA's
  when EMA is on), float32, contiguous, on CPU;
* the training state: ``model_state`` (the trained, non-averaged weights; only with EMA), ``ema``
  (``{"state", "updates"}``), ``optimizer``, ``scaler``, ``schedule`` (its length facts; the schedule
  itself is a pure function of the batch counter), ``epoch`` (completed epochs), ``batch`` (batches of
  the next epoch already done: > 0 for a mid-epoch checkpoint), ``step`` (optimizer steps),
  ``best_fitness``, ``best_epoch``, ``history`` (the results.csv rows), ``epoch_meter`` (loss sums of
  a partial epoch), ``rng`` (python, numpy, torch, cuda), ``config``, ``task``, ``meta``
  (``task.checkpoint_meta()``), ``amp``, ``world_size``, ``train_time``, ``torch_version``, ``date``.

The native format is :mod:`yololab.checkpoint.native`'s (its constants, field names and reader).
"""

from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
import torch
from torch import nn

from yololab.checkpoint.native import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    load_checkpoint,
    model_build_kwargs,
)
from yololab.errors import WeightsError
from yololab.fileio import write_bytes_atomic

TRAIN_KEYS = ("optimizer", "epoch", "batch", "step", "config", "rng", "history")


def float_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """``module``'s state dict as contiguous CPU tensors, floating ones in float32."""
    out = {}
    for k, v in module.state_dict().items():
        v = v.detach().to("cpu", copy=True)
        out[k] = (v.float() if v.is_floating_point() else v).contiguous()
    return out


def all_finite(state: dict[str, torch.Tensor]) -> bool:
    return all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point())


def native_fields(model: nn.Module, weights: dict[str, torch.Tensor], meta: dict) -> dict:
    """The fields every yololab checkpoint has. Name, class count and builder kwargs come from the
    task's meta, else from ``model.meta`` (zoo models), else the class name."""
    model_meta = getattr(model, "meta", None)
    return {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "model_name": meta.get("model_name", getattr(model_meta, "name", type(model).__name__)),
        "num_classes": meta.get("num_classes", getattr(model_meta, "num_classes", None)),
        "model_kwargs": meta.get("model_kwargs", model_build_kwargs(model)),
        "state_dict": weights,
    }


def serialize(ckpt: dict) -> bytes:
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    return buf.getvalue()


def write(path: Path, data: bytes) -> None:
    """Write checkpoint bytes atomically: a crash leaves the previous file whole."""
    write_bytes_atomic(path, data)


# ---------------------------------------------------------------------------------------------- RNG


def rng_state() -> dict:
    """Every RNG the training loop may draw from, as plain data (weights_only-loadable)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------------------------------------- resume


def resume_path(spec: str | Path) -> Path:
    """The last.pt that ``--resume`` names (a run folder or a checkpoint file)."""
    path = Path(spec)
    if path.is_dir():
        path = path / "weights" / "last.pt"
        if not path.is_file():
            raise WeightsError(f"cannot resume {spec}: no weights/last.pt in that folder (not a run folder, "
                               f"or its first epoch never finished)")
    elif not path.is_file():
        raise WeightsError(f"cannot resume {spec}: no such run folder or checkpoint file")
    return path


def run_dir_of(path: Path) -> Path:
    """The run folder of a checkpoint: RUN for RUN/weights/x.pt, else the file's folder."""
    return path.parent.parent if path.parent.name == "weights" else path.parent


def load_for_resume(spec: str | Path) -> tuple[dict, Path]:
    """(checkpoint, its path) for ``--resume``, or one clear :class:`WeightsError`."""
    path = resume_path(spec)
    try:
        ckpt = load_checkpoint(path)
    except WeightsError as e:
        raise WeightsError(f"cannot resume: {e}") from None
    missing = [k for k in TRAIN_KEYS if k not in ckpt]
    if missing:
        raise WeightsError(f"cannot resume {path}: a yololab checkpoint with weights only, without the training "
                           f"state ({', '.join(missing)} missing); start a new run from it with --weights")
    return ckpt, path
