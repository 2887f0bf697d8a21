"""Export a detector (or any module returning tensors) to ONNX, the format ONNX Runtime and OpenVINO read."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
from torch import nn
from torch.utils._pytree import tree_flatten

from yololab.fileio import atomic_path

OPSET = 17


class FlatOutputs(nn.Module):
    """Returns a model's outputs as a flat tuple of tensors (what ONNX export and ONNX Runtime speak)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        leaves, _ = tree_flatten(self.model(x))
        return tuple(leaves)


def export_onnx(module: nn.Module, inputs: tuple[torch.Tensor, ...], path: str | os.PathLike,
                opset: int = OPSET) -> Path:
    """Export ``module`` (returning a tensor or a flat tuple of tensors) for these input shapes to ``path``.

    Static shapes: the anchor grids are traced as constants, and both runtimes optimize a fixed shape best.
    Written atomically. The TorchScript exporter (``dynamo=False``) takes ~2.5 s for yolov8n at 640; read by
    OpenVINO it gives the same graph as ``ov.convert_model`` on the torch module (~7 s, which traces with the
    deprecated ``torch.jit.trace``).
    """
    path = Path(path)
    with atomic_path(path) as tmp, warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
        # .eval() on the module too: the exporter restores its train/eval flag afterwards, recursively, and a
        # fresh wrapper is in training mode (it would put the wrapped model back into training)
        torch.onnx.export(module.eval(), inputs, tmp, dynamo=False, opset_version=opset, do_constant_folding=True)
    return path
