"""Fixtures for the classification tests: a tiny synthetic CIFAR-format set (written once per session)."""

from __future__ import annotations

import pytest

from yololab.classify.synth import synth_classify


@pytest.fixture(scope="session")
def synth_set(tmp_path_factory):
    """60 train + 30 val images, 4 classes, 32 px (CIFAR-10 python layout, with boxes)."""
    return synth_classify(tmp_path_factory.mktemp("synth") / "cls", classes=4, train=60, val=30, seed=3,
                          progress=False)


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    """Tiny models on one thread: on a shared 2-core machine, torch's 2 threads wait on each other and a width-8
    ResNet trained 10-40x slower (measured at load 10-20); subprocesses (the notebook's kernel) inherit it."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    yield
    torch.set_num_threads(threads)
