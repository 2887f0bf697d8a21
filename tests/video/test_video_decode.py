"""Decoding: the right frames (seek-based reads equal a full sequential decode), metadata, bad files."""

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from yololab.errors import DataError
from yololab.video.decode import FrameFolderReader, VideoReader, open_video
from yololab.video.synth import write_video

from video_fixtures import AVI, MP4


def sequential(path) -> np.ndarray:
    """Every frame in display order, decoded from the start with PyAV (the reference for indices)."""
    with av.open(str(path)) as c:
        return np.stack([VideoReader._to_rgb(f) for f in c.decode(video=0)])


def test_metadata_of_real_files():
    with VideoReader(AVI) as r:
        assert (r.num_frames, r.width, r.height, r.fps) == (164, 320, 240, 25.0)
    with VideoReader(MP4) as r:
        assert (r.num_frames, r.width, r.height, r.fps) == (32, 340, 256, 30.0)
    with VideoReader(AVI, "opencv") as r:
        assert (r.num_frames, r.width, r.height) == (164, 320, 240)


@pytest.mark.parametrize("backend", ["auto", "pyav"])
@pytest.mark.parametrize("path", [AVI, MP4])
def test_read_returns_exactly_the_requested_frames(path, backend):
    ref = sequential(path)
    with VideoReader(path, backend) as r:
        n = r.num_frames
        assert n == len(ref)
        for idx in ([0], [n - 1], [5, 2, 2, n // 2], list(range(0, n, 7)), [n - 3, n - 2, n - 1]):
            assert np.array_equal(r.read(idx), ref[idx])


def test_seeking_to_key_frames_gives_the_same_frames(tmp_path):
    """A file with a key frame every 8 frames: reads that start late seek, and still equal a full decode."""
    rng = np.random.default_rng(0)
    frames = np.zeros((40, 32, 48, 3), np.uint8)
    for i in range(40):  # a moving square and a frame counter: every frame differs
        frames[i, 8:20, i:i + 8] = 255
        frames[i, :4, :4] = i * 6
    frames += rng.integers(0, 20, frames.shape, dtype=np.uint8)
    for ext in ("mp4", "avi"):
        path = write_video(tmp_path / f"gop.{ext}", frames)
        ref = sequential(path)
        with VideoReader(path, "pyav") as r:
            for idx in ([33], [17, 18, 30], [39], [9, 1]):
                assert np.array_equal(r.read(idx), ref[idx])
            assert len(r._keyframes) >= 4  # key frames every <= 8 frames: the late reads above seeked


def test_auto_seeks_only_when_it_skips_enough(tmp_path, monkeypatch):
    frames = np.zeros((120, 32, 48, 3), np.uint8)
    for i in range(120):
        frames[i, 8:20, (i % 40):(i % 40) + 8] = 255
        frames[i, :4, :4] = i * 2
    path = write_video(tmp_path / "long.mp4", frames)
    ref = sequential(path)
    with VideoReader(path, "auto") as r:
        calls = []
        monkeypatch.setattr(r, "_read_opencv", lambda w, s, f=r._read_opencv: calls.append("opencv") or f(w, s))
        monkeypatch.setattr(r, "_read_pyav", lambda w, s, f=r._read_pyav: calls.append("pyav") or f(w, s))
        assert np.array_equal(r.read([5, 60, 110]), ref[[5, 60, 110]])
        assert np.array_equal(r.read([100, 101, 119]), ref[[100, 101, 119]])
        assert calls == ["opencv", "pyav"]


@pytest.mark.parametrize("path", [AVI, MP4])
def test_pyav_and_opencv_backends_agree(path):
    idx = [0, 10, 31]
    with VideoReader(path, "pyav") as a, VideoReader(path, "opencv") as b:
        assert a.num_frames == b.num_frames
        assert np.array_equal(a.read(idx), b.read(idx))  # the same frames, the same pixels


def test_resize_short_side():
    with VideoReader(AVI) as r:
        assert r.read([3], short_side=60).shape == (1, 60, 80, 3)


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    data = MP4.read_bytes()
    files = {
        "truncated.mp4": data[: len(data) // 2],       # the moov box at the end is gone
        "text.avi": b"this is not a video\n" * 50,
        "empty.mp4": b"",
    }
    avi = AVI.read_bytes()
    files["cut.avi"] = avi[: len(avi) // 3]           # readable header, most frames missing
    out = {}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
        out[name] = tmp_path / name
    return out


def test_bad_files_raise_data_error_naming_the_file(tmp_path):
    files = _bad_files(tmp_path)
    for name in ("truncated.mp4", "text.avi", "empty.mp4"):
        with pytest.raises(DataError, match=name):
            VideoReader(files[name])
    with VideoReader(files["cut.avi"]) as r:  # the header still says 164 frames
        assert r.num_frames == 164
        r.read([0, 5])  # the start decodes
        with pytest.raises(DataError, match="cut.avi.*could not be decoded"):
            r.read([150])
    with pytest.raises(DataError, match="not found"):
        VideoReader(tmp_path / "missing.mp4")


def test_zero_frame_video(tmp_path):
    import av as _av

    path = tmp_path / "zero.mp4"
    with _av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 32, 32, "yuv420p"
    with pytest.raises(DataError, match="zero.mp4"):
        VideoReader(path)


def test_frame_folder_reader(tmp_path):
    ref = sequential(MP4)
    for i, img in enumerate(ref[:6], 1):
        cv2.imwrite(str(tmp_path / f"{i:05d}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    r = open_video(tmp_path)
    assert isinstance(r, FrameFolderReader) and r.num_frames == 6
    assert np.array_equal(r.read([4, 1]), ref[[4, 1]])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no .jpg"):
        FrameFolderReader(tmp_path / "empty")
