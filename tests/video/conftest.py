"""Shared fixtures of the video tests: the real clips of ../shared/data/videos and a tiny synthetic set."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from video_fixtures import AVI, MP4


@pytest.fixture
def real_videos(tmp_path) -> Path:
    """A writable folder holding copies of the two real clips, as a class-folder dataset."""
    for cls, src in (("walk", AVI), ("wave", MP4)):
        (tmp_path / "real" / cls).mkdir(parents=True)
        shutil.copyfile(src, tmp_path / "real" / cls / src.name)
    return tmp_path / "real"


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory) -> Path:
    """10 classes x 4 videos of 8 frames at 32 px (UCF-101 layout); read-only by convention."""
    from yololab.video.synth import synth_actions

    return synth_actions(tmp_path_factory.mktemp("synth") / "actions", classes=10, videos_per_class=4, frames=8,
                         size=32, seed=0, workers=0, progress=False)
