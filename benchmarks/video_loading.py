"""Video clip loading: yololab's reader vs the seed plan's decode-everything-and-cache loader.

The task, on both sides: for every video of a list, one training clip of ``--clip-len`` frames (the
same indices on both sides), resized to a short side of 128 and centre-cropped to 112, returned as a
float tensor in [0, 1] of shape (T, 3, 112, 112).

* **seed plan**: read every frame with ``cv2.VideoCapture``, convert each to a float tensor, keep the
  whole video in a cache (dict by path), then slice the clip's frames out of it and resize them.
* **yololab**: ``VideoReader.read(indices, short_side)``: decode forward only to the clip's last frame,
  or seek to the key frame before its first one; convert and resize only the needed frames (uint8),
  then crop and convert the clip to float. Decoders: ``auto`` (the default), ``pyav``, ``opencv``.

Two sets of files, each in its own table:

* ``ucf``: the two real clips of ../shared/data/videos (the 320x240 MPEG-4 AVI, UCF-101's format and
  size, 164 frames; the 340x256 H.264 MP4, 32 frames), each copied ``--copies`` times; TSN segment
  sampling (a clip spans the whole video), as UCF-101 recipes use.
* ``long``: ``--long-copies`` copies of a generated 320x240 H.264 MP4 of ``--long-frames`` frames with a
  key frame every 50 (2 s), as in downloaded Kinetics / YouTube videos; dense sampling (16 consecutive
  frames, stride 2, random start), the 3D-CNN recipe.

A pass visits every file once, in a seeded random order: an epoch. Two passes are timed: the first
(cold: the seed plan decodes every video) and the second (its cache now holds every video: it only
slices). On a real dataset the cache cannot hold the data (UCF-101's 13,320 videos would need about
2 TB as float32), so every epoch costs what the first pass costs; the goals (>= 5x clips/s, >= 10x less
peak memory) are judged on it. Each loader runs in its own fresh process (peak memory is its own: peak
RSS minus the RSS before the first clip), one thread (a loader worker); the loaders alternate, round
by round, under the same load. Tables: median clips/s over rounds, largest peak memory.

torchcodec, the third candidate decoder, is not measured: its wheels need the system's FFmpeg
libraries (libavutil.so.56-60), which this machine lacks and PyAV's and OpenCV's wheels do not need.

Usage: ``.venv/bin/python benchmarks/video_loading.py [--copies 8 --long-copies 4 --rounds 3]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VIDEOS = (ROOT / ".." / "shared" / "data" / "videos").resolve()
LOADERS = ("seed-plan", "yololab-auto", "yololab-pyav", "yololab-opencv")


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_loader(kind: str, files: list[str], clip_len: int, seed: int, sampling: str) -> dict:
    """One loader in this (fresh) process: two passes over ``files``; clips/s of each, peak memory."""
    import cv2
    import numpy as np
    import torch
    import torch.nn.functional as F

    from yololab.video.decode import VideoReader
    from yololab.video.sampling import sample_indices

    torch.set_num_threads(1)  # a loader worker is one thread
    cv2.setNumThreads(1)
    cache: dict[str, torch.Tensor] = {}

    def frame_count(path):
        with VideoReader(path, "opencv") as r:
            return r.num_frames

    counts = {p: frame_count(p) for p in files}

    def seed_plan(path, idx):
        if path not in cache:  # decode every frame, each to a float tensor, keep the video
            cap, frames = cv2.VideoCapture(path), []
            while True:
                ok, bgr = cap.read()
                if not ok:
                    break
                frames.append(torch.from_numpy(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).float() / 255)
            cap.release()
            cache[path] = torch.stack(frames)  # (N, H, W, 3)
        clip = cache[path][torch.as_tensor(idx)].permute(0, 3, 1, 2)  # (T, 3, H, W)
        h, w = clip.shape[-2:]
        s = 128 / min(h, w)
        clip = F.interpolate(clip, size=(round(h * s), round(w * s)), mode="bilinear", antialias=True)
        return center_crop(clip)

    def ours(path, idx, backend):
        with VideoReader(path, backend) as r:
            frames = r.read(idx, short_side=128)  # (T, h, w, 3) uint8, only these frames decoded/converted
        clip = torch.from_numpy(frames).permute(0, 3, 1, 2)
        return center_crop(clip).float() / 255

    def center_crop(clip):
        h, w = clip.shape[-2:]
        y, x = (h - 112) // 2, (w - 112) // 2
        return clip[..., y:y + 112, x:x + 112]

    load = seed_plan if kind == "seed-plan" else (lambda p, i: ours(p, i, kind.split("-")[1]))
    rss0, out = rss_mb(), {}
    for epoch in (1, 2):
        rng = np.random.default_rng([seed, epoch])
        order = rng.permutation(len(files))
        t0 = time.perf_counter()
        for k in order:
            idx = sample_indices(counts[files[k]], clip_len, sampling, stride=2, rng=rng)
            clip = load(files[k], idx)
            assert clip.shape == (clip_len, 3, 112, 112) and clip.dtype == torch.float32
        out[f"pass{epoch}_clips_s"] = len(files) / (time.perf_counter() - t0)
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - rss0
    return out


def long_video(path: Path, frames: int) -> Path:
    """A 320x240 H.264 video with a key frame every 50 frames: a moving gradient and a moving square."""
    import numpy as np

    from yololab.video.synth import write_video

    yy, xx = np.mgrid[0:240, 0:320]

    def gen():
        for i in range(frames):
            img = np.empty((240, 320, 3), np.uint8)
            img[..., 0] = (xx + 2 * i) % 256
            img[..., 1] = (yy + i) % 256
            img[..., 2] = 128
            x = (3 * i) % 280
            img[100:140, x:x + 40] = 255
            yield img

    return write_video(path, gen(), fps=25, gop=50)


def measure(files: list[str], args, sampling: str) -> dict:
    results = {k: [] for k in LOADERS}
    for r in range(args.rounds):
        for kind in LOADERS:
            proc = subprocess.run([sys.executable, __file__, "--worker", kind, "--clip-len", str(args.clip_len),
                                   "--seed", str(args.seed + r), "--sampling", sampling, "--files", *files],
                                  capture_output=True, text=True, check=True,
                                  env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
            results[kind].append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(f"{sampling} round {r + 1} {kind}: {results[kind][-1]}", file=sys.stderr)
    return results


def table(results: dict, title: str) -> str:
    def med(kind, key):
        return statistics.median(x[key] for x in results[kind])

    def peak(kind):
        return max(x["peak_mb"] for x in results[kind])

    base = "seed-plan"
    lines = [title, "", "| loader | clips/s, pass 1 (cold) | clips/s, pass 2 | peak memory (MB) | pass-1 speed-up | "
             "peak memory vs seed plan |", "|---|---:|---:|---:|---:|---:|"]
    for kind in LOADERS:
        speed = med(kind, "pass1_clips_s") / med(base, "pass1_clips_s")
        lines.append(f"| {kind} | {med(kind, 'pass1_clips_s'):.1f} | {med(kind, 'pass2_clips_s'):.1f} | "
                     f"{peak(kind):.1f} | {speed:.2f}x | {peak(base) / max(peak(kind), 1e-9):.1f}x less |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--copies", type=int, default=8, help="copies of each real clip")
    ap.add_argument("--rounds", type=int, default=3, help="rounds (each runs every loader once)")
    ap.add_argument("--clip-len", type=int, default=16, help="frames per clip")
    ap.add_argument("--long-copies", type=int, default=4, help="copies of the long video")
    ap.add_argument("--long-frames", type=int, default=500, help="frames of the long video (25 fps)")
    ap.add_argument("--sampling", default="segment", help=argparse.SUPPRESS)  # internal
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="also write the table to this file")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # internal: run one loader, print JSON
    ap.add_argument("--files", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(run_loader(args.worker, args.files, args.clip_len, args.seed, args.sampling)))
        return

    load0 = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="video_loading_"))
    try:
        ucf = []
        for src in sorted(VIDEOS.glob("*")):
            for c in range(args.copies):
                ucf.append(str(shutil.copyfile(src, tmp / f"{src.stem}_{c}{src.suffix}")))
        long = [str(long_video(tmp / "long_0.mp4", args.long_frames))]
        long += [str(shutil.copyfile(long[0], tmp / f"long_{c}.mp4")) for c in range(1, args.long_copies)]
        res_ucf = measure(ucf, args, "segment")
        res_long = measure(long, args, "dense")
    finally:
        shutil.rmtree(tmp)
    text = "\n\n".join([
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average {load0:.2f} before, "
        f"{os.getloadavg()[0]:.2f} after; {args.rounds} rounds; clips of {args.clip_len} frames, 112x112 float",
        table(res_ucf, f"**ucf**: {len(ucf)} videos ({args.copies} copies each of the 320x240 MPEG-4 AVI, 164 "
                       f"frames, and the 340x256 H.264 MP4, 32 frames), TSN segment sampling"),
        table(res_long, f"**long**: {len(long)} copies of a 320x240 H.264 MP4 of {args.long_frames} frames, key frame "
                        f"every 50, dense sampling (stride 2)")])
    print(text)
    if args.out:
        from yololab.fileio import write_text_atomic

        write_text_atomic(args.out, text + "\n")


if __name__ == "__main__":
    main()
