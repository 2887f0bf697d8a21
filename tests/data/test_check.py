"""`yololab data check` on real files, and the label cache of scan_split."""

from __future__ import annotations

import json
import os

import numpy as np

import yololab.data.check as check_mod
from yololab.cli import main
from yololab.data.check import check_label, scan_split
from yololab.data.yolo import load_data_yaml


def test_check_coco8_cli(coco8, tmp_path, data_helpers, capsys):
    before = data_helpers.hash_tree(coco8.parent)
    report = tmp_path / "out" / "report.json"
    plot = tmp_path / "out" / "check.png"
    assert main(["data", "check", str(coco8), "--json", str(report), "--plot", str(plot), "--quiet"]) == 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert data_helpers.hash_tree(coco8.parent) == before
    out = capsys.readouterr().out
    assert "OK, nothing rejected" in out and "person=10" in out
    r = json.loads(report.read_text())
    assert r["splits"]["train"] == {"images": 4, "instances": 13, "backgrounds": 0, "rejected": 0,
                                    "with_warnings": 0, "orphan_labels": 0}
    assert r["splits"]["val"]["instances"] == 17
    assert sum(r["instances_per_class"].values()) == 30
    assert {f["image"].rsplit("/", 1)[1]: f["shape"] for f in r["files"]}["000000000009.jpg"] == [480, 640]


def test_check_missing_yaml_is_a_clean_error(tmp_path, capsys):
    assert main(["data", "check", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml does not exist" in capsys.readouterr().err


def test_check_label_rows(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("0 0.5 0.5 0.2 0.2\n2.0 0.1 0.1 0.1 0.1\n")  # '2.0' is an integer class id
    res = check_label(f, 3)
    assert res.error is None and res.labels.dtype == np.float32 and res.labels[:, 0].tolist() == [0, 2]
    f.write_text("0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2\n0 x 0.5 0.2 0.2\n")
    res = check_label(f, 3)
    assert res.error.endswith("line 2: expected 5 columns (class cx cy w h), got 4 (and 1 more bad rows)")
    assert res.labels.shape == (0, 5) and not res.background  # one bad row rejects the file


def test_scan_split_cache(synthetic_yolo, tmp_path, monkeypatch):
    cfg = load_data_yaml(synthetic_yolo)
    images = cfg.splits["train"]
    cache = tmp_path / "cache"
    first = scan_split(images, cfg.num_classes, cache_dir=cache)
    files = list(cache.iterdir())
    assert len(files) == 1 and files[0].name.startswith("labels-")
    assert not any(p.name.startswith("labels-") for p in synthetic_yolo.parent.rglob("*"))  # not beside the data

    calls = []
    real = check_mod.check_sample
    monkeypatch.setattr(check_mod, "check_sample", lambda *a, **k: calls.append(a) or real(*a, **k))
    second = scan_split(images, cfg.num_classes, cache_dir=cache)
    assert calls == []  # served from the cache
    for a, b in zip(first, second):
        assert a.image == b.image and a.shape == b.shape and a.error == b.error
        np.testing.assert_array_equal(a.labels, b.labels)

    # change one label file: everything is checked again, and the change shows
    label = first[2].label
    label.write_text("0 0.5 0.5 0.1 0.1\n")
    st = label.stat()
    os.utime(label, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))
    third = scan_split(images, cfg.num_classes, cache_dir=cache)
    assert len(calls) == len(images)
    np.testing.assert_allclose(third[2].labels, [[0, 0.5, 0.5, 0.1, 0.1]])


def test_header_check_decodes_no_pixels(coco8, monkeypatch):
    """The default check reads headers (size, EXIF, PNG chunks, the JPEG end marker); only --decode decodes."""
    from PIL import ImageFile

    decoded = []
    real_load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda im: decoded.append(im.filename) or real_load(im))
    cfg = load_data_yaml(coco8)
    images = cfg.splits["train"] + cfg.splits["val"]
    scan_split(images, cfg.num_classes, workers=1, decode=False)
    assert decoded == []
    scan_split(images, cfg.num_classes, workers=1, decode=True)
    assert sorted(decoded) == sorted(str(p) for p in images)


def test_check_a_folder_and_its_plot(synthetic_yolo, tmp_path, capsys):
    """`data check FOLDER` checks the data.yaml inside; the plot names it, counts in whole numbers, and is
    replaced only with --overwrite."""
    plot = tmp_path / "check.svg"
    assert main(["data", "check", str(synthetic_yolo.parent), "--plot", str(plot)]) == 0
    svg = plot.read_text(encoding="utf-8")
    assert f"yololab data check: {synthetic_yolo}" in svg
    y_ticks = [t.rsplit(">", 1)[-1] for t in svg.split("</text>") if "text-anchor: end" in t]
    assert len(y_ticks) > 6 and all(t.isdigit() for t in y_ticks), y_ticks  # no half images, no half boxes
    assert main(["data", "check", str(synthetic_yolo.parent), "--plot", str(plot)]) == 2
    assert "check.svg exists; pass --overwrite" in capsys.readouterr().err
    assert main(["data", "check", str(synthetic_yolo.parent), "--plot", str(plot), "--overwrite"]) == 0
