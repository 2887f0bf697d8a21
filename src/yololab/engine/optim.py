"""Optimizers with parameter groups: weight decay on weights only, never on norms and biases.

Groups are plain dicts as ``torch.optim`` takes them, tagged with ``"param_group"`` (``"weight"``,
``"norm"``, ``"bias"``) so that warmup can treat biases apart (Ultralytics' ``warmup_bias_lr``). A group
may carry its own ``"lr"`` (its base learning rate instead of ``lr0``) and ``"weight_decay"``; a group
without ``"weight_decay"`` gets the run's (scaled to the nominal batch, see the trainer).
"""

from __future__ import annotations

import torch
from torch import nn

from yololab.errors import ConfigError


def is_norm(module: nn.Module) -> bool:
    """BatchNorm, LayerNorm, GroupNorm, RMSNorm ... and the tasks' own norms, told by the class name
    (Ultralytics' rule is every ``torch.nn`` class with "Norm" in its name)."""
    return "Norm" in type(module).__name__


def default_param_groups(model: nn.Module) -> list[dict]:
    """Three groups as Ultralytics makes them: weights (decay), norm weights (no decay), biases (no decay).

    Every parameter is included, trainable or not, so that a task can unfreeze layers later (the
    optimizers skip parameters without a gradient).
    """
    weights, norms, biases, seen = [], [], [], set()
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if id(p) in seen:  # shared (tied) parameters: once
                continue
            seen.add(id(p))
            if name == "bias" or name.endswith("_bias"):
                biases.append(p)
            elif is_norm(module):
                norms.append(p)
            else:
                weights.append(p)
    return [{"params": weights, "param_group": "weight"},
            {"params": norms, "weight_decay": 0.0, "param_group": "norm"},
            {"params": biases, "weight_decay": 0.0, "param_group": "bias"}]


def build_optimizer(groups: list[dict], name: str, lr: float, momentum: float, weight_decay: float,
                    nesterov: bool = True, beta2: float = 0.999) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov), Adam or AdamW over ``groups``.

    Adam's weight decay is the L2 kind (added to the gradient), AdamW's the decoupled kind; both only
    where the group's ``weight_decay`` says. Each group keeps its base LR in ``"initial_lr"``, which the
    schedule multiplies.
    """
    groups = [dict(g) for g in groups]
    for g in groups:
        g.setdefault("weight_decay", weight_decay)
        g["initial_lr"] = g.setdefault("lr", lr)
    if name == "SGD":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=nesterov and momentum > 0)
    if name in ("Adam", "AdamW"):
        return getattr(torch.optim, name)(groups, lr=lr, betas=(momentum, beta2))
    raise ConfigError(f"optimizer={name!r}: expected SGD | Adam | AdamW")


def auto_optimizer(iterations: int) -> dict:
    """``optimizer=auto``: Ultralytics' rule without its MuSGD: SGD (lr 0.01, momentum 0.9) for long runs
    (> 10,000 optimizer steps), otherwise AdamW (lr 0.001, momentum 0.9) with the bias warmup starting at
    0. Tasks refine it (``Task.auto_optimizer``), e.g. detection's class-count-dependent AdamW LR."""
    if iterations > 10_000:
        return {"optimizer": "SGD", "lr0": 0.01, "momentum": 0.9}
    return {"optimizer": "AdamW", "lr0": 0.001, "momentum": 0.9, "warmup_bias_lr": 0.0}
