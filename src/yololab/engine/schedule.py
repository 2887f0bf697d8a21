"""Learning rate, momentum and accumulation as functions of the batch counter: warmup, then a schedule.

``it`` counts training batches from the start of the run (``epoch * nb + i``, Ultralytics' ``ni``), so
every value is a pure function of ``it`` and a resumed run needs no scheduler state.

Warmup, over the first ``nw`` batches, exactly as Ultralytics' trainer does it: linear interpolation
(``np.interp`` over ``[0, nw]``) of each group's LR from 0 (biases: from ``warmup_bias_lr``) to
``initial_lr * lf``, of SGD's momentum from ``warmup_momentum`` to ``momentum``, and of the
accumulation from 1 batch to the nominal one. ``nw`` is ``warmup_steps`` or
``round(warmup_epochs * nb)``, with ``warmup_epochs`` capped to leave the last epoch out of warmup.

After warmup, ``lr = initial_lr * lf`` with ``lf`` evaluated at the fractional epoch ``x = it / nb``:

* ``linear``  Ultralytics' default: ``(1 - x / epochs) * (1 - lrf) + lrf``
* ``cosine``  Ultralytics' ``one_cycle(1, lrf, epochs)`` (``cos_lr=True``): half a cosine from 1 to lrf
* ``inverse_sqrt``  ``sqrt(nw / it)`` after warmup (the Transformer / fairseq schedule)
* ``onecycle``  ``torch.optim.lr_scheduler.OneCycleLR``'s two-phase curve over all batches: cosine from
  1/25 up to 1 in the first 30 %, then down to ``lrf`` (use it with warmup_epochs=0)
* ``constant``  1

Ultralytics steps its schedule once per epoch (``lf(epoch)``); here it moves every optimizer step along
the same curve, equal to Ultralytics' value at every epoch start.
"""

from __future__ import annotations

import math

import numpy as np
import torch

ONECYCLE_DIV, ONECYCLE_PCT = 25.0, 0.3


def _cos_anneal(start: float, end: float, pct: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


class Schedule:
    def __init__(self, scheduler: str, epochs: int, nb: int, lrf: float, accumulate: int = 1,
                 warmup_epochs: float = 0.0, warmup_steps: int | None = None, momentum: float = 0.0,
                 warmup_momentum: float = 0.0, warmup_bias_lr: float = 0.0):
        self.scheduler, self.epochs, self.nb, self.lrf = scheduler, epochs, nb, lrf
        self.accumulate_nominal = accumulate
        self.momentum, self.warmup_momentum, self.warmup_bias_lr = momentum, warmup_momentum, warmup_bias_lr
        if warmup_steps is not None:
            self.nw = warmup_steps
        else:
            capped = min(warmup_epochs, max(epochs - 1, 0))
            self.nw = round(capped * nb) if capped > 0 else 0
        self.total = epochs * nb

    def lf(self, it: int) -> float:
        """The schedule's LR factor at batch ``it`` (before warmup is applied)."""
        x, lrf = it / self.nb, self.lrf
        if self.scheduler == "linear":
            return max(1 - x / self.epochs, 0) * (1.0 - lrf) + lrf
        if self.scheduler == "cosine":
            return max((1 - math.cos(x * math.pi / self.epochs)) / 2, 0) * (lrf - 1.0) + 1.0
        if self.scheduler == "inverse_sqrt":
            return math.sqrt(max(self.nw, 1) / max(it, self.nw, 1))
        if self.scheduler == "onecycle":
            up_end = max(ONECYCLE_PCT * self.total - 1, 0)
            if it <= up_end:
                return _cos_anneal(1 / ONECYCLE_DIV, 1.0, it / up_end if up_end else 1.0)
            return _cos_anneal(1.0, lrf, min((it - up_end) / max(self.total - 1 - up_end, 1), 1.0))
        return 1.0  # constant

    def accumulate(self, it: int) -> int:
        """Batches per optimizer step for a window starting at batch ``it`` (ramps up during warmup)."""
        if self.nw and it <= self.nw:
            return max(1, int(np.interp(it, [0, self.nw], [1, self.accumulate_nominal]).round()))
        return self.accumulate_nominal

    def apply(self, optimizer: torch.optim.Optimizer, it: int) -> None:
        """Set every group's LR (and SGD momentum) for an optimizer step taken at batch ``it``."""
        lf = self.lf(it)
        warm = bool(self.nw) and it <= self.nw
        for g in optimizer.param_groups:
            target = g["initial_lr"] * lf
            if warm:
                start = self.warmup_bias_lr if g.get("param_group") == "bias" else 0.0
                g["lr"] = float(np.interp(it, [0, self.nw], [start, target]))
            else:
                g["lr"] = target
            if "momentum" in g:
                g["momentum"] = float(np.interp(it, [0, self.nw], [self.warmup_momentum, self.momentum])) \
                    if warm else self.momentum
