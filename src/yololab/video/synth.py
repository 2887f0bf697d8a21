"""The built-in synthetic action dataset: short videos whose class is a motion, in the UCF-101 layout.

Ten classes (:data:`CLASSES`): an object moves left, right, up or down; grows; shrinks; rotates
clockwise or counter-clockwise; blinks (its colour flips between two colours); or bounces (falls
and rebounds). Every video draws its own background, distractor shapes and object (shape, colour,
size, place, speed) from a generator seeded by ``(seed, class, video)``, and the parameters of the
paired classes are drawn from one distribution and played forwards or backwards. So no single frame
tells the class: a frame of "move left" is a frame of "move right" played backwards, and a model
that averages frames without their order (the control) cannot tell the pairs apart.

Files: real H.264 MP4 (libx264) or MPEG-4 Part 2 AVI (the codec and container of UCF-101), written
with PyAV, as ``out/<Class>/v_<Class>_gGG_cCC.<ext>`` with ``out/ucfTrainTestlist/classInd.txt``,
``trainlist0{1,2,3}.txt`` and ``testlist0{1,2,3}.txt``. As in UCF-101, the videos of a class are
spread over 25 groups and split ``k`` tests groups ``7(k-1)+1 .. 7k`` (about 28 % of the videos
when a class has 25 or more). The same seed writes the same bytes.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np

from yololab.errors import DataError
from yololab.fileio import atomic_path, write_text_atomic

CLASSES = ["MoveLeft", "MoveRight", "MoveUp", "MoveDown", "Grow", "Shrink", "RotateCW", "RotateCCW",
           "Blink", "Bounce"]
# pairs that only the direction of time tells apart (a frame-averaging model cannot)
MOTION_PAIRS = [("MoveLeft", "MoveRight"), ("MoveUp", "MoveDown"), ("Grow", "Shrink"), ("RotateCW", "RotateCCW")]
SHAPES = ["square", "triangle", "star", "hexagon", "cross", "ell"]  # no circle: its rotation is invisible
FORMATS = {"avi": "mpeg4", "mp4": "libx264"}
MARKER = "video-synth.json"
GROUPS = 25


def _unit_shape(name: str) -> np.ndarray:
    """Polygon of a shape around (0, 0) with radius about 1."""
    def regular(n, phase=0.0):
        t = phase + np.arange(n) * 2 * math.pi / n
        return np.stack([np.cos(t), np.sin(t)], 1)

    if name == "square":
        return regular(4, math.pi / 4)
    if name == "triangle":
        return regular(3, -math.pi / 2)
    if name == "star":
        return np.stack([regular(5, -math.pi / 2), 0.45 * regular(5, -math.pi / 2 + math.pi / 5)], 1).reshape(-1, 2)
    if name == "hexagon":
        return regular(6)
    a = 0.35
    if name == "cross":
        return np.array([[-a, -1], [a, -1], [a, -a], [1, -a], [1, a], [a, a], [a, 1], [-a, 1], [-a, a], [-1, a],
                         [-1, -a], [-a, -a]])
    if name == "ell":  # an L: no rotational symmetry at all
        return np.array([[-1, -1], [-1 + 2 * a, -1], [-1 + 2 * a, 1 - 2 * a], [1, 1 - 2 * a], [1, 1], [-1, 1]])
    raise ValueError(name)


def _colour(rng) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(0, 256, 3))


def _draw(img: np.ndarray, shape: str, cx: float, cy: float, r: float, angle: float, colour) -> None:
    c, s = math.cos(angle), math.sin(angle)
    pts = _unit_shape(shape) @ np.array([[c, s], [-s, c]]) * r + (cx, cy)
    cv2.fillPoly(img, [np.round(pts * 16).astype(np.int32)], colour, cv2.LINE_AA, shift=4)


def _background(rng, size: int) -> np.ndarray:
    """A smooth random texture between two colours, sometimes with stripes."""
    g = int(rng.integers(2, 6))
    t = cv2.resize(rng.random((g, g), dtype=np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    if rng.random() < 0.4:
        a, period = rng.uniform(0, math.pi), rng.uniform(0.1, 0.4) * size
        yy, xx = np.mgrid[0:size, 0:size]
        t = 0.6 * t + 0.4 * (0.5 + 0.5 * np.sin(2 * math.pi * (math.cos(a) * xx + math.sin(a) * yy) / period))
    c0, c1 = np.array(_colour(rng), np.float32), np.array(_colour(rng), np.float32)
    return np.clip(c0 + (c1 - c0) * np.clip(t, 0, 1)[..., None], 0, 255).astype(np.uint8)


def render_video(cls: int, seed: int, index: int, frames: int = 16, size: int = 64) -> np.ndarray:
    """RGB uint8 frames ``(frames, size, size, 3)`` of video ``index`` of class ``cls``."""
    rng = np.random.default_rng([seed, cls, index])
    name = CLASSES[cls]
    base = _background(rng, size)
    for _ in range(int(rng.integers(1, 4))):  # static distractors: a frame holds several shapes
        _draw(base, str(rng.choice(SHAPES)), *rng.uniform(0.1, 0.9, 2) * size, rng.uniform(0.05, 0.12) * size,
              rng.uniform(0, 2 * math.pi), _colour(rng))
    shape, colour = str(rng.choice(SHAPES)), _colour(rng)
    colour2 = tuple(255 - v for v in colour)  # blink flips to the complementary colour: always visible
    r = rng.uniform(0.1, 0.17) * size
    cx, cy = rng.uniform(0.3, 0.7, 2) * size
    angle = rng.uniform(0, 2 * math.pi)
    u = np.linspace(0, 1, frames)
    forward = name in ("MoveRight", "MoveDown", "Grow", "RotateCW")
    p = u if forward else 1 - u  # a paired class plays the same path backwards
    travel = rng.uniform(0.35, 0.55) * size
    lo = rng.uniform(0.2 * size, 0.8 * size - travel)  # the path lies inside [0.2, 0.8] of the frame
    xs, ys, rs, angles = np.full(frames, cx), np.full(frames, cy), np.full(frames, r), np.full(frames, angle)
    colours = [colour] * frames
    if name in ("MoveLeft", "MoveRight"):
        xs = lo + travel * p
    elif name in ("MoveUp", "MoveDown"):
        ys = lo + travel * p
    elif name in ("Grow", "Shrink"):
        rs = r * (0.55 + 1.0 * p)
    elif name in ("RotateCW", "RotateCCW"):
        angles = angle + rng.uniform(0.8, 1.2) * math.pi * p  # image y points down: +angle turns clockwise
    elif name == "Blink":
        period, phase = int(rng.integers(2, 4)), int(rng.integers(0, 2))
        colours = [colour if ((i // period) + phase) % 2 == 0 else colour2 for i in range(frames)]
    elif name == "Bounce":  # falls to a floor and rebounds, 1.5-2.5 times per video
        floor = lo + travel
        ys = floor - travel * np.abs(np.cos(math.pi * rng.uniform(1.5, 2.5) * u + rng.uniform(0, 0.5)))
    out = np.empty((frames, size, size, 3), np.uint8)
    for i in range(frames):
        img = base.copy()
        _draw(img, shape, xs[i], ys[i], rs[i], angles[i], colours[i])
        out[i] = img
    return out


def write_video(path: str | Path, frames, fps: int = 25, fmt: str | None = None, gop: int = 8) -> Path:
    """Encode RGB uint8 frames (an array ``(T, H, W, 3)`` or any iterable of ``(H, W, 3)``, even H and W)
    as H.264 MP4 or MPEG-4 AVI with a key frame every ``gop`` frames, atomically."""
    import av

    path = Path(path)
    fmt = fmt or path.suffix.lstrip(".")
    if fmt not in FORMATS:
        raise DataError(f"{path}: video format must be one of {sorted(FORMATS)}")
    with atomic_path(path) as tmp:
        with av.open(tmp, "w", format="avi" if fmt == "avi" else "mp4") as c:
            s = None
            for f in frames:
                if s is None:
                    s = c.add_stream(FORMATS[fmt], rate=fps)
                    s.width, s.height, s.pix_fmt = f.shape[1], f.shape[0], "yuv420p"
                    s.gop_size = gop  # key frames let clips seek instead of decoding from the start
                    s.thread_count = 1  # deterministic bytes
                    if fmt == "mp4":
                        s.options = {"crf": "18", "preset": "veryfast"}
                    else:
                        s.bit_rate = 2_000_000
                for pkt in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                    c.mux(pkt)
            if s is None:
                raise DataError(f"{path}: no frame to write")
            for pkt in s.encode():
                c.mux(pkt)
    return path


def _video_name(cls: int, j: int, n: int, ext: str) -> tuple[str, int]:
    group = j * GROUPS // n + 1
    clip = sum(1 for i in range(j) if i * GROUPS // n + 1 == group) + 1
    name = CLASSES[cls]
    return f"{name}/v_{name}_g{group:02d}_c{clip:02d}.{ext}", group


def _write_one(job) -> None:
    cls, j, seed, frames, size, fps, path = job
    write_video(path, render_video(cls, seed, j, frames, size), fps)


def _prepare(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise DataError(f"{out}: folder is not empty and was not written by `yololab video synth` "
                            f"(no {MARKER}); choose an empty or new folder")
        if not overwrite:
            raise DataError(f"{out}: holds an earlier synthetic dataset; pass --overwrite to replace it")
        for d in CLASSES + ["ucfTrainTestlist"]:  # exactly what synth writes, nothing else
            if (out / d).is_dir():
                shutil.rmtree(out / d)


def synth_actions(out: str | Path, classes: int = 10, videos_per_class: int = 40, frames: int = 16, size: int = 64,
                  seed: int = 0, fmt: str = "avi", fps: int = 25, workers: int | None = None,
                  overwrite: bool = False, progress: bool = True) -> Path:
    """Write the dataset into ``out``; returns ``out``. See the module docstring for the layout."""
    from yololab.progress import progress as progress_bar

    if not 1 <= classes <= len(CLASSES):
        raise DataError(f"--classes must lie in 1..{len(CLASSES)}, got {classes}")
    if videos_per_class < 2 or frames < 2 or fps < 1:
        raise DataError("--videos-per-class and --frames must be >= 2, --fps >= 1")
    if size < 16 or size % 2:
        raise DataError(f"--size must be an even number >= 16 (H.264 and MPEG-4 need even sizes), got {size}")
    if fmt not in FORMATS:
        raise DataError(f"--format must be one of {sorted(FORMATS)}, got {fmt!r}")
    out = Path(out).absolute()
    _prepare(out, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / MARKER, json.dumps({"generator": "yololab video synth", "classes": CLASSES[:classes],
                                                 "videos_per_class": videos_per_class, "frames": frames,
                                                 "size": size, "seed": seed, "format": fmt, "fps": fps}, indent=2))
    jobs, lists = [], {k: ([], []) for k in (1, 2, 3)}
    for c in range(classes):
        (out / CLASSES[c]).mkdir(exist_ok=True)
        for j in range(videos_per_class):
            rel, group = _video_name(c, j, videos_per_class, fmt)
            jobs.append((c, j, seed, frames, size, fps, str(out / rel)))
            for k in (1, 2, 3):
                test = 7 * (k - 1) < group <= 7 * k
                lists[k][test].append(rel if test else f"{rel} {c + 1}")
    ann = out / "ucfTrainTestlist"
    write_text_atomic(ann / "classInd.txt", "".join(f"{c + 1} {CLASSES[c]}\n" for c in range(classes)))
    for k, (train, test) in lists.items():
        write_text_atomic(ann / f"trainlist0{k}.txt", "".join(f"{line}\n" for line in train))
        write_text_atomic(ann / f"testlist0{k}.txt", "".join(f"{line}\n" for line in test))
    workers = (os.cpu_count() or 1) if workers is None else max(0, workers)
    t0 = time.perf_counter()
    bar = progress_bar(total=len(jobs), desc="synth videos", unit="video", enabled=progress)
    if workers <= 1:
        for job in jobs:
            _write_one(job)
            bar.update()
    else:
        with get_context("fork").Pool(workers) as pool:
            for _ in pool.imap_unordered(_write_one, jobs, chunksize=4):
                bar.update()
    bar.close()
    if progress:
        print(f"wrote {len(jobs)} videos ({classes} classes x {videos_per_class}, {frames} frames at {size} px, "
              f".{fmt}) in {time.perf_counter() - t0:.1f} s -> {out}")
    return out

