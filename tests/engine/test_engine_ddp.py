"""DDP on CPU (gloo): 2 processes of batch 4 train like 1 process of batch 8."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from engine_toys import main

# No BatchNorm: under DDP each process normalizes its own batch, so a BN model's steps differ from one
# process's (SyncBatchNorm would fix that, but PyTorch runs it on CUDA only).
ARGS = ["--model", "linear", "--samples", "32", "epochs=2", "nbs=16", "ema=True", "optimizer=SGD", "lr0=0.1",
        "warmup_epochs=1", "clip_grad=1.0", "amp=off"]


@pytest.mark.slow
def test_two_processes_match_one_with_the_same_global_batch(tmp_path):
    main(["--project", str(tmp_path), "--name", "one", "batch=8", *ARGS])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          str(Path(__file__).with_name("engine_toys.py")), "--project", str(tmp_path),
                          "--name", "two", "batch=4", *ARGS], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert not (tmp_path / "two2").exists()  # one run folder, chosen by rank 0
    one, two = (torch.load(tmp_path / n / "weights" / "last.pt", weights_only=True) for n in ("one", "two"))
    assert (two["world_size"], two["schedule"]["accumulate"], one["schedule"]["accumulate"]) == (2, 2, 2)
    assert one["step"] == two["step"] == 5 and len(two["rng"]) == 2  # (accumulation ramps up in warmup); RNG per rank
    for key in ("state_dict", "model_state"):
        for k, v in one[key].items():
            torch.testing.assert_close(two[key][k], v, rtol=1e-5, atol=1e-6, msg=f"{key}[{k}]")
    assert not torch.equal(one["model_state"]["0.weight"], one["state_dict"]["0.weight"])  # EMA differs: trained
    for a, b in zip(one["history"], two["history"]):  # loss parts reduced over both processes
        for k in ("train/loss", "train/abs", "metrics/mse"):
            assert b[k] == pytest.approx(a[k], rel=1e-5), k
