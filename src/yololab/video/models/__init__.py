"""Video classifiers by name (one registry, timm style) and pretrained weights from a local file.

``build_video_model(name, num_classes, weights=None, **options)``; ``list_video_models()``. Each model
has ``input_layout`` ("TCHW": ``(B, T, C, H, W)``, or "CTHW": ``(B, C, T, H, W)``), which the loader
follows. Nothing is downloaded: ``weights`` is a file on disk, either a torchvision state dict
(``resnet18`` for the frame encoder of ``cnn_lstm``/``cnn_gru``/``frame_avg``; ``r3d_18`` /
``r2plus1d_18``, e.g. the Kinetics-400 weights) or any state dict of the same model. A classifier
whose shape differs (another number of classes) is left at its initialization, and said so.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import torch
from torch import nn

from yololab.errors import WeightsError
from yololab.video.models.c3d import C3D
from yololab.video.models.cnn_rnn import CNNRNN, FrameAverage, FrameEncoderModel
from yololab.video.models.resnet3d import r2plus1d_18, r3d_18
from yololab.video.models.timesformer import TimeSformer

MODELS = {
    "cnn_lstm": partial(CNNRNN, rnn="lstm"),
    "cnn_gru": partial(CNNRNN, rnn="gru"),
    "frame_avg": FrameAverage,
    "r3d_18": r3d_18,
    "r2plus1d_18": r2plus1d_18,
    "c3d": C3D,
    "timesformer": TimeSformer,
}

# which build options each model takes (the CLI passes only these)
OPTIONS = {
    "cnn_lstm": ("hidden", "layers", "pool", "dropout", "freeze_encoder", "frame_input"),
    "cnn_gru": ("hidden", "layers", "pool", "dropout", "freeze_encoder", "frame_input"),
    "frame_avg": ("dropout", "freeze_encoder", "frame_input"),
    "r3d_18": (),
    "r2plus1d_18": (),
    "c3d": ("fc_dim", "dropout"),
    "timesformer": ("img_size", "frames", "patch", "dim", "depth", "heads", "dropout"),
}


def list_video_models() -> list[str]:
    return list(MODELS)


def build_video_model(name: str, num_classes: int, weights: str | Path | None = None, **options) -> nn.Module:
    if name not in MODELS:
        raise WeightsError(f"unknown video model {name!r}; choose one of {', '.join(MODELS)}")
    unknown = set(options) - set(OPTIONS[name])
    if unknown:
        raise TypeError(f"{name} takes no option(s) {sorted(unknown)}; it takes {OPTIONS[name]}")
    model = MODELS[name](num_classes=num_classes, **options)
    if weights:
        load_pretrained(model, weights)
    return model


def load_pretrained(model: nn.Module, path: str | Path) -> list[str]:
    """Load a state dict file into ``model``; returns the names left out (classifier of another size)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle / zip errors of every kind: the file is not a state dict
        raise WeightsError(f"{path}: not a PyTorch state dict ({e.__class__.__name__})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):  # a yololab checkpoint
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path}: expected a state dict (names -> tensors)")
    target = model
    if isinstance(model, FrameEncoderModel) and "conv1.weight" in state:  # a torchvision resnet18 file
        target = model.encoder
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    own = target.state_dict()
    skipped = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    state = {k: v for k, v in state.items() if k not in skipped}
    missing = [k for k in own if k not in state and k not in skipped]
    if missing:
        raise WeightsError(f"{path}: does not fit {type(model).__name__}: {len(missing)} tensors missing, "
                           f"e.g. {missing[0]}")
    unexpected = [k for k in state if k not in own]
    if unexpected:
        raise WeightsError(f"{path}: holds {len(unexpected)} tensors {type(model).__name__} has not, "
                           f"e.g. {unexpected[0]}")
    target.load_state_dict(state, strict=False)
    if skipped:
        print(f"{path}: loaded, except {', '.join(skipped)} (another shape: left at initialization)")
    return skipped
