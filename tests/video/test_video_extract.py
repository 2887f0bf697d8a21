"""Frame extraction: real files, parallel, resumable, bad videos reported, the source never written."""

import cv2
import pytest

from yololab.cli import main
from yololab.errors import DataError
from yololab.video.decode import VideoReader
from yololab.video.extract import extract_frames

from video_fixtures import hash_tree


def test_extracts_real_videos_and_resumes(real_videos, tmp_path):
    (real_videos / "walk" / "broken.avi").write_bytes(b"RIFF not really an avi")
    before = hash_tree(real_videos)
    dst = tmp_path / "frames"
    r = extract_frames(real_videos, dst, frames=6, size=64, workers=2, progress=False)
    assert (r["done"], r["failed"], r["frames"]) == (2, 1, 12)
    assert "broken.avi" in r["failures"][0][1]
    files = sorted((dst / "walk" / "clip_320x240_mpeg4").glob("*.jpg"))
    assert [f.name for f in files] == [f"{i:05d}.jpg" for i in range(1, 7)]
    assert cv2.imread(str(files[0])).shape == (64, 85, 3)
    with VideoReader(real_videos / "wave" / "clip_340x256_h264.mp4") as v:
        assert v.num_frames == 32
    again = extract_frames(real_videos, dst, frames=6, size=64, workers=0, progress=False)
    assert (again["done"], again["skipped"], again["failed"]) == (0, 2, 1)
    assert hash_tree(real_videos) == before  # nothing written into the source


def test_all_frames_fps_and_interrupted_video(real_videos, tmp_path):
    dst = tmp_path / "out"
    extract_frames(real_videos / "wave", dst, workers=0, progress=False)
    assert len(list((dst / "clip_340x256_h264").glob("*.jpg"))) == 32
    extract_frames(real_videos / "walk", tmp_path / "fps", fps=5, workers=0, progress=False)
    assert len(list((tmp_path / "fps" / "clip_320x240_mpeg4").glob("*.jpg"))) == 33  # 6.56 s at 5 fps
    partial = dst / "clip_340x256_h264"
    (partial / ".done").unlink()  # as if killed before the end: redone from scratch
    (partial / "00099.jpg").write_bytes(b"stale")
    r = extract_frames(real_videos / "wave", dst, workers=0, progress=False)
    assert r["done"] == 1 and len(list(partial.glob("*.jpg"))) == 32


def test_refuses_to_write_inside_the_source(real_videos, capsys):
    with pytest.raises(DataError, match="outside the source"):
        extract_frames(real_videos, real_videos / "frames", workers=0, progress=False)
    assert main(["video", "extract-frames", str(real_videos), str(real_videos / "x")]) == 2
    assert "outside the source" in capsys.readouterr().err
    assert not (real_videos / "x").exists()


def test_cli_reports_failures_by_name(real_videos, tmp_path, capsys):
    (real_videos / "walk" / "empty.mp4").write_bytes(b"")
    code = main(["video", "extract-frames", str(real_videos), str(tmp_path / "f"), "--frames", "4", "--workers", "1"])
    out = capsys.readouterr().out
    assert code == 1 and "extracted 2 videos (8 frames)" in out and "empty.mp4" in out
