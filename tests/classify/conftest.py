"""Fixtures for the classification tests: a tiny synthetic CIFAR-format set (written once per session)."""

from __future__ import annotations

import pytest

from yololab.classify.synth import synth_classify


@pytest.fixture(scope="session")
def synth_set(tmp_path_factory):
    """60 train + 30 val images, 4 classes, 32 px (CIFAR-10 python layout, with boxes)."""
    return synth_classify(tmp_path_factory.mktemp("synth") / "cls", classes=4, train=60, val=30, seed=3,
                          progress=False)
