"""Verify a detection dataset: every image readable, every label valid (``yololab data check``).

What is checked, and what happens (one message per problem, naming the file and the line):

================================================  ===========================================
input                                             outcome
================================================  ===========================================
missing, empty, or not-an-image file              image rejected
image PIL cannot parse / PNG with a bad chunk     image rejected (truncated or corrupt)
GIF or other format OpenCV does not decode        image rejected
corrupt JPEG data inside the file                 image rejected with ``decode`` (else unseen)
JPEG without its end marker (FFD9)                loads, with a warning (bottom may be grey)
image smaller than 10 px on a side                image rejected
aspect ratio above 20:1                           loads, with a warning
EXIF orientation 5-8                              shape reported after rotation (h, w swapped)
grayscale, RGBA, 16-bit images                    valid; :func:`read_image` returns 3-channel BGR
no label file, or an empty one                    background image (valid, no targets)
label row with != 5 columns                       label file rejected
non-numeric value, NaN or inf                     label file rejected
class id not an integer, or outside [0, nc)       label file rejected
width or height <= 0                              label file rejected
box edge outside [0, 1] by at most 1 %            clipped to [0, 1], with a warning
box edge outside [0, 1] by more than 1 %          label file rejected
duplicate rows                                    removed, with a warning
label file that is not UTF-8 text                 label file rejected
CRLF line ends, UTF-8 BOM, blank lines, spaces    valid
label file with no image (orphan)                 reported by ``check``; not an error
================================================  ===========================================

A bad row rejects the whole label file, and with it the image: a file with one broken row often
has others that look valid but are shifted or truncated, so training on the rest of it is not safe
(Ultralytics makes the same choice). The error names the first bad row and counts the others.

``check_image`` is cheap by default: it reads the header (size, EXIF), runs PIL's ``verify``
(which walks every PNG chunk and its CRC, so a truncated PNG is caught) and looks for the JPEG end
marker, without decoding pixels. ``decode=True`` also decodes the pixels, which catches corrupt
JPEG data inside the file, at several times the cost (coco8's 640x480 JPEGs on a shared 2-core CPU:
~0.6-1 ms per image for the header check, ~2-5 ms with ``decode``).

``yololab data check`` exits with 0 when nothing was rejected and 1 otherwise (2 for bad input
such as a missing data.yaml). It never writes next to the user's data; the label cache of
:func:`scan_split` lives in a folder the caller names (a run folder or ``~/.cache/yololab``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import UnidentifiedImageError

from yololab.data.io import pil_open, read_image
from yololab.data.yolo import image_to_label_path, load_data_yaml
from yololab.fileio import atomic_path, write_text_atomic
from yololab.progress import progress as bar
from yololab.ops.boxes import clip_boxes, cxcywh_to_xyxy, xyxy_to_cxcywh

MIN_SIZE = 10          # pixels; smaller images are rejected
MAX_ASPECT = 20.0      # width/height (or the inverse) above this gets a warning
CLIP_TOLERANCE = 0.01  # box edges this far outside [0, 1] are clipped, beyond that rejected
CACHE_VERSION = 1
DECODABLE_FORMATS = {"JPEG", "MPO", "PNG", "BMP", "TIFF", "WEBP"}  # PIL's names; OpenCV decodes all of them

@dataclass
class ImageCheck:
    ok: bool
    shape: tuple[int, int] | None  # (h, w) after EXIF orientation
    warnings: list[str] = field(default_factory=list)
    error: str | None = None


def check_image(path: str | Path, decode: bool = False) -> ImageCheck:
    """Check one image without decoding its pixels (unless ``decode``). See the module table."""
    path = Path(path)
    warnings: list[str] = []

    def fail(msg: str) -> ImageCheck:
        return ImageCheck(ok=False, shape=None, warnings=warnings, error=f"{path}: {msg}")

    if not path.is_file():
        return fail("image file not found")
    if path.stat().st_size == 0:
        return fail("empty file, not an image")
    try:
        with pil_open(path) as im:
            fmt = im.format
            w, h = im.size
            im.verify()  # PNG: every chunk and CRC up to IEND; others: structure only
        with pil_open(path) as im:  # verify() leaves the file unusable: open again for EXIF
            orientation = im.getexif().get(0x0112, 1)
    except UnidentifiedImageError:
        return fail("not an image (format not recognised)")
    except Exception as e:  # PIL raises many kinds (SyntaxError, OSError, struct.error...) on bad data
        return fail(f"corrupt or truncated image: {e}")
    if fmt not in DECODABLE_FORMATS:
        return fail(f"{fmt} image: not a format the loader decodes ({', '.join(sorted(DECODABLE_FORMATS))})")
    if fmt in ("JPEG", "MPO"):
        with open(path, "rb") as f:
            f.seek(-2, os.SEEK_END)
            if f.read(2) != b"\xff\xd9":
                warnings.append(f"{path}: JPEG has no end marker (truncated?); it loads, "
                                "but its last rows may be grey")
    if orientation in (5, 6, 7, 8):  # transposed: width and height swap
        w, h = h, w
    if min(w, h) < MIN_SIZE:
        return fail(f"image is {w}x{h}, smaller than {MIN_SIZE} px on a side")
    if max(w / h, h / w) > MAX_ASPECT:
        warnings.append(f"{path}: extreme aspect ratio {w}x{h}")
    if decode:
        truncated_jpeg = fmt in ("JPEG", "MPO") and any("no end marker" in w_ for w_ in warnings)
        try:
            if truncated_jpeg:  # PIL refuses a JPEG cut short; the loader's recovery path decides
                read_image(path)
            else:
                with pil_open(path) as im:
                    im.load()  # full decode: raises on corrupt data inside the file
        except Exception as e:
            return fail(f"corrupt image data: {str(e).removeprefix(str(path) + ': ')}")
    return ImageCheck(ok=True, shape=(h, w), warnings=warnings)


# ---------------------------------------------------------------------------------------------
# Labels
# ---------------------------------------------------------------------------------------------


@dataclass
class LabelCheck:
    labels: np.ndarray                 # float32 (N, 5): class, cx, cy, w, h (normalized)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    background: bool = False           # no label file, or one with no rows


def _row_problem(values: list[str], num_classes: int) -> tuple[str | None, list[float] | None, bool]:
    """Validate one row. Returns (error, [cls, cx, cy, w, h], clipped)."""
    if len(values) != 5:
        return f"expected 5 columns (class cx cy w h), got {len(values)}", None, False
    try:
        nums = [float(v) for v in values]
    except ValueError:
        bad = next(v for v in values if not _is_float(v))
        return f"non-numeric value {bad!r}", None, False
    if not all(math.isfinite(v) for v in nums):
        return "NaN or infinite value", None, False
    cls, cx, cy, w, h = nums
    if cls != int(cls):
        return f"class id {values[0]} is not an integer", None, False
    if not 0 <= cls < num_classes:
        return f"class id {int(cls)} outside [0, {num_classes - 1}]", None, False
    if w <= 0 or h <= 0:
        return f"width and height must be > 0, got w={values[3]} h={values[4]}", None, False
    x1, y1, x2, y2 = cxcywh_to_xyxy(np.array(nums[1:])).tolist()
    lo, hi = min(x1, y1), max(x2, y2)
    if lo < -CLIP_TOLERANCE or hi > 1 + CLIP_TOLERANCE:
        return (f"box edges ({x1:.4f}, {y1:.4f}, {x2:.4f}, {y2:.4f}) outside [0, 1] by more than "
                f"{CLIP_TOLERANCE:.0%}"), None, False
    if lo >= 0 and hi <= 1:
        return None, nums, False
    clipped = clip_boxes(np.array([x1, y1, x2, y2]), 1.0, 1.0)
    if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
        return "box has no area inside the image", None, False
    return None, [cls, *xyxy_to_cxcywh(clipped).tolist()], True


def _is_float(v: str) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False


def check_label(path: str | Path, num_classes: int) -> LabelCheck:
    """Parse and validate a YOLO label file. See the module table for every rule."""
    path = Path(path)
    empty = np.zeros((0, 5), np.float32)
    if not path.is_file():
        return LabelCheck(labels=empty, background=True)
    try:
        text = path.read_bytes().decode("utf-8-sig")  # strips a UTF-8 byte order mark
    except UnicodeDecodeError as e:
        return LabelCheck(labels=empty, error=f"{path}: not UTF-8 text (byte {e.start})")
    except OSError as e:
        return LabelCheck(labels=empty, error=f"{path}: cannot read: {e.strerror or e}")

    rows: list[list[float]] = []
    warnings: list[str] = []
    errors: list[str] = []
    for lineno, line in enumerate(text.splitlines(), start=1):  # splitlines handles CRLF and CR
        values = line.split()
        if not values:
            continue  # blank lines are fine
        problem, row, clipped = _row_problem(values, num_classes)
        if problem:
            errors.append(f"{path}: line {lineno}: {problem}")
            continue
        if clipped:
            warnings.append(f"{path}: line {lineno}: box slightly outside the image, clipped to [0, 1]")
        rows.append(row)
    if errors:
        more = f" (and {len(errors) - 1} more bad rows)" if len(errors) > 1 else ""
        return LabelCheck(labels=empty, warnings=warnings, error=errors[0] + more)
    if not rows:
        return LabelCheck(labels=empty, warnings=warnings, background=True)

    labels = np.asarray(rows, dtype=np.float32)
    _, first = np.unique(labels, axis=0, return_index=True)
    if len(first) < len(labels):
        warnings.append(f"{path}: {len(labels) - len(first)} duplicate rows removed")
        labels = labels[np.sort(first)]  # keep the original order of the first occurrences
    return LabelCheck(labels=labels, warnings=warnings)


# ---------------------------------------------------------------------------------------------
# Whole splits, with a cache
# ---------------------------------------------------------------------------------------------


@dataclass
class SampleInfo:
    image: Path
    label: Path
    shape: tuple[int, int] | None      # (h, w) after EXIF orientation
    labels: np.ndarray                 # float32 (N, 5): class, cx, cy, w, h (normalized)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None           # set: the sample is rejected (image or label)

    @property
    def background(self) -> bool:
        return self.error is None and len(self.labels) == 0


def check_sample(image: str | Path, num_classes: int, decode: bool = False) -> SampleInfo:
    """Check one image and its label file together."""
    image = Path(image)
    label = image_to_label_path(image)
    ic = check_image(image, decode=decode)
    lc = check_label(label, num_classes)
    return SampleInfo(image=image, label=label, shape=ic.shape, labels=lc.labels,
                      warnings=ic.warnings + lc.warnings, error=ic.error or lc.error)


def _stat_key(p: Path) -> str:
    try:
        st = p.stat()
        return f"{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        return "-"


def _files_stamp(images: list[Path]) -> str:
    """A hash of the size and mtime of every image and label: any change invalidates the cache."""
    h = hashlib.sha256()
    for img in images:
        h.update(f"{img}|{_stat_key(img)}|{_stat_key(image_to_label_path(img))}\n".encode())
    return h.hexdigest()


def _cache_path(cache_dir: Path, images: list[Path], num_classes: int, decode: bool) -> Path:
    h = hashlib.sha256(f"v{CACHE_VERSION}|{num_classes}|{decode}|".encode())
    for img in images:
        h.update(str(img).encode() + b"\n")
    return Path(cache_dir) / f"labels-{h.hexdigest()[:16]}.json"


def _to_json(s: SampleInfo) -> dict:
    return {"image": str(s.image), "label": str(s.label), "shape": list(s.shape) if s.shape else None,
            "labels": s.labels.tolist(), "warnings": s.warnings, "error": s.error}


def _from_json(d: dict) -> SampleInfo:
    return SampleInfo(image=Path(d["image"]), label=Path(d["label"]),
                      shape=tuple(d["shape"]) if d["shape"] else None,
                      labels=np.asarray(d["labels"], np.float32).reshape(-1, 5),
                      warnings=list(d["warnings"]), error=d["error"])


def scan_split(images: list[Path], num_classes: int, cache_dir: str | Path | None = None,
               workers: int | None = None, decode: bool = False, progress: str | None = None
               ) -> list[SampleInfo]:
    """Check every image of a split and its label, in order; results cached in ``cache_dir``.

    The cache is one JSON file per (image list, num_classes) in ``cache_dir`` (never beside the
    data). It is used only when the size and modification time of every image and label file are
    unchanged. ``workers`` threads (default: up to 8) check files in parallel; ``progress`` is a
    bar description (yololab.progress), or None for no bar.
    """
    images = [Path(p) for p in images]
    cache_file = stamp = None
    if cache_dir is not None:
        cache_file = _cache_path(Path(cache_dir), images, num_classes, decode)
        stamp = _files_stamp(images)
        try:
            cached = json.loads(cache_file.read_text())
            if cached.get("version") == CACHE_VERSION and cached.get("stamp") == stamp:
                return [_from_json(d) for d in cached["samples"]]
        except (OSError, ValueError, KeyError, TypeError):
            pass  # no cache yet, or an unreadable one: scan again

    workers = workers or min(8, (os.cpu_count() or 1) + 2)
    cv2.setNumThreads(1)  # the threads are the parallelism: OpenCV decodes (--decode) single-threaded
    with ThreadPoolExecutor(max_workers=workers) as pool:
        it = pool.map(lambda p: check_sample(p, num_classes, decode), images)
        if progress:
            it = bar(it, total=len(images), desc=progress, unit="img")
        samples = list(it)

    if cache_file is not None:
        payload = {"version": CACHE_VERSION, "stamp": stamp, "samples": [_to_json(s) for s in samples]}
        write_text_atomic(cache_file, json.dumps(payload))
    return samples


def find_orphan_labels(images: list[Path]) -> list[Path]:
    """Label files in the label folders of ``images`` that belong to no image of the list."""
    expected = {image_to_label_path(p) for p in images}
    folders = {p.parent for p in expected}
    orphans = []
    for folder in sorted(folders):
        if folder.is_dir():
            orphans += [p for p in sorted(folder.glob("*.txt")) if p not in expected]
    return orphans


# ---------------------------------------------------------------------------------------------
# A whole dataset (yololab data check)
# ---------------------------------------------------------------------------------------------


def check_dataset(data_yaml: str | Path, workers: int | None = None, decode: bool = False,
                  cache_dir: str | Path | None = None, progress: bool = True,
                  log=print) -> dict:
    """Check every split of a data.yaml; returns the report (see ``--json``) and logs problems."""
    cfg = load_data_yaml(data_yaml)
    report: dict = {"data": str(cfg.yaml_path), "names": cfg.names, "splits": {}, "files": [],
                    "orphans": []}
    per_class = np.zeros(cfg.num_classes, dtype=np.int64)
    for split, images in cfg.splits.items():
        samples = scan_split(images, cfg.num_classes, cache_dir=cache_dir, workers=workers,
                             decode=decode, progress=f"check {split}" if progress else None)
        orphans = find_orphan_labels(images)
        stats = {"images": len(samples), "instances": 0, "backgrounds": 0, "rejected": 0,
                 "with_warnings": 0, "orphan_labels": len(orphans)}
        for s in samples:
            for w in s.warnings:
                log(f"warning: {w}")
            if s.error:
                log(f"rejected: {s.error}")
                stats["rejected"] += 1
            else:
                stats["instances"] += len(s.labels)
                stats["backgrounds"] += int(s.background)
                per_class += np.bincount(s.labels[:, 0].astype(np.int64), minlength=cfg.num_classes)
            stats["with_warnings"] += int(bool(s.warnings))
            report["files"].append({"split": split, "image": str(s.image), "label": str(s.label),
                                    "shape": list(s.shape) if s.shape else None,
                                    "instances": len(s.labels), "background": s.background,
                                    "warnings": s.warnings, "error": s.error})
        for p in orphans:
            log(f"orphan: {p}: label file with no image in split '{split}'")
        report["orphans"] += [str(p) for p in orphans]
        report["splits"][split] = stats
    report["instances_per_class"] = {name: int(n) for name, n in zip(cfg.names, per_class)}
    report["rejected"] = sum(s["rejected"] for s in report["splits"].values())
    return report


def format_summary(report: dict) -> str:
    """The summary table printed at the end of ``yololab data check``."""
    cols = ["images", "instances", "backgrounds", "rejected", "with_warnings", "orphan_labels"]
    lines = [f"{'split':<8}" + "".join(f"{c:>15}" for c in cols)]
    for split, st in report["splits"].items():
        lines.append(f"{split:<8}" + "".join(f"{st[c]:>15}" for c in cols))
    counts = [(n, c) for n, c in report["instances_per_class"].items() if c]
    lines.append("instances per class (classes with none left out): " +
                 (", ".join(f"{n}={c}" for n, c in counts) or "none"))
    empty = [n for n, c in report["instances_per_class"].items() if not c]
    if empty:
        lines.append(f"{len(empty)} of {len(report['names'])} classes have no instances")
    lines.append("result: " + ("OK, nothing rejected" if not report["rejected"] else
                               f"{report['rejected']} image(s) rejected"))
    return "\n".join(lines)


def plot_report(report: dict, path: str | Path) -> None:
    """Bar chart of instances per class, and images per split by outcome, saved as an image.

    The title names the data.yaml checked; counts are whole numbers on both axes, and the legend sits beside
    the bars, never on them.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    # SVG text stays text, and matplotlib's own font size whatever another library set globally
    with matplotlib.rc_context({"svg.fonttype": "none", "font.size": 10}):
        names, counts = list(report["instances_per_class"]), list(report["instances_per_class"].values())
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(max(8.0, 0.18 * len(names) + 5.5), 4.4),
                                       gridspec_kw={"width_ratios": [max(len(names), 3), max(4, len(names) / 6)]})
        fig.suptitle(f"yololab data check: {report['data']}", fontsize=10)
        ax1.bar(range(len(names)), counts, color="tab:blue")
        ax1.set_xticks(range(len(names)), names, rotation=90, fontsize=7 if len(names) > 30 else 9)
        ax1.set_ylabel("instances")
        ax1.set_title("instances per class (all splits, rejected files left out)", fontsize=10)
        splits = list(report["splits"])
        bottom = np.zeros(len(splits))
        for key, color in (("labelled", "tab:green"), ("backgrounds", "tab:gray"), ("rejected", "tab:red")):
            st = report["splits"]
            vals = np.array([st[s]["images"] - st[s]["backgrounds"] - st[s]["rejected"] if key == "labelled"
                             else st[s][key] for s in splits], dtype=float)
            ax2.bar(splits, vals, bottom=bottom, color=color, label=key)
            bottom += vals
        for i, total in enumerate(bottom):
            ax2.text(i, total, f"{int(total)}", ha="center", va="bottom", fontsize=8)
        ax2.set_ylim(0, max(1.0, bottom.max()) * 1.12)  # room for the totals
        ax2.set_ylabel("images")
        ax2.set_title("images per split", fontsize=10)
        ax2.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
        for ax in (ax1, ax2):
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # no half images or half boxes
        fig.tight_layout()
        try:
            with atomic_path(path) as tmp:
                fig.savefig(tmp, dpi=110, format=Path(path).suffix[1:] or "png")
        finally:
            plt.close(fig)
