"""The bad-input corpus (conftest.BAD_INPUT_TABLE): every case gives its documented outcome, none
crashes `yololab data check`, none changes a byte of the user's files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from yololab.cli import main
from yololab.data.check import check_dataset, check_image, find_orphan_labels, scan_split
from yololab.data.io import read_image
from yololab.data.yolo import load_data_yaml


def test_every_case_has_its_documented_outcome(bad_corpus, data_helpers):
    cfg = load_data_yaml(bad_corpus)
    samples = {s.image.name: s for s in scan_split(cfg.splits["train"], cfg.num_classes)}
    assert set(samples) == set(data_helpers.BAD_INPUT_TABLE)
    for name, (expected, text) in data_helpers.BAD_INPUT_TABLE.items():
        s = samples[name]
        got = data_helpers.outcome(s)
        assert got == expected, f"{name}: expected {expected}, got {got}: {s.error or s.warnings}"
        messages = ([s.error] if s.error else []) + s.warnings
        if text is not None:
            assert any(text in m for m in messages), f"{name}: {text!r} not in {messages}"
        for m in messages:  # every message names its file
            assert str(s.image.parent.parent.parent) in m, m


def test_valid_oddities_are_parsed_right(bad_corpus):
    cfg = load_data_yaml(bad_corpus)
    samples = {s.image.name: s for s in scan_split(cfg.splits["train"], cfg.num_classes)}
    good = np.array([[1, 0.5, 0.5, 0.25, 0.25]], np.float32)
    for name in ("bom.jpg", "blank_trailing.jpg", "gray.png", "rgba.png", "name with spaces é ü.jpg"):
        np.testing.assert_array_equal(samples[name].labels, good, err_msg=name)
    assert samples["crlf.jpg"].labels.shape == (2, 5)
    assert samples["dup.jpg"].labels.shape == (2, 5)                          # one duplicate removed
    np.testing.assert_allclose(samples["clip.jpg"].labels[0], [0, 0.9015, 0.5, 0.197, 0.2], atol=1e-6)
    assert samples["exif_rot.jpg"].shape == (64, 48)                          # (h, w) after EXIF rotation
    assert samples["wide.png"].shape == (60, 4000)
    assert "line 2" in samples["word.jpg"].error                              # the bad row, by line number


def test_read_image_gives_three_channel_bgr(bad_corpus):
    train = bad_corpus.parent / "images" / "train"
    for name, shape in {"gray.png": (30, 40, 3), "rgba.png": (30, 40, 3), "exif_rot.jpg": (64, 48, 3),
                        "no_eoi.jpg": (48, 64, 3), "name with spaces é ü.jpg": (48, 64, 3)}.items():
        img = read_image(train / name)
        assert img.shape == shape and img.dtype == np.uint8, name


def test_decode_catches_corrupt_jpeg_data(bad_corpus):
    train = bad_corpus.parent / "images" / "train"
    assert check_image(train / "corrupt_data.jpg").ok                      # header check: looks fine
    res = check_image(train / "corrupt_data.jpg", decode=True)
    assert not res.ok and "corrupt image data" in res.error
    assert check_image(train / "no_eoi.jpg", decode=True).ok                # cut short still loads


def test_orphan_label_is_found(bad_corpus):
    cfg = load_data_yaml(bad_corpus)
    assert [p.name for p in find_orphan_labels(cfg.splits["train"])] == ["orphan.txt"]


def test_check_cli_on_corpus_changes_nothing(bad_corpus, tmp_path, data_helpers, capsys):
    root = bad_corpus.parent
    before = data_helpers.hash_tree(root)
    report_path = tmp_path / "report.json"
    rc = main(["data", "check", str(bad_corpus), "--json", str(report_path), "--quiet", "--decode"])
    assert rc == 1  # some images were rejected
    assert data_helpers.hash_tree(root) == before  # not one byte changed, nothing added or removed
    out = capsys.readouterr().out
    assert "rejected" in out and "orphan" in out
    report = json.loads(report_path.read_text())
    expected_rejected = sum(v[0] == "rejected" for v in data_helpers.BAD_INPUT_TABLE.values()) + 1  # + corrupt_data
    assert report["splits"]["train"]["rejected"] == expected_rejected
    assert report["splits"]["train"]["orphan_labels"] == 1
    assert report["splits"]["val"] == {"images": 1, "instances": 1, "backgrounds": 0, "rejected": 0,
                                       "with_warnings": 0, "orphan_labels": 0}


def test_check_dataset_report_counts(bad_corpus, data_helpers):
    report = check_dataset(bad_corpus, progress=False, log=lambda m: None)
    table = data_helpers.BAD_INPUT_TABLE
    train = report["splits"]["train"]
    assert train["images"] == len(table)
    assert train["backgrounds"] == sum(v[0] == "background" for v in table.values())
    assert train["rejected"] == sum(v[0] == "rejected" for v in table.values())


def test_unidentified_image_after_ultralytics_import(bad_corpus, monkeypatch):
    """Importing ultralytics patches PIL.Image.open to pip-install a plugin on unknown files: the
    check must bypass that and still say plainly what is wrong."""
    import ultralytics.utils.patches  # noqa: F401  (applies the patch)
    import ultralytics.utils.checks as uchecks

    monkeypatch.setattr(uchecks, "check_requirements", lambda *a, **k: pytest.fail("tried to install a package"))
    res = check_image(bad_corpus.parent / "images" / "train" / "corrupt.jpg")
    assert not res.ok and "not an image" in res.error
