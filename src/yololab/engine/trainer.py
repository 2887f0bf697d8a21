"""The training loop shared by every task.

``Trainer(task, cfg).fit()`` runs, in this order:

setup   join the process group (torchrun), pick the device, seed (seed + rank), choose the run folder,
        build the model (on resume: load its weights), channels-last, EMA copy, DDP wrap, count the
        batches of an epoch, accumulation and weight decay for the nominal batch, optimizer
        (``auto`` resolved by the task), schedule, GradScaler (fp16 only); on resume restore optimizer,
        scaler, EMA, counters, history and, last, every RNG state.
epoch   ``task.on_epoch_start(epoch)``, ``task.train_loader(epoch)`` (a resumed epoch skips the batches
        it already did: same data, as the loader depends only on (seed, epoch)); for each batch:
        a new accumulation window starts if the last one ended (its length: ``schedule.accumulate``),
        ``task.loss`` under autocast (no DDP gradient sync before the window's last batch), loss
        parts reduced over processes and checked (non-finite: stop with an error, nothing saved),
        backward of the loss weighted by ``1 / window`` ("mean" tasks) or ``world`` ("sum" tasks);
        at the window's last batch the optimizer step: LR/momentum from the schedule, unscale,
        clip, step, zero grads, EMA update; then the limits (max_steps, time) and step checkpoints.
end     validate the EMA (or plain) model on rank 0 (every ``val_interval`` epochs and at the end),
        fitness, best, patience, results.csv row, TensorBoard, ``weights/last.pt`` (+ best.pt,
        epochN.pt), after checking every weight is finite.
finish  results.png, the task's plots, report.md; returns a summary dict.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
import os
import random
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from yololab.engine import checkpoint, dist, logs
from yololab.engine.config import TrainConfig
from yololab.engine.ema import ModelEMA
from yololab.engine.hardware import (cpu_has_native_bf16, cpu_threads, default_workers, describe, resolve_amp,
                                     select_device)
from yololab.engine.optim import build_optimizer
from yololab.engine.schedule import Schedule
from yololab.engine.task import Task
from yololab.errors import ConfigError, WeightsError, YololabError
from yololab.progress import progress

# settings a resumed run takes from the command line; all others come from the checkpoint
FROM_COMMAND_LINE = ("resume", "device", "workers")
NOT_COMPARED = FROM_COMMAND_LINE + ("project", "name", "exist_ok")  # the run folder is the resumed one


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # every device
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    torch.backends.cudnn.deterministic = deterministic
    # deterministic mode fills every new tensor with NaN by default: one more kernel per allocation
    torch.utils.deterministic.fill_uninitialized_memory = not deterministic
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


class EpochMeter:
    """Mean loss and loss parts over the batches of an epoch, averaged over processes.

    ``add`` also carries two flags across processes in the same reduction: a non-finite loss
    anywhere, and a stop request (time limit) anywhere, so that every process acts on the same step.
    """

    def __init__(self, state: dict | None = None):
        state = state or {"names": None, "sums": [], "batches": 0, "samples": 0}
        self.names, self.sums = state["names"], list(state["sums"])
        self.batches, self.samples = state["batches"], state["samples"]

    def state(self) -> dict:
        return {"names": self.names, "sums": self.sums, "batches": self.batches, "samples": self.samples}

    def add(self, loss: torch.Tensor, parts: dict, samples: int, stop: bool) -> tuple[bool, bool]:
        """Record one batch; returns (non-finite loss on some process, stop requested on some process)."""
        names = ["loss", *parts]
        if self.names is None:
            self.names, self.sums = names, [0.0] * len(names)
        elif names != self.names:
            raise YololabError(f"task.loss returned the parts {names[1:]} after {self.names[1:]}: the parts "
                               f"must have the same names every batch")
        values = torch.stack([torch.as_tensor(v, dtype=torch.float32, device=loss.device).detach().reshape(())
                              for v in [loss, *parts.values()]])
        flags = torch.tensor([float(not torch.isfinite(values).all()), float(stop), float(samples)],
                             device=loss.device)
        reduced = dist.all_reduce_sum(torch.cat([values, flags])).tolist()
        nonfinite, stop_any, samples_all = reduced[-3] > 0, reduced[-2] > 0, reduced[-1]
        if not nonfinite:
            world = dist.world_size()
            self.sums = [s + v / world for s, v in zip(self.sums, reduced[:-3])]
            self.batches += 1
            self.samples += int(samples_all)
        return nonfinite, stop_any

    def means(self) -> dict[str, float]:
        return {f"train/{n}": s / max(self.batches, 1) for n, s in zip(self.names or [], self.sums)}


class Trainer:
    def __init__(self, task: Task, cfg: TrainConfig):
        cfg.validate()
        if task.accumulate_reduction not in ("mean", "sum"):
            raise ValueError(f"{type(task).__name__}.accumulate_reduction must be 'mean' or 'sum'")
        self.task = task
        self.resume_ckpt, self.resume_from = None, None
        if cfg.resume:
            self.resume_ckpt, self.resume_from = checkpoint.load_for_resume(cfg.resume)
            cfg = self._resumed_config(self.resume_ckpt, cfg)
        self.device = select_device(cfg.device, dist.local_rank())
        if cfg.workers is None:
            cfg = dataclasses.replace(cfg, workers=default_workers(self.device))
        self.cfg = cfg
        threads = cpu_threads(cfg.workers) if self.device.type == "cpu" else None
        if threads is not None:
            torch.set_num_threads(threads)
        self.amp = resolve_amp(cfg.amp, self.device)
        if cfg.sync_bn and dist.launched() and self.device.type != "cuda":
            raise ConfigError("sync_bn=True: PyTorch's SyncBatchNorm runs on CUDA devices only; on CPUs each "
                              "process normalizes its own batch (use sync_bn=False)")
        if self.amp == "bf16" and self.device.type == "cpu" and not cpu_has_native_bf16():
            warnings.warn("amp=bf16 on a CPU without native bf16 (AVX512-BF16 / AMX): emulated, slower than "
                          "amp=off", stacklevel=2)
        self.stop_reason: str | None = None

    # ------------------------------------------------------------------------------------------ setup

    def _resumed_config(self, ckpt: dict, given: TrainConfig) -> TrainConfig:
        """The run's saved settings; only those in FROM_COMMAND_LINE come from ``given``."""
        if ckpt.get("task") != self.task.name:
            raise WeightsError(f"cannot resume {self.resume_from}: a checkpoint of task {ckpt.get('task')!r}, "
                               f"not {self.task.name!r}")
        known = [f.name for f in dataclasses.fields(TrainConfig)]
        saved = TrainConfig(**{k: v for k, v in ckpt["config"].items() if k in known})
        skip = set(NOT_COMPARED) | (set(ckpt.get("auto_resolved", ())) if given.optimizer == "auto" else set())
        ignored = [f"{k}={getattr(given, k)!r} (the run's: {getattr(saved, k)!r})" for k in known
                   if k not in skip and getattr(given, k) != getattr(saved, k)]
        if ignored and dist.is_main():
            print(f"resume: continuing with the run's own settings; ignored {', '.join(ignored)}", file=sys.stderr)
        cfg = dataclasses.replace(saved, **{k: getattr(given, k) for k in FROM_COMMAND_LINE})
        done = ckpt["epoch"] >= cfg.epochs or (cfg.max_steps is not None and ckpt["step"] >= cfg.max_steps)
        if done:
            raise WeightsError(f"cannot resume {self.resume_from}: the run already finished ({ckpt['epoch']} of "
                               f"{cfg.epochs} epochs, {ckpt['step']} steps); start a new run with --weights to "
                               f"train further")
        return cfg

    def _choose_run_dir(self) -> Path:
        if self.resume_from is not None:
            return checkpoint.run_dir_of(self.resume_from)
        path = None
        if dist.is_main():
            project = Path(self.cfg.project or Path("runs") / self.task.name)
            name = self.cfg.name or "train"
            path, n = project / name, 2
            while not self.cfg.exist_ok and path.exists() and (not path.is_dir() or any(path.iterdir())):
                path, n = project / f"{name}{n}", n + 1
            path.mkdir(parents=True, exist_ok=True)
        return Path(dist.broadcast_object(str(path)))

    def _setup(self) -> None:
        cfg, task, ckpt = self.cfg, self.task, self.resume_ckpt
        self._owns_group = dist.init(self.device)
        self.rank, self.world, self.is_main = dist.rank(), dist.world_size(), dist.is_main()
        seed_everything(cfg.seed + self.rank, cfg.deterministic)
        self.run_dir = self._choose_run_dir()
        self.cfg = cfg = dataclasses.replace(cfg, project=str(self.run_dir.parent), name=self.run_dir.name)
        self.wdir = self.run_dir / "weights"

        task.cfg, task.device, task.trainer = cfg, self.device, self
        if ckpt:
            task.load_checkpoint_meta(ckpt.get("meta") or {})
        net = task.build_model().to(self.device)
        if ckpt:
            net.load_state_dict(ckpt["model_state"] if ckpt.get("model_state") is not None else ckpt["state_dict"])
        self.channels_last = cfg.channels_last == "on" or (
            cfg.channels_last == "auto" and any(p.dim() == 4 for p in net.parameters()))
        if self.channels_last:
            net = net.to(memory_format=torch.channels_last)
        self.ema = ModelEMA(net, cfg.ema_decay, cfg.ema_tau) if cfg.ema else None
        if ckpt and self.ema:
            self.ema.module.load_state_dict(ckpt["state_dict"])
            self.ema.updates = ckpt["ema"]["updates"]
        self.model = dist.wrap(net, self.device, cfg.sync_bn, task.ddp_find_unused_parameters)
        self.net = dist.unwrap(self.model)

        # batches, the nominal batch, the optimizer and its schedule
        self.start_epoch, self.start_batch = (ckpt["epoch"], ckpt["batch"]) if ckpt else (0, 0)
        self.nb = len(task.train_loader(self.start_epoch))
        if self.nb == 0:
            raise YololabError(f"task {task.name}: the training loader of epoch {self.start_epoch + 1} has no batches")
        global_batch = cfg.batch * self.world
        self.accumulate = max(round(cfg.nbs / global_batch), 1) if cfg.nbs else 1
        weight_decay = cfg.weight_decay
        if cfg.nbs and task.accumulate_reduction == "sum":  # gradients scale with the batch: so does decay
            weight_decay *= global_batch * self.accumulate / cfg.nbs
        self.auto_resolved = {}
        if cfg.optimizer == "auto":
            steps = math.ceil(self.nb / self.accumulate) * cfg.epochs
            self.auto_resolved = task.auto_optimizer(steps)
            self.cfg = cfg = task.cfg = dataclasses.replace(cfg, **self.auto_resolved)
            if self.is_main:
                print(f"optimizer=auto: {cfg.optimizer} lr0={cfg.lr0:g} momentum={cfg.momentum:g} for {steps} "
                      f"optimizer steps")
        self.optimizer = build_optimizer(task.param_groups(self.net), cfg.optimizer, cfg.lr0, cfg.momentum,
                                         weight_decay, cfg.nesterov, cfg.beta2)
        self.schedule = Schedule(cfg.scheduler, cfg.epochs, self.nb, cfg.lrf, self.accumulate, cfg.warmup_epochs,
                                 cfg.warmup_steps, cfg.momentum, cfg.warmup_momentum, cfg.warmup_bias_lr)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp == "fp16")

        self.step, self.history, self.train_time_before = 0, [], 0.0
        self.best_fitness, self.best_epoch, self.last_saved = None, 0, "no checkpoint was written yet"
        self.meter = EpochMeter()
        if ckpt:
            self._restore(ckpt)
        if self.is_main:
            logs.write_args(self.run_dir, cfg.to_dict())
            self.tb = logs.TensorBoard(self.run_dir, purge_epoch=self.start_epoch + 1 if ckpt else None)
        if ckpt:  # last: everything above may have drawn random numbers
            states = ckpt["rng"]
            checkpoint.set_rng_state(states[self.rank] if len(states) == self.world else states[0])

    def _restore(self, ckpt: dict) -> None:
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        self.step, self.history = ckpt["step"], ckpt["history"]
        self.best_fitness, self.best_epoch = ckpt["best_fitness"], ckpt["best_epoch"]
        self.train_time_before = ckpt["train_time"]
        self.meter = EpochMeter(ckpt["epoch_meter"] if ckpt["batch"] else None)
        self.last_saved = f"{self.resume_from} (resumed from)"
        saved = ckpt["schedule"]
        if (saved["nb"], saved["world_size"]) != (self.nb, self.world) and self.is_main:
            warnings.warn(f"resume: {self.nb} batches per epoch on {self.world} process(es), the run had "
                          f"{saved['nb']} on {saved['world_size']}: it continues, but not bit-exactly", stacklevel=3)

    # ------------------------------------------------------------------------------------------ the loop

    def fit(self) -> dict:
        """Train; returns a summary (run_dir, best_fitness, best_epoch, final metrics, wall time ...)."""
        self.t0, self.tb, self._owns_group = time.time(), None, False
        self._determinism_before = (torch.are_deterministic_algorithms_enabled(),
                                    torch.is_deterministic_algorithms_warn_only_enabled(),
                                    torch.utils.deterministic.fill_uninitialized_memory)
        try:
            self._setup()
            epoch = self.start_epoch
            while epoch < self.cfg.epochs and self.stop_reason is None:
                self.task.on_epoch_start(epoch, self)
                done, nb = self._train_epoch(epoch)
                self._end_epoch(epoch, done, complete=done >= nb)
                epoch += 1
            return self._finish()
        finally:
            self._close()

    def autocast(self):
        """The training autocast context (also for a task's own validation, if it wants it)."""
        if self.amp == "off":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16 if self.amp == "bf16" else torch.float16)

    def _train_epoch(self, epoch: int) -> tuple[int, int]:
        """Train one epoch (from ``start_batch`` when resumed mid-epoch); returns (batches done, batches)."""
        cfg, task = self.cfg, self.task
        loader = task.train_loader(epoch)
        nb = len(loader)
        first = self.start_batch if epoch == self.start_epoch else 0
        if first == 0:
            self.meter = EpochMeter()
        self.net.train()
        weighting = task.accumulate_reduction
        pbar = progress(total=nb, initial=first, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False,
                        enabled=self.is_main, dynamic_ncols=True)
        self._epoch_t0, self._epoch_samples0 = time.time(), self.meter.samples
        window_end, i, pending = first, first - 1, False
        for i, batch in itertools.islice(enumerate(loader), first, None):
            it = epoch * self.nb + i
            if i == window_end:  # a new accumulation window
                window_start, window_end = i, min(i + self.schedule.accumulate(it), nb)
            last = i == window_end - 1
            sync = self.model.no_sync() if self.world > 1 and not last else contextlib.nullcontext()
            with sync:
                with self.autocast():
                    loss, parts = task.loss(self.model, batch)
                over_time = cfg.time is not None and time.time() - self.t0 > cfg.time * 3600
                nonfinite, stop = self.meter.add(loss, parts, task.batch_size(batch), over_time)
                if nonfinite:
                    raise self._nonfinite_error(epoch, i, nb, loss, parts)
                weight = 1.0 / (window_end - window_start) if weighting == "mean" else float(self.world)
                self.scaler.scale(loss * weight).backward()
                pending = True
            if stop:
                self.stop_reason = self.stop_reason or f"time limit of {cfg.time} h"
            pbar.update(1)
            pbar.set_postfix_str(self._progress_text())
            if not last:
                continue
            self._optimizer_step(it)
            pending = False
            if cfg.max_steps is not None and self.step >= cfg.max_steps:
                self.stop_reason = f"max_steps={cfg.max_steps} reached"
            if self.stop_reason is not None:
                break
            if cfg.save_interval_steps and self.step % cfg.save_interval_steps == 0 and i + 1 < nb:
                self._save(epoch, i + 1)
        if pending:  # the loader gave fewer batches than its len() said: step on what there is
            self._optimizer_step(epoch * self.nb + i)
        pbar.close()
        return i + 1, nb

    def _optimizer_step(self, it: int) -> None:
        self.schedule.apply(self.optimizer, it)
        self.scaler.unscale_(self.optimizer)
        if self.cfg.clip_grad > 0:
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.cfg.clip_grad)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema:
            self.ema.update(self.net)
        self.step += 1

    def _progress_text(self) -> str:
        elapsed = max(time.time() - self._epoch_t0, 1e-9)
        means = " ".join(f"{k[6:]} {v:.4g}" for k, v in self.meter.means().items())
        return f"{means} | {(self.meter.samples - self._epoch_samples0) / elapsed:.1f} samples/s"

    def _nonfinite_error(self, epoch: int, i: int, nb: int, loss, parts: dict) -> YololabError:
        values = {k: float(v.detach() if torch.is_tensor(v) else v) for k, v in {"loss": loss, **parts}.items()}
        text = ", ".join(f"{k} {v:.4g}" for k, v in values.items())
        where = f"({text})" if not all(map(math.isfinite, values.values())) else f"on another process (here: {text})"
        return YololabError(
            f"non-finite loss at epoch {epoch + 1}/{self.cfg.epochs}, batch {i + 1}/{nb} (after {self.step} "
            f"optimizer steps) {where}; training stopped and nothing was saved: {self.last_saved} is the last "
            f"good checkpoint. Try a lower lr0, clip_grad, or amp=off")

    # ------------------------------------------------------------------------------------------ epoch end

    def _validate(self) -> dict[str, float]:
        model = self.ema.module if self.ema else self.net
        model.eval()
        try:
            with torch.no_grad():
                metrics = self.task.validate(model) or {}
        finally:
            self.net.train()
        return {k: float(v) for k, v in metrics.items()}

    def _end_epoch(self, epoch: int, done: int, complete: bool) -> None:
        cfg = self.cfg
        seconds = time.time() - self._epoch_t0
        row = {"epoch": epoch + 1, **self.meter.means()}
        last_epoch = epoch + 1 >= cfg.epochs or self.stop_reason is not None
        if self.is_main and (last_epoch or (cfg.val_interval and (epoch + 1) % cfg.val_interval == 0)):
            metrics = self._validate()
            fitness = metrics.pop("fitness", -row.get("train/loss", math.inf))
            row.update({k if "/" in k else f"metrics/{k}": v for k, v in metrics.items()})
            row["fitness"] = fitness
            if self.best_fitness is None or fitness > self.best_fitness:
                self.best_fitness, self.best_epoch = fitness, epoch + 1
            elif cfg.patience and epoch + 1 - self.best_epoch >= cfg.patience and self.stop_reason is None:
                self.stop_reason = f"no better fitness for {cfg.patience} epochs (patience)"
        row.update({f"lr/pg{j}": g["lr"] for j, g in enumerate(self.optimizer.param_groups)})
        row.update({"epoch_time": seconds, "samples_per_s": (self.meter.samples - self._epoch_samples0) / seconds})
        row, self.best_fitness, self.best_epoch, self.stop_reason = dist.broadcast_object(
            (row, self.best_fitness, self.best_epoch, self.stop_reason))
        self.history = [r for r in self.history if r["epoch"] != epoch + 1] + [row]

        self._save(epoch + 1 if complete else epoch, 0 if complete else done, best=self.best_epoch == epoch + 1)
        if self.is_main:
            logs.write_results_csv(self.run_dir, self.history)
            self.tb.log(row)
            fit = f"  fitness {row['fitness']:.4g} (best {self.best_fitness:.4g})" if "fitness" in row else ""
            print(f"epoch {epoch + 1}/{cfg.epochs}  {self._progress_text()}{fit}  {seconds:.1f} s", flush=True)

    def _save(self, epoch: int, batch: int, best: bool = False) -> None:
        """Write weights/last.pt (and best.pt / epochN.pt) for resuming at (epoch, batch); refuse NaN weights."""
        weights = checkpoint.float_state(self.ema.module if self.ema else self.net)
        model_state = checkpoint.float_state(self.net) if self.ema else None
        if not (checkpoint.all_finite(weights) and (model_state is None or checkpoint.all_finite(model_state))):
            raise YololabError(f"non-finite weights after epoch {epoch}, batch {batch}: not saved; {self.last_saved} "
                               f"is the last good checkpoint. Try a lower lr0, clip_grad, or amp=off")
        rng = dist.gather_object(checkpoint.rng_state())
        if not self.is_main:
            return
        meta = self.task.checkpoint_meta()
        ckpt = {
            **checkpoint.native_fields(self.net, weights, meta),
            "model_state": model_state,
            "ema": {"updates": self.ema.updates} if self.ema else None,
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "schedule": {"scheduler": self.cfg.scheduler, "nb": self.nb, "world_size": self.world,
                         "accumulate": self.accumulate, "warmup_batches": self.schedule.nw},
            "epoch": epoch, "batch": batch, "step": self.step,
            "best_fitness": self.best_fitness, "best_epoch": self.best_epoch,
            "history": self.history, "epoch_meter": self.meter.state(),
            "rng": rng, "config": self.cfg.to_dict(), "task": self.task.name, "meta": meta,
            "auto_resolved": list(self.auto_resolved), "amp": self.amp, "world_size": self.world,
            "train_time": self.train_time_before + time.time() - self.t0,
            "torch_version": str(torch.__version__), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        data = checkpoint.serialize(ckpt)
        checkpoint.write(self.wdir / "last.pt", data)
        self.last_saved = f"{self.wdir / 'last.pt'} (epoch {epoch}" + (f", batch {batch})" if batch else ")")
        if best:
            checkpoint.write(self.wdir / "best.pt", data)
        if batch == 0 and self.cfg.save_period and epoch % self.cfg.save_period == 0:
            checkpoint.write(self.wdir / f"epoch{epoch}.pt", data)

    # ------------------------------------------------------------------------------------------ finish

    def _finish(self) -> dict:
        final = {k: v for k, v in self.history[-1].items() if k != "epoch"} if self.history else {}
        summary = {
            "run_dir": self.run_dir, "last": self.wdir / "last.pt", "best": self.wdir / "best.pt",
            "epochs_done": self.history[-1]["epoch"] if self.history else 0, "steps": self.step,
            "best_fitness": self.best_fitness, "best_epoch": self.best_epoch, "final_metrics": final,
            "stop_reason": self.stop_reason or f"all {self.cfg.epochs} epochs done",
            "wall_time_s": time.time() - self.t0,
            "train_time_s": self.train_time_before + time.time() - self.t0,
        }
        if self.is_main:
            plots = [logs.plot_results(self.run_dir, self.history)] + list(self.task.plots(self.run_dir, self))
            logs.write_report(self.run_dir, f"{self.task.name}: {self.run_dir.name}", self.cfg.to_dict(),
                              describe(self.device, self.amp) | {"processes": str(self.world),
                                                                 "channels-last": str(self.channels_last)},
                              summary, final, plots, self.task.report(self.run_dir, self))
        return summary

    def _close(self) -> None:
        if self.tb is not None:
            self.tb.close()
        enabled, warn_only, fill = self._determinism_before
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
        torch.utils.deterministic.fill_uninitialized_memory = fill
        if self._owns_group:
            dist.cleanup()
