"""Datasets that travel: what `data synth` and `data convert` write refers to itself wherever it is copied,
checks clean, and the Ultralytics loader reads it as it is (run offline, from another folder)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from helpers import copy_tree, shared_data
from yololab.cli import main
from yololab.data.check import check_dataset, check_label
from yololab.data.formats import convert
from yololab.data.synthetic import synth_shapes
from yololab.data.yolo import image_to_label_path, label_rows, load_data_yaml

# Ultralytics, offline (YOLO_OFFLINE=1, sync off, autodownload off), its settings file in a folder of the test
ULTRALYTICS_READS = """
import json, sys
from ultralytics.data.dataset import YOLODataset
from ultralytics.data.utils import check_det_dataset
from ultralytics.utils import SETTINGS

SETTINGS.update(sync=False)  # no analytics; YOLO_OFFLINE=1 below: no hub, no download
out = {}
for yaml_path in sys.argv[1:]:
    data = check_det_dataset(yaml_path, autodownload=False)
    labels = {}
    for split in ("train", "val"):
        ds = YOLODataset(img_path=data[split], data=data, task="detect", augment=False, imgsz=64)
        labels[split] = {lab["im_file"]: [[float(c), *map(float, b)] for c, b in zip(lab["cls"][:, 0], lab["bboxes"])]
                         for lab in ds.labels}
    out[yaml_path] = {"names": data["names"], "train": data["train"], "val": data["val"], "labels": labels}
print(json.dumps(out))
"""


def ultralytics_reads(*yamls: Path, cwd: Path) -> dict:
    env = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(cwd / "ultralytics-settings")}
    run = subprocess.run([sys.executable, "-c", ULTRALYTICS_READS, *map(str, yamls)], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def our_labels(data_yaml: Path) -> dict[str, dict[str, list]]:
    cfg = load_data_yaml(data_yaml)
    return {split: {str(img): check_label(image_to_label_path(img), cfg.num_classes).labels.tolist()
                    for img in images} for split, images in cfg.splits.items()}


def test_label_rows_read_back_inside_the_image(tmp_path):
    """Boxes on and past the borders, at awkward sizes: every row written checks clean (no clipping warning)
    and holds the clipped box to 1e-6."""
    rng = np.random.default_rng(0)
    w, h, n = 333, 217, 5000
    x1, y1 = rng.uniform(-20, w - 1, n), rng.uniform(-20, h - 1, n)
    boxes = np.stack([x1, y1, x1 + rng.uniform(21, w, n), y1 + rng.uniform(21, h, n)], 1)  # each overlaps the image
    boxes[::3, 2], boxes[1::3, 0] = w, 0  # many edges exactly on the border
    rows = label_rows(np.arange(n) % 3, boxes, w, h)
    assert len(rows) == n
    label = tmp_path / "labels.txt"
    label.write_text("".join(r + "\n" for r in rows))
    result = check_label(label, 3)
    assert result.error is None and result.warnings == [] and len(result.labels) == n
    x, y, bw, bh = np.array([[float(v) for v in r.split()[1:]] for r in rows]).T
    assert (x - bw / 2 >= 0).all() and (x + bw / 2 <= 1).all() and (y - bh / 2 >= 0).all() and (y + bh / 2 <= 1).all()
    clipped = np.clip(boxes / [w, h, w, h], 0, 1)
    np.testing.assert_allclose(np.stack([x - bw / 2, y - bh / 2, x + bw / 2, y + bh / 2], 1), clipped, atol=2e-6)


def test_a_copied_synthetic_dataset_checks_itself_and_ultralytics_reads_it(tmp_path, capsys):
    original = synth_shapes(tmp_path / "made", train=12, val=4, imgsz=64, seed=2, workers=0, progress=False)
    copy = tmp_path / "elsewhere" / "shapes"
    shutil.copytree(original.parent, copy)
    shutil.rmtree(original.parent)  # a copy that still pointed at the original would now fail
    assert main(["data", "check", str(copy)]) == 0  # the folder, as `convert` takes it
    out = capsys.readouterr().out
    assert "warning:" not in out and "OK, nothing rejected" in out  # our own output checks clean
    report = check_dataset(copy, progress=False)
    assert report["data"] == str(copy / "data.yaml") and all(f["image"].startswith(str(copy)) for f in report["files"])
    assert all(st["with_warnings"] == 0 for st in report["splits"].values())

    read = ultralytics_reads(copy / "data.yaml", cwd=tmp_path)[str(copy / "data.yaml")]
    assert read["train"] == str(copy / "images" / "train") and read["val"] == str(copy / "images" / "val")
    assert list(read["names"].values()) == load_data_yaml(copy).names
    ours = our_labels(copy / "data.yaml")
    for split in ("train", "val"):
        assert set(read["labels"][split]) == set(ours[split])
        for image, rows in ours[split].items():  # every box, as we wrote it
            np.testing.assert_allclose(np.reshape(read["labels"][split][image], (-1, 5)), np.reshape(rows, (-1, 5)),
                                       atol=1e-6)


def test_a_converted_dataset_travels_and_ultralytics_reads_it(tmp_path):
    coco8 = copy_tree(shared_data("coco8"), tmp_path / "coco8")
    convert(coco8 / "coco8.yaml", tmp_path / "coco-json", "yolo", "coco")
    convert(tmp_path / "coco-json", tmp_path / "made" / "yolo", "coco", "yolo")
    moved = tmp_path / "moved"
    shutil.move(tmp_path / "made" / "yolo", moved)
    text = (moved / "data.yaml").read_text()
    assert "path:" not in text  # nothing names a folder: the yaml's own folder is the root
    assert check_dataset(moved, progress=False)["rejected"] == 0

    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    read = ultralytics_reads(moved / "data.yaml", cwd=elsewhere)[str(moved / "data.yaml")]
    assert read["val"] == str(moved / "images" / "val")
    ours = our_labels(moved / "data.yaml")
    for split in ("train", "val"):
        assert set(read["labels"][split]) == set(ours[split]) and len(ours[split]) == 4
        for image, rows in ours[split].items():
            np.testing.assert_allclose(np.reshape(read["labels"][split][image], (-1, 5)), np.reshape(rows, (-1, 5)),
                                       atol=1e-6)
