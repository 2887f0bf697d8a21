"""Exponential moving average of the weights, with Ultralytics' ModelEMA semantics.

After every optimizer step, each floating-point entry of the state dict (parameters and BatchNorm
running statistics) moves towards the model's: ``ema = d * ema + (1 - d) * model`` with
``d = decay * (1 - exp(-updates / tau))``, so early updates (small ``d``) follow the model closely and
the average only becomes slow once training has settled. Integer buffers (BatchNorm's
``num_batches_tracked``) are copied. The copy is kept in float32, in eval mode, without gradients.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from yololab.engine.dist import unwrap


class ModelEMA:
    def __init__(self, model: nn.Module, decay: float = 0.9999, tau: float = 2000.0, updates: int = 0):
        self.module = copy.deepcopy(unwrap(model)).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay, self.tau, self.updates = decay, tau, updates

    def decay_at(self, updates: int) -> float:
        return self.decay * (1 - math.exp(-updates / self.tau))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = self.decay_at(self.updates)
        current = unwrap(model).state_dict()
        for name, avg in self.module.state_dict().items():
            if avg.dtype.is_floating_point:
                avg.lerp_(current[name].detach().to(avg.dtype), 1 - d)  # avg + (1 - d) * (model - avg)
            else:
                avg.copy_(current[name])

    def state_dict(self) -> dict:
        return {"state": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["state"])
        self.updates = state["updates"]
