"""The synthetic action dataset: real video files, UCF-101 layout, deterministic, motion-defined classes."""

import av
import numpy as np
import pytest

from yololab.cli import main
from yololab.errors import DataError
from yololab.video.decode import VideoReader
from yololab.video.synth import CLASSES, render_video, synth_actions

from video_fixtures import hash_tree


def test_layout_codec_and_split_files(tiny_synth):
    ann = tiny_synth / "ucfTrainTestlist"
    assert ann.joinpath("classInd.txt").read_text().splitlines()[:2] == ["1 MoveLeft", "2 MoveRight"]
    for k in (1, 2, 3):
        assert ann.joinpath(f"trainlist0{k}.txt").is_file() and ann.joinpath(f"testlist0{k}.txt").is_file()
    videos = sorted(tiny_synth.rglob("*.avi"))
    assert len(videos) == 40 and videos[0].name.startswith("v_Blink_g")
    with av.open(str(videos[0])) as c:
        assert c.streams.video[0].codec_context.name == "mpeg4" and c.format.name == "avi"
    with VideoReader(videos[0]) as r:
        assert (r.num_frames, r.width, r.height) == (8, 32, 32)


def test_mp4_is_h264_and_output_is_deterministic(tmp_path):
    a = synth_actions(tmp_path / "a", classes=2, videos_per_class=2, frames=6, size=32, seed=5, fmt="mp4",
                      workers=0, progress=False)
    b = synth_actions(tmp_path / "b", classes=2, videos_per_class=2, frames=6, size=32, seed=5, fmt="mp4",
                      workers=2, progress=False)
    c = synth_actions(tmp_path / "c", classes=2, videos_per_class=2, frames=6, size=32, seed=6, fmt="mp4",
                      workers=0, progress=False)
    assert hash_tree(a) == hash_tree(b) != hash_tree(c)
    with av.open(str(next(a.rglob("*.mp4")))) as f:
        assert f.streams.video[0].codec_context.name == "h264"


def test_motion_defines_the_class():
    """Each class moves its object as named; the paired classes run the same path in opposite directions."""
    def changed(a, b):  # pixels that differ between two frames: where the object was or is
        return np.abs(a.astype(int) - b.astype(int)).sum(-1) > 30

    for cls, axis, sign in (("MoveRight", 1, 1), ("MoveLeft", 1, -1), ("MoveDown", 0, 1), ("MoveUp", 0, -1)):
        v = render_video(CLASSES.index(cls), seed=0, index=1, frames=12, size=64)
        early, late = np.nonzero(changed(v[0], v[2])), np.nonzero(changed(v[-3], v[-1]))
        assert sign * (late[axis].mean() - early[axis].mean()) > 5, cls
    for cls, sign in (("Grow", 1), ("Shrink", -1)):  # the ring swept between two frames widens with the radius
        v = render_video(CLASSES.index(cls), seed=0, index=2, frames=12, size=64)
        assert sign * (changed(v[-2], v[-1]).sum() - changed(v[0], v[1]).sum()) > 0, cls
    assert not np.array_equal(render_video(0, 0, 0), render_video(0, 1, 0))


def test_refuses_foreign_folders_and_overwrites_only_with_flag(tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match="not written by `yololab video synth`"):
        synth_actions(tmp_path / "mine", classes=2, videos_per_class=2, frames=4, size=16, workers=0, progress=False)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    args = ["video", "synth", "--out", str(tmp_path / "s"), "--classes", "2", "--videos-per-class", "2",
            "--frames", "4", "--size", "16", "--workers", "0"]
    assert main(args) == 0
    assert main(args) == 2 and "pass --overwrite" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 0
    assert main(args[:-2] + ["--size", "17"]) == 2  # odd sizes cannot be encoded
