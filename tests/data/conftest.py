"""Shared fixtures for the data tests: a writable copy of coco8, a synthetic YOLO set, a bad-input corpus."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from helpers import copy_tree, hash_tree, shared_data


@pytest.fixture
def coco8(tmp_path) -> Path:
    """A writable copy of ../shared/data/coco8; returns the path of its coco8.yaml."""
    root = copy_tree(shared_data("coco8"), tmp_path / "coco8")
    return root / "coco8.yaml"


def write_image(path: Path, w: int, h: int, seed: int = 0, mode: str = "RGB", **save_kw) -> Path:
    """A small noisy image (noise so that JPEG data has real content)."""
    rng = np.random.default_rng(seed)
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    arr = (rng.random((h, w, channels)) * 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr[..., 0] if mode == "L" else arr, mode).save(path, **save_kw)
    return path


def make_yolo_dataset(root: Path, names=("circle", "square", "triangle"), n_train=6, n_val=3, seed=0,
                      backgrounds=1) -> Path:
    """A synthetic YOLO dataset with random boxes of full float precision; returns its data.yaml."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        for i in range(n):
            w, h = int(rng.integers(40, 90)), int(rng.integers(40, 90))
            img = write_image(root / "images" / split / f"{split}_{i:03d}.jpg", w, h, seed=i)
            label = root / "labels" / split / f"{img.stem}.txt"
            label.parent.mkdir(parents=True, exist_ok=True)
            k = 0 if i < backgrounds else int(rng.integers(1, 5))
            rows = []
            for _ in range(k):
                bw, bh = rng.uniform(0.05, 0.5, 2)
                cx, cy = rng.uniform(bw / 2, 1 - bw / 2), rng.uniform(bh / 2, 1 - bh / 2)
                rows.append(f"{rng.integers(len(names))} {float(cx)!r} {float(cy)!r} {float(bw)!r} {float(bh)!r}\n")
            label.write_text("".join(rows))
    names_yaml = "".join(f"  {i}: {n}\n" for i, n in enumerate(names))
    (root / "data.yaml").write_text(f"path: .\ntrain: images/train\nval: images/val\nnames:\n{names_yaml}")
    return root / "data.yaml"


@pytest.fixture
def synthetic_yolo(tmp_path) -> Path:
    return make_yolo_dataset(tmp_path / "synth")


# ---------------------------------------------------------------------------------------------
# Bad-input corpus: every case, and what `check` must say about it
# ---------------------------------------------------------------------------------------------

GOOD_ROW = "1 0.5 0.5 0.25 0.25\n"

# image file name -> (expected outcome, substring of the message or None)
# outcomes: ok, warn (ok with a warning), background, rejected
BAD_INPUT_TABLE = {
    "corrupt.jpg":            ("rejected", "not an image"),       # JPEG whose header is garbage
    "corrupt_data.jpg":       ("ok", None),                       # bad data mid-file: only --decode sees it
    "truncated.png":          ("rejected", "corrupt or truncated"),
    "empty.jpg":              ("rejected", "empty file"),
    "text.png":               ("rejected", "not an image"),
    "no_eoi.jpg":             ("warn", "no end marker"),          # JPEG cut short: loads, with a warning
    "cols4.jpg":              ("rejected", "got 4"),
    "cols6.jpg":              ("rejected", "got 6"),
    "nan.jpg":                ("rejected", "NaN"),
    "inf.jpg":                ("rejected", "NaN or infinite"),
    "negw.jpg":               ("rejected", "width and height must be > 0"),
    "zeroh.jpg":              ("rejected", "width and height must be > 0"),
    "cls999.jpg":             ("rejected", "class id 999 outside"),
    "clsfloat.jpg":           ("rejected", "not an integer"),
    "word.jpg":               ("rejected", "non-numeric value 'dog'"),
    "outside.jpg":            ("rejected", "outside [0, 1] by more than"),
    "clip.jpg":               ("warn", "clipped"),
    "dup.jpg":                ("warn", "duplicate rows removed"),
    "crlf.jpg":               ("ok", None),
    "bom.jpg":                ("ok", None),
    "blank_trailing.jpg":     ("ok", None),
    "empty_label.jpg":        ("background", None),
    "no_label.jpg":           ("background", None),
    "latin1_label.jpg":       ("rejected", "not UTF-8"),
    "gray.png":               ("ok", None),
    "rgba.png":               ("ok", None),
    "wide.png":               ("warn", "extreme aspect ratio 4000x60"),
    "tiny.png":               ("rejected", "smaller than 10 px"),
    "gif.jpg":                ("rejected", "GIF image: not a format the loader decodes"),
    "exif_rot.jpg":           ("ok", None),                       # shape reported as (64, 48)
    "name with spaces é ü.jpg": ("ok", None),
}


@pytest.fixture
def bad_corpus(tmp_path) -> Path:
    """A dataset holding one image per case of BAD_INPUT_TABLE (+ an orphan label); returns data.yaml."""
    root = tmp_path / "bad data"
    img_dir, lab_dir = root / "images" / "train", root / "labels" / "train"
    img_dir.mkdir(parents=True)
    lab_dir.mkdir(parents=True)
    jpg = cv2.imencode(".jpg", (np.random.default_rng(0).random((48, 64, 3)) * 255).astype(np.uint8))[1].tobytes()
    png = cv2.imencode(".png", (np.random.default_rng(1).random((48, 64, 3)) * 255).astype(np.uint8))[1].tobytes()

    def image(name: str, data: bytes = jpg) -> None:
        (img_dir / name).write_bytes(data)

    def label(name: str, text: str | bytes) -> None:
        p = lab_dir / (Path(name).stem + ".txt")
        p.write_bytes(text if isinstance(text, bytes) else text.encode())

    image("corrupt.jpg", jpg[:2] + bytes(range(256))[:100] + jpg[102:])
    mid = len(jpg) // 2
    image("corrupt_data.jpg", jpg[:mid] + b"\xff" * 40 + jpg[mid + 40:])
    image("truncated.png", png[: len(png) // 2])
    image("empty.jpg", b"")
    image("text.png", b"this is a text file, not a PNG\n")
    image("no_eoi.jpg", jpg[: len(jpg) * 2 // 3])
    for name, text in {
        "cols4.jpg": "0 0.5 0.5 0.2\n", "cols6.jpg": "0 0.5 0.5 0.2 0.2 0.9\n", "nan.jpg": "0 nan 0.5 0.2 0.2\n",
        "inf.jpg": "0 0.5 inf 0.2 0.2\n", "negw.jpg": "0 0.5 0.5 -0.2 0.2\n", "zeroh.jpg": "0 0.5 0.5 0.2 0\n",
        "cls999.jpg": "999 0.5 0.5 0.2 0.2\n", "clsfloat.jpg": "1.5 0.5 0.5 0.2 0.2\n",
        "word.jpg": GOOD_ROW + "dog 0.5 0.5 0.2 0.2\n", "outside.jpg": "0 0.98 0.5 0.2 0.2\n",
        "clip.jpg": "0 0.903 0.5 0.2 0.2\n", "dup.jpg": GOOD_ROW + GOOD_ROW + "0 0.3 0.3 0.1 0.1\n",
        "crlf.jpg": GOOD_ROW.replace("\n", "\r\n") * 1 + "2 0.2 0.2 0.1 0.1\r\n",
        "blank_trailing.jpg": "\n" + GOOD_ROW.replace("\n", "   \n") + "\n\n  \n",
        "empty_label.jpg": "",
    }.items():
        image(name)
        label(name, text)
    image("bom.jpg")
    label("bom.jpg", b"\xef\xbb\xbf" + GOOD_ROW.encode())
    image("latin1_label.jpg")
    label("latin1_label.jpg", "0 0.5 0.5 0.2 0.2 # caf\xe9\n".encode("latin-1"))
    image("no_label.jpg")
    write_image(img_dir / "gray.png", 40, 30, mode="L")
    write_image(img_dir / "rgba.png", 40, 30, mode="RGBA")
    write_image(img_dir / "wide.png", 4000, 60)
    write_image(img_dir / "tiny.png", 8, 30)
    write_image(img_dir / "gif.jpg", 40, 30, format="GIF")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90: stored 64x48, shown 48x64
    write_image(img_dir / "exif_rot.jpg", 64, 48, exif=exif)
    image("name with spaces é ü.jpg")
    for name in ("corrupt_data.jpg", "no_eoi.jpg", "gray.png", "rgba.png", "wide.png", "tiny.png", "exif_rot.jpg",
                 "name with spaces é ü.jpg"):
        label(name, GOOD_ROW)
    label("orphan.jpg", GOOD_ROW)  # a label file with no image

    write_image(root / "images" / "val" / "good.jpg", 64, 48)
    (root / "labels" / "val").mkdir(parents=True)
    (root / "labels" / "val" / "good.txt").write_text(GOOD_ROW)
    (root / "data.yaml").write_text("path: .\ntrain: images/train\nval: images/val\nnames: [a, b, c]\n")
    assert sorted(p.name for p in img_dir.iterdir()) == sorted(BAD_INPUT_TABLE)
    return root / "data.yaml"


def outcome(sample) -> str:
    """ok / warn / background / rejected, as in BAD_INPUT_TABLE."""
    if sample.error:
        return "rejected"
    if sample.background:
        return "background"
    return "warn" if sample.warnings else "ok"


# Test modules get the helpers through fixtures: importing `conftest` by name is ambiguous in a
# suite where several folders have one.
@pytest.fixture
def data_helpers():
    """Namespace of the helpers above: copy_tree, hash_tree, make_yolo_dataset, write_image, outcome,
    BAD_INPUT_TABLE."""
    import types

    return types.SimpleNamespace(copy_tree=copy_tree, hash_tree=hash_tree, make_yolo_dataset=make_yolo_dataset,
                                 write_image=write_image, outcome=outcome, BAD_INPUT_TABLE=BAD_INPUT_TABLE)
