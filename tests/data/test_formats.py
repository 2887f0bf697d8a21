"""data.yaml loading, and conversion between YOLO, COCO and VOC (round trips, ignore regions, safety)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from yololab.cli import main
from yololab.data.check import check_label
from yololab.data.yolo import image_to_label_path, load_data_yaml
from yololab.data.formats import (
    VOC_NAMES,
    convert,
    read_coco,
    read_voc,
)
from yololab.errors import DataError


def yolo_labels(data_yaml: Path) -> dict[str, np.ndarray]:
    """split/relative image path -> labels (N, 5), sorted rows, from a YOLO dataset."""
    cfg = load_data_yaml(data_yaml)
    out = {}
    for split, images in cfg.splits.items():
        base = cfg.root / "images" / split
        for img in images:
            lab = check_label(image_to_label_path(img), cfg.num_classes)
            assert lab.error is None, lab.error
            rows = lab.labels.astype(np.float64)
            out[f"{split}/{img.relative_to(base).as_posix()}"] = rows[np.lexsort(rows.T[::-1])]
    return out


# ---------------------------------------------------------------------------------------------
# data.yaml
# ---------------------------------------------------------------------------------------------


def test_image_to_label_path():
    assert image_to_label_path(Path("/d/images/train/a.jpg")) == Path("/d/labels/train/a.txt")
    assert image_to_label_path(Path("/x/images/d/images/val/s/b.PNG")) == Path("/x/images/d/labels/val/s/b.txt")
    assert image_to_label_path(Path("/d/train/images.jpg")) == Path("/d/train/images.txt")  # a file, not a folder


def test_load_coco8_yaml(coco8):
    cfg = load_data_yaml(coco8)
    assert cfg.root == coco8.parent and cfg.num_classes == 80 and cfg.names[0] == "person"
    assert [p.name for p in cfg.splits["val"]] == ["000000000036.jpg", "000000000042.jpg", "000000000049.jpg",
                                                     "000000000061.jpg"]
    assert "test" not in cfg.splits


def test_yaml_variants(synthetic_yolo):
    root = synthetic_yolo.parent
    train = sorted((root / "images" / "train").glob("*.jpg"))
    # a .txt list with ./ prefixes, absolute paths, blank lines and a BOM; names as a list; path relative
    (root / "train.txt").write_text("\ufeff./" + train[0].relative_to(root).as_posix() + "\n\n" + str(train[1]) + "\n")
    sub = root / "cfg"
    sub.mkdir()
    (sub / "d.yaml").write_text("path: ..\ntrain: train.txt\nval: [images/val, images/train]\nnames: [a, b, c]\n")
    cfg = load_data_yaml(sub / "d.yaml")
    assert cfg.root == root and cfg.names == ["a", "b", "c"]
    assert cfg.splits["train"] == train[:2]
    assert len(cfg.splits["val"]) == 3 + len(train)
    # no 'path': the yaml's folder; nc without names
    (root / "nc.yaml").write_text("train: images/train\nval: images/val\nnc: 2\n")
    assert load_data_yaml(root / "nc.yaml").names == ["class0", "class1"]


@pytest.mark.parametrize("text, message", [
    ("train: images/train\nnames: [a]\n", "field 'val' is missing"),
    ("train: images/train\nval: images/nope\nnames: [a]\n", "field 'val': folder"),
    ("path: nowhere\ntrain: images/train\nval: images/val\nnames: [a]\n", "field 'path': folder"),
    ("train: images/train\nval: images/val\n", "field 'names' is missing"),
    ("train: images/train\nval: images/val\nnames: {0: a, 2: b}\n", "class ids must be 0..1 without gaps"),
    ("train: images/train\nval: images/val\nnames: [a, b]\nnc: 3\n", "'nc' is 3 but 'names' has 2"),
    ("train: images/train\nval: images/val\nnames: [a, a]\n", "duplicate class names"),
    ("train: [images/train\n", "not valid YAML"),
    ("- a\n- b\n", "expected a mapping"),
])
def test_yaml_errors_name_file_and_field(synthetic_yolo, text, message):
    bad = synthetic_yolo.parent / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(DataError, match="bad.yaml") as e:
        load_data_yaml(bad)
    assert message in str(e.value)


# ---------------------------------------------------------------------------------------------
# Round trips
# ---------------------------------------------------------------------------------------------


def _round_trip(data_yaml: Path, tmp_path: Path, data_helpers) -> None:
    before = data_helpers.hash_tree(data_yaml.parent)
    convert(data_yaml, tmp_path / "coco", "yolo", "coco")
    convert(tmp_path / "coco", tmp_path / "yolo", "coco", "yolo")
    assert data_helpers.hash_tree(data_yaml.parent) == before  # the source is untouched
    a, b = yolo_labels(data_yaml), yolo_labels(tmp_path / "yolo" / "data.yaml")
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].shape == b[k].shape, k
        np.testing.assert_allclose(b[k], a[k], atol=1e-6, rtol=0, err_msg=k)
    assert load_data_yaml(tmp_path / "yolo" / "data.yaml").names == load_data_yaml(data_yaml).names
    for k in a:  # images are copied byte for byte
        split, rel = k.split("/", 1)
        assert (tmp_path / "yolo" / "images" / split / rel).read_bytes() == \
               (data_yaml.parent / "images" / split / rel).read_bytes()


def test_round_trip_coco8(coco8, tmp_path, data_helpers):
    _round_trip(coco8, tmp_path, data_helpers)
    coco = json.loads((tmp_path / "coco" / "annotations" / "instances_train.json").read_text())
    assert len(coco["images"]) == 4 and len(coco["annotations"]) == 13 and len(coco["categories"]) == 80
    assert coco["categories"][0] == {"id": 1, "name": "person", "supercategory": ""}


def test_round_trip_synthetic(synthetic_yolo, tmp_path, data_helpers):
    _round_trip(synthetic_yolo, tmp_path, data_helpers)
    assert (tmp_path / "yolo" / "labels" / "train" / "train_000.txt").read_text() == ""  # background kept


# ---------------------------------------------------------------------------------------------
# COCO: non-contiguous category ids, crowd boxes as ignore regions
# ---------------------------------------------------------------------------------------------


def make_coco(root: Path, data_helpers) -> Path:
    for name, (w, h) in {"a.jpg": (100, 50), "b.jpg": (40, 80)}.items():
        data_helpers.write_image(root / "val2017" / name, w, h)
        data_helpers.write_image(root / "train2017" / name, w, h)
    cats = [{"id": 90, "name": "toothbrush"}, {"id": 1, "name": "person"}, {"id": 5, "name": "airplane"}]
    anns = [
        {"id": 1, "image_id": 7, "category_id": 5, "bbox": [10, 5, 30, 20], "iscrowd": 0, "area": 600},
        {"id": 2, "image_id": 7, "category_id": 90, "bbox": [0, 0, 100, 50], "iscrowd": 1, "area": 5000},
        {"id": 3, "image_id": 7, "category_id": 1, "bbox": [95, 40, 10, 20], "iscrowd": 0, "area": 200},  # past edge
        {"id": 4, "image_id": 8, "category_id": 1, "bbox": [5, 5, 0, 10], "iscrowd": 0, "area": 0},  # no area
    ]
    coco = {"images": [{"id": 7, "file_name": "a.jpg", "width": 100, "height": 50},
                       {"id": 8, "file_name": "b.jpg", "width": 40, "height": 80}],
            "annotations": anns, "categories": cats}
    (root / "annotations").mkdir(parents=True)
    for split in ("train2017", "val2017"):
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(coco))
    return root


def test_coco_to_yolo_with_crowd(tmp_path, data_helpers):
    src = make_coco(tmp_path / "coco", data_helpers)
    ds = read_coco(src)
    assert ds.names == ["person", "airplane", "toothbrush"]  # by increasing category id
    assert any("no area" in n or "without area" in n for n in ds.notes)
    convert(src, tmp_path / "yolo", "coco", "yolo")
    cfg = load_data_yaml(tmp_path / "yolo" / "data.yaml")
    assert set(cfg.annotations) == {"train", "val"}
    rows = (tmp_path / "yolo" / "labels" / "val" / "a.txt").read_text().splitlines()
    assert rows[0] == "1 0.25 0.3 0.3 0.4"        # airplane, pixel box 10,5,30x20 in 100x50
    assert rows[1] == "0 0.975 0.9 0.05 0.2"      # person, clipped at the right edge: x 95..100
    assert len(rows) == 2                          # the crowd box is not a training target
    assert (tmp_path / "yolo" / "labels" / "val" / "b.txt").read_text() == ""
    ignore = json.loads(cfg.annotations["val"].read_text())
    crowd = [a for a in ignore["annotations"] if a["iscrowd"]]
    assert len(crowd) == 1 and crowd[0]["bbox"] == [0.0, 0.0, 100.0, 50.0] and crowd[0]["category_id"] == 3
    # and back to COCO: the crowd box survives through the YOLO form
    convert(tmp_path / "yolo" / "data.yaml", tmp_path / "coco2", "yolo", "coco")
    back = json.loads((tmp_path / "coco2" / "annotations" / "instances_val.json").read_text())
    assert sum(a["iscrowd"] for a in back["annotations"]) == 1 and len(back["annotations"]) == 3


def test_coco_duplicate_file_names_are_refused(tmp_path, data_helpers):
    src = make_coco(tmp_path / "coco", data_helpers)
    jf = src / "annotations" / "instances_val2017.json"
    coco = json.loads(jf.read_text())
    coco["images"][1]["file_name"] = "a.jpg"
    jf.write_text(json.dumps(coco))
    with pytest.raises(DataError, match="two images would both be written as 'a.jpg'"):
        convert(src, tmp_path / "out", "coco", "yolo")
    assert not (tmp_path / "out").exists()


def test_coco_errors(tmp_path, data_helpers):
    with pytest.raises(DataError, match="no COCO annotation files"):
        read_coco(tmp_path)
    src = make_coco(tmp_path / "coco", data_helpers)
    (src / "annotations" / "instances_val2017.json").write_text('{"images": [')
    with pytest.raises(DataError, match="instances_val2017.json: not valid JSON"):
        read_coco(src)


# ---------------------------------------------------------------------------------------------
# VOC
# ---------------------------------------------------------------------------------------------


def make_voc(root: Path, data_helpers) -> Path:
    objects = {
        "000001": [("dog", 11, 6, 30, 25, 0), ("person", 1, 1, 64, 48, 1)],
        "000002": [("cat", 5, 5, 20, 20, 0)],
        "000003": [],
    }
    for stem, objs in objects.items():
        data_helpers.write_image(root / "JPEGImages" / f"{stem}.jpg", 64, 48)
        xml = "".join(f"<object><name>{n}</name><difficult>{d}</difficult><bndbox><xmin>{a}</xmin><ymin>{b}</ymin>"
                      f"<xmax>{c}</xmax><ymax>{e}</ymax></bndbox></object>" for n, a, b, c, e, d in objs)
        (root / "Annotations").mkdir(parents=True, exist_ok=True)
        (root / "Annotations" / f"{stem}.xml").write_text(
            f"<annotation><filename>{stem}.jpg</filename><size><width>64</width><height>48</height>"
            f"<depth>3</depth></size>{xml}</annotation>")
    main_dir = root / "ImageSets" / "Main"
    main_dir.mkdir(parents=True)
    (main_dir / "trainval.txt").write_text("000001\n000003\n")
    (main_dir / "val.txt").write_text("000002\n")
    return root


def test_voc_to_yolo(tmp_path, data_helpers):
    src = make_voc(tmp_path / "VOC2007", data_helpers)
    ds = read_voc(src)
    assert ds.names == VOC_NAMES
    convert(src, tmp_path / "yolo", "voc", "yolo")
    dog = VOC_NAMES.index("dog")
    # xmin 11..xmax 30 (1-based, inclusive) -> pixels 10..30 of 64; y 5..25 of 48
    assert (tmp_path / "yolo" / "labels" / "train" / "000001.txt").read_text() == \
        f"{dog} {20 / 64:.6g} {15 / 48:.6g} {20 / 64:.6g} {20 / 48:.6g}\n"  # the difficult person is left out
    ignore = json.loads((tmp_path / "yolo" / "annotations" / "instances_train.json").read_text())
    assert [a["category_id"] - 1 for a in ignore["annotations"] if a["iscrowd"]] == [VOC_NAMES.index("person")]
    cfg = load_data_yaml(tmp_path / "yolo" / "data.yaml")
    assert [p.name for p in cfg.splits["train"]] == ["000001.jpg", "000003.jpg"]


def test_voc_bad_xml_names_file(tmp_path, data_helpers):
    src = make_voc(tmp_path / "VOC", data_helpers)
    (src / "Annotations" / "000002.xml").write_text("<annotation><object><name>cat</name>")
    with pytest.raises(DataError, match="000002.xml: not valid XML"):
        read_voc(src)


# ---------------------------------------------------------------------------------------------
# Class names: rename, merge, drop, select
# ---------------------------------------------------------------------------------------------


def test_names_map_merge_and_drop(synthetic_yolo, tmp_path):
    (tmp_path / "map.yaml").write_text("circle: round\nsquare: null\ntriangle: round\n")
    rc = main(["data", "convert", "--from", "yolo", "--to", "yolo", str(synthetic_yolo), str(tmp_path / "out"),
               "--names-map", str(tmp_path / "map.yaml")])
    assert rc == 0
    src, out = yolo_labels(synthetic_yolo), yolo_labels(tmp_path / "out" / "data.yaml")
    assert load_data_yaml(tmp_path / "out" / "data.yaml").names == ["round"]
    for k, rows in src.items():
        kept = rows[rows[:, 0] != 1]  # squares dropped, circles and triangles merged into class 0
        kept[:, 0] = 0
        np.testing.assert_allclose(out[k], kept[np.lexsort(kept.T[::-1])], atol=1e-6)


def test_names_select_and_order(synthetic_yolo, tmp_path):
    convert(synthetic_yolo, tmp_path / "out", "yolo", "yolo", keep=["triangle", "circle"])
    src, out = yolo_labels(synthetic_yolo), yolo_labels(tmp_path / "out" / "data.yaml")
    for k, rows in src.items():
        assert (out[k][:, 0] == 0).sum() == (rows[:, 0] == 2).sum()
        assert (out[k][:, 0] == 1).sum() == (rows[:, 0] == 0).sum()
    with pytest.raises(DataError, match="--names-map: 'hexagon' not in the source"):
        convert(synthetic_yolo, tmp_path / "o2", "yolo", "yolo", names_map={"hexagon": "x"})


# ---------------------------------------------------------------------------------------------
# Never lose user data
# ---------------------------------------------------------------------------------------------


def test_convert_refuses_unsafe_destinations(synthetic_yolo, tmp_path, data_helpers, capsys):
    root = synthetic_yolo.parent
    before = data_helpers.hash_tree(root)
    for dst in (root, root / "converted", tmp_path):  # same, inside, holding the source
        rc = main(["data", "convert", "--from", "yolo", "--to", "coco", str(synthetic_yolo), str(dst), "--overwrite"])
        assert rc == 2
        assert "must be outside the source" in capsys.readouterr().err
    assert data_helpers.hash_tree(root) == before

    dst = tmp_path / "out"
    dst.mkdir()
    (dst / "mine.txt").write_text("precious")
    rc = main(["data", "convert", "--from", "yolo", "--to", "coco", str(synthetic_yolo), str(dst)])
    assert rc == 2 and "not empty" in capsys.readouterr().err
    assert (dst / "mine.txt").read_text() == "precious"
    assert main(["data", "convert", "--from", "yolo", "--to", "coco", str(synthetic_yolo), str(dst),
                 "--overwrite"]) == 0
    assert not (dst / "mine.txt").exists() and (dst / "annotations" / "instances_val.json").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left behind
    assert data_helpers.hash_tree(root) == before


def test_convert_hard_links(synthetic_yolo, tmp_path):
    convert(synthetic_yolo, tmp_path / "out", "yolo", "yolo", link=True)
    src = synthetic_yolo.parent / "images" / "val" / "val_000.jpg"
    dst = tmp_path / "out" / "images" / "val" / "val_000.jpg"
    assert os.stat(src).st_ino == os.stat(dst).st_ino and src.exists()
