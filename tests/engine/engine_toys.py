"""Small tasks that exercise the engine: regression on random tensors with an MLP (with dropout, so
resume must restore the RNG), an MLP with BatchNorm, and a small CNN (channels-last, bf16).

Also a script, for the tests that need separate processes (SIGKILL, torchrun):
``python engine_toys.py --model mlp epochs=3 ...`` trains and prints the summary as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from yololab.engine import Task, TrainConfig, Trainer
from yololab.engine.args import add_train_args, config_from_args, parse_args
from yololab.engine.data import epoch_loader

IN, OUT = 8, 2


def make_model(kind: str) -> nn.Module:
    if kind == "mlp":  # dropout: draws from the torch RNG every step
        return nn.Sequential(nn.Linear(IN, 16), nn.SiLU(), nn.Dropout(0.1), nn.Linear(16, OUT))
    if kind == "linear":  # deterministic and without BatchNorm: DDP parity
        return nn.Sequential(nn.Linear(IN, 16), nn.Tanh(), nn.Linear(16, OUT))
    if kind == "bn":
        return nn.Sequential(nn.Linear(IN, 16), nn.BatchNorm1d(16), nn.SiLU(), nn.Linear(16, OUT))
    if kind == "cnn":
        return nn.Sequential(nn.Conv2d(2, 8, 3, padding=1), nn.BatchNorm2d(8), nn.SiLU(),
                             nn.Conv2d(8, 8, 3, padding=1, stride=2), nn.SiLU(),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, OUT))
    raise ValueError(kind)


class ToyData(Dataset):
    """x ~ N(0, 1), y = tanh(x @ W); training samples get noise drawn from (seed, epoch, index)."""

    def __init__(self, n: int, image: bool, seed: int, epoch: int | None = None, data_seed: int = 1234):
        g = torch.Generator().manual_seed(data_seed)
        self.x = torch.randn(n, IN, generator=g)
        self.y = torch.tanh(self.x @ torch.randn(IN, OUT, generator=g))
        self.image, self.seed, self.epoch = image, seed, epoch

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        x = self.x[i]
        if self.epoch is not None:  # augmentation: depends only on (seed, epoch, index)
            rng = np.random.default_rng([self.seed, self.epoch, i])
            x = x + torch.from_numpy(rng.normal(0, 0.05, IN).astype(np.float32))
        if self.image:
            x = x.reshape(2, 2, 2).repeat_interleave(4, 1).repeat_interleave(4, 2)  # 2 x 8 x 8
        return x, self.y[i]


class ToyTask(Task):
    name = "toy"

    def __init__(self, cfg: TrainConfig, model: str = "mlp", n: int = 64, nan_at: int | None = None,
                 poison_grad_at: int | None = None, crash_at: tuple[int, int] | None = None,
                 hang_at: tuple[int, int] | None = None, marker: str | None = None, reduction: str = "mean"):
        super().__init__(cfg)
        self.kind, self.n = model, n
        self.nan_at, self.poison_grad_at = nan_at, poison_grad_at
        self.crash_at, self.hang_at, self.marker = crash_at, hang_at, marker
        self.accumulate_reduction = reduction
        self.calls, self.epoch, self.batch_in_epoch = 0, 0, 0

    def build_model(self) -> nn.Module:
        model = make_model(self.kind)
        self.initial_state = {k: v.clone() for k, v in model.state_dict().items()}
        return model

    def on_epoch_start(self, epoch: int, trainer) -> None:
        self.epoch, self.batch_in_epoch = epoch, 0

    def train_loader(self, epoch: int):
        data = ToyData(self.n, self.kind == "cnn", self.cfg.seed, epoch)
        return epoch_loader(data, self.cfg.batch, epoch, seed=self.cfg.seed, workers=self.cfg.workers)

    def loss(self, model, batch):
        x, y = (t.to(self.device) for t in batch)
        self.calls += 1
        self.batch_in_epoch += 1
        where = (self.epoch, self.batch_in_epoch)
        if self.hang_at == where:  # let a test kill us here, mid-epoch
            Path(self.marker).write_text("hanging")
            time.sleep(600)
        if self.crash_at == where:
            raise RuntimeError(f"crash at {where}")
        pred = model(x)
        self.pred_dtype, pred = pred.dtype, pred.float()
        if self.accumulate_reduction == "sum":
            loss = ((pred - y) ** 2).sum()
        else:
            loss = ((pred - y) ** 2).mean()
        if self.nan_at == self.calls:
            loss = loss * float("nan")
        if self.poison_grad_at == self.calls:  # finite loss, NaN gradients: d sqrt(0 * w) / dw = 0 * inf
            loss = loss + sum((p * 0).sum() for p in model.parameters()).sqrt()
        return loss, {"abs": (pred - y).abs().mean().detach()}

    def validate(self, model):
        val = ToyData(32, self.kind == "cnn", seed=0, data_seed=99)
        x, y = (torch.stack(t).to(self.device) for t in zip(*(val[i] for i in range(len(val)))))
        mse = float(((model(x).float() - y) ** 2).mean())
        return {"fitness": -mse, "mse": mse}

    def checkpoint_meta(self) -> dict:
        return {"model_name": f"toy-{self.kind}", "kind": self.kind}

    def load_checkpoint_meta(self, meta: dict) -> None:
        self.kind = meta["kind"]

    def report(self, run_dir, trainer) -> str:
        return f"## Toy task\n\nmodel {self.kind}, {self.n} samples"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="mlp")
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--hang-at", default=None, help="EPOCH,BATCH (0-based epoch, 1-based batch)")
    parser.add_argument("--marker", default=None)
    add_train_args(parser, {"epochs": 3, "batch": 8, "workers": 0, "device": "cpu", "amp": "off"})
    args = parse_args(parser, argv)
    cfg = config_from_args(args)
    hang = tuple(int(v) for v in args.hang_at.split(",")) if args.hang_at else None
    summary = Trainer(ToyTask(cfg, model=args.model, n=args.samples, hang_at=hang, marker=args.marker), cfg).fit()
    return summary


if __name__ == "__main__":
    out = main()
    print(json.dumps({k: str(v) for k, v in out.items() if k != "final_metrics"}))
    sys.exit(0)
