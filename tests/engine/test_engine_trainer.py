"""The loop on toy tasks: accumulation, clipping, autocast, channels-last, NaN stops, checkpoints, run folder."""

import hashlib
import math
import os

import pytest
import torch
import yaml
from engine_toys import ToyTask

from yololab.engine import Task, TrainConfig, Trainer
from yololab.engine.checkpoint import load_for_resume
from yololab.engine.data import EpochSampler, epoch_loader
from yololab.engine.hardware import cpu_has_native_bf16, default_workers, resolve_amp
from yololab.errors import YololabError


def config(tmp_path, name="run", **kw) -> TrainConfig:
    base = dict(project=str(tmp_path), name=name, epochs=2, batch=8, workers=0, device="cpu", amp="off",
                optimizer="SGD", lr0=0.05, momentum=0.9, warmup_epochs=0.0, ema=False, scheduler="constant")
    return TrainConfig(**{**base, **kw})


def fit(task_cls=ToyTask, cfg=None, **task_kw):
    trainer = Trainer(task_cls(cfg, **task_kw), cfg)
    return trainer, trainer.fit()


def weights(trainer):
    return {k: v.detach().clone() for k, v in trainer.net.state_dict().items()}


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_accumulation_equals_one_big_batch(tmp_path, reduction):
    """4 batches of 4 accumulated to nbs=16 give the same steps as batches of 16 (same sample order)."""
    common = dict(epochs=2, momentum=0.0, weight_decay=0.0, clip_grad=0.0, lr0=0.02 if reduction == "sum" else 0.2)
    small, _ = fit(cfg=config(tmp_path, "small", batch=4, nbs=16, **common), model="linear", n=32,
                   reduction=reduction)
    big, _ = fit(cfg=config(tmp_path, "big", batch=16, **common), model="linear", n=32, reduction=reduction)
    assert small.accumulate == 4 and big.accumulate == 1
    assert small.step == big.step == 4
    a, b = weights(small), weights(big)
    assert not torch.equal(a["0.weight"], small.task.initial_state["0.weight"])  # it trained
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6, msg=k)


def test_weight_decay_scaled_to_nominal_batch_for_sum_tasks(tmp_path):
    """Ultralytics: weight_decay *= batch * accumulate / nbs (gradients summed over the nominal batch)."""
    summed, _ = fit(cfg=config(tmp_path, "s", batch=6, nbs=16, epochs=1, weight_decay=0.001), model="bn",
                    n=12, reduction="sum")
    mean, _ = fit(cfg=config(tmp_path, "m", batch=6, nbs=16, epochs=1, weight_decay=0.001), model="bn", n=12)
    assert summed.accumulate == 3  # round(16 / 6)
    decay = {g["param_group"]: g["weight_decay"] for g in summed.optimizer.param_groups}
    assert decay == {"weight": pytest.approx(0.001 * 6 * 3 / 16), "norm": 0.0, "bias": 0.0}
    assert {g["param_group"]: g["weight_decay"] for g in mean.optimizer.param_groups}["weight"] == 0.001


@pytest.mark.parametrize("clip", [0.01, 0.0])
def test_gradient_clipping(tmp_path, clip):
    """One plain SGD step (lr 1): the update is the clipped gradient, so its norm is the clip value."""
    trainer, _ = fit(cfg=config(tmp_path, str(clip), lr0=1.0, momentum=0.0, weight_decay=0.0, clip_grad=clip,
                                max_steps=1), model="linear")
    before = trainer.task.initial_state
    change = math.sqrt(sum(float((v - before[k]).pow(2).sum()) for k, v in weights(trainer).items()))
    if clip:
        assert change == pytest.approx(clip, rel=1e-4)
    else:
        assert change > 0.05  # the raw gradient is far larger than the clip above


def test_bf16_autocast_channels_last_cnn(tmp_path):
    trainer, summary = fit(cfg=config(tmp_path, amp="bf16", ema=True, nbs=16), model="cnn", n=32)
    assert trainer.amp == "bf16" and trainer.task.pred_dtype == torch.bfloat16
    assert trainer.channels_last
    assert trainer.net[0].weight.is_contiguous(memory_format=torch.channels_last)
    losses = [row["train/loss"] for row in trainer.history]
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]
    assert trainer.ema.updates == trainer.step == 4  # 2 epochs x 4 batches / accumulate 2
    # auto: bf16 exactly where the CPU has it natively
    assert resolve_amp("auto", torch.device("cpu")) == ("bf16" if cpu_has_native_bf16() else "off")
    plain, _ = fit(cfg=config(tmp_path, "plain"), model="mlp")
    assert not plain.channels_last and plain.task.pred_dtype == torch.float32


def test_nan_loss_stops_and_leaves_last_good_checkpoint(tmp_path):
    class Recording(ToyTask):
        def on_epoch_start(self, epoch, trainer):
            super().on_epoch_start(epoch, trainer)
            if epoch == 1:
                self.last_hash = hashlib.sha256((trainer.wdir / "last.pt").read_bytes()).hexdigest()

    cfg = config(tmp_path, epochs=3, ema=True)
    task = Recording(cfg, nan_at=13)  # epoch 2, batch 5 of 8
    with pytest.raises(YololabError) as err:
        Trainer(task, cfg).fit()
    message = str(err.value)
    assert "non-finite loss at epoch 2/3, batch 5/8" in message and "loss nan" in message
    assert "last.pt (epoch 1)" in message and "\n" not in message
    last = tmp_path / "run" / "weights" / "last.pt"
    assert hashlib.sha256(last.read_bytes()).hexdigest() == task.last_hash  # untouched
    ckpt, _ = load_for_resume(last)
    assert ckpt["epoch"] == 1 and all(torch.isfinite(v).all() for v in ckpt["state_dict"].values()
                                      if v.is_floating_point())
    # and the run resumes from it
    resumed = Trainer(ToyTask(cfg), TrainConfig(**{**cfg.to_dict(), "resume": str(tmp_path / "run")})).fit()
    assert resumed["epochs_done"] == 3


def test_nan_weights_are_never_saved(tmp_path):
    cfg = config(tmp_path, epochs=3)
    with pytest.raises(YololabError, match="non-finite weights after epoch 2"):
        Trainer(ToyTask(cfg, poison_grad_at=16), cfg).fit()  # last batch of epoch 2: finite loss, NaN grads
    ckpt, _ = load_for_resume(tmp_path / "run")
    assert ckpt["epoch"] == 1


def test_checkpoint_contents(tmp_path):
    trainer, summary = fit(cfg=config(tmp_path, ema=True, nbs=16, amp="bf16"), model="bn")
    ckpt = torch.load(summary["last"], map_location="cpu", weights_only=True)
    assert ckpt["format"] == "yololab" and ckpt["version"] == 1
    assert ckpt["model_name"] == "toy-bn" and ckpt["meta"] == {"model_name": "toy-bn", "kind": "bn"}
    assert ckpt["task"] == "toy" and ckpt["epoch"] == 2 and ckpt["batch"] == 0 and ckpt["step"] == trainer.step
    for k, v in trainer.ema.module.state_dict().items():  # the weights to use: the EMA's, float32
        assert torch.equal(ckpt["state_dict"][k], v)
        assert ckpt["state_dict"][k].dtype == (torch.float32 if v.is_floating_point() else v.dtype)
    for k, v in trainer.net.state_dict().items():
        assert torch.equal(ckpt["model_state"][k], v)
    assert ckpt["ema"]["updates"] == trainer.step
    assert ckpt["optimizer"]["param_groups"][0]["param_group"] == "weight"
    assert set(ckpt["rng"][0]) == {"python", "numpy", "torch", "cuda"}
    assert ckpt["config"]["nbs"] == 16 and ckpt["amp"] == "bf16"
    assert [r["epoch"] for r in ckpt["history"]] == [1, 2]
    assert ckpt["best_epoch"] in (1, 2) and ckpt["best_fitness"] == max(r["fitness"] for r in ckpt["history"])
    assert (tmp_path / "run" / "weights" / "best.pt").is_file()
    assert sorted(p.name for p in (tmp_path / "run" / "weights").iterdir()) == ["best.pt", "last.pt"]  # no temp files


def test_detector_checkpoint_loads_through_build_model(tmp_path):
    from yololab.models import build_model

    class TinyDetection(Task):
        name = "detect"

        def build_model(self):
            return build_model("yolov8n", num_classes=2)

        def train_loader(self, epoch):
            return [torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(epoch))]

        def loss(self, model, batch):
            out = model(batch.to(self.device))
            loss = sum(o.float().pow(2).mean() for o in out)
            return loss, {}

    cfg = config(tmp_path, epochs=1, batch=2, ema=True, lr0=0.001, channels_last="off")
    summary = Trainer(TinyDetection(cfg), cfg).fit()
    ckpt = torch.load(summary["last"], weights_only=True)
    assert ckpt["model_name"] == "yolov8n" and ckpt["num_classes"] == 2
    model = build_model("yolov8n", num_classes=2, weights=str(summary["last"]))
    for k, v in model.state_dict().items():
        assert torch.equal(v, ckpt["state_dict"][k]), k


def test_run_folder(tmp_path):
    trainer, summary = fit(cfg=config(tmp_path, epochs=3, val_interval=2, save_period=2), model="mlp")
    run = tmp_path / "run"
    assert sorted(p.name for p in (run / "weights").iterdir()) == ["best.pt", "epoch2.pt", "last.pt"]
    assert summary["run_dir"] == run and summary["epochs_done"] == 3
    args = yaml.safe_load((run / "args.yaml").read_text())
    assert args["epochs"] == 3 and args["name"] == "run"
    lines = (run / "results.csv").read_text().splitlines()
    header = lines[0].split(",")
    assert header[:3] == ["epoch", "train/loss", "train/abs"] and {"fitness", "metrics/mse", "lr/pg0"} <= set(header)
    assert len(lines) == 4
    rows = [dict(zip(header, line.split(","))) for line in lines[1:]]
    assert [r["fitness"] != "" for r in rows] == [False, True, True]  # val every 2 epochs and at the end
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run))
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3]
    assert (run / "results.png").read_bytes()[:4] == b"\x89PNG"
    report = (run / "report.md").read_text()
    for part in ("## Final metrics", "## Hardware", torch.__version__, "| autocast | off |", "| epochs | 3 |",
                 "![results](results.png)", "## Toy task"):
        assert part in report
    # a second run with the same name goes next to it, never over it
    _, again = fit(cfg=config(tmp_path, epochs=1), model="mlp")
    assert again["run_dir"] == tmp_path / "run2"


def test_default_workers(tmp_path, monkeypatch):
    """workers=None: no loader processes on a CPU with <= 2 cores per process (they would take a compute core),
    else 2; the resolved number is what the run uses and records."""
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert (default_workers(cpu), default_workers(cuda)) == (0, 2)
    trainer, summary = fit(cfg=config(tmp_path, workers=None, epochs=1), model="mlp")
    assert trainer.cfg.workers == 0 == yaml.safe_load((summary["run_dir"] / "args.yaml").read_text())["workers"]
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    assert default_workers(cpu) == 2
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")  # torchrun: 4 processes share the 8 cores
    assert default_workers(cpu) == 0
    assert Trainer(ToyTask(config(tmp_path, workers=None)), config(tmp_path, workers=None)).cfg.workers == 0
    assert Trainer(ToyTask(config(tmp_path, workers=3)), config(tmp_path, workers=3)).cfg.workers == 3


def test_limits_patience_and_auto_optimizer(tmp_path):
    _, summary = fit(cfg=config(tmp_path, "steps", epochs=5, max_steps=11), model="mlp")
    assert summary["steps"] == 11 and "max_steps" in summary["stop_reason"]
    ckpt, _ = load_for_resume(summary["last"].parent.parent)
    assert (ckpt["epoch"], ckpt["batch"]) == (1, 3)  # mid-epoch: resumable
    _, summary = fit(cfg=config(tmp_path, "time", epochs=5, time=1e-9), model="mlp")
    assert summary["steps"] == 1 and summary["stop_reason"] == "time limit of 1e-09 h"
    trainer, _ = fit(cfg=config(tmp_path, "auto", epochs=1, optimizer="auto"), model="mlp")
    assert trainer.cfg.optimizer == "AdamW" and trainer.cfg.lr0 == 0.001
    assert type(trainer.optimizer).__name__ == "AdamW"

    class Worsening(ToyTask):
        def validate(self, model):
            self.v = getattr(self, "v", 0) + 1
            return {"fitness": -self.v}

    _, summary = fit(Worsening, cfg=config(tmp_path, "patience", epochs=10, patience=2))
    assert summary["epochs_done"] == 3 and "patience" in summary["stop_reason"] and summary["best_epoch"] == 1


def test_epoch_sampler_shards_and_seeds():
    one = list(EpochSampler(10, seed=3, epoch=1, rank=0, world_size=1))
    assert sorted(one) == list(range(10)) and one == list(EpochSampler(10, seed=3, epoch=1, rank=0, world_size=1))
    assert one != list(EpochSampler(10, seed=3, epoch=2, rank=0, world_size=1))
    r0, r1 = (list(EpochSampler(10, seed=3, epoch=1, rank=r, world_size=2)) for r in (0, 1))
    assert r0 == one[0::2] and r1 == one[1::2]
    three = [list(EpochSampler(10, seed=3, epoch=1, rank=r, world_size=3)) for r in range(3)]
    assert all(len(s) == 4 for s in three)  # padded by repeating the start
    data = torch.utils.data.TensorDataset(torch.arange(12.0))
    a = [b[0].tolist() for b in epoch_loader(data, 4, epoch=5, seed=1)]
    assert a == [b[0].tolist() for b in epoch_loader(data, 4, epoch=5, seed=1)]


def test_engine_imports_no_task():
    import subprocess
    import sys

    code = ("import sys, yololab.engine.args; print('torch' in sys.modules); import yololab.engine.trainer; "
            "print([m for m in sys.modules if m.split('.')[1:2] and m.split('.')[1] in "
            "('detect', 'classify', 'video', 'translate', 'deploy')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "[]"]  # args: standard library only; the engine: no task


