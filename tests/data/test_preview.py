"""`yololab data preview`: a real PNG grid with boxes, deterministic per seed, clear errors."""

import cv2
import numpy as np

from yololab.cli import main
from yololab.data.preview import draw_sample, preview_grid
from yololab.data.synthetic import synth_shapes


def test_preview_grid_before_and_after_augmentation(tmp_path):
    data = synth_shapes(tmp_path / "shapes", train=6, val=2, imgsz=64, workers=0, progress=False)
    kw = {"n": 4, "imgsz": 64, "tile": 96, "cache_dir": tmp_path / "cache"}
    plain = cv2.imread(str(preview_grid(data, tmp_path / "plain.png", **kw)))
    aug = cv2.imread(str(preview_grid(data, tmp_path / "aug.png", augment=True, **kw)))
    again = cv2.imread(str(preview_grid(data, tmp_path / "again.png", augment=True, **kw)))
    assert plain.shape == aug.shape == (2 * 100 + 4, 2 * 100 + 4, 3)  # 2 x 2 tiles of 96 px, 4 px gaps
    assert np.array_equal(aug, again) and not np.array_equal(plain, aug)
    assert not list(tmp_path.glob(".*tmp*"))  # atomic write left no temporary file


def test_draw_sample_puts_box_and_name_where_the_label_says():
    img = np.full((3, 100, 200), 128, np.uint8)  # CHW RGB, grey
    tile = draw_sample(img, np.array([[1.0]]), np.array([[0.5, 0.5, 0.5, 0.4]]), ["a", "square"], 200)
    assert tile.shape == (200, 200, 3)
    assert (tile[100:, :] == 255).all()  # below the 2:1 image: white
    colour = tile[50, 50]  # the left edge of the box at x = 0.25 * 200
    assert not (colour == 128).all() and (tile[50, 100] == 128).all()  # edge drawn, inside untouched


def test_preview_cli(tmp_path, capsys):
    data = synth_shapes(tmp_path / "shapes", train=4, val=2, imgsz=64, workers=0, progress=False)
    out = tmp_path / "grid.png"
    assert main(["data", "preview", str(data), "--out", str(out), "--split", "val", "--n", "2", "--imgsz", "64",
                 "--cache-dir", str(tmp_path / "c")]) == 0
    assert cv2.imread(str(out)) is not None and "wrote" in capsys.readouterr().out
    assert main(["data", "preview", str(data), "--out", str(tmp_path / "grid.gif"), "--imgsz", "64",
                 "--cache-dir", str(tmp_path / "c")]) == 2
    assert main(["data", "preview", str(tmp_path / "missing.yaml"), "--out", str(out)]) == 2
    assert main(["data", "preview", str(data), "--out", str(out), "--split", "test", "--imgsz", "64",
                 "--cache-dir", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 3 and "missing.yaml" in err and "test" in err


def test_preview_shows_each_sample_once_and_says_so(tmp_path, capsys):
    data = synth_shapes(tmp_path / "shapes", train=3, val=2, imgsz=64, workers=0, progress=False)
    out = tmp_path / "grid.png"
    assert main(["data", "preview", str(data.parent), "--out", str(out), "--split", "val", "--n", "16", "--imgsz",
                 "64", "--tile", "50", "--cache-dir", str(tmp_path / "c")]) == 0
    assert "split 'val' has 2 usable images; the grid shows each once (2, not 16)" in capsys.readouterr().out
    assert cv2.imread(str(out)).shape == (1 * 54 + 4, 2 * 54 + 4, 3)  # 2 tiles of 50 px in one row, 4 px gaps


def test_class_colours_are_told_apart():
    """The shapes that look alike get colours that do not (square / cross, circle / hexagon), and every label
    is readable on its colour."""
    from yololab.data.preview import _colour, _text_colour
    from yololab.data.synthetic import CLASSES

    colours = [np.array(_colour(c), float) for c in range(len(CLASSES))]
    for a in range(len(CLASSES)):
        for b in range(a + 1, len(CLASSES)):
            assert np.abs(colours[a] - colours[b]).sum() > 120, (CLASSES[a], CLASSES[b])
    for c in range(40):
        b, g, r = _colour(c)
        luminance = 0.299 * r + 0.587 * g + 0.114 * b
        assert abs(luminance - sum(_text_colour((b, g, r))) / 3) > 70
