"""Atomic file writes: a reader (or a crash) never sees half a file, and a failed write leaves the old one.

Every file yololab writes (checkpoints, label caches, datasets it generates, tables, diagrams, plots,
exported models) goes through here: write into a temporary file in the destination's folder (same
file system, so the final ``os.replace`` is atomic), give it the permissions a plain ``open`` would
(``mkstemp`` makes 0600 files), then rename it over the destination.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, fsync: bool = False) -> Iterator[str]:
    """Yield a temporary file name beside ``path``; on success it replaces ``path``, on error it is removed.

    For writers that want a file name (``fig.savefig``, ``torch.onnx.export``). The temporary name keeps
    ``path``'s suffix, since some writers pick the format from it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object], fsync: bool = False) -> Path:
    """Call ``write(f)`` on a binary file that becomes ``path`` only once it is complete."""
    with atomic_path(path, fsync=fsync) as tmp, open(tmp, "wb") as f:
        write(f)
    return Path(path)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """UTF-8, newlines written as given (no platform translation)."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def read_yaml(path: str | os.PathLike, error: type[Exception], where: str | None = None):
    """The YAML document in ``path`` (utf-8, a BOM allowed). A file that is not valid YAML or not UTF-8 raises
    ``error`` with one line naming ``where`` (default: the path) and what is wrong; an empty file gives None."""
    import yaml

    where = where or str(path)
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8-sig"))
    except yaml.YAMLError as e:
        raise error(f"{where}: not valid YAML ({str(e).splitlines()[0]})") from None
    except UnicodeDecodeError:
        raise error(f"{where}: not a UTF-8 text file") from None
