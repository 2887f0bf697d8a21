"""A tiny trained translation run shared by the decode, CLI and notebook tests (about 20 s, once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from yololab.cli import main

TINY_MODEL = ["--d-model", "48", "--heads", "2", "--enc-layers", "1", "--dec-layers", "1", "--d-ff", "96",
              "--vocab-size", "120", "--dropout", "0"]


@pytest.fixture(scope="session")
def one_thread():
    """Tiny models gain nothing from threads, and on a loaded machine OpenMP threads that spin-wait slow
    them down many times over."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def toy_corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("toy") / "corpus"
    assert main(["translate", "synth", "--out", str(out), "--train", "1000", "--val", "40", "--test", "60"]) == 0
    return out


@pytest.fixture(scope="session")
def tiny_run(toy_corpus, tmp_path_factory, one_thread) -> Path:
    """`yololab translate train` on the toy corpus for 6 short epochs: a model that ends its sentences."""
    project = tmp_path_factory.mktemp("runs")
    args = ["translate", "train", "--data", str(toy_corpus), *TINY_MODEL, "--epochs", "6", "--warmup-steps", "30",
            "--lr0", "0.01", "--batch", "600", "--ema-decay", "0.98", "--ema-tau", "20", "--test-beam", "3", "--project", str(project),
            "--name", "tiny"]
    assert main(args) == 0
    return project / "tiny"
