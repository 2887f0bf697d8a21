"""Task: what a task (detection, classification, video, translation) gives the engine.

Subclass it and implement the four required methods; the optional ones have working defaults. The
engine sets ``task.cfg`` (the run's resolved TrainConfig; on resume the saved one), ``task.device``
and ``task.trainer`` (for ``trainer.autocast()``, ``trainer.channels_last`` ...) before it calls
``build_model``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sized
from pathlib import Path

import torch
from torch import Tensor, nn

from yololab.engine.config import TrainConfig
from yololab.engine.optim import auto_optimizer, default_param_groups


class Task:
    name = "task"  # run folders default to runs/<name>/<run name>
    # How gradients of an accumulation window combine (see docs/design.md, "The training engine"):
    #   "mean": the engine backpropagates loss / window_length, so a batch-mean loss gives the mean over
    #           the nominal batch (and over all processes): identical to one big batch;
    #   "sum":  the loss is backpropagated as returned, times the number of processes: gradients add up
    #           over batches and processes (Ultralytics / yolov5, whose losses are scaled by the batch size
    #           and whose weight decay is scaled to the nominal batch).
    accumulate_reduction = "mean"
    ddp_find_unused_parameters = False  # True if some parameters get no gradient in some steps

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.device = torch.device("cpu")
        self.trainer = None

    # ---------------------------------------------------------------------------------- required
    def build_model(self) -> nn.Module:
        """A fresh model (random init or the task's --weights), on CPU; the engine moves it."""
        raise NotImplementedError

    def train_loader(self, epoch: int) -> Iterable:
        """The batches of epoch ``epoch`` for this process, with ``len()``. They must depend only on
        (cfg.seed, epoch) (see :mod:`yololab.engine.data`): a resumed epoch must see the same data."""
        raise NotImplementedError

    def loss(self, model: nn.Module, batch) -> tuple[Tensor, dict[str, float | Tensor]]:
        """Forward ``batch`` (moved to ``self.device`` here) through ``model`` (the training model, maybe
        DDP-wrapped) and return the scalar loss to backpropagate and named parts for logging. Runs under
        the engine's autocast: compute precision-sensitive parts in float32."""
        raise NotImplementedError

    def validate(self, model: nn.Module) -> dict[str, float]:
        """Metrics of ``model`` (the EMA model if EMA is on, in eval mode, under no_grad, rank 0 only).
        Should hold ``"fitness"`` (higher is better; best.pt is chosen by it); without it the engine
        uses the negative mean training loss."""
        return {}

    # ---------------------------------------------------------------------------------- optional
    def plots(self, run_dir: Path, trainer) -> list[Path]:
        """Write the task's pictures into ``run_dir`` (after training); report.md embeds them."""
        return []

    def report(self, run_dir: Path, trainer) -> str:
        """A Markdown section for report.md, after the engine's."""
        return ""

    def batch_size(self, batch) -> int:
        """Samples in ``batch`` (for samples/s): first tensor's length, looking into tuples and dicts."""
        while isinstance(batch, (list, tuple, dict)) and len(batch):
            batch = next(iter(batch.values())) if isinstance(batch, dict) else batch[0]
        return batch.shape[0] if isinstance(batch, Tensor) else len(batch) if isinstance(batch, Sized) else 1

    def param_groups(self, model: nn.Module) -> list[dict]:
        """Optimizer parameter groups (see :mod:`yololab.engine.optim`)."""
        return default_param_groups(model)

    def auto_optimizer(self, iterations: int) -> dict:
        """TrainConfig values that ``optimizer=auto`` stands for, given the run's optimizer steps."""
        return auto_optimizer(iterations)

    def on_epoch_start(self, epoch: int, trainer) -> None:
        """Called before each epoch's loader is requested (close mosaic, unfreeze a backbone ...)."""

    def checkpoint_meta(self) -> dict:
        """Plain data saved in every checkpoint: what is needed to rebuild and use the model (model
        name, build kwargs, class names, tokenizer ...). ``model_name``, ``num_classes`` and
        ``model_kwargs`` also become the checkpoint's top-level fields that ``build_model`` reads."""
        return {}

    def load_checkpoint_meta(self, meta: dict) -> None:
        """On resume, before ``build_model``: take back what ``checkpoint_meta`` saved."""
