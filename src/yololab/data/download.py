"""Download public detection datasets and convert them to YOLO form (``yololab data download``).

Every download resumes where it stopped (HTTP ``Range``), is verified against a checksum where one
is known, and is unpacked and converted with the readers of :mod:`yololab.data.formats`.
Folder layout under ``--out DIR``::

    DIR/downloads/   the archives, as downloaded (``*.part`` while incomplete, ``*.bad`` if they
                     failed verification: kept aside, never deleted)
    DIR/raw/         the archives unpacked
    DIR/<name>/      the YOLO dataset (images hard-linked from raw/ where possible), data.yaml

Where the checksums come from. Neither the COCO nor the VOC site publishes checksums. The MD5 sums
below are the ones torchvision (VOC) and several independent COCO loaders agree on; for two COCO
files the sizes are also known and checked. coco128 (Ultralytics' sample) has no published checksum
or size: its download is checked against the length the server announces and the zip's own CRCs.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import socket
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from http.client import HTTPException
from pathlib import Path
from urllib.parse import urlparse

import yaml

from yololab.data.formats import Dataset, convert, read_voc, write_yolo
from yololab.errors import DataError

CHUNK = 1 << 20


@dataclass
class RemoteFile:
    url: str
    md5: str | None = None
    sha256: str | None = None
    size: int | None = None       # bytes, where known

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[1]


@dataclass
class DatasetSource:
    description: str
    files: list[RemoteFile]
    prepare: Callable[[Path, Path], None]   # (raw folder, output folder) -> writes the YOLO dataset
    licence: str = ""
    extra: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Preparing each dataset from its unpacked archives
# ---------------------------------------------------------------------------------------------


def prepare_coco(raw: Path, out: Path) -> None:
    """raw/annotations/instances_{train,val}2017.json + raw/{train,val}2017/ -> YOLO in ``out``."""
    convert(raw, out, "coco", "yolo", link=True, progress=True)


def prepare_voc(raw: Path, out: Path) -> None:
    """The usual detection split: train = VOC2007 trainval + VOC2012 trainval, val = VOC2007 test."""
    devkit = raw / "VOCdevkit"
    parts = [read_voc(devkit / "VOC2007", lists={"train": "trainval", "val": "test"})]
    if (devkit / "VOC2012").is_dir():
        parts.append(read_voc(devkit / "VOC2012", lists={"train": "trainval"}))
    merged = Dataset(names=parts[0].names, splits={"train": [], "val": []})
    for part in parts:
        for split, records in part.splits.items():
            merged.splits[split] += records
        merged.notes += part.notes
    _write_new(out, lambda tmp: write_yolo(merged, tmp, link=True, progress=True))


COCO_NAMES = [
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
]


def prepare_coco128(raw: Path, out: Path) -> None:
    """coco128 is YOLO already (128 train2017 images, also used as val): add a data.yaml, re-lay it out."""
    src = raw / "coco128"
    if not (src / "images" / "train2017").is_dir():
        raise DataError(f"{src}: expected images/train2017 in the coco128 archive")
    spec = {"train": "images/train2017", "val": "images/train2017", "names": COCO_NAMES}
    (src / "data.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")  # in our raw/ copy
    convert(src / "data.yaml", out, "yolo", "yolo", link=True, progress=True)


def _write_new(out: Path, write: Callable[[Path], None]) -> None:
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        write(tmp)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# The table. Sizes in bytes; md5 as used by torchvision / COCO loaders (see the module docstring).
DATASETS: dict[str, DatasetSource] = {
    "coco": DatasetSource(
        description="COCO 2017 detection: 118k train + 5k val images, 80 classes (~19 GB)",
        files=[
            RemoteFile("http://images.cocodataset.org/annotations/annotations_trainval2017.zip",
                       md5="f4bbac642086de4f52a3fdda2de5fa2c", size=252_907_541),
            RemoteFile("http://images.cocodataset.org/zips/val2017.zip",
                       md5="442b8da7639aecaf257c1dceb8ba8c80", size=815_585_330),
            RemoteFile("http://images.cocodataset.org/zips/train2017.zip",
                       md5="cced6f7f71b7629ddf16f17bbcfab6b2"),
        ],
        prepare=prepare_coco,
        licence="annotations CC BY 4.0; images under their Flickr terms",
    ),
    "coco128": DatasetSource(
        description="Ultralytics' coco128: the first 128 COCO train2017 images, YOLO labels (~7 MB)",
        files=[RemoteFile("https://github.com/ultralytics/assets/releases/download/v0.0.0/coco128.zip")],
        prepare=prepare_coco128,
        licence="as COCO",
    ),
    "voc": DatasetSource(
        description="Pascal VOC: train = 2007+2012 trainval (16.5k images), val = 2007 test (4952), 20 classes",
        files=[
            RemoteFile("http://host.robots.ox.ac.uk/pascal/VOC/voc2007/VOCtrainval_06-Nov-2007.tar",
                       md5="c52e279531787c972589f7e41ab4ae64"),
            RemoteFile("http://host.robots.ox.ac.uk/pascal/VOC/voc2007/VOCtest_06-Nov-2007.tar",
                       md5="b6e924de25625d8de591ea690078ad9f"),
            RemoteFile("http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar",
                       md5="6cd6e144f989b92b3379bac3b3de84fd"),
        ],
        prepare=prepare_voc,
        licence="VOC data includes Flickr images; respect the Flickr terms of use",
    ),
}


# ---------------------------------------------------------------------------------------------
# Download with resume, verify, unpack
# ---------------------------------------------------------------------------------------------


# failures to reach the server at all: retrying them only makes the user wait
_UNREACHABLE = (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ECONNREFUSED, errno.EADDRNOTAVAIL)


def _unreachable(url: str, dest: Path, reason: OSError) -> DataError:
    host = urlparse(url).hostname or url
    what = (f"cannot resolve the host {host} (no network, or no DNS)" if isinstance(reason, socket.gaierror)
            else f"cannot reach {host}: {reason.strerror or reason}")
    return DataError(f"{url}: {what}. Without network, pass --url-base with a mirror you can reach (http(s):// or "
                     f"file://), or put {dest.name} into {dest.parent}/ and run the command again")


def fetch(url: str, dest: Path, retries: int = 5, timeout: float = 60.0, progress: bool = True,
          backoff: float = 1.0) -> Path:
    """Download ``url`` to ``dest``, resuming ``dest.part`` with HTTP Range after any interruption.

    A server that ignores Range (answers 200) restarts the download from zero. A host that cannot be
    resolved or reached fails at once with one message (no network: retrying does not help). An
    interrupted transfer is retried ``retries`` times (0: none), waiting ``backoff * 2**attempt`` seconds
    (at most 30) in between; if it is still incomplete, DataError says so, and that a rerun resumes the
    ``.part`` file when one was kept.
    """
    from yololab.progress import progress as progress_bar

    dest = Path(dest)
    if dest.is_file():
        return dest
    part = dest.with_name(dest.name + ".part")
    total = None
    for attempt in range(retries + 1):
        have = part.stat().st_size if part.exists() else 0
        headers = {"User-Agent": "yololab"} | ({"Range": f"bytes={have}-"} if have else {})
        error = None
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as r:
                if getattr(r, "status", None) == 206:
                    m = re.match(r"bytes (\d+)-\d+/(\d+|\*)", r.headers.get("Content-Range", ""))
                    if not m or int(m.group(1)) != have:
                        raise DataError(f"{url}: server answered an unexpected range "
                                        f"{r.headers.get('Content-Range')!r} to 'bytes={have}-'")
                    total = int(m.group(2)) if m.group(2) != "*" else None
                    mode = "ab"
                else:  # 200 (or a file:// URL): the whole file
                    have, mode = 0, "wb"
                    length = r.headers.get("Content-Length")
                    total = int(length) if length else None
                dest.parent.mkdir(parents=True, exist_ok=True)  # only now: a failed connection leaves nothing
                with open(part, mode) as f, progress_bar(total=total, initial=have, unit="B", unit_scale=True,
                                                          desc=dest.name, enabled=progress) as bar:
                    while chunk := r.read(CHUNK):
                        f.write(chunk)
                        bar.update(len(chunk))
        except urllib.error.HTTPError as e:
            if e.code == 416 and have:  # nothing left to send: the .part is already complete
                total = have
            else:
                raise DataError(f"{url}: HTTP {e.code} {e.reason}") from None
        except urllib.error.URLError as e:  # raised before any byte came: the server was not reached
            reason = e.reason
            if isinstance(reason, socket.gaierror) or getattr(reason, "errno", None) in _UNREACHABLE:
                raise _unreachable(url, dest, reason) from None
            if isinstance(reason, FileNotFoundError) or (isinstance(reason, str) and url.startswith("file:")):
                raise DataError(f"{url}: no such file") from None
            error = str(reason) or type(reason).__name__
        except (HTTPException, OSError) as e:  # reset, timed out, cut short
            error = str(e) or type(e).__name__
        size = part.stat().st_size if part.exists() else 0
        if total is not None and size > total:
            raise DataError(f"{part}: {size} bytes, more than the {total} the server announced; "
                            f"delete it and run again")
        if size == total or (total is None and error is None and size > 0):
            os.replace(part, dest)
            return dest
        if attempt < retries:
            wait = min(backoff * 2 ** attempt, 30.0)
            print(f"download of {dest.name} stopped after {size} of {total or '?'} bytes "
                  f"({error or 'connection closed'}); retry {attempt + 1} of {retries} in {wait:g} s")
            time.sleep(wait)
    tries = f"{retries + 1} attempts" if retries else "1 attempt (--retries 0)"
    kept = (f"; the partial file {part} is kept, run the command again to resume" if part.is_file() and
            part.stat().st_size else "")
    raise DataError(f"{url}: download incomplete after {tries} ({error or 'connection closed'}){kept}")


def verify(path: Path, remote: RemoteFile) -> None:
    """Check size and checksum; a file that fails is renamed ``*.bad`` (kept) and DataError raised."""
    problems = []
    size = path.stat().st_size
    if remote.size is not None and size != remote.size:
        problems.append(f"size {size} bytes, expected {remote.size}")
    for algo in ("sha256", "md5"):
        expected = getattr(remote, algo)
        if expected and not problems:
            h = hashlib.new(algo)
            with open(path, "rb") as f:
                while chunk := f.read(CHUNK):
                    h.update(chunk)
            if h.hexdigest() != expected.lower():
                problems.append(f"{algo} {h.hexdigest()}, expected {expected}")
    if problems:
        bad = path.with_name(path.name + ".bad")
        n = 1
        while bad.exists():
            bad, n = path.with_name(f"{path.name}.bad{n}"), n + 1
        os.replace(path, bad)
        raise DataError(f"{path.name}: verification failed ({'; '.join(problems)}); the file is kept "
                        f"as {bad} (delete it, then run again to download afresh)")


def unpack(archive: Path, into: Path) -> None:
    """Unpack a zip or tar into ``into``, refusing members that would land outside it."""
    into.mkdir(parents=True, exist_ok=True)
    done = into / f".{archive.name}.unpacked"
    if done.exists():
        return
    root = into.resolve()
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            bad = z.testzip()  # every member's CRC: catches a corrupt download without a checksum
            if bad is not None:
                raise DataError(f"{archive}: member {bad} is corrupt (CRC mismatch)")
            for name in z.namelist():
                if not (root / name).resolve().is_relative_to(root):
                    raise DataError(f"{archive}: member {name!r} would be written outside {into}")
            z.extractall(into)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as t:
            for m in t.getmembers():
                if not (root / m.name).resolve().is_relative_to(root) or m.issym() or m.islnk():
                    raise DataError(f"{archive}: member {m.name!r} would be written outside {into} "
                                    f"(or is a link)")
            t.extractall(into, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    else:
        raise DataError(f"{archive}: neither a zip nor a tar archive")
    done.touch()


def fetch_and_unpack(files: list[RemoteFile], downloads: Path, into: Path, url_base: str | None = None,
                     retries: int = 5, progress: bool = True, backoff: float = 1.0) -> None:
    """Download (resuming) each file into ``downloads``, verify it and unpack it into ``into``.

    ``url_base`` replaces everything before each file name in the URLs (a mirror); the checksums still
    apply. Complete archives are not downloaded again, unpacked ones not unpacked again.
    """
    for remote in files:
        url = remote.url if not url_base else url_base.rstrip("/") + "/" + remote.filename
        archive = downloads / remote.filename
        if not archive.is_file():
            fetch(url, archive, retries=retries, progress=progress, backoff=backoff)
            verify(archive, remote)
        elif not (into / f".{archive.name}.unpacked").exists():
            verify(archive, remote)
        unpack(archive, into)


def download_dataset(name: str, out: str | Path, url_base: str | None = None, retries: int = 5,
                     progress: bool = True, backoff: float = 1.0) -> Path:
    """Download, verify, unpack and convert dataset ``name`` of :data:`DATASETS`; returns its data.yaml.

    ``url_base`` replaces everything before each file name in the table's URLs (a mirror); the
    checksums still apply. Steps already done (complete archives, unpacked archives, the converted
    dataset) are skipped when the command runs again.
    """
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
    source = DATASETS[name]
    out = Path(out)
    target = out / name
    if (target / "data.yaml").is_file():
        print(f"{target / 'data.yaml'} already exists; nothing to do")
        return target / "data.yaml"
    if target.exists() and any(target.iterdir()):
        raise DataError(f"{target}: exists, is not empty and has no data.yaml; move it away first")
    raw = out / "raw"
    fetch_and_unpack(source.files, out / "downloads", raw, url_base=url_base, retries=retries,
                     progress=progress, backoff=backoff)
    if target.exists():
        target.rmdir()  # empty
    source.prepare(raw, target)
    return target / "data.yaml"
