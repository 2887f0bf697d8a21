"""Resume continues bit-exactly on CPU: after a crash, after SIGKILL mid-epoch; bad resumes fail clearly."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from engine_toys import ToyTask, main
from test_engine_trainer import config

from yololab.engine import Trainer, TrainConfig
from yololab.errors import WeightsError
from yololab.checkpoint.native import save_checkpoint

TIMING = ("epoch_time", "samples_per_s")


def assert_same_run(a: Path, b: Path) -> None:
    """Two runs' last.pt: every tensor equal bit for bit, same counters, same results rows."""
    ca, cb = (torch.load(p / "weights" / "last.pt", weights_only=True) for p in (a, b))
    for key in ("state_dict", "model_state"):
        if ca[key] is None:
            assert cb[key] is None
            continue
        assert ca[key].keys() == cb[key].keys()
        for k in ca[key]:
            assert torch.equal(ca[key][k], cb[key][k]), f"{key}[{k}] differs"
    for i, state in ca["optimizer"]["state"].items():
        for k, v in state.items():
            assert torch.equal(v, cb["optimizer"]["state"][i][k]), f"optimizer state {i}.{k} differs"
    assert torch.equal(ca["rng"][0]["torch"], cb["rng"][0]["torch"])
    assert (ca["step"], ca["ema"], ca["best_fitness"]) == (cb["step"], cb["ema"], cb["best_fitness"])
    strip = lambda rows: [{k: v for k, v in r.items() if k not in TIMING} for r in rows]  # noqa: E731
    assert strip(ca["history"]) == strip(cb["history"])
    assert (a / "results.csv").read_text().splitlines()[0] == (b / "results.csv").read_text().splitlines()[0]


@pytest.mark.parametrize("case", [
    # MLP with dropout (the torch RNG must be restored), warmup, EMA; resumes at an epoch start
    dict(model="mlp", crash_at=(1, 3), cfg=dict(warmup_epochs=1.0, scheduler="linear", ema=True)),
    # CNN with BatchNorm in bf16 + channels-last, accumulation over 2 batches, a checkpoint every
    # optimizer step: resumes mid-epoch, after batch 4
    dict(model="cnn", crash_at=(1, 6), cfg=dict(amp="bf16", nbs=16, ema=True, save_interval_steps=1)),
], ids=["mlp-epoch-start", "cnn-bf16-mid-epoch"])
def test_resume_after_crash_is_bit_exact(tmp_path, case):
    cfg = config(tmp_path, "whole", epochs=3, **case["cfg"])
    Trainer(ToyTask(cfg, model=case["model"]), cfg).fit()
    cfg = config(tmp_path, "crashed", epochs=3, **case["cfg"])
    with pytest.raises(RuntimeError, match="crash at"):
        Trainer(ToyTask(cfg, model=case["model"], crash_at=case["crash_at"]), cfg).fit()
    saved = torch.load(tmp_path / "crashed" / "weights" / "last.pt", weights_only=True)
    assert (saved["epoch"], saved["batch"]) == ((1, 0) if case["model"] == "mlp" else (1, 4))
    resume = TrainConfig(**{**cfg.to_dict(), "resume": str(tmp_path / "crashed")})
    Trainer(ToyTask(resume, model="linear"), resume).fit()  # the model kind comes back from the checkpoint
    assert_same_run(tmp_path / "whole", tmp_path / "crashed")


@pytest.mark.slow
def test_resume_after_sigkill_mid_epoch_is_bit_exact(tmp_path):
    args = ["--model", "mlp", "epochs=3", "ema=True", "warmup_epochs=1", "save_interval_steps=3", "workers=2"]
    main(["--project", str(tmp_path), "--name", "whole", *args])
    marker = tmp_path / "hanging"
    child = subprocess.Popen([sys.executable, str(Path(__file__).with_name("engine_toys.py")),
                              "--project", str(tmp_path), "--name", "killed", "--hang-at", "1,5",
                              "--marker", str(marker), *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while not marker.exists():  # the child is in epoch 2, batch 5, with a checkpoint after batch 4
        assert child.poll() is None, child.stderr.read().decode()
        assert time.time() < deadline
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL
    saved = torch.load(tmp_path / "killed" / "weights" / "last.pt", weights_only=True)
    assert (saved["epoch"], saved["batch"], saved["step"]) == (1, 4, 12)  # steps 9 and 12 were saved
    main(["--resume", str(tmp_path / "killed" / "weights" / "last.pt"), *args])
    assert_same_run(tmp_path / "whole", tmp_path / "killed")


def test_resume_refuses_bad_checkpoints(tmp_path):
    cfg = config(tmp_path, epochs=1)
    Trainer(ToyTask(cfg), cfg).fit()
    run = tmp_path / "run"

    def resume(target, task=ToyTask):
        c = TrainConfig(**{**cfg.to_dict(), "resume": str(target)})
        Trainer(task(c), c).fit()

    def fails(target, match, task=ToyTask):
        with pytest.raises(WeightsError, match=match) as err:
            resume(target, task)
        assert "\n" not in str(err.value)

    fails(tmp_path / "nothing", "no such run folder or checkpoint file")
    fails(tmp_path, "no weights/last.pt in that folder")
    fails(run / "results.csv", "not a readable yololab checkpoint")
    foreign = tmp_path / "foreign.pt"
    torch.save({"model": {"w": torch.zeros(1)}, "epoch": 3}, foreign)
    fails(foreign, "not a yololab checkpoint")
    code = tmp_path / "code.pt"
    torch.save(torch.nn.Linear(2, 2), code)  # a pickled object: refused by the weights-only loader
    fails(code, "not a readable yololab checkpoint")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes((run / "weights" / "last.pt").read_bytes()[:5000])
    fails(corrupt, "cannot resume")
    weights_only = tmp_path / "weights_only.pt"
    save_checkpoint(torch.nn.Linear(2, 2), weights_only)
    fails(weights_only, "weights only, without the training state")
    fails(run, "already finished")

    class OtherTask(ToyTask):
        name = "other"

    longer = TrainConfig(**{**cfg.to_dict(), "epochs": 2})
    fails(run, "a checkpoint of task 'toy', not 'other'", OtherTask)
    assert longer.epochs == 2  # (the run's saved epochs=1 wins over the command line: see below)
    resumed_cfg = TrainConfig(**{**longer.to_dict(), "resume": str(run)})
    with pytest.raises(WeightsError, match="already finished"):
        Trainer(ToyTask(resumed_cfg), resumed_cfg)
