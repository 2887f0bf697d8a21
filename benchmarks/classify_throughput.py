"""Classification training throughput: yololab's engine (bf16 autocast + channels-last) against a plain
fp32 eager loop, same model, same data, same recipe, side by side in one run.

Both sides train ResNet-18 (CIFAR stem) on the built-in synthetic set with the same seeded data pipeline
(``ClassifyTask``'s loader: random crop + flip, drawn from (seed, epoch, index)), the same initial weights,
SGD with Nesterov momentum, the same per-step LR schedule (``--scheduler``: the engine's cosine or one-cycle
curve, ``yololab.engine.schedule.Schedule.lf``, set by hand in the eager loop) and the same number of epochs:

* **engine**: ``yololab.engine.Trainer`` with ``amp=auto`` (bf16 on a CPU with native bf16) and
  ``channels_last=auto`` (on), exactly what ``yololab classify train`` runs;
* **eager fp32**: the textbook loop (forward, cross-entropy, backward, step), float32, NCHW.

img/s is the training throughput of each epoch (data loading included, validation excluded): the engine's
``samples_per_s`` column, and the same count over the same span for the eager loop. Rounds are interleaved
(engine then eager, for each seed) so that load from other processes hits both alike; top-1 is each run's
final validation accuracy, so "accuracy within noise" can be read against the spread between seeds.

    flock /work/cpu.lock .venv/bin/python benchmarks/classify_throughput.py --train 4000 --val 1000 --epochs 3

To judge "accuracy within noise" the runs must get far from chance: one-cycle (the schedule of
``classify_accuracy.py``) does in a few epochs, e.g. ``--scheduler onecycle --epochs 5 --batch 64``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from yololab.classify.evaluate import evaluate
from yololab.classify.synth import synth_classify
from yololab.classify.task import ClassifyTask
from yololab.engine import TrainConfig, Trainer
from yololab.engine.hardware import cpu_has_native_bf16, cpu_name
from yololab.engine.schedule import Schedule


def recipe(args, seed: int, project: Path, name: str, **over) -> TrainConfig:
    return TrainConfig(project=str(project), name=name, epochs=args.epochs, batch=args.batch, workers=args.workers,
                       optimizer="SGD", lr0=args.lr0, lrf=0.01, momentum=0.9, weight_decay=5e-4, nesterov=True,
                       scheduler=args.scheduler, warmup_epochs=0.0, warmup_bias_lr=0.0, clip_grad=0.0, ema=False,
                       seed=seed, device="cpu", **over).validate()


def run_engine(args, data: Path, seed: int, project: Path) -> tuple[float, float]:
    cfg = recipe(args, seed, project, f"engine-s{seed}", amp="auto", channels_last="auto")
    task = ClassifyTask(cfg, data=str(data), model=args.model, figures=False)
    Trainer(task, cfg).fit()
    rows = (project / f"engine-s{seed}" / "results.csv").read_text().splitlines()
    header = rows[0].split(",")
    last = rows[-1].split(",")
    speeds = [float(r.split(",")[header.index("samples_per_s")]) for r in rows[1:]]
    return statistics.mean(speeds), float(last[header.index("metrics/top1")])


def run_eager(args, data: Path, seed: int, project: Path) -> tuple[float, float]:
    """A plain fp32 loop over the very same loader, model initialisation and schedule."""
    cfg = recipe(args, seed, project, f"eager-s{seed}")
    torch.manual_seed(seed)
    task = ClassifyTask(cfg, data=str(data), model=args.model)
    model = task.build_model()
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay}],
                          lr=cfg.lr0, momentum=cfg.momentum, nesterov=True)
    nb = len(task.train_loader(0))
    curve = Schedule(cfg.scheduler, cfg.epochs, nb, cfg.lrf)  # warmup is 0 on both sides
    speeds, step = [], 0
    for epoch in range(cfg.epochs):
        model.train()
        t0, seen = time.perf_counter(), 0
        for x, y, _ in task.train_loader(epoch):
            lr = cfg.lr0 * curve.lf(step)
            for g in opt.param_groups:
                g["lr"] = lr
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step, seen = step + 1, seen + len(x)
        speeds.append(seen / (time.perf_counter() - t0))
    top1 = evaluate(model.eval(), task.data.dataset("val"), 256).metrics.top1
    return statistics.mean(speeds), top1


def uptime() -> str:
    return subprocess.run(["uptime"], check=False, capture_output=True, text=True).stdout.strip()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", help="a CIFAR-format set (default: synthesize one with --train/--val)")
    p.add_argument("--train", type=int, default=4000, help="synthetic training images")
    p.add_argument("--val", type=int, default=1000, help="synthetic validation images")
    p.add_argument("--model", default="resnet18-cifar")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr0", type=float, default=0.1)
    p.add_argument("--scheduler", default="cosine", choices=["cosine", "onecycle"], help="LR schedule of both sides")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = p.parse_args()

    print(f"machine: {cpu_name()}, {os.cpu_count()} logical CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, native bf16: {cpu_has_native_bf16()}")
    print(f"before: {uptime()}")
    with tempfile.TemporaryDirectory(prefix="yololab-cls-bench-") as tmp:
        tmp = Path(tmp)
        data = Path(args.data) if args.data else synth_classify(tmp / "data", train=args.train, val=args.val,
                                                                   progress=False)
        rows = []
        for seed in args.seeds:
            for side, fn in (("engine bf16 + channels-last", run_engine), ("eager fp32", run_eager)):
                speed, top1 = fn(args, data, seed, tmp / "runs")
                rows.append((side, seed, speed, top1))
                print(f"  {side:28s} seed {seed}: {speed:7.1f} img/s  top-1 {top1:.4f}  ({uptime()})", flush=True)
    print(f"after: {uptime()}\n")
    print(f"ResNet-18 (CIFAR stem), {args.epochs} epochs of {args.train if not args.data else 'the'} images, "
          f"batch {args.batch}, {args.scheduler} LR from {args.lr0}, seeds {args.seeds}\n")
    print("| side | seed | train img/s | val top-1 |\n|---|---:|---:|---:|")
    for side, seed, speed, top1 in rows:
        print(f"| {side} | {seed} | {speed:.1f} | {top1:.4f} |")
    eng = [r for r in rows if r[0].startswith("engine")]
    eag = [r for r in rows if r[0].startswith("eager")]
    ratio = statistics.mean(r[2] for r in eng) / statistics.mean(r[2] for r in eag)
    d_top1 = statistics.mean(r[3] for r in eng) - statistics.mean(r[3] for r in eag)
    spread = max(max(r[3] for r in g) - min(r[3] for r in g) for g in (eng, eag))
    print(f"\nengine / eager img/s: {ratio:.2f}x; top-1 engine - eager: {d_top1:+.4f} "
          f"(largest spread between seeds of one side: {spread:.4f})")


if __name__ == "__main__":
    main()
