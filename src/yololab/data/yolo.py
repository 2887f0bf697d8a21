"""YOLO datasets: ``data.yaml`` and where each image's label file is.

The layout is the one Ultralytics users already have::

    root/
      data.yaml                 path / train / val / test / names
      images/train/a.jpg        any depth of sub-folders below images/
      labels/train/a.txt        one row per object: class cx cy w h, normalized to [0, 1]

The label of an image is found by replacing the last ``/images/`` component of its path with
``/labels/`` and its suffix with ``.txt`` (:func:`image_to_label_path`). ``annotations`` in the yaml
names COCO json files holding ignore regions (see :mod:`yololab.data.formats`).

Datasets yololab writes travel: their data.yaml has no ``path``, so the root is the yaml's own folder, for
yololab and for Ultralytics alike (Ultralytics resolves a relative ``path`` such as ``.`` against the current
directory, not the yaml's), and a copied or moved dataset refers to itself. Their label rows are written by
:func:`label_rows`, whose boxes read back inside [0, 1] exactly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from yololab.errors import DataError
from yololab.fileio import read_yaml

# Suffixes (lower case) that count as images when a folder is searched.
IMAGE_SUFFIXES = {".bmp", ".dng", ".jpeg", ".jpg", ".mpo", ".png", ".tif", ".tiff", ".webp"}

SPLITS = ("train", "val", "test")


@dataclass
class DataConfig:
    """A dataset described by a data.yaml, with every split resolved to a sorted list of images."""

    yaml_path: Path | None
    root: Path
    names: list[str]                                   # index = class id
    splits: dict[str, list[Path]]                      # 'train', 'val', optional 'test'
    annotations: dict[str, Path] = field(default_factory=dict)  # split -> COCO json with ignore regions
    raw: dict = field(default_factory=dict)            # the yaml as read, for keys other code adds

    @property
    def num_classes(self) -> int:
        return len(self.names)


def image_to_label_path(img: Path) -> Path:
    """``.../images/train/a.jpg`` -> ``.../labels/train/a.txt`` (the last ``images`` component)."""
    img = Path(img)
    parts = list(img.parts)
    for i in range(len(parts) - 2, -1, -1):  # the last 'images' folder, never the file name itself
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return Path(*parts).with_suffix(".txt")


def find_data_yaml(path: str | Path) -> Path:
    """``path`` itself if it is a file; for a dataset folder, its data.yaml or its only ``*.yaml``."""
    path = Path(path)
    if path.is_file() or not path.is_dir():
        return path
    if (path / "data.yaml").is_file():
        return path / "data.yaml"
    found = sorted(path.glob("*.yaml")) + sorted(path.glob("*.yml"))
    if len(found) != 1:
        raise DataError(f"{path}: expected a data.yaml (or one *.yaml) in the folder, found "
                        f"{[p.name for p in found] or 'none'}")
    return found[0]


def label_rows(classes: np.ndarray, boxes: np.ndarray, width: float, height: float) -> list[str]:
    """YOLO label rows ``cls cx cy w h`` for pixel boxes ``x1 y1 x2 y2`` in a ``width`` x ``height`` image.

    Boxes are clipped to the image and written with up to 6 decimals such that, read back, ``cx -/+ w / 2``
    and ``cy -/+ h / 2`` lie in [0, 1] exactly (a size rounded up past the border is shrunk by 1e-6), so that
    ``yololab data check`` has nothing to clip. Boxes without area after that are left out.
    """

    def text(v: float) -> str:  # 0.35, not 0.350000: the same number, read back
        return f"{v:.6f}".rstrip("0").rstrip(".")

    b = np.clip(np.asarray(boxes, np.float64).reshape(-1, 4) / [width, height, width, height], 0.0, 1.0)
    rows = []
    for c, (x1, y1, x2, y2) in zip(np.asarray(classes).reshape(-1), b):
        values = []
        for lo, hi in ((x1, x2), (y1, y2)):
            centre, size = round((lo + hi) / 2, 6), round(hi - lo, 6)
            while size > 0 and (centre - size / 2 < 0 or centre + size / 2 > 1):  # as data check reads it
                size = round(size - 1e-6, 6)
            values.append((centre, size))
        (cx, w), (cy, h) = values
        if w > 0 and h > 0:
            rows.append(f"{int(c)} {text(cx)} {text(cy)} {text(w)} {text(h)}")
    return rows


def _find_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _parse_names(data: dict, where: str) -> list[str]:
    names = data.get("names")
    nc = data.get("nc")
    if names is None:
        if nc is None:
            raise DataError(f"{where}: field 'names' is missing (expected a list of class names or a "
                            f"{{id: name}} mapping, or 'nc')")
        if not isinstance(nc, int) or nc < 1:
            raise DataError(f"{where}: field 'nc' must be a positive integer, got {nc!r}")
        return [f"class{i}" for i in range(nc)]
    if isinstance(names, dict):
        try:
            ids = sorted(int(k) for k in names)
        except (TypeError, ValueError):
            raise DataError(f"{where}: field 'names': keys must be integer class ids, got {list(names)[:5]}")
        if ids != list(range(len(ids))):
            raise DataError(f"{where}: field 'names': class ids must be 0..{len(ids) - 1} without gaps, "
                            f"got {ids[:10]}{'...' if len(ids) > 10 else ''}")
        by_id = {int(k): v for k, v in names.items()}
        names = [by_id[i] for i in range(len(ids))]
    if not isinstance(names, list) or not names:
        raise DataError(f"{where}: field 'names' must be a non-empty list or {{id: name}} mapping, "
                        f"got {type(names).__name__}")
    names = [str(n) for n in names]
    if nc is not None and nc != len(names):
        raise DataError(f"{where}: field 'nc' is {nc} but 'names' has {len(names)} entries")
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise DataError(f"{where}: field 'names' has duplicate class names {dup}")
    return names


def _resolve_split(value, root: Path, where: str, key: str) -> list[Path]:
    """One split entry: a folder, a .txt list of image paths, an image, or a list of these."""
    entries = value if isinstance(value, list) else [value]
    images: list[Path] = []
    for entry in entries:
        if not isinstance(entry, str | os.PathLike):
            raise DataError(f"{where}: field '{key}': expected a folder, a .txt list or a list of them, "
                            f"got {entry!r}")
        p = Path(entry).expanduser()
        p = p if p.is_absolute() else root / p
        if p.is_dir():
            found = _find_images(p)
            if not found:
                raise DataError(f"{where}: field '{key}': folder {p} holds no images "
                                f"({', '.join(sorted(IMAGE_SUFFIXES))})")
            images += found
        elif p.suffix.lower() == ".txt" and p.is_file():
            text = p.read_text(encoding="utf-8-sig", errors="replace")
            for line in text.splitlines():
                line = line.strip()
                if not line or Path(line).suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                q = Path(line[2:] if line.startswith("./") else line)
                images.append(q if q.is_absolute() else root / q)
        elif p.suffix.lower() in IMAGE_SUFFIXES and p.is_file():
            images.append(p)
        else:
            kind = "folder" if not p.suffix else "file"
            raise DataError(f"{where}: field '{key}': {kind} {p} does not exist")
    if not images:
        raise DataError(f"{where}: field '{key}': no images found")
    # resolve '..' and symlinked folders once, then drop duplicates
    return sorted({Path(os.path.abspath(q)) for q in images})


def load_data_yaml(path: str | Path) -> DataConfig:
    """Read an Ultralytics-style data.yaml (or the dataset folder holding it) and resolve every split to its
    image files.

    Keys: ``path`` (dataset root; relative to the yaml's folder; default that folder), ``train``,
    ``val``, optional ``test`` (each a folder searched recursively, a .txt list of images relative
    to the root or absolute, or a list of these), ``names`` (list or ``{id: name}``) or ``nc``,
    and optional ``annotations`` (``{split: coco.json}``, see the module docstring).
    Image files listed in a .txt that do not exist are kept: ``yololab data check`` reports them.
    """
    path = find_data_yaml(path)
    where = str(path)
    if not path.is_file():
        raise DataError(f"{where}: data yaml does not exist")
    data = read_yaml(path, DataError, where)
    if not isinstance(data, dict):
        raise DataError(f"{where}: expected a mapping with keys path/train/val/names, "
                        f"got {type(data).__name__}")
    base = path.parent.resolve()
    root = data.get("path")
    if root is None:
        root = base
    else:
        root = Path(str(root)).expanduser()
        root = root if root.is_absolute() else (base / root)
        root = Path(os.path.abspath(root))
        if not root.is_dir():
            raise DataError(f"{where}: field 'path': folder {root} does not exist")
    names = _parse_names(data, where)
    splits: dict[str, list[Path]] = {}
    for key in SPLITS:
        if data.get(key) in (None, ""):
            if key in ("train", "val"):
                raise DataError(f"{where}: field '{key}' is missing (expected a folder of images or a "
                                f".txt list of image paths, relative to {root})")
            continue
        splits[key] = _resolve_split(data[key], root, where, key)
    annotations: dict[str, Path] = {}
    ann = data.get("annotations") or {}
    if not isinstance(ann, dict):
        raise DataError(f"{where}: field 'annotations' must map a split to a COCO json file")
    for split, file in ann.items():
        p = Path(str(file))
        p = p if p.is_absolute() else root / p
        if not p.is_file():
            raise DataError(f"{where}: field 'annotations.{split}': file {p} does not exist")
        annotations[str(split)] = p
    return DataConfig(yaml_path=path.resolve(), root=root, names=names, splits=splits,
                      annotations=annotations, raw=data)
