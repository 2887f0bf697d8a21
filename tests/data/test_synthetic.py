"""The synthetic shapes dataset: valid YOLO files, deterministic per seed, safe with user folders."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from yololab.cli import main
from yololab.data.synthetic import CLASSES, MARKER, render_image, synth_shapes
from yololab.errors import DataError


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_render_is_deterministic_and_seed_dependent():
    a, la = render_image(3, seed=7, imgsz=96)
    b, lb = render_image(3, seed=7, imgsz=96)
    c, _ = render_image(4, seed=7, imgsz=96)
    assert a.shape == (96, 96, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and np.array_equal(la, lb)
    assert not np.array_equal(a, c)


def test_labels_are_valid_and_varied():
    n_empty, classes, sizes = 0, set(), []
    for i in range(60):
        _, labels = render_image(i, seed=0, imgsz=128)
        if len(labels) == 0:
            n_empty += 1
            continue
        assert labels.shape[1] == 5
        assert set(labels[:, 0].astype(int)) <= set(range(len(CLASSES)))
        x, y, w, h = labels[:, 1:].T
        assert (x - w / 2 >= -1e-6).all() and (x + w / 2 <= 1 + 1e-6).all()
        assert (y - h / 2 >= -1e-6).all() and (y + h / 2 <= 1 + 1e-6).all()
        classes |= set(labels[:, 0].astype(int))
        sizes += list(np.maximum(w, h))
    assert n_empty >= 1  # some background-only images
    assert classes == set(range(len(CLASSES)))
    assert min(sizes) < 0.05 and max(sizes) > 0.4  # small and large objects


def test_labelled_objects_are_drawn():
    """Each labelled box differs from a plain background: the object is really there."""
    img, labels = render_image(11, seed=1, imgsz=160)
    assert len(labels)
    for _, x, y, w, h in labels:
        x1, y1, x2, y2 = (np.array([x - w / 2, y - h / 2, x + w / 2, y + h / 2]) * 160).round().astype(int)
        crop = img[y1:y2, x1:x2].reshape(-1, 3).astype(np.float32)
        assert crop.std(0).max() > 5  # an edge or a colour change inside the box


def test_synth_writes_yolo_dataset_independent_of_workers(tmp_path):
    y1 = synth_shapes(tmp_path / "a", train=6, val=3, imgsz=64, seed=5, workers=0, progress=False)
    y2 = synth_shapes(tmp_path / "b", train=6, val=3, imgsz=64, seed=5, workers=2, progress=False)
    data = yaml.safe_load(y1.read_text())
    assert data["names"] == dict(enumerate(CLASSES))
    assert "path" not in data  # the root is the yaml's folder: the dataset can be copied or moved
    assert len(list((tmp_path / "a/images/train").glob("*.jpg"))) == 6
    assert len(list((tmp_path / "a/labels/val").glob("*.txt"))) == 3
    assert _files(tmp_path / "a") == _files(tmp_path / "b")  # data.yaml included: nothing names the folder
    img = cv2.imread(str(tmp_path / "a/images/train/000000.jpg"))
    assert img.shape == (64, 64, 3)


def test_refuses_user_folder_and_overwrites_own_output(tmp_path):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "keep.txt").write_text("precious")
    with pytest.raises(DataError, match="not empty"):
        synth_shapes(user, train=2, val=1, imgsz=64, progress=False)
    assert (user / "keep.txt").read_text() == "precious" and len(list(user.iterdir())) == 1

    out = tmp_path / "synth"
    synth_shapes(out, train=4, val=2, imgsz=64, seed=0, workers=0, progress=False)
    (out / "notes.md").write_text("mine")  # a user file beside the output survives a rerun
    before = _files(out)
    with pytest.raises(DataError, match="earlier `yololab data synth`; pass --overwrite"):
        synth_shapes(out, train=2, val=1, imgsz=64, seed=1, workers=0, progress=False)
    assert _files(out) == before
    synth_shapes(out, train=2, val=1, imgsz=64, seed=1, workers=0, progress=False, overwrite=True)
    assert len(list((out / "images/train").glob("*.jpg"))) == 2
    assert (out / "notes.md").read_text() == "mine" and (out / MARKER).is_file()


def test_cli(tmp_path, capsys):
    assert main(["data", "synth", "shapes", "--out", str(tmp_path / "s"), "--train", "3", "--val", "2",
                 "--imgsz", "64", "--workers", "1"]) == 0
    assert (tmp_path / "s/data.yaml").is_file()
    (tmp_path / "u").mkdir()
    (tmp_path / "u/x").write_text("x")
    assert main(["data", "synth", "shapes", "--out", str(tmp_path / "u")]) == 2
    assert "error:" in capsys.readouterr().err
