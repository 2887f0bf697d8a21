"""``yololab video extract-frames``: videos -> folders of JPEG frames, in parallel, resumable.

``SRC/<rel>/<name>.avi`` becomes ``DST/<rel>/<name>/00001.jpg ...`` (the layout the datasets read as
frame folders); UCF-101 split files (``ucfTrainTestlist/``) are copied along. A finished video's folder
holds a ``.done`` file, written last, so a rerun skips it and an interrupted one is redone. A video that
cannot be read is reported by name and the others go on. DST must lie outside SRC: nothing is ever
written into the source.
"""

from __future__ import annotations

import os
import sys
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np

from yololab.errors import DataError
from yololab.fileio import write_bytes_atomic
from yololab.video.decode import VIDEO_EXTENSIONS, VideoReader
from yololab.video.sampling import sample_indices

DONE = ".done"
CHUNK = 64  # frames decoded at a time: memory stays bounded for long videos


def frame_indices(num_frames: int, src_fps: float, frames: int | None, fps: float | None) -> np.ndarray:
    """All frames; or ``frames`` spread uniformly; or ``fps`` frames per second of video."""
    if frames:
        return sample_indices(num_frames, frames, "uniform")
    if fps and src_fps > 0:
        return np.unique(np.minimum(np.arange(0, num_frames, src_fps / fps).round().astype(np.int64), num_frames - 1))
    return np.arange(num_frames)


def extract_one(job) -> tuple[str, str, int]:
    """Returns (video, status, frames written) with status ``done``, ``skipped`` or an error message."""
    src, dst, frames, fps, size, quality, backend = job
    dst = Path(dst)
    if (dst / DONE).is_file():
        return src, "skipped", 0
    try:
        with VideoReader(src, backend) as reader:
            idx = frame_indices(reader.num_frames, reader.fps, frames, fps)
            dst.mkdir(parents=True, exist_ok=True)
            for stale in dst.glob("*.jpg"):  # frames of an interrupted run: start this video afresh
                stale.unlink()
            for start in range(0, len(idx), CHUNK):
                chunk = idx[start:start + CHUNK]
                for k, img in enumerate(reader.read(chunk, size), start + 1):
                    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR),
                                           [cv2.IMWRITE_JPEG_QUALITY, quality])
                    if not ok:
                        raise DataError(f"{src}: frame could not be encoded as JPEG")
                    write_bytes_atomic(dst / f"{k:05d}.jpg", buf.tobytes())
        write_bytes_atomic(dst / DONE, f"{len(idx)}\n".encode())
        return src, "done", len(idx)
    except DataError as e:
        return src, str(e), 0


def extract_frames(src: str | Path, dst: str | Path, frames: int | None = None, fps: float | None = None,
                   size: int | None = None, workers: int | None = None, quality: int = 95, backend: str = "auto",
                   progress: bool = True) -> dict:
    """Extract every video below ``src`` into ``dst``; returns counts and the failures (video, message)."""
    from yololab.progress import progress as progress_bar

    src, dst = Path(src).resolve(), Path(dst).resolve()
    if not src.is_dir():
        raise DataError(f"{src}: source folder not found")
    if dst == src or src in dst.parents:
        raise DataError(f"{dst}: the output must lie outside the source folder {src} (nothing is written there)")
    if frames is not None and frames < 1 or fps is not None and fps <= 0 or size is not None and size < 8:
        raise DataError("--frames must be >= 1, --fps > 0 and --size >= 8")
    if frames and fps:
        raise DataError("give --frames or --fps, not both")
    videos = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
    if not videos:
        raise DataError(f"{src}: no video file ({', '.join(VIDEO_EXTENSIONS)}) found")
    dst.mkdir(parents=True, exist_ok=True)
    ann = src / "ucfTrainTestlist"
    if ann.is_dir():
        for f in ann.glob("*.txt"):
            (dst / ann.name).mkdir(exist_ok=True)
            write_bytes_atomic(dst / ann.name / f.name, f.read_bytes())
    jobs = [(str(v), str(dst / v.relative_to(src).with_suffix("")), frames, fps, size, quality, backend)
            for v in videos]
    counts, failures = {"done": 0, "skipped": 0, "failed": 0, "frames": 0}, []
    workers = min(os.cpu_count() or 1, len(jobs)) if workers is None else max(0, workers)
    bar = progress_bar(total=len(jobs), desc="extract frames", unit="video", enabled=progress)

    def account(result):
        video, status, n = result
        if status in ("done", "skipped"):
            counts[status] += 1
            counts["frames"] += n
        else:
            counts["failed"] += 1
            failures.append((video, status))
            bar.write(f"warning: {status}; video skipped", file=sys.stderr)
        bar.update()

    if workers <= 1:
        for job in jobs:
            account(extract_one(job))
    else:
        with get_context("fork").Pool(workers) as pool:
            for result in pool.imap_unordered(extract_one, jobs):
                account(result)
    bar.close()
    return {**counts, "failures": failures}

