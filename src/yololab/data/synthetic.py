"""The built-in *shapes* dataset: a YOLO-format detection set drawn with OpenCV, offline, in seconds.

Every image is drawn from its own random generator seeded with ``seed + index`` (train images take
indices ``0 .. N-1``, validation images ``N .. N+M-1``), so the result does not depend on the order in
which worker processes draw the images or on how many workers there are.

What an image holds, back to front:

1. a textured background: a colour gradient, stripes, soft blobs or smooth noise (often mixed);
2. distractors that are *not* objects: lines, arcs, scribbles, blurred blobs and text-like marks;
3. 0 to 8 objects of the classes in :data:`CLASSES`, each with its own colour, size (about 2 % to
   60 % of the image side), rotation and optional outline. Later objects cover earlier ones;
4. a few thin lines over everything, camera-like noise and sometimes a slight blur.

Labels. The box of an object is the box of the *whole* shape (as a person would annotate a partly
hidden object), clipped to the image. An object whose visible part is less than
``MIN_VISIBLE`` (40 %) of its full area (more than 60 % hidden by later objects or cut off by the
image border) is dropped from the labels: it is still drawn, but it is a fair miss. About 8 % of the
images hold no object at all (background only; their label file is empty).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np

from yololab.errors import DataError
from yololab.data.yolo import label_rows
from yololab.fileio import write_bytes_atomic

CLASSES = ["circle", "square", "triangle", "star", "hexagon", "cross", "ring"]
MIN_VISIBLE = 0.4  # objects with less visible area than this fraction of their full area get no label
BACKGROUND_ONLY_P = 0.08  # fraction of images with no object
MARKER = "synth.json"  # written into every output folder; lets a later run overwrite its own output


# ----------------------------------------------------------------------------------------------
# shapes as polygons around (0, 0) with "radius" 1


def _regular(n: int, phase: float = 0.0) -> np.ndarray:
    t = phase + np.arange(n) * 2 * math.pi / n
    return np.stack([np.cos(t), np.sin(t)], 1)


def _shape_polygons(cls: int) -> list[np.ndarray]:
    """Contours of a unit shape; several contours mean holes (filled with the even-odd rule)."""
    name = CLASSES[cls]
    if name == "circle":
        return [_regular(48)]
    if name == "square":
        return [_regular(4, math.pi / 4)]
    if name == "triangle":
        return [_regular(3, -math.pi / 2)]
    if name == "star":
        outer, inner = _regular(5, -math.pi / 2), 0.42 * _regular(5, -math.pi / 2 + math.pi / 5)
        return [np.stack([outer, inner], 1).reshape(-1, 2)]
    if name == "hexagon":
        return [_regular(6)]
    if name == "cross":
        a = 0.33  # half the width of an arm
        return [np.array([[-a, -1], [a, -1], [a, -a], [1, -a], [1, a], [a, a], [a, 1], [-a, 1], [-a, a],
                          [-1, a], [-1, -a], [-a, -a]], dtype=np.float64)]
    if name == "ring":
        return [_regular(48), 0.55 * _regular(48)]
    raise ValueError(cls)


_UNIT_SHAPES = [_shape_polygons(c) for c in range(len(CLASSES))]


# ----------------------------------------------------------------------------------------------
# background and distractors


def _random_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(0, 256, 3))


def _background(rng: np.random.Generator, s: int) -> np.ndarray:
    """A textured background: gradient, stripes, soft blobs or smooth noise, sometimes mixed."""
    kind = rng.choice(["gradient", "stripes", "blobs", "noise"])
    c0, c1 = np.array(_random_colour(rng), np.float32), np.array(_random_colour(rng), np.float32)
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) / s
    if kind == "gradient":
        a = rng.uniform(0, 2 * math.pi)
        t = np.clip((np.cos(a) * (xx - 0.5) + np.sin(a) * (yy - 0.5)) + 0.5, 0, 1)
    elif kind == "stripes":
        a, period = rng.uniform(0, math.pi), rng.uniform(0.03, 0.25)
        phase = (np.cos(a) * xx + np.sin(a) * yy) / period
        t = (np.sin(2 * math.pi * phase) > 0).astype(np.float32) if rng.random() < 0.5 else \
            0.5 + 0.5 * np.sin(2 * math.pi * phase)
        t = 0.25 + 0.5 * t  # keep stripes softer than objects
    else:
        # smooth noise: a small random grid upsampled (cheap); "blobs" uses a coarser grid
        g = int(rng.integers(2, 5)) if kind == "blobs" else int(rng.integers(6, 24))
        t = cv2.resize(rng.random((g, g), dtype=np.float32), (s, s), interpolation=cv2.INTER_CUBIC)
        t = np.clip(t, 0, 1)
    img = c0 + (c1 - c0) * t[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)


def _distractors(rng: np.random.Generator, img: np.ndarray, n: int) -> None:
    """Draw things that are not objects: lines, arcs, scribbles, blurred blobs, text-like marks."""
    s = img.shape[0]
    for _ in range(n):
        kind = rng.integers(0, 5)
        colour = _random_colour(rng)
        thick = int(rng.integers(1, max(2, s // 80)))
        if kind == 0:  # straight line
            p, q = rng.integers(0, s, 2), rng.integers(0, s, 2)
            cv2.line(img, tuple(map(int, p)), tuple(map(int, q)), colour, thick, cv2.LINE_AA)
        elif kind == 1:  # arc (an open part of an ellipse)
            c = tuple(map(int, rng.integers(0, s, 2)))
            axes = tuple(map(int, rng.integers(s // 20 + 1, s // 3, 2)))
            start = float(rng.uniform(0, 360))
            cv2.ellipse(img, c, axes, float(rng.uniform(0, 180)), start, start + float(rng.uniform(40, 200)),
                        colour, thick, cv2.LINE_AA)
        elif kind == 2:  # scribble: a random walk
            steps = rng.normal(0, s / 25, (int(rng.integers(4, 12)), 2)).cumsum(0) + rng.integers(0, s, 2)
            cv2.polylines(img, [steps.astype(np.int32)], False, colour, thick, cv2.LINE_AA)
        elif kind == 3:  # blurred blob: a soft smudge, no edges a detector could lock on to
            r = int(rng.integers(s // 30 + 1, s // 8 + 2))
            c = rng.integers(0, s, 2)
            x0, y0 = max(0, c[0] - 2 * r), max(0, c[1] - 2 * r)
            x1, y1 = min(s, c[0] + 2 * r), min(s, c[1] + 2 * r)
            if x1 - x0 < 3 or y1 - y0 < 3:
                continue
            # blend the colour through a blurred disk, so the background texture stays sharp around it
            alpha = np.zeros((y1 - y0, x1 - x0), np.float32)
            cv2.circle(alpha, (int(c[0] - x0), int(c[1] - y0)), r, float(rng.uniform(0.5, 1.0)), -1)
            k = 2 * (r // 2) + 1
            alpha = cv2.GaussianBlur(alpha, (k, k), 0)[..., None]
            patch = img[y0:y1, x0:x1].astype(np.float32)
            img[y0:y1, x0:x1] = (patch + alpha * (np.float32(colour) - patch)).astype(np.uint8)
        else:  # text-like marks
            text = "".join(rng.choice(list("ABCDEFGHKMNPRSTUWXYZ0123456789-/"), int(rng.integers(2, 7))))
            scale = float(rng.uniform(0.3, 1.2)) * s / 320
            org = (int(rng.integers(0, s * 3 // 4)), int(rng.integers(s // 10, s)))
            cv2.putText(img, text, org, int(rng.choice([0, 2, 3, 4])), scale, colour, max(1, thick // 2),
                        cv2.LINE_AA)


# ----------------------------------------------------------------------------------------------
# one image


def paint_shape(rng: np.random.Generator, img: np.ndarray, contours: list[np.ndarray], centre: np.ndarray,
                outline_p: float, outline_thick: int, tries: int = 6, min_contrast: int = 120) -> list[np.ndarray]:
    """Fill the polygon(s) ``contours`` (pixels) in a colour that stands out from the background at
    ``centre`` (resampled up to ``tries`` times), with an outline in a darker or lighter tone with
    probability ``outline_p``. Returns the contours in the 1/16-pixel fixed point they were drawn with."""
    s = img.shape[0]
    cx, cy = int(np.clip(centre[0], 0, s - 1)), int(np.clip(centre[1], 0, s - 1))
    under = img[cy, cx].astype(np.int32)
    for _ in range(tries):
        colour = np.array(_random_colour(rng))
        if np.abs(colour - under).sum() > min_contrast:
            break
    # polygons in 1/16 pixel fixed point for smooth anti-aliased edges
    fixed = [np.round(c * 16).astype(np.int32) for c in contours]
    cv2.fillPoly(img, fixed, tuple(int(v) for v in colour), cv2.LINE_AA, shift=4)
    if rng.random() < outline_p:
        edge = np.clip(colour * rng.uniform(0.3, 1.6), 0, 255)
        cv2.polylines(img, fixed, True, tuple(int(v) for v in edge), outline_thick, cv2.LINE_AA, shift=4)
    return fixed


@dataclass
class _Object:
    cls: int
    contours: list[np.ndarray]  # float pixel coordinates
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 of the whole shape (may leave the image)


def render_image(index: int, seed: int, imgsz: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw image number ``index``. Returns (BGR uint8 image, labels (N, 5) [cls, cx, cy, w, h] normalized, the
    values of its label file).

    Only ``seed + index`` decides the result, so any process can draw any image.
    """
    img, rows = _render(index, seed, imgsz)
    return img, np.array([[float(v) for v in row.split()] for row in rows], np.float64).reshape(-1, 5)


def _render(index: int, seed: int, imgsz: int) -> tuple[np.ndarray, list[str]]:
    """The image and its label rows (:func:`yololab.data.yolo.label_rows`: boxes inside [0, 1] as written)."""
    rng = np.random.default_rng(seed + index)
    s = imgsz
    img = _background(rng, s)
    _distractors(rng, img, int(rng.integers(0, 7)))

    n_obj = 0 if rng.random() < BACKGROUND_ONLY_P else int(rng.integers(1, 9))
    ids = np.zeros((s, s), np.uint8)  # which object is visible at each pixel (0: none)
    objects: list[_Object] = []
    for k in range(n_obj):
        cls = int(rng.integers(0, len(CLASSES)))
        # size log-uniform between 2 % and 60 % of the image side (as the shape's full width)
        size = s * math.exp(rng.uniform(math.log(0.02), math.log(0.6)))
        r = max(size / 2, 2.0)
        angle = rng.uniform(0, 2 * math.pi)
        ca, sa = math.cos(angle), math.sin(angle)
        rot = np.array([[ca, -sa], [sa, ca]]) * r
        centre = rng.uniform(0, s, 2)
        contours = [u @ rot.T + centre for u in _UNIT_SHAPES[cls]]
        pts = np.concatenate(contours)
        box = (pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max())

        fixed = paint_shape(rng, img, contours, centre, outline_p=0.4, outline_thick=max(1, int(r / 12)))
        cv2.fillPoly(ids, fixed, k + 1, cv2.LINE_8, shift=4)
        objects.append(_Object(cls, contours, box))

    # a few thin lines over everything (they cross objects without hiding them)
    for _ in range(int(rng.integers(0, 3))):
        p, q = rng.integers(0, s, 2), rng.integers(0, s, 2)
        cv2.line(img, tuple(map(int, p)), tuple(map(int, q)), _random_colour(rng), 1, cv2.LINE_AA)

    # sensor-like noise and sometimes a slight blur
    sigma = rng.uniform(0, 10)
    if sigma > 1:
        noise = rng.normal(0, sigma, img.shape).astype(np.float32)
        img = np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    if rng.random() < 0.2:
        img = cv2.GaussianBlur(img, (3, 3), 0)

    # labels: whole-shape boxes of the objects that stay visible enough
    visible = np.bincount(ids.ravel(), minlength=n_obj + 1)
    classes, boxes = [], []
    for k, obj in enumerate(objects):
        x1, y1, x2, y2 = obj.box
        # full area of the shape (polygon area, holes subtracted), in pixels
        full = abs(_polygon_area(obj.contours[0])) - sum(abs(_polygon_area(c)) for c in obj.contours[1:])
        if visible[k + 1] < MIN_VISIBLE * max(full, 1.0):
            continue
        x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, s), min(y2, s)
        if x2 - x1 < 2 or y2 - y1 < 2:
            continue
        classes.append(obj.cls)
        boxes.append((x1, y1, x2, y2))
    return img, label_rows(np.array(classes, np.int64), np.array(boxes, np.float64).reshape(-1, 4), s, s)


def _polygon_area(p: np.ndarray) -> float:
    x, y = p[:, 0], p[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


# ----------------------------------------------------------------------------------------------
# writing the dataset


def _write_one(job: tuple[int, int, int, str, str]) -> int:
    """Worker: draw one image and write its JPEG and label file. Returns the number of labels."""
    index, seed, imgsz, image_path, label_path = job
    cv2.setNumThreads(1)
    img, rows = _render(index, seed, imgsz)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 92])
    if not ok:
        raise DataError(f"{image_path}: OpenCV could not encode the image as JPEG")
    write_bytes_atomic(Path(image_path), buf.tobytes())
    write_bytes_atomic(Path(label_path), "".join(row + "\n" for row in rows).encode())
    return len(rows)


def _prepare_out_dir(out: Path, overwrite: bool) -> None:
    """Refuse a non-empty folder, and an earlier synth output without ``overwrite``; then clear only our files."""
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise DataError(f"{out}: folder is not empty and was not written by `yololab data synth` "
                            f"(no {MARKER}); choose an empty or new folder")
        if not overwrite:
            raise DataError(f"{out}: holds a dataset of an earlier `yololab data synth`; pass --overwrite to "
                            f"replace it, or choose another folder")
        # an earlier synth output: remove exactly the files it writes, nothing else
        for split in ("train", "val"):
            for sub, pattern in (("images", "*.jpg"), ("labels", "*.txt")):
                for f in (out / sub / split).glob(pattern):
                    if f.stem.isdigit():
                        f.unlink()


def synth_shapes(out: str | Path, train: int = 2000, val: int = 400, imgsz: int = 320, seed: int = 0,
                 workers: int | None = None, progress: bool = True, overwrite: bool = False) -> Path:
    """Write the shapes dataset into ``out`` and return the path of its ``data.yaml``.

    Layout: ``out/images/{train,val}/NNNNNN.jpg``, ``out/labels/{train,val}/NNNNNN.txt`` and
    ``out/data.yaml`` (Ultralytics layout: ``train``, ``val``, ``names``; no ``path``, so the dataset can be
    copied or moved). An earlier synth output in ``out`` is replaced only with ``overwrite``.
    """
    import yaml

    from yololab.progress import progress as progress_bar

    if train < 1 or val < 1:  # a data.yaml needs both splits, each with images
        raise DataError(f"--train and --val must be at least 1 (got {train}, {val})")
    if imgsz < 32:
        raise DataError(f"--imgsz must be at least 32 pixels (got {imgsz})")
    out = Path(out).absolute()
    _prepare_out_dir(out, overwrite)
    jobs = []
    for split, start, n in (("train", 0, train), ("val", train, val)):
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            jobs.append((start + i, seed, imgsz, str(out / "images" / split / f"{i:06d}.jpg"),
                         str(out / "labels" / split / f"{i:06d}.txt")))
    # the marker first: if the run is interrupted, a rerun may still clean up and overwrite
    write_bytes_atomic(out / MARKER, json.dumps(
        {"generator": "yololab data synth shapes", "train": train, "val": val, "imgsz": imgsz, "seed": seed,
         "classes": CLASSES}, indent=2).encode())

    workers = (os.cpu_count() or 1) if workers is None else max(0, workers)
    t0 = time.perf_counter()
    bar = progress_bar(total=len(jobs), desc="synth shapes", unit="img", enabled=progress)
    n_labels = 0
    if workers <= 1:
        for job in jobs:
            n_labels += _write_one(job)
            bar.update()
    else:
        with get_context("spawn" if os.name == "nt" else "fork").Pool(workers) as pool:
            for n in pool.imap_unordered(_write_one, jobs, chunksize=16):
                n_labels += n
                bar.update()
    bar.close()

    data = {"train": "images/train", "val": "images/val", "names": {i: name for i, name in enumerate(CLASSES)}}
    yaml_path = out / "data.yaml"
    write_bytes_atomic(yaml_path, ("# yololab synthetic shapes dataset (yololab data synth shapes)\n"
                                    + yaml.safe_dump(data, sort_keys=False)).encode())
    if progress:
        dt = time.perf_counter() - t0
        print(f"wrote {len(jobs)} images ({train} train, {val} val) with {n_labels} boxes at {imgsz} px "
              f"in {dt:.1f} s ({len(jobs) / dt:.0f} img/s, {max(workers, 1)} workers) -> {yaml_path}")
    return yaml_path
