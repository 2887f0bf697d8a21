"""Training data loader throughput: yololab's DetectionDataset vs Ultralytics' YOLODataset.

Both load the same images with the same hyperparameters (Ultralytics defaults: mosaic 1.0, scale 0.5,
translate 0.1, HSV, fliplr, Albumentations extras), augment=True, the same image size, batch size and
worker count, no RAM cache. The two loaders are measured in the same run, interleaved round by round,
each round one full pass ("epoch") over the images; the first ``--warmup`` batches of every pass are
not timed: they hold worker start-up and the batches that the (persistent) workers of each loader
prefetched after its previous pass. Before each pass the benchmark waits until the other loader's
workers are idle, so that they never run during a timed pass. Images/s = timed images / timed
seconds; the table gives the median over rounds, and the speed-up is the median of the per-round
ratios (the two passes of a round run back to back, under about the same load). CPU ms/img is the
CPU time of the main process and all workers over the timed part of a pass, per image (median over
rounds): it depends much less on what else runs on the machine than wall-clock speed does. The
machine is shared with other work: look at the spread of the rounds too.

Datasets:
* ``shapes``: ``--synth-n`` images of the built-in shapes set at the training size (generated into a
  temporary folder);
* ``coco8``: the 8 coco8 photographs of ../shared/data, each copied ``--coco-repeat`` times under new
  names into a temporary folder (the shared copy is never touched), so a pass is long enough to time;
* ``large`` (not in the default list): the same photographs enlarged to 4032 px on the long side (a
  phone photo's size), JPEG quality 90, each listed ``--large-repeat`` times: there decoding dominates.

Usage: ``.venv/bin/python benchmarks/dataloader.py [--imgsz 640 --batch 16 --workers 2 --rounds 3]``
Prints a markdown table (and writes it to ``--out`` when given).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COCO8 = (ROOT / ".." / "shared" / "data" / "coco8").resolve()


def make_shapes(tmp: Path, n: int, imgsz: int) -> Path:
    from yololab.data.synthetic import synth_shapes

    return synth_shapes(tmp / "shapes", train=n, val=4, imgsz=imgsz, seed=0, workers=os.cpu_count(), progress=False)


def make_coco8(tmp: Path, repeat: int) -> Path:
    """Copy coco8 (never touch the shared copy: Ultralytics writes a label cache beside the labels)
    and write a data.yaml whose train list names every image ``repeat`` times."""
    root = tmp / "coco8"
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
    for img in sorted((COCO8 / "images").rglob("*.jpg")):
        label = COCO8 / "labels" / img.parent.name / f"{img.stem}.txt"
        for r in range(repeat):  # distinct files with the same content
            split = "val" if r == 0 and img.parent.name == "val" else "train"
            shutil.copyfile(img, root / "images" / split / f"{img.stem}_{r}.jpg")
            if label.is_file():
                shutil.copyfile(label, root / "labels" / split / f"{img.stem}_{r}.txt")
    names = (COCO8 / "coco8.yaml").read_text().split("names:", 1)[1]
    (root / "bench.yaml").write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames:{names}")
    return root / "bench.yaml"


def make_large(tmp: Path, repeat: int, side: int = 4032) -> Path:
    """Like make_coco8, but each photograph is first enlarged to ``side`` pixels on its long side (as a
    12-megapixel phone photo) and saved as a JPEG (quality 90): the case where decoding dominates."""
    import cv2

    root = tmp / "large"
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
    for img_path in sorted((COCO8 / "images").rglob("*.jpg")):
        img = cv2.imread(str(img_path))
        r = side / max(img.shape[:2])
        big = cv2.resize(img, (round(img.shape[1] * r), round(img.shape[0] * r)), interpolation=cv2.INTER_CUBIC)
        first = root / "images" / "train" / f"{img_path.stem}_0.jpg"
        cv2.imwrite(str(first), big, [cv2.IMWRITE_JPEG_QUALITY, 90])
        label = COCO8 / "labels" / img_path.parent.name / f"{img_path.stem}.txt"
        for r in range(repeat):
            if r:
                shutil.copyfile(first, root / "images" / "train" / f"{img_path.stem}_{r}.jpg")
            if label.is_file():
                shutil.copyfile(label, root / "labels" / "train" / f"{img_path.stem}_{r}.txt")
    shutil.copyfile(first, root / "images" / "val" / first.name)
    names = (COCO8 / "coco8.yaml").read_text().split("names:", 1)[1]
    (root / "bench.yaml").write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames:{names}")
    return root / "bench.yaml"


def ours_loader(yaml_path: Path, args, cache_dir: Path):
    from yololab.data.dataset import DetectionDataset, build_dataloader

    ds = DetectionDataset(yaml_path, "train", imgsz=args.imgsz, augment=True, batch_size=args.batch,
                          cache_dir=cache_dir, verbose=False)
    loader = build_dataloader(ds, batch_size=args.batch, workers=args.workers, shuffle=True, seed=0)
    epoch = [0]

    def one_pass():
        ds.set_epoch(epoch[0])
        epoch[0] += 1
        return iter(loader)
    return one_pass, len(ds)


def ultralytics_loader(yaml_path: Path, args):
    os.environ.setdefault("YOLO_VERBOSE", "False")
    from ultralytics.cfg import get_cfg
    from ultralytics.data.build import build_dataloader, build_yolo_dataset
    from ultralytics.data.utils import check_det_dataset

    cfg = get_cfg(overrides={"imgsz": args.imgsz, "mosaic": 1.0, "plots": False, "cache": False,
                             "batch": args.batch, "workers": args.workers})
    data = check_det_dataset(str(yaml_path))
    ds = build_yolo_dataset(cfg, data["train"], args.batch, data, mode="train", rect=False, stride=32)
    loader = build_dataloader(ds, args.batch, args.workers, shuffle=True, rank=-1, pin_memory=False, device="cpu")
    return (lambda: iter(loader)), len(ds)


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and all its children (the loader workers) so far."""
    import psutil

    me = psutil.Process()
    total = sum(me.cpu_times()[:2])
    for p in me.children(recursive=True):
        try:
            total += sum(p.cpu_times()[:2])
        except psutil.Error:
            pass
    return total


def time_pass(one_pass, warmup: int) -> tuple[float, int, float]:
    """Seconds, images and CPU seconds (all processes) of one pass, not counting its first
    ``warmup`` batches."""
    n, t0, c0 = 0, time.perf_counter(), cpu_seconds()
    for k, batch in enumerate(one_pass()):
        if k < warmup:
            # the clocks start when the last warm-up batch has arrived
            t0, c0 = time.perf_counter(), cpu_seconds()
            continue
        n += batch["img"].shape[0]
    return time.perf_counter() - t0, n, cpu_seconds() - c0


def settle(timeout: float = 15.0) -> None:
    """Wait until this process's children (loader workers) stop using CPU. Ultralytics' workers are
    persistent and prefetch the next batches after a pass; without this they would run during the
    other loader's timed pass (and its prefetched batches are then part of its own untimed warm-up)."""
    import psutil

    me, last, t0 = psutil.Process(), -1.0, time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        cpu = 0.0
        for p in me.children(recursive=True):
            try:
                cpu += sum(p.cpu_times()[:2])
            except psutil.Error:
                pass
        if abs(cpu - last) < 0.01:
            return
        last = cpu
        time.sleep(0.3)


def machine() -> str:
    import torch

    cpu = platform.processor() or "?"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        cpu = next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs, torch {torch.__version__}, Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--imgsz", type=int, default=640, help="training image size")
    p.add_argument("--batch", type=int, default=16, help="batch size")
    p.add_argument("--workers", type=int, default=2, help="DataLoader worker processes (both loaders)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (one pass of each loader per round)")
    p.add_argument("--warmup", type=int, default=5,
                   help="untimed batches at the start of every pass (>= workers x 2 + 1 drains the batches a "
                        "persistent loader prefetched while the other loader ran)")
    p.add_argument("--synth-n", type=int, default=384, help="images in the shapes set")
    p.add_argument("--coco-repeat", type=int, default=40, help="times each coco8 image is listed (8 images)")
    p.add_argument("--large-repeat", type=int, default=32,
                   help="times each enlarged (4032 px) coco8 photograph is listed in the 'large' set")
    p.add_argument("--datasets", default="shapes,coco8", help="comma-separated: shapes, coco8, large")
    p.add_argument("--out", default=None, help="also write the markdown table to this file")
    args = p.parse_args(argv)

    import cv2

    rows = []
    with tempfile.TemporaryDirectory(prefix="yololab-bench-") as tmp:
        tmp = Path(tmp)
        sets = {}
        for name in args.datasets.split(","):
            if name == "shapes":
                sets[name] = make_shapes(tmp, args.synth_n, args.imgsz)
            elif name == "coco8":
                sets[name] = make_coco8(tmp, args.coco_repeat)
            elif name == "large":
                sets[name] = make_large(tmp, args.large_repeat)
            else:
                p.error(f"unknown dataset {name!r}")
        for name, yaml_path in sets.items():
            loaders = {"yololab": ours_loader(yaml_path, args, tmp / "cache"),
                       "ultralytics": ultralytics_loader(yaml_path, args)}
            timed = loaders["yololab"][1] // args.batch - args.warmup
            if timed < 10:  # a few batches are prefetched before the clock starts: too short to mean much
                p.error(f"{name}: only {timed} timed batches per pass; use more images or a smaller --batch")
            cv2.setNumThreads(1)  # Ultralytics sets 0 on import; give both the same setting
            speeds = {k: [] for k in loaders}
            cpu_ms = {k: [] for k in loaders}
            for r in range(args.rounds):
                order = list(loaders) if r % 2 == 0 else list(loaders)[::-1]  # alternate who goes first
                for k in order:
                    settle()
                    dt, n, cpu = time_pass(loaders[k][0], args.warmup)
                    speeds[k].append(n / dt)
                    cpu_ms[k].append(1000 * cpu / n)
                    print(f"[{name}] round {r + 1}/{args.rounds} {k:12s} {n / dt:7.1f} img/s ({n} images, "
                          f"{dt:.2f} s)", file=sys.stderr)
            ours, ref = statistics.median(speeds["yololab"]), statistics.median(speeds["ultralytics"])
            # the two passes of a round ran back to back under about the same load: their ratio is the
            # steadier figure on a shared machine
            paired = statistics.median(a / b for a, b in zip(speeds["yololab"], speeds["ultralytics"]))
            rows.append((name, loaders["yololab"][1], ours, ref, paired, statistics.median(cpu_ms["yololab"]),
                         statistics.median(cpu_ms["ultralytics"]), speeds["yololab"], speeds["ultralytics"]))

    table = [f"Machine: {machine()}. Image size {args.imgsz}, batch {args.batch}, {args.workers} workers, "
             f"{args.rounds} interleaved rounds (median), {args.warmup} warm-up batches per pass.", "",
             "| dataset | images / pass | yololab img/s | Ultralytics img/s | speed-up (median of per-round "
             "ratios) | yololab CPU ms/img | Ultralytics CPU ms/img | yololab rounds img/s | "
             "Ultralytics rounds img/s |",
             "|---|---:|---:|---:|---:|---:|---:|---|---|"]
    for name, n, ours, ref, ratio, cpu_ours, cpu_ref, so, sr in rows:
        table.append(f"| {name} | {n} | {ours:.1f} | {ref:.1f} | {ratio:.2f}x | {cpu_ours:.2f} | {cpu_ref:.2f} | "
                     f"{', '.join(f'{v:.0f}' for v in so)} | {', '.join(f'{v:.0f}' for v in sr)} |")
    text = "\n".join(table)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
