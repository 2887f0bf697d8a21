"""Training throughput of the engine on CPU in its precision / memory-format modes, side by side.

Trains yololab's yolov8n (``build_model``, 80 classes) through ``yololab.engine.Trainer`` on random
320x320 images, batch 16, with a dummy loss (mean square of the head's raw outputs, in float32): each
step is the engine's real one (forward + backward under autocast, gradient clipping, SGD step, EMA
update). Modes: fp32, fp32 + channels-last, bf16 autocast, bf16 autocast + channels-last (``amp`` and
``channels_last`` settings), all with the default ``deterministic=True``, and the last again without
it. Rounds are interleaved (one short run per mode per round, order rotated) so that load from other
processes hits all modes alike; the first round only warms up (oneDNN builds its kernels on first
use). Prints a markdown table of images/s (median over the measured rounds).

    flock /work/cpu.lock .venv/bin/python benchmarks/engine_cpu_modes.py --rounds 4 --steps 6
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile

import torch

from yololab.engine import Task, TrainConfig, Trainer
from yololab.engine.hardware import cpu_has_native_bf16, cpu_name
from yololab.models import build_model

# (row name, amp, channels_last, deterministic); the last row shows what deterministic mode costs
MODES = [("fp32", "off", "off", True), ("fp32 + channels-last", "off", "on", True), ("bf16", "bf16", "off", True),
         ("bf16 + channels-last", "bf16", "on", True),
         ("bf16 + channels-last, deterministic=False", "bf16", "on", False)]


class RandomImages(Task):
    """yolov8n on one fixed random batch, repeated: measures the training step, not a data loader."""

    name = "bench"

    def __init__(self, cfg: TrainConfig, imgsz: int, steps: int):
        super().__init__(cfg)
        self.images = torch.randn(cfg.batch, 3, imgsz, imgsz, generator=torch.Generator().manual_seed(0))
        self.steps = steps

    def build_model(self):
        return build_model("yolov8n")

    def train_loader(self, epoch):
        return [self.images] * self.steps

    def loss(self, model, batch):
        maps = model(batch.to(self.device))
        loss = sum(m.float().pow(2).mean() for m in maps)
        return loss, {}


def run(mode: tuple[str, str, str, bool], args, root: str) -> float:
    _, amp, channels_last, deterministic = mode
    cfg = TrainConfig(project=root, name="run", epochs=1, batch=args.batch, workers=0, device="cpu", amp=amp,
                      channels_last=channels_last, deterministic=deterministic, optimizer="SGD", lr0=1e-4,
                      warmup_epochs=0.0, val_interval=0, patience=0)
    summary = Trainer(RandomImages(cfg, args.imgsz, args.steps), cfg).fit()
    return summary["final_metrics"]["samples_per_s"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--imgsz", type=int, default=320)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=6, help="training steps per mode per round")
    p.add_argument("--rounds", type=int, default=4, help="rounds, the first one only warms up")
    args = p.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}; CPU: {cpu_name()}, {os.cpu_count()} cores, "
          f"{torch.get_num_threads()} threads, native bf16: {cpu_has_native_bf16()}, torch {torch.__version__}")
    speeds: dict[str, list[float]] = {m[0]: [] for m in MODES}
    with tempfile.TemporaryDirectory() as root:
        for r in range(args.rounds):
            for mode in MODES[r % len(MODES):] + MODES[: r % len(MODES)]:
                s = run(mode, args, root)
                if r:
                    speeds[mode[0]].append(s)
                print(f"round {r + 1}/{args.rounds} {mode[0]}: {s:.1f} img/s" + ("" if r else " (warm-up)"),
                      flush=True)
    base = statistics.median(speeds["fp32"])
    print(f"\nyolov8n, {args.imgsz} px, batch {args.batch}, {args.steps} steps x {args.rounds - 1} measured "
          f"rounds per mode; load average after: {os.getloadavg()[0]:.2f}\n")
    print("| mode | images/s (median) | min - max | vs fp32 |")
    print("|---|---:|---:|---:|")
    for name, values in speeds.items():
        med = statistics.median(values)
        print(f"| {name} | {med:.1f} | {min(values):.1f} - {max(values):.1f} | {med / base:.2f}x |")


if __name__ == "__main__":
    main()
