"""CIFAR-10 / CIFAR-100 in their official python format: read (folder or .tar.gz), write, download.

The format (https://www.cs.toronto.edu/~kriz/cifar.html): pickled dicts, one per batch file, with
``data`` (N x 3072 uint8: 1024 red, then green, then blue values of a 32x32 image, row-major) and the
labels (``labels`` in CIFAR-10, ``fine_labels`` / ``coarse_labels`` in CIFAR-100).

==========  ================================  =============  ==============================
dataset     folder                            train          val (the official test set)
==========  ================================  =============  ==============================
CIFAR-10    ``cifar-10-batches-py``           data_batch_1-5 test_batch; names in batches.meta
CIFAR-100   ``cifar-100-python``              train          test; names in meta (fine)
==========  ================================  =============  ==============================

``yololab classify synth`` writes the CIFAR-10 layout with two extra keys the readers of the official
files ignore: ``boxes`` (each object's box, for the pointing game) and, in batches.meta,
``num_train_batches``. Images of another side than 32 are allowed (the side is read from the row
length).

Batch files are pickles, and unpickling can run code: the reader allows only the few globals a
numpy array needs, so a file that asks for anything else is rejected as corrupt, not executed.
A missing or corrupt batch file is skipped with a warning naming it; a split with no readable batch
at all is an error.
"""

from __future__ import annotations

import io
import math
import pickle
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from yololab.data.download import RemoteFile, fetch_and_unpack
from yololab.errors import DataError

FOLDERS = {"cifar-10-batches-py": "cifar10", "cifar-100-python": "cifar100"}
ARCHIVES = {"cifar-10-python.tar.gz": "cifar-10-batches-py", "cifar-100-python.tar.gz": "cifar-100-python"}


@dataclass
class Split:
    """One split held in memory: images (N, H, W, C) uint8 RGB, labels (N,), class names, boxes or None."""

    images: np.ndarray
    labels: np.ndarray
    names: list[str]
    boxes: np.ndarray | None = None  # (N, 4) float32 x1, y1, x2, y2 in pixels, where the data has them
    source: str = ""

    def __len__(self) -> int:
        return len(self.labels)


class _SafeUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, strings, numbers and numpy arrays; refuses every other global."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
               ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR file")
        if module.startswith("numpy.core.") and hasattr(np, "_core"):  # files pickled by numpy 1.x
            module = module.replace("numpy.core.", "numpy._core.", 1)
        return super().find_class(module, name)


def _unpickle(data: bytes) -> dict:
    # the official files were written by Python 2: its str keys and array bytes load as latin-1
    obj = _SafeUnpickler(io.BytesIO(data), encoding="latin1").load()
    if not isinstance(obj, dict):
        raise pickle.UnpicklingError(f"expected a dict, found {type(obj).__name__}")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


class _Source:
    """The files of one CIFAR folder, read from the folder itself or from inside its .tar.gz."""

    def __init__(self, path: Path):
        self.path, self.tar, self.prefix = path, None, ""
        if path.is_file():
            try:
                self.tar = tarfile.open(path, "r:*")
            except (tarfile.TarError, OSError) as e:
                raise DataError(f"{path}: not a readable CIFAR archive ({e})") from None
            names = {m.name for m in self.tar.getmembers() if m.isfile()}
            folders = {n.split("/")[0] for n in names if "/" in n}
            found = [f for f in FOLDERS if f in folders]
            if not found:
                raise DataError(f"{path}: holds neither cifar-10-batches-py/ nor cifar-100-python/")
            self.prefix = found[0] + "/"
            self.kind = FOLDERS[found[0]]
            self.members = {n[len(self.prefix):] for n in names if n.startswith(self.prefix)}
        else:
            self.kind = "cifar100" if (path / "meta").is_file() or (path / "train").is_file() else "cifar10"
            self.members = {p.name for p in path.iterdir() if p.is_file()}

    def name(self, member: str) -> str:
        return f"{self.path}:{self.prefix}{member}" if self.tar else str(self.path / member)

    def read(self, member: str) -> dict | None:
        """The unpickled dict, or None (with a warning naming the file) when missing or corrupt."""
        if member not in self.members:
            _warn(f"{self.name(member)}: file missing; skipped")
            return None
        try:
            if self.tar:
                data = self.tar.extractfile(self.prefix + member).read()
            else:
                data = (self.path / member).read_bytes()
            return _unpickle(data)
        except Exception as e:  # unpickling raises many kinds on damaged data
            _warn(f"{self.name(member)}: corrupt CIFAR batch ({type(e).__name__}: {e}); skipped")
            return None


def _warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr)


def find_cifar(path: str | Path) -> Path:
    """The CIFAR folder or archive at or inside ``path`` (the batches folder, its parent, or the .tar.gz)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: not found (expected a CIFAR python-format folder or its .tar.gz)")
    if path.is_file():
        return path
    if any((path / f).is_file() for f in ("batches.meta", "meta", "data_batch_1", "test_batch", "train", "test")):
        return path
    for sub in (*FOLDERS, *ARCHIVES):
        if (path / sub).exists():
            return path / sub
    raise DataError(f"{path}: no CIFAR data here (expected batches.meta and data_batch_* / test_batch, "
                    f"meta and train / test, a cifar-10-batches-py/ or cifar-100-python/ folder, or the .tar.gz)")


def is_cifar(path: str | Path) -> bool:
    try:
        find_cifar(path)
        return True
    except DataError:
        return False


def _rows_to_images(data: np.ndarray, where: str) -> np.ndarray:
    if data.ndim != 2 or data.shape[1] % 3:
        raise ValueError(f"data has shape {data.shape}, expected (N, 3 * side * side)")
    side = math.isqrt(data.shape[1] // 3)
    if 3 * side * side != data.shape[1]:
        raise ValueError(f"{where}: rows of {data.shape[1]} values are not 3 square colour planes")
    return data.reshape(-1, 3, side, side).transpose(0, 2, 3, 1)


def read_cifar(path: str | Path, split: str = "train") -> Split:
    """Read the ``train`` or ``val`` (the official test set) split of CIFAR-10 or CIFAR-100."""
    if split not in ("train", "val"):
        raise DataError(f"split must be 'train' or 'val', got {split!r}")
    src = _Source(find_cifar(path))
    if src.kind == "cifar100":
        meta, files, label_key, names_key = src.read("meta"), ["train" if split == "train" else "test"], \
            "fine_labels", "fine_label_names"
    else:
        meta = src.read("batches.meta")
        n_train = int((meta or {}).get("num_train_batches", 5))
        files = [f"data_batch_{i}" for i in range(1, n_train + 1)] if split == "train" else ["test_batch"]
        label_key, names_key = "labels", "label_names"
    if meta is None or not isinstance(meta.get(names_key), list):
        raise DataError(f"{src.name('meta' if src.kind == 'cifar100' else 'batches.meta')}: "
                        f"missing or without '{names_key}': the class names are needed")
    names = [str(n) for n in meta[names_key]]
    images, labels, boxes = [], [], []
    for f in files:
        batch = src.read(f)
        if batch is None:
            continue
        try:
            img = _rows_to_images(np.asarray(batch["data"], dtype=np.uint8), src.name(f))
            lab = np.asarray(batch[label_key], dtype=np.int64)
            if len(lab) != len(img):
                raise ValueError(f"{len(img)} images but {len(lab)} labels")
            if len(lab) and (lab.min() < 0 or lab.max() >= len(names)):
                raise ValueError(f"labels outside [0, {len(names)})")
            if images and img.shape[1:] != images[0].shape[1:]:
                raise ValueError(f"images of {img.shape[1]} px, earlier batches have {images[0].shape[1]} px")
            box = np.asarray(batch["boxes"], np.float32).reshape(-1, 4) if "boxes" in batch else None
            if box is not None and len(box) != len(img):
                raise ValueError(f"{len(img)} images but {len(box)} boxes")
        except (KeyError, ValueError, TypeError) as e:
            what = f"no '{e.args[0]}' entry" if isinstance(e, KeyError) else str(e)
            _warn(f"{src.name(f)}: corrupt CIFAR batch ({what}); skipped")
            continue
        images.append(img)
        labels.append(lab)
        boxes.append(box)
    if not images:
        raise DataError(f"{src.path}: no readable {split} batch ({', '.join(files)})")
    has_boxes = all(b is not None for b in boxes)
    return Split(images=np.ascontiguousarray(np.concatenate(images)), labels=np.concatenate(labels), names=names,
                 boxes=np.concatenate(boxes) if has_boxes else None, source=str(src.path))


def write_cifar10(out: Path, train: Split, val: Split, num_train_batches: int = 5) -> None:
    """Write ``train`` and ``val`` in the CIFAR-10 python layout (data_batch_1..k, test_batch, batches.meta)."""
    from yololab.fileio import write_bytes_atomic

    def rows(images: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(images.transpose(0, 3, 1, 2).reshape(len(images), -1))

    def batch(split: Split, idx: np.ndarray, label: str) -> bytes:
        d = {"batch_label": label, "labels": split.labels[idx].tolist(), "data": rows(split.images[idx]),
             "filenames": [f"{i:06d}.png" for i in idx]}
        if split.boxes is not None:
            d["boxes"] = split.boxes[idx].astype(np.float32)
        return pickle.dumps(d, protocol=4)

    k = max(1, min(num_train_batches, len(train)))
    for i, idx in enumerate(np.array_split(np.arange(len(train)), k), 1):
        write_bytes_atomic(out / f"data_batch_{i}", batch(train, idx, f"training batch {i} of {k}"))
    write_bytes_atomic(out / "test_batch", batch(val, np.arange(len(val)), "testing batch 1 of 1"))
    side = train.images.shape[1]
    meta = {"label_names": list(train.names), "num_cases_per_batch": -(-len(train) // k),
            "num_vis": 3 * side * side, "num_train_batches": k}
    write_bytes_atomic(out / "batches.meta", pickle.dumps(meta, protocol=4))


# -----------------------------------------------------------------------------------------------
# Download (the archive, its MD5 as published by the dataset's page and used by torchvision)
# -----------------------------------------------------------------------------------------------


SOURCES = {
    "cifar10": RemoteFile("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                          md5="c58f30108f718f92721af3b95e74349a"),
    "cifar100": RemoteFile("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                           md5="eb9058c3a382ffc7106e4002c42a8d85"),
}


def download_cifar(name: str, out: str | Path, url_base: str | None = None, retries: int = 5,
                   progress: bool = True, backoff: float = 1.0) -> Path:
    """Download (resuming), verify and unpack CIFAR-10 or -100 into ``out``; returns the batches folder.

    ``out/downloads/<archive>`` keeps the archive, ``out/cifar-10-batches-py`` (or ``cifar-100-python``)
    is what ``yololab classify train --data`` reads. Uses the detection downloader's fetch / verify /
    unpack (:func:`yololab.data.download.fetch_and_unpack`).
    """
    if name not in SOURCES:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(SOURCES)}")
    remote = SOURCES[name]
    out = Path(out)
    fetch_and_unpack([remote], out / "downloads", out, url_base=url_base, retries=retries, progress=progress,
                     backoff=backoff)
    folder = out / ARCHIVES[remote.filename]
    if not folder.is_dir():
        raise DataError(f"{out / 'downloads' / remote.filename}: unpacked, but no {folder.name}/ inside")
    return folder
