"""Classification data: CIFAR arrays or an ImageFolder tree, torchvision.transforms.v2 augmentation,
MixUp / CutMix with soft targets, and the loaders the task hands to the engine.

Layouts ``--data`` accepts:

* CIFAR-10 / CIFAR-100 python format (a folder, its parent, or the .tar.gz; :mod:`yololab.classify.cifar`),
  which includes what ``yololab classify synth`` writes;
* an ImageFolder tree ``root/train/<class>/*.jpg`` and ``root/val/<class>/*.jpg`` (``test`` is accepted for
  ``val``); the class names are the training sub-folders, sorted.

Images are fed as ``channels`` planes (3: RGB; 1: gray). An image of another channel count, or one that
cannot be decoded, is skipped with a warning naming it (ImageFolder images are decoded when used, so the
warning comes from the loader); alpha is dropped and palette images are expanded, which loses nothing.

Every sample is ``(image float tensor (C, S, S), label, index)``: the index lets validation find the
sample's box (pointing game) and picture (galleries).
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, default_collate
from torchvision import tv_tensors
from torchvision.transforms import v2

from yololab.classify.cifar import Split, is_cifar, read_cifar
from yololab.errors import DataError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
ONE_CHANNEL_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "F"}


def load_image(path: str | Path, channels: int = 3) -> np.ndarray:
    """(H, W, channels) uint8, EXIF orientation applied; DataError if it has another channel count."""
    from PIL import ImageOps

    from yololab.data.io import pil_open

    path = Path(path)
    try:
        with pil_open(path) as im:
            native = 1 if im.mode in ONE_CHANNEL_MODES else 3
            if native != channels:
                raise DataError(f"{path}: a {native}-channel ({im.mode}) image, but the model takes "
                                f"{channels}-channel images")
            im = ImageOps.exif_transpose(im)
            if im.mode.startswith("I") or im.mode == "F":  # 16/32-bit gray: scale to 8 bits
                a = np.asarray(im, dtype=np.float32)
                return np.clip(a / max(float(a.max()), 1.0) * 255, 0, 255).astype(np.uint8)[..., None]
            arr = np.array(im.convert("L" if channels == 1 else "RGB"))
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{path}: image file not found") from None
    except Exception as e:  # PIL raises many kinds on damaged files
        raise DataError(f"{path}: cannot decode image ({type(e).__name__}: {e})") from None
    return arr[..., None] if arr.ndim == 2 else arr


def warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr)


# ------------------------------------------------------------------------------------------------
# Datasets
# ------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def seeded(key: tuple[int, ...] | None):
    """Run the block with torch's global RNG seeded from ``key`` (then put back); nothing when ``key`` is None.

    The v2 transforms draw from the global RNG; seeding it per sample from (seed, epoch, index) makes
    the augmentation of an epoch a pure function of those, whatever the worker count, so a resumed
    epoch sees the very same pixels.
    """
    if key is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(np.random.SeedSequence(list(key)).generate_state(1)[0]))
        yield


class _ClassDataset(Dataset):
    """``(transformed image, label, index)`` items; ``seed`` = (run seed, epoch) makes augmentation repeatable."""

    split: Split | FolderSplit
    seed: tuple[int, int] | None = None

    def __len__(self) -> int:
        return len(self.split)

    def raw(self, i: int) -> np.ndarray | None:
        raise NotImplementedError

    def __getitem__(self, i: int):
        img = self.raw(i)
        if img is None:
            return None
        with seeded(None if self.seed is None else (*self.seed, i)):
            x = self.transform(as_tensor(img))
        return x, int(self.split.labels[i]), i


class ArrayDataset(_ClassDataset):
    """Images held in memory (CIFAR): (N, H, W, C) uint8."""

    def __init__(self, split: Split, transform):
        self.split, self.transform = split, transform

    def raw(self, i: int) -> np.ndarray:
        return self.split.images[i]


@dataclass
class FolderSplit:
    paths: list[Path]
    labels: np.ndarray
    names: list[str]
    source: str = ""
    boxes: None = None

    def __len__(self) -> int:
        return len(self.paths)


class FolderDataset(_ClassDataset):
    """An ImageFolder split, decoded on use; a file that fails is skipped (``None``) with one warning."""

    def __init__(self, split: FolderSplit, transform, channels: int):
        self.split, self.transform, self.channels = split, transform, channels
        self.bad: set[int] = set()

    def raw(self, i: int) -> np.ndarray | None:
        try:
            return load_image(self.split.paths[i], self.channels)
        except DataError as e:
            if i not in self.bad:
                self.bad.add(i)
                warn(f"{e}; skipped")
            return None


def read_folder(root: Path, split: str, names: list[str] | None = None) -> FolderSplit:
    """``root/<split>/<class>/*``; with ``names`` (the training classes) a val class must be one of them."""
    folder = root / split
    if split == "val" and not folder.is_dir() and (root / "test").is_dir():
        folder = root / "test"
    if not folder.is_dir():
        raise DataError(f"{root}: no {split}/ folder (expected an ImageFolder tree root/{split}/<class>/*.jpg "
                        f"or CIFAR python-format data)")
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if not classes:
        raise DataError(f"{folder}: no class sub-folders")
    if names is None:
        names = classes
    unknown = [c for c in classes if c not in names]
    if unknown:
        raise DataError(f"{folder}: class folder(s) {', '.join(unknown)} not among the training classes")
    paths, labels = [], []
    for c in classes:
        files = sorted(p for p in (folder / c).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        paths += files
        labels += [names.index(c)] * len(files)
    if not paths:
        raise DataError(f"{folder}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return FolderSplit(paths, np.array(labels, np.int64), names, str(folder))


def skip_none_collate(samples):
    """default_collate over the samples that loaded (a skipped file yields None)."""
    samples = [s for s in samples if s is not None]
    if not samples:
        return None
    return default_collate(samples)


class MixCollate:
    """Collate, then with probability ``prob`` apply MixUp or CutMix (one of them at random when both are on).

    Mixed batches carry soft targets (B, num_classes); others keep class indices (B,). Both are what
    ``F.cross_entropy`` takes.
    """

    def __init__(self, num_classes: int, mixup: float = 0.0, cutmix: float = 0.0, prob: float = 1.0,
                 seed: tuple[int, int] | None = None):
        mixers = ([v2.MixUp(alpha=mixup, num_classes=num_classes)] if mixup > 0 else []) + \
                 ([v2.CutMix(alpha=cutmix, num_classes=num_classes)] if cutmix > 0 else [])
        self.mix = v2.RandomChoice(mixers) if len(mixers) > 1 else (mixers[0] if mixers else None)
        self.prob, self.seed = prob, seed

    def __call__(self, samples):
        batch = skip_none_collate(samples)
        if batch is None or self.mix is None:
            return batch
        images, labels, index = batch
        # seeded by (seed, epoch, first index) like the samples: repeatable whatever the workers
        with seeded(None if self.seed is None else (*self.seed, int(index[0]), len(index))):
            if float(torch.rand(())) < self.prob:
                images, labels = self.mix(images, labels)
        return images, labels, index


# ------------------------------------------------------------------------------------------------
# Transforms (torchvision.transforms.v2)
# ------------------------------------------------------------------------------------------------


@dataclass
class AugmentConfig:
    pad: int = 4                 # random crop with this much padding on each side (reflect); 0 = off
    fliplr: float = 0.5          # horizontal flip probability
    auto_augment: str = "none"   # none | randaugment | trivialaugment
    mixup: float = 0.0           # MixUp Beta(alpha, alpha); 0 = off
    cutmix: float = 0.0          # CutMix Beta(alpha, alpha); 0 = off
    mix_prob: float = 1.0        # share of batches that get MixUp or CutMix when either is on


def fit_size(imgsz: int) -> v2.Compose:
    """Shorter side to ``imgsz``, then the centre ``imgsz`` x ``imgsz`` square (uint8 stays uint8)."""
    return v2.Compose([v2.Resize(imgsz, antialias=True), v2.CenterCrop(imgsz)])


def as_tensor(img: np.ndarray) -> tv_tensors.Image:
    """(H, W, C) uint8 array -> (C, H, W) image tensor sharing its memory."""
    return tv_tensors.Image(torch.from_numpy(img).permute(2, 0, 1))


def build_transform(train: bool, imgsz: int, mean: list[float], std: list[float], aug: AugmentConfig,
                    resize: bool):
    """uint8 image -> float tensor: [resize + centre crop] [random crop with padding, flip, auto-augment],
    then scale to [0, 1] and normalize."""
    t: list = [fit_size(imgsz)] if resize else []
    if train:
        if aug.pad > 0:
            t.append(v2.RandomCrop(imgsz, padding=aug.pad, padding_mode="reflect"))
        if aug.fliplr > 0:
            t.append(v2.RandomHorizontalFlip(aug.fliplr))
        if aug.auto_augment == "randaugment":
            t.append(v2.RandAugment())
        elif aug.auto_augment == "trivialaugment":
            t.append(v2.TrivialAugmentWide())
        elif aug.auto_augment != "none":
            raise DataError(f"auto_augment must be none, randaugment or trivialaugment, got {aug.auto_augment!r}")
    t += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)]
    return v2.Compose(t)


# ------------------------------------------------------------------------------------------------
# The data of one run
# ------------------------------------------------------------------------------------------------


@dataclass
class ClassifyData:
    """Both splits of ``--data``, their class names and the normalization computed on the training split."""

    train: Split | FolderSplit
    val: Split | FolderSplit
    imgsz: int
    channels: int
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return self.train.names

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def dataset(self, split: str, aug: AugmentConfig | None = None) -> ArrayDataset | FolderDataset:
        data = self.train if split == "train" else self.val
        arrays = isinstance(data, Split)
        resize = not arrays or data.images.shape[1] != self.imgsz or data.images.shape[2] != self.imgsz
        transform = build_transform(split == "train", self.imgsz, self.mean, self.std, aug or AugmentConfig(),
                                    resize)
        return ArrayDataset(data, transform) if arrays else FolderDataset(data, transform, self.channels)


def channel_stats(images: list[np.ndarray] | np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation in [0, 1] units."""
    s, s2, n = 0.0, 0.0, 0
    for img in images:
        x = np.asarray(img, np.float64).reshape(-1, img.shape[-1]) / 255
        s, s2, n = s + x.sum(0), s2 + (x * x).sum(0), n + len(x)
    mean = s / n
    std = np.sqrt(np.maximum(s2 / n - mean * mean, 1e-12))
    return [round(float(v), 6) for v in mean], [round(float(v), 6) for v in std]


def load_data(path: str | Path, imgsz: int | None = None, channels: int = 3, stats_images: int = 512,
              names: list[str] | None = None, val_only: bool = False) -> ClassifyData:
    """Read ``--data`` (CIFAR or ImageFolder). ``imgsz`` None: the CIFAR side, or 32 for folders.

    ``val_only`` (evaluating a checkpoint) reads the validation split alone, and ``names`` (the
    checkpoint's classes) give the class order of an ImageFolder; the normalization is then computed on
    the validation images, and a caller with the training statistics replaces it.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: data not found (a CIFAR python-format folder or .tar.gz, or an ImageFolder root)")
    if is_cifar(path):
        if channels != 3:
            raise DataError(f"{path}: CIFAR images have 3 channels, got --channels {channels}")
        val = read_cifar(path, "val")
        train = val if val_only else read_cifar(path, "train")
        if train.names != val.names:
            raise DataError(f"{path}: train and test batches name different classes")
        imgsz = imgsz or train.images.shape[1]
        mean, std = channel_stats(train.images[:20000])
    else:
        train = None if val_only else read_folder(path, "train", names)
        val = read_folder(path, "val", names or train.names)
        train = train or val
        imgsz = imgsz or 32
        sample = []
        ds = FolderDataset(train, None, channels)
        for i in np.linspace(0, len(train) - 1, min(stats_images, len(train))).astype(int):
            arr = ds.raw(int(i))
            if arr is not None:
                sample.append(arr)
        if not sample:
            raise DataError(f"{train.source}: none of the sampled images could be read")
        mean, std = channel_stats(sample)
    return ClassifyData(train, val, imgsz, channels, mean, std)


def make_loader(dataset: Dataset, batch: int, shuffle: bool, seed: int = 0, epoch: int = 0, workers: int = 0,
                collate=skip_none_collate, rank: int = 0, world: int = 1, drop_last: bool = False) -> DataLoader:
    """A loader over this rank's share of ``dataset``, shuffled by (seed, epoch) so a resumed epoch sees the
    same order; a worker draws its augmentation from a seed the same generator gives."""
    n = len(dataset)
    if shuffle:
        g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        order = torch.randperm(n, generator=g).tolist()
    else:
        order = list(range(n))
    share = order[rank::world]
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch + 7)
    return DataLoader(dataset, batch_size=batch, sampler=share, num_workers=workers, collate_fn=collate,
                      generator=g, drop_last=drop_last, persistent_workers=False,
                      pin_memory=False)
