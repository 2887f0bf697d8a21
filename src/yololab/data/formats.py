"""Detection dataset formats: YOLO txt + data.yaml, COCO instances JSON, Pascal VOC XML.

The YOLO layout (data.yaml, ``images/`` and ``labels/``) is read by :mod:`yololab.data.yolo`.

Ignore regions. COCO ``iscrowd`` boxes and VOC ``difficult`` objects must not be training targets
(they are groups or hardly visible objects), but evaluation must not count a detection on them as a
false positive. YOLO txt has no column for that, so when a conversion to YOLO meets such boxes it
writes, beside the txt labels, one COCO instances JSON per split holding every box of that split,
the ignore regions with ``iscrowd: 1`` (VOC difficult objects become crowd boxes too), and records
it in data.yaml under ``annotations: {val: annotations/instances_val.json}``. The txt labels hold
only the training targets. :attr:`DataConfig.annotations` gives those files to the evaluator, which
feeds them to the official COCO protocol as they are.

Conversion between formats goes through one in-memory form, :class:`Dataset` (a list of
:class:`ImageRecord` per split, boxes in pixels), so every reader pairs with every writer.
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from yololab.data.check import scan_split
from yololab.data.io import pil_open
from yololab.data.yolo import SPLITS, DataConfig, image_to_label_path, label_rows, load_data_yaml
from yololab.errors import DataError
from yololab.ops.boxes import xywhn_to_xyxy

# ---------------------------------------------------------------------------------------------
# The in-memory form every reader produces and every writer consumes
# ---------------------------------------------------------------------------------------------

VOC_NAMES = ["aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
             "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
             "train", "tvmonitor"]


@dataclass
class ImageRecord:
    """One image: where it is, where it goes (``rel``, inside its split folder), and its boxes."""

    path: Path
    rel: str
    width: int
    height: int
    classes: np.ndarray   # int64 (N,)
    boxes: np.ndarray     # float64 (N, 4): x1, y1, x2, y2 in pixels
    ignore: np.ndarray    # bool (N,): crowd / difficult, kept for evaluation only


@dataclass
class Dataset:
    names: list[str]
    splits: dict[str, list[ImageRecord]]
    notes: list[str] = field(default_factory=list)  # what a reader skipped, and why


def _record(path: Path, rel: str, width: int, height: int, rows: list[tuple[int, float, float, float, float, bool]]
            ) -> ImageRecord:
    arr = np.asarray([r[1:5] for r in rows], dtype=np.float64).reshape(-1, 4)
    return ImageRecord(path=path, rel=rel, width=int(width), height=int(height),
                       classes=np.asarray([r[0] for r in rows], dtype=np.int64),
                       boxes=arr, ignore=np.asarray([r[5] for r in rows], dtype=bool))


# ---------------------------------------------------------------------------------------------
# Readers
# ---------------------------------------------------------------------------------------------


def read_yolo(src: str | Path) -> Dataset:
    """Read a YOLO dataset from its data.yaml (or the folder holding it).

    Images or label files that ``yololab data check`` would reject are left out, with a note each.
    Ignore regions come from the COCO json files named under ``annotations`` in the yaml.
    """
    cfg = load_data_yaml(src)
    notes: list[str] = []
    splits: dict[str, list[ImageRecord]] = {}
    for split, images in cfg.splits.items():
        ignore = read_ignore_regions(cfg, split)
        base = split_base(cfg, split)
        records = []
        for s in scan_split(images, cfg.num_classes, progress=f"read {split}"):
            if s.error:
                notes.append(f"skipped: {s.error}")
                continue
            h, w = s.shape
            rel = s.image.relative_to(base).as_posix()
            labels = s.labels.astype(np.float64)
            rows = [(int(c), *box, False) for c, box in zip(labels[:, 0], xywhn_to_xyxy(labels[:, 1:], w, h).tolist())]
            rows += ignore.get(rel, [])
            records.append(_record(s.image, rel, w, h, rows))
        splits[split] = records
    return Dataset(names=cfg.names, splits=splits, notes=notes)


def split_base(cfg: DataConfig, split: str) -> Path:
    """The folder a split's image paths are kept relative to: ``images/<split>`` (where write_yolo puts them
    and what the ignore json's file_name holds), or the images' common folder for other layouts."""
    images = cfg.splits[split]
    base = cfg.root / "images" / split
    if not all(base in p.parents for p in images):
        base = Path(os.path.commonpath([str(p.parent) for p in images]))
    return base


def read_ignore_regions(cfg: DataConfig, split: str) -> dict[str, list[tuple]]:
    """The ignore regions of a split (the iscrowd boxes of its ``annotations`` json, none without one) by image
    path relative to :func:`split_base`, as rows (class, x1, y1, x2, y2, True), mapped to the classes by name."""
    if split not in cfg.annotations:
        return {}
    json_path, names = cfg.annotations[split], cfg.names
    coco = _load_json(json_path)
    try:
        cat_name = {c["id"]: c["name"] for c in coco.get("categories", [])}
        file_of = {im["id"]: im["file_name"] for im in coco.get("images", [])}
    except (KeyError, TypeError):
        raise DataError(f"{json_path}: expected categories with id/name and images with id/file_name") from None
    index = {n: i for i, n in enumerate(names)}
    out: dict[str, list[tuple]] = {}
    for i, a in enumerate(coco.get("annotations", [])):
        try:
            if a.get("iscrowd") and cat_name.get(a["category_id"]) in index:
                x, y, w, h = (float(v) for v in a["bbox"])
                out.setdefault(file_of[a["image_id"]], []).append(
                    (index[cat_name[a["category_id"]]], x, y, x + w, y + h, True))
        except (KeyError, TypeError, ValueError, AttributeError):
            raise DataError(f"{json_path}: annotations[{i}]: expected image_id (one of the images), "
                            f"category_id and bbox [x, y, w, h]") from None
    return out


def _load_json(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON: line {e.lineno}: {e.msg}") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a COCO instances object with images/annotations/categories")
    return data


def _split_of(name: str) -> str | None:
    """'instances_train2017' -> 'train'; 'val2014' -> 'val'."""
    name = name.removeprefix("instances_")
    return next((s for s in SPLITS if name.startswith(s)), None)


def read_coco(src: str | Path) -> Dataset:
    """Read COCO instances JSON files: ``SRC/annotations/instances_<split>*.json``.

    Images are looked up in ``SRC/images/<name>``, ``SRC/<name>``, ``SRC/images/<split>`` or
    ``SRC/<split>`` where ``<name>`` is the json's name without ``instances_`` (``train2017``).
    Category ids are mapped to contiguous class ids in increasing id order. ``iscrowd`` boxes are
    kept as ignore regions. Boxes with no area are left out with a note.
    """
    src = Path(src)
    ann_dir = src / "annotations"
    files = sorted(ann_dir.glob("instances_*.json")) if ann_dir.is_dir() else []
    if not files:
        raise DataError(f"{src}: no COCO annotation files annotations/instances_<split>.json")
    notes: list[str] = []
    names: list[str] | None = None
    cat_index: dict[int, int] = {}
    splits: dict[str, list[ImageRecord]] = {}
    for jf in files:
        split = _split_of(jf.stem)
        if split is None:
            notes.append(f"skipped {jf}: its name says no split (train/val/test)")
            continue
        if split in splits:
            raise DataError(f"{jf}: a second annotation file for split '{split}'")
        coco = _load_json(jf)
        for key in ("images", "annotations", "categories"):
            if not isinstance(coco.get(key), list):
                raise DataError(f"{jf}: field '{key}' is missing or not a list")
        cats = sorted(coco["categories"], key=lambda c: c["id"])
        these = [str(c["name"]) for c in cats]
        if names is None:
            names, cat_index = these, {c["id"]: i for i, c in enumerate(cats)}
            if len(set(names)) != len(names):
                raise DataError(f"{jf}: field 'categories': duplicate names")
        elif these != names:
            raise DataError(f"{jf}: field 'categories' differs from {files[0].name}'s")
        name = jf.stem.removeprefix("instances_")
        folder = next((d for d in (src / "images" / name, src / name, src / "images" / split, src / split)
                       if d.is_dir()), None)
        if folder is None:
            raise DataError(f"{jf}: image folder not found (looked for images/{name}, {name}, "
                            f"images/{split}, {split} in {src})")
        by_image: dict[int, list[tuple]] = {}
        for i, a in enumerate(coco["annotations"]):
            try:
                x, y, w, h = (float(v) for v in a["bbox"])
                cls = cat_index[a["category_id"]]
                image_id = a["image_id"]
            except (KeyError, TypeError, ValueError):
                raise DataError(f"{jf}: annotations[{i}]: expected image_id, category_id (one of the "
                                f"categories) and bbox [x, y, w, h]") from None
            if not (w > 0 and h > 0):
                notes.append(f"{jf}: annotation id {a.get('id', i)}: box without area left out")
                continue
            by_image.setdefault(image_id, []).append((cls, x, y, x + w, y + h, bool(a.get("iscrowd", 0))))
        records = []
        for j, im in enumerate(coco["images"]):
            try:
                path, rel = folder / im["file_name"], str(im["file_name"])
                width, height = int(im["width"]), int(im["height"])
            except (KeyError, TypeError, ValueError):
                raise DataError(f"{jf}: images[{j}]: expected id, file_name, width and height") from None
            if not path.is_file():
                notes.append(f"{jf}: image {path} not found, left out")
                continue
            records.append(_record(path, rel, width, height, by_image.get(im["id"], [])))
        splits[split] = sorted(records, key=lambda r: r.rel)
    return Dataset(names=names or [], splits=splits, notes=notes)


def read_voc(src: str | Path, lists: dict[str, str] | None = None) -> Dataset:
    """Read a Pascal VOC year folder (``VOC2007``): Annotations/, JPEGImages/, ImageSets/Main/.

    Splits come from ``ImageSets/Main/{train,val,test}.txt`` (``trainval.txt`` stands for train
    when train.txt is absent); ``lists`` chooses others, e.g. ``{"train": "trainval", "val": "test"}``.
    ``difficult`` objects are kept as ignore regions. VOC corners are
    1-based inclusive pixel indices; the box is ``[xmin - 1, ymin - 1, xmax, ymax]`` in continuous
    pixel coordinates. Classes are the 20 VOC classes in their usual order when every name is one of
    them, otherwise the names found, sorted.
    """
    src = Path(src)
    main = src / "ImageSets" / "Main"
    if lists is not None:
        lists = {split: main / f"{name}.txt" for split, name in lists.items()}
        missing = [str(p) for p in lists.values() if not p.is_file()]
        if missing:
            raise DataError(f"{src}: split list(s) {missing} not found")
    else:
        lists = {s: main / f"{s}.txt" for s in SPLITS if (main / f"{s}.txt").is_file()}
        if "train" not in lists and (main / "trainval.txt").is_file():
            lists["train"] = main / "trainval.txt"
    if not (src / "Annotations").is_dir() or not lists:
        raise DataError(f"{src}: not a VOC folder (expected Annotations/, JPEGImages/ and "
                        f"ImageSets/Main/train.txt, val.txt or trainval.txt, test.txt)")
    notes: list[str] = []
    parsed: dict[str, list[tuple]] = {}
    found_names: set[str] = set()
    for split, lf in lists.items():
        items = []
        for line in lf.read_text(encoding="utf-8-sig").splitlines():
            if not line.strip():
                continue
            stem = line.split()[0]
            xml_path = src / "Annotations" / f"{stem}.xml"
            if not xml_path.is_file():
                notes.append(f"{lf}: {stem}: no {xml_path.name}, left out")
                continue
            items.append(_parse_voc_xml(xml_path, src))
            found_names.update(o[0] for o in items[-1][3])
        parsed[split] = items
    names = VOC_NAMES if found_names <= set(VOC_NAMES) else sorted(found_names)
    index = {n: i for i, n in enumerate(names)}
    splits = {}
    for split, items in parsed.items():
        records = []
        for path, width, height, objects in items:
            if not path.is_file():
                notes.append(f"{path}: image not found, left out")
                continue
            if not (width and height):  # some VOC-like sets leave <size> empty: read the header
                with pil_open(path) as im:
                    width, height = im.size
            rows = []
            for n, x1, y1, x2, y2, difficult in objects:
                if x2 <= x1 - 1 or y2 <= y1 - 1:
                    notes.append(f"{path.name}: {n} box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) has no area, left out")
                    continue
                rows.append((index[n], x1 - 1, y1 - 1, x2, y2, difficult))
            records.append(_record(path, path.name, width, height, rows))
        splits[split] = records
    return Dataset(names=list(names), splits=splits, notes=notes)


def _parse_voc_xml(xml_path: Path, src: Path) -> tuple[Path, int, int, list[tuple]]:
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as e:
        raise DataError(f"{xml_path}: not valid XML: {e}") from None

    def num(node, tag: str) -> float:
        el = node.find(tag)
        try:
            return float(el.text)
        except (AttributeError, TypeError, ValueError):
            raise DataError(f"{xml_path}: <{tag}> missing or not a number") from None

    # the image is JPEGImages/<id>.jpg; <filename> is a fallback (it is wrong in a few VOC files)
    filename = xml_path.stem + ".jpg"
    if not (src / "JPEGImages" / filename).is_file() and root.findtext("filename"):
        filename = root.findtext("filename").strip()
    size = root.find("size")
    width = int(num(size, "width")) if size is not None and size.findtext("width") else 0
    height = int(num(size, "height")) if size is not None and size.findtext("height") else 0
    objects = []
    for obj in root.iter("object"):
        name = (obj.findtext("name") or "").strip()
        box = obj.find("bndbox")
        if not name or box is None:
            raise DataError(f"{xml_path}: <object> without <name> or <bndbox>")
        difficult = (obj.findtext("difficult") or "0").strip() == "1"
        objects.append((name, num(box, "xmin"), num(box, "ymin"), num(box, "xmax"), num(box, "ymax"), difficult))
    return src / "JPEGImages" / filename, width, height, objects


# ---------------------------------------------------------------------------------------------
# Class names: rename, merge, drop, reorder
# ---------------------------------------------------------------------------------------------


def remap_classes(ds: Dataset, names_map: dict[str, str | None] | None = None,
                  keep: list[str] | None = None) -> Dataset:
    """Rename / merge / drop classes.

    ``names_map`` maps an old name to a new one (two old names to one new name merges them) or to
    None (drops the class); unmapped names stay. ``keep`` then fixes the output classes and their
    order: boxes of any other class are dropped. Without ``keep`` the classes keep their order of
    first appearance. A name in either that the dataset does not have is an error (a typo would
    otherwise drop every box of the class it meant), with the closest names as a suggestion.
    """
    names_map = dict(names_map or {})
    _refuse_unknown_names("--names-map", list(names_map), ds.names, "the source")
    renamed = [names_map.get(n, n) for n in ds.names]
    if keep is None:
        keep = list(dict.fromkeys(n for n in renamed if n is not None))
    _refuse_unknown_names("--names", keep, [n for n in renamed if n is not None],
                          "the source (after --names-map)" if names_map else "the source")
    if len(set(keep)) != len(keep):
        raise DataError(f"--names: duplicate class names in {keep}")
    new_index = {n: i for i, n in enumerate(keep)}
    lut = np.asarray([new_index.get(n, -1) if n is not None else -1 for n in renamed] + [-1], dtype=np.int64)
    splits = {}
    for split, records in ds.splits.items():
        out = []
        for r in records:
            cls = lut[r.classes]
            m = cls >= 0
            out.append(ImageRecord(r.path, r.rel, r.width, r.height, cls[m], r.boxes[m], r.ignore[m]))
        splits[split] = out
    return Dataset(names=list(keep), splits=splits, notes=ds.notes)


def _refuse_unknown_names(option: str, names: list[str], known: list[str], where: str) -> None:
    unknown = [n for n in names if n not in known]
    if not unknown:
        return
    hints = []
    for n in unknown:
        close = difflib.get_close_matches(n, known, n=1, cutoff=0.5)
        hints.append(f"{n!r} (did you mean {close[0]!r}?)" if close else repr(n))
    shown = ", ".join(dict.fromkeys(known[:30])) + (" ..." if len(known) > 30 else "")
    raise DataError(f"{option}: {', '.join(hints)} not in {where}, whose classes are: {shown}")


def load_names_map(path: str | Path) -> dict[str, str | None]:
    """A YAML mapping ``old name: new name`` (or ``old name: null`` to drop the class)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except (OSError, yaml.YAMLError) as e:
        raise DataError(f"{path}: cannot read the names map: {e}") from None
    if not isinstance(data, dict) or not all(v is None or isinstance(v, str | int) for v in data.values()):
        raise DataError(f"{path}: expected a mapping 'old name: new name' (null drops the class)")
    return {str(k): (None if v is None else str(v)) for k, v in data.items()}


# ---------------------------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------------------------


def _place_image(src: Path, dst: Path, link: bool) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if link:
        try:
            os.link(src, dst)
            return
        except OSError:
            pass  # another file system, or links not allowed: copy instead
    shutil.copyfile(src, dst)


def _check_rel(rel: str, split: str, seen: set[str]) -> None:
    """An output image path must stay inside its split folder and be used once."""
    p = Path(rel)
    if p.is_absolute() or ".." in p.parts:
        raise DataError(f"split '{split}': image path {rel!r} leaves its folder; refusing to write it")
    if rel in seen:
        raise DataError(f"split '{split}': two images would both be written as {rel!r}")
    seen.add(rel)


def coco_dict(ds: Dataset, split: str) -> dict:
    """A COCO instances object for one split (category id = class id + 1, ignore -> iscrowd 1)."""
    images, annotations = [], []
    for image_id, r in enumerate(ds.splits[split], start=1):
        images.append({"id": image_id, "file_name": r.rel, "width": r.width, "height": r.height})
        for c, (x1, y1, x2, y2), ign in zip(r.classes, r.boxes, r.ignore):
            w, h = x2 - x1, y2 - y1
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(c) + 1,
                                "bbox": [float(x1), float(y1), float(w), float(h)], "area": float(w * h),
                                "iscrowd": int(ign), "segmentation": []})
    categories = [{"id": i + 1, "name": n, "supercategory": ""} for i, n in enumerate(ds.names)]
    return {"info": {"description": "written by yololab data convert"}, "images": images,
            "annotations": annotations, "categories": categories}


def write_yolo(ds: Dataset, dst: Path, link: bool = False, progress: bool = False) -> None:
    """Write ``images/<split>/``, ``labels/<split>/``, data.yaml, and ignore regions (module doc)."""
    from yololab.progress import progress as bar

    # no 'path': the root is the yaml's folder, wherever the dataset is copied (module doc of data.yolo)
    yaml_data: dict = {**{s: f"images/{s}" for s in ds.splits}, "names": dict(enumerate(ds.names))}
    for split, records in ds.splits.items():
        seen: set[str] = set()
        for r in bar(records, desc=f"write {split}", unit="img", enabled=progress):
            _check_rel(r.rel, split, seen)
            _place_image(r.path, dst / "images" / split / r.rel, link)
            label = image_to_label_path(dst / "images" / split / r.rel)
            label.parent.mkdir(parents=True, exist_ok=True)
            keep = ~r.ignore  # ignore regions stay out of the training targets
            rows = label_rows(r.classes[keep], r.boxes[keep], r.width, r.height)
            label.write_text("".join(line + "\n" for line in rows), encoding="utf-8")
        if any(r.ignore.any() for r in records):
            rel = f"annotations/instances_{split}.json"
            (dst / "annotations").mkdir(exist_ok=True)
            (dst / rel).write_text(json.dumps(coco_dict(ds, split)), encoding="utf-8")
            yaml_data.setdefault("annotations", {})[split] = rel
    header = "# written by yololab data convert; 'annotations' (if any) hold the ignore regions\n"
    (dst / "data.yaml").write_text(header + yaml.safe_dump(yaml_data, sort_keys=False, allow_unicode=True),
                                   encoding="utf-8")


def write_coco(ds: Dataset, dst: Path, link: bool = False, progress: bool = False) -> None:
    """Write ``images/<split>/`` and ``annotations/instances_<split>.json``."""
    from yololab.progress import progress as bar

    (dst / "annotations").mkdir(parents=True, exist_ok=True)
    for split, records in ds.splits.items():
        seen: set[str] = set()
        for r in bar(records, desc=f"write {split}", unit="img", enabled=progress):
            _check_rel(r.rel, split, seen)
            _place_image(r.path, dst / "images" / split / r.rel, link)
        (dst / "annotations" / f"instances_{split}.json").write_text(json.dumps(coco_dict(ds, split)),
                                                                     encoding="utf-8")


READERS = {"yolo": read_yolo, "coco": read_coco, "voc": read_voc}
WRITERS = {"yolo": write_yolo, "coco": write_coco}


def _inside(a: Path, b: Path) -> bool:
    """True when ``a`` is ``b`` or lies inside it."""
    return a == b or b in a.parents


def convert(src: str | Path, dst: str | Path, src_format: str, dst_format: str,
            names_map: dict[str, str | None] | None = None, keep: list[str] | None = None,
            overwrite: bool = False, link: bool = False, progress: bool = False) -> Dataset:
    """Convert a dataset; never writes into ``src``.

    The output is built in a temporary folder beside ``dst`` and moved into place at the end, so an
    interrupted conversion leaves no half-written ``dst``. A non-empty ``dst`` is refused unless
    ``overwrite``; ``dst`` equal to, inside, or holding ``src`` is always refused. Images are
    copied, or hard-linked with ``link`` (falling back to a copy across file systems).
    """
    if src_format not in READERS or dst_format not in WRITERS:
        raise DataError(f"cannot convert {src_format} -> {dst_format}: from {sorted(READERS)} to {sorted(WRITERS)}")
    src, dst = Path(src), Path(dst)
    if not src.exists():
        raise DataError(f"{src}: source does not exist")
    src_root = Path(os.path.realpath(src if src.is_dir() else src.parent))
    dst_real = Path(os.path.realpath(dst))
    if _inside(dst_real, src_root) or _inside(src_root, dst_real):
        raise DataError(f"{dst}: the output must be outside the source {src_root} (and not hold it)")
    if dst.exists() and not dst.is_dir():
        raise DataError(f"{dst}: exists and is not a folder")
    if dst.is_dir() and any(dst.iterdir()) and not overwrite:
        raise DataError(f"{dst}: folder is not empty; choose another or pass --overwrite")

    ds = READERS[src_format](src)
    if names_map or keep:
        ds = remap_classes(ds, names_map, keep)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dst.parent, prefix=f".{dst.name}.tmp-"))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the result is an ordinary folder
    try:
        WRITERS[dst_format](ds, tmp, link=link, progress=progress)
        old = None
        if dst.exists():
            old = dst.with_name(f".{dst.name}.old-{os.getpid()}")
            os.replace(dst, old)
        os.replace(tmp, dst)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ds
