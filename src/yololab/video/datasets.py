"""Video datasets: where the videos are (sample lists) and how a clip is cut from one (the dataset).

Sample lists, each a :class:`VideoList` of ``(path, label)`` and class names:

- **UCF-101** (:func:`read_ucf101`): ``root/<Class>/v_<Class>_gXX_cYY.avi``, and ``classInd.txt``,
  ``trainlist0N.txt``, ``testlist0N.txt`` (splits 1-3) in ``root``, ``root/ucfTrainTestlist`` or
  beside ``root``.
- **class folders** (:func:`read_folders`): ``root/<class>/*.{avi,mp4,mkv,webm,...}`` with a seeded,
  stratified train/val split.
- **frame folders**: in both layouts above a video may be a folder of extracted frames instead
  (``root/<Class>/v_x/00001.jpg ...``, what ``yololab video extract-frames`` writes).
- **Kinetics-style CSV** (:func:`read_csv`): ``label,youtube_id,time_start,time_end[,split]`` rows
  (files ``root/<label>/<youtube_id>_<start:06d>_<end:06d>.mp4``) or ``path,label`` rows.

A split file line that names a missing video or a class not in ``classInd.txt`` is reported by file
and line, and left out. A video that cannot be decoded (corrupt, truncated, no frame, unreadable
container) is reported by name when a clip is first taken from it, and its sample is skipped:
training goes on (:func:`collate_clips` drops it from the batch).
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from yololab.errors import DataError
from yololab.video.decode import FRAME_EXTENSIONS, VIDEO_EXTENSIONS, open_video
from yololab.video.sampling import crop_boxes, sample_indices

_WARNED: set[str] = set()
MAX_LIST_WARNINGS = 10  # per split file: the rest are counted in one line


def warn(msg: str, key: str | None = None) -> None:
    """Print ``warning: msg`` to stderr, once per ``key`` (default: the message) in this process."""
    key = key or msg
    if key not in _WARNED:
        _WARNED.add(key)
        print(f"warning: {msg}", file=sys.stderr)


@dataclass
class VideoList:
    samples: list[tuple[Path, int]]
    classes: list[str]
    source: str = ""  # what the list was read from, for messages and reports


def _is_frame_folder(p: Path) -> bool:
    return p.is_dir() and any(q.suffix.lower() in FRAME_EXTENSIONS for q in p.iterdir())


def _resolve(root: Path, rel: str) -> Path | None:
    """The video ``root/rel``, or the frame folder of the same name without extension."""
    p = root / rel
    if p.is_file():
        return p
    folder = p.with_suffix("")
    return folder if _is_frame_folder(folder) else None


def _warn_lines(source: Path, problems: list[str]) -> None:
    for msg in problems[:MAX_LIST_WARNINGS]:
        warn(f"{source}: {msg}; skipped")
    if len(problems) > MAX_LIST_WARNINGS:
        warn(f"{source}: {len(problems) - MAX_LIST_WARNINGS} more lines skipped for the same reasons")


# ------------------------------------------------------------------------------------ UCF-101
def find_ucf_annotations(root: Path) -> Path | None:
    for d in (root, root / "ucfTrainTestlist", root.parent / "ucfTrainTestlist"):
        if (d / "classInd.txt").is_file():
            return d
    return None


def read_ucf101(root: str | Path, train: bool, fold: int = 1, annotations: str | Path | None = None) -> VideoList:
    """The train or test list of UCF-101 split ``fold`` (1-3)."""
    root = Path(root)
    if fold not in (1, 2, 3):
        raise DataError(f"UCF-101 split must be 1, 2 or 3, got {fold}")
    ann = Path(annotations) if annotations else find_ucf_annotations(root)
    if ann is None or not (ann / "classInd.txt").is_file():
        raise DataError(f"{root}: no classInd.txt in the folder, its ucfTrainTestlist/ or ../ucfTrainTestlist/")
    classes: dict[str, int] = {}
    for n, line in enumerate((ann / "classInd.txt").read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise DataError(f"{ann / 'classInd.txt'}:{n}: expected '<index> <ClassName>', got {line!r}")
        classes[parts[1]] = int(parts[0]) - 1
    names = [c for c, _ in sorted(classes.items(), key=lambda kv: kv[1])]
    if sorted(classes.values()) != list(range(len(names))):
        raise DataError(f"{ann / 'classInd.txt'}: class indices must run 1..{len(names)} without gaps")
    split_file = ann / f"{'train' if train else 'test'}list0{fold}.txt"
    if not split_file.is_file():
        raise DataError(f"{split_file}: split file not found")
    samples, problems = [], []
    for n, line in enumerate(split_file.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        rel = line.split()[0].replace("\\", "/")
        cls = rel.split("/")[0] if "/" in rel else None
        if cls not in classes:
            problems.append(f"line {n}: class {cls!r} of {rel} is not in classInd.txt")
            continue
        path = _resolve(root, rel)
        if path is None:
            problems.append(f"line {n}: names missing video {root / rel}")
            continue
        samples.append((path, classes[cls]))
    _warn_lines(split_file, problems)
    return VideoList(samples, names, str(split_file))


# ------------------------------------------------------------------------------ class folders
def _videos_in(folder: Path) -> list[Path]:
    out = []
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS:
            out.append(p)
        elif _is_frame_folder(p):
            out.append(p)
    return out


def read_folders(root: str | Path, train: bool, val_fraction: float = 0.2, seed: int = 0) -> VideoList:
    """``root/<class>/<videos or frame folders>``, split per class (stratified) by a seeded shuffle."""
    root = Path(root)
    if not 0 <= val_fraction < 1:
        raise DataError(f"val fraction must lie in [0, 1), got {val_fraction}")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) \
        if root.is_dir() else []
    if not classes:
        raise DataError(f"{root}: expected class folders holding videos (root/<class>/*.mp4)")
    samples = []
    for k, cls in enumerate(classes):
        videos = _videos_in(root / cls)
        if not videos:
            warn(f"{root / cls}: no video ({', '.join(VIDEO_EXTENSIONS)}) or frame folder in this class folder")
            continue
        order = np.random.default_rng([seed, k]).permutation(len(videos))
        n_val = round(len(videos) * val_fraction) if len(videos) > 1 else 0
        n_val = max(n_val, 1) if val_fraction > 0 and len(videos) > 1 else n_val
        chosen = order[n_val:] if train else order[:n_val]
        samples += [(videos[i], k) for i in sorted(chosen)]
    return VideoList(samples, classes, str(root))


# -------------------------------------------------------------------------------- CSV lists
def read_csv(path: str | Path, root: str | Path | None = None, split: str | None = None,
             classes: list[str] | None = None) -> VideoList:
    """A Kinetics-style CSV (``label,youtube_id,time_start,time_end[,split]``) or ``path,label`` rows.

    ``split`` keeps the rows whose ``split`` column equals it; ``classes`` fixes the class list (give
    the training list's for a validation CSV), else it is the sorted labels of the file.
    """
    path = Path(path)
    root = Path(root) if root else path.parent
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise DataError(f"{path}: empty CSV")
    cols = set(rows[0])
    kinetics = {"label", "youtube_id", "time_start", "time_end"} <= cols
    if not kinetics and not {"path", "label"} <= cols:
        raise DataError(f"{path}: expected columns label,youtube_id,time_start,time_end or path,label; "
                        f"got {','.join(rows[0])}")
    if split is not None and "split" in cols:
        rows = [r for r in rows if r["split"] == split]
    names = classes or sorted({r["label"] for r in rows})
    index = {c: i for i, c in enumerate(names)}
    samples, problems = [], []
    for n, r in enumerate(rows, 2):  # line 1 is the header
        if r["label"] not in index:
            problems.append(f"line {n}: class {r['label']!r} is not among the training classes")
            continue
        if kinetics:
            rel = f"{r['label']}/{r['youtube_id']}_{int(float(r['time_start'])):06d}_{int(float(r['time_end'])):06d}.mp4"
        else:
            rel = r["path"]
        video = _resolve(root, rel)
        if video is None:
            problems.append(f"line {n}: names missing video {root / rel}")
            continue
        samples.append((video, index[r["label"]]))
    _warn_lines(path, problems)
    return VideoList(samples, names, str(path))


def read_video_list(data: str | Path, train: bool, fold: int = 1, val_fraction: float = 0.2, seed: int = 0,
                    val_data: str | Path | None = None, classes: list[str] | None = None) -> VideoList:
    """Any of the layouts above, recognised from ``data``: a CSV file, a UCF-101 folder or class folders."""
    data = Path(data)
    if not data.exists():
        raise DataError(f"{data}: dataset not found")
    if data.suffix.lower() == ".csv":
        if not train and val_data:
            return read_csv(val_data, data.parent, classes=classes)
        return read_csv(data, split=None if val_data else ("train" if train else "val"), classes=classes)
    if find_ucf_annotations(data):
        return read_ucf101(data, train, fold)
    return read_folders(data, train, val_fraction, seed)


# ------------------------------------------------------------------------------------ clips
@dataclass
class ClipConfig:
    """How clips are cut: ``clip_len`` frames by ``sampling``; frames resized (short side) and cropped."""

    clip_len: int = 8
    sampling: str = "segment"
    stride: int = 2          # frame step for dense sampling
    short: str = "loop"      # videos shorter than a clip: loop or pad
    short_side: int = 72     # frames are resized to this shorter side, then cropped
    size: int = 64           # square crop side
    layout: str = "TCHW"     # or CTHW (3D CNNs)
    hflip: float = 0.0       # training flip probability: keep 0 when direction is the class (left vs right)
    backend: str = "auto"


class VideoClipDataset(torch.utils.data.Dataset):
    """Clips of the videos of a :class:`VideoList`, as uint8 tensors (normalized later, on the device).

    Training (``train=True``): one random clip and random crop per item, ``(T, C, H, W)`` or
    ``(C, T, H, W)``. Testing: ``num_clips * num_crops`` views per item, stacked in a leading dimension,
    for multi-clip / multi-crop averaging. Item = ``(clip, label, index)``, or None for a video that
    cannot be decoded (warned once). Random choices are seeded by ``(seed, epoch, index)``, so they do
    not depend on the number of loader workers. Nothing is cached: memory stays bounded.
    """

    def __init__(self, videos: VideoList, cfg: ClipConfig, train: bool, num_clips: int = 1, num_crops: int = 1,
                 seed: int = 0):
        if cfg.layout not in ("TCHW", "CTHW"):
            raise ValueError(f"layout must be TCHW or CTHW, got {cfg.layout!r}")
        self.videos, self.cfg, self.train = videos, cfg, train
        self.num_clips, self.num_crops, self.seed, self.epoch = num_clips, num_crops, seed, 0

    @property
    def classes(self) -> list[str]:
        return self.videos.classes

    @property
    def labels(self) -> list[int]:
        return [label for _, label in self.videos.samples]

    def __len__(self) -> int:
        return len(self.videos.samples)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def load_views(self, index: int) -> np.ndarray:
        """uint8 ``(views, T, H, W, 3)``: the clips and crops of video ``index``; raises DataError."""
        path, _ = self.videos.samples[index]
        cfg = self.cfg
        rng = np.random.default_rng([self.seed, self.epoch, index]) if self.train else None
        with open_video(path, cfg.backend) as reader:
            n_clips = 1 if self.train else self.num_clips
            clips = [sample_indices(reader.num_frames, cfg.clip_len, cfg.sampling, cfg.stride, rng, c, n_clips,
                                    cfg.short) for c in range(n_clips)]
            frames = reader.read(np.concatenate(clips), cfg.short_side)
        frames = frames.reshape(n_clips, cfg.clip_len, *frames.shape[1:])
        h, w = frames.shape[2:4]
        views = []
        for clip in frames:
            for y, x in crop_boxes(h, w, cfg.size, 1 if self.train else self.num_crops, rng):
                v = clip[:, y:y + cfg.size, x:x + cfg.size]
                if rng is not None and cfg.hflip > 0 and rng.random() < cfg.hflip:
                    v = v[:, :, ::-1]
                views.append(v)
        return np.stack(views)

    def to_tensor(self, views: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(views)).permute(0, 1, 4, 2, 3)  # (V, T, C, H, W)
        if self.cfg.layout == "CTHW":
            t = t.transpose(1, 2)
        return t.contiguous()

    def __getitem__(self, index: int):
        path, label = self.videos.samples[index]
        try:
            views = self.load_views(index)
        except (DataError, ValueError) as e:
            warn(f"{e}; sample skipped" if str(path) in str(e) else f"{path}: {e}; sample skipped", key=str(path))
            return None
        t = self.to_tensor(views)
        return (t[0] if self.train else t), label, index


def collate_clips(batch: list):
    """Stack ``(clip, label, index)`` items, leaving out the None of videos that could not be read."""
    batch = [b for b in batch if b is not None]
    if not batch:
        return None
    clips, labels, index = zip(*batch)
    return torch.stack(clips), torch.tensor(labels), torch.tensor(index)


class SkipEmpty:
    """A DataLoader whose all-bad batches (None) are passed over; keeps ``len`` for schedules and bars."""

    def __init__(self, loader):
        self.loader = loader

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator:
        return (b for b in self.loader if b is not None)
