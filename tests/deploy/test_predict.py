"""yololab predict: every source kind, the outputs, the Python API, and bad input that names the path.

The detector here is a random-init yolov8n at 64-128 px in exact fp32 mode (what these tests check is the
pipeline: sources, geometry, files written); that its boxes equal Ultralytics' on trained weights is
tests/deploy/test_predict_parity.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from helpers import hash_tree, shared_data
from yololab import cli
from yololab.deploy.predict import Predictor, read_video, resolve_source, run_predict
from yololab.errors import DataError

OPTS = dict(model="yolov8n", num_classes=3, mode="fp32", imgsz=96, conf=0.0, max_det=5)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """The 4 coco8 val photos, copied (inputs must be provably untouched)."""
    out = tmp_path_factory.mktemp("photos")
    for p in sorted(shared_data("coco8", "images", "val").glob("*.jpg")):
        shutil.copyfile(p, out / p.name)
    return out


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    torch.manual_seed(0)
    return Predictor(**OPTS)


def test_sources_image_folder_glob_list_video(photos, tmp_path):
    files = sorted(photos.glob("*.jpg"))
    assert resolve_source(files[0]) == [files[0]]
    assert resolve_source(photos) == files
    assert resolve_source(str(photos / "*.jpg")) == files
    (tmp_path / "sub").mkdir()
    listing = tmp_path / "sub" / "list.txt"
    listing.write_text(f"# my photos\n{files[1]}\n\n../rel.jpg\n{photos}\n")
    shutil.copyfile(files[0], tmp_path / "rel.jpg")
    assert resolve_source(listing) == [files[1], tmp_path / "rel.jpg", *files]
    video = shared_data("videos", "clip_340x256_h264.mp4")
    assert resolve_source(video) == [video]
    frames = list(read_video(video))
    assert len(frames) == 32 and frames[0].image.shape == (256, 340, 3) and frames[5].frame == 5


@pytest.mark.parametrize("make, expected", [
    (lambda d: d / "missing.jpg", "missing.jpg: no such file or folder"),
    (lambda d: (d / "empty").mkdir() or d / "empty", "empty: no images or videos in this folder"),
    (lambda d: str(d / "*.png"), "*.png: no image or video matches this pattern"),
    (lambda d: (d / "l.txt").write_text("a.jpg\nnope.jpg\n") and d / "l.txt", "l.txt, line 1: a.jpg does not exist"),
    (lambda d: (d / "notes.md").write_text("x") and d / "notes.md", "notes.md: not an image, a video"),
])
def test_bad_sources_name_the_path(tmp_path, make, expected):
    with pytest.raises(DataError, match=None) as e:
        resolve_source(make(tmp_path))
    assert expected in str(e.value)


def test_a_video_with_no_frames_is_an_error(tmp_path, predictor):
    empty = tmp_path / "empty.avi"
    writer = cv2.VideoWriter(str(empty), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    writer.release()  # a valid container without a single frame
    with pytest.raises(DataError) as e:
        predictor(empty)
    assert str(empty) in str(e.value) and ("no frames" in str(e.value) or "cannot open" in str(e.value))


def test_python_api_boxes_in_each_photos_pixels(photos, predictor):
    preds = predictor(photos)
    assert [p.path.name for p in preds] == sorted(p.name for p in photos.glob("*.jpg"))
    for p in preds:
        img = cv2.imread(str(p.path))
        assert p.shape == img.shape[:2] and len(p) == 5
        h, w = p.shape
        assert p.boxes.shape == (5, 4) and p.boxes.dtype == torch.float32
        assert (p.boxes[:, 0] >= 0).all() and (p.boxes[:, 2] <= w).all() and (p.boxes[:, 3] <= h).all()
        assert (p.scores[:-1] >= p.scores[1:]).all() and p.classes.dtype == torch.int64
    # arrays in, the same detections out; a batch of 4 (square letterbox: shapes differ) is the same network
    again = predictor([cv2.imread(str(p.path)) for p in preds])
    assert all(torch.equal(a.boxes, b.boxes) for a, b in zip(preds, again))


def test_run_writes_images_json_txt_and_skips_a_corrupt_photo(photos, tmp_path, capfd):
    folder = tmp_path / "in"
    shutil.copytree(photos, folder)
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    before = hash_tree(folder)
    torch.manual_seed(0)
    summary = run_predict(folder, project=tmp_path / "runs", name="exp", save_txt=True, quiet=True, **OPTS)
    assert hash_tree(folder) == before
    assert summary["images"] == 4 and len(summary["skipped"]) == 1 and "broken.jpg" in summary["skipped"][0]
    assert "warning: skipped" in capfd.readouterr().err
    run = tmp_path / "runs" / "exp"
    for p in sorted(photos.glob("*.jpg")):
        drawn = cv2.imread(str(run / p.name))
        assert drawn.shape == cv2.imread(str(p)).shape and not np.array_equal(drawn, cv2.imread(str(p)))
        record = json.loads((run / "labels" / f"{p.stem}.json").read_text())
        assert record["width"] == drawn.shape[1] and len(record["detections"]) == 5
        rows = (run / "labels" / f"{p.stem}.txt").read_text().splitlines()
        first = record["detections"][0]
        cls, cx, cy, bw, bh, conf = rows[0].split()
        x1, y1, x2, y2 = first["box"]
        assert int(cls) == first["class"] and abs(float(conf) - first["confidence"]) < 1e-4
        assert abs(float(cx) * record["width"] - (x1 + x2) / 2) < 0.02


def test_video_in_annotated_video_out(tmp_path):
    video = shared_data("videos", "clip_340x256_h264.mp4")
    torch.manual_seed(0)
    summary = run_predict(video, project=tmp_path, name="v", quiet=True, batch=4, **{**OPTS, "imgsz": 64})
    assert summary["images"] == 32
    out = tmp_path / "v" / "clip_340x256_h264.mp4"
    assert len(list(read_video(out))) == 32
    assert sorted(tmp_path.glob("v/labels/*.json"))[0].name == "clip_340x256_h264_0.json"
    assert len(list(tmp_path.glob("v/labels/*.json"))) == 32


def test_cli_end_to_end_on_coco8(photos, tmp_path, capsys):
    argv = ["predict", "--model", "yolov8n", "--num-classes", "3", "--mode", "fp32", "--imgsz", "64",
            "--source", str(photos), "--project", str(tmp_path), "--name", "cli", "--conf", "0", "--max-det", "2"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "mode fp32" in out and "4 images/frames, 8 detections" in out
    assert len(list((tmp_path / "cli" / "labels").glob("*.json"))) == 4
    assert cli.main(argv) == 2  # the run folder is there: --exist-ok
    assert "pass --exist-ok" in capsys.readouterr().err


def test_per_shape_runtimes_take_minimum_rectangles_up_to_a_cap(monkeypatch):
    """OpenVINO compiles per input shape and keeps each: a photo alone gets its minimum rectangle (as Ultralytics
    and the torch modes), the same detections as fp32 on it, until MAX_RECT_SHAPES rectangles are compiled; photos
    of new shapes then share the square."""
    import yololab.deploy.predict as predict

    monkeypatch.setattr(predict, "MAX_RECT_SHAPES", 2)
    from yololab.models import build_model

    torch.manual_seed(0)
    net = build_model("yolov8n", num_classes=3)
    opts = dict(model=net, imgsz=128, conf=0.0, max_det=5)
    ov, exact = Predictor(mode="openvino", **opts), Predictor(mode="fp32", **opts)
    g = np.random.default_rng(0)
    images = [g.integers(0, 255, shape, dtype=np.uint8) for shape in ((64, 128, 3), (128, 64, 3), (32, 64, 3))]
    for im in images:  # rectangles 64x128, 128x64, then 64x128 again (already compiled)
        (a,), (b,) = ov.predict_arrays([im]), exact.predict_arrays([im])
        assert torch.allclose(a.scores, b.scores, atol=1e-4) and torch.allclose(a.boxes, b.boxes, atol=1e-2)
    ov.predict_arrays([g.integers(0, 255, (96, 128, 3), dtype=np.uint8)])  # a third rectangle: over the cap
    assert ov.shapes == {(1, 3, 64, 128), (1, 3, 128, 64), (1, 3, 128, 128)}
    assert exact.shapes == {(1, 3, 64, 128), (1, 3, 128, 64)}
