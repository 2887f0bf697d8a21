"""`yololab data download` against archives served from 127.0.0.1 (the ``server`` fixture of tests/conftest.py)."""

from __future__ import annotations

import hashlib
import io
import json
import socket
import tarfile
import zipfile
from pathlib import Path

import pytest

import yololab.data.download as dl
from yololab.cli import main
from yololab.data.formats import load_data_yaml
from yololab.errors import DataError


def coco_zip(tmp_path: Path, data_helpers) -> bytes:
    """A tiny COCO 2017-style archive: annotations/instances_{train,val}2017.json + image folders."""
    src = tmp_path / "zipsrc"
    images = []
    for split, (w, h) in (("train2017", (80, 60)), ("val2017", (60, 80))):
        data_helpers.write_image(src / split / "000000000001.jpg", w, h, seed=len(split))
        images.append((split, w, h))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for split, w, h in images:
            z.write(src / split / "000000000001.jpg", f"{split}/000000000001.jpg")
            coco = {"images": [{"id": 1, "file_name": "000000000001.jpg", "width": w, "height": h}],
                    "annotations": [{"id": 1, "image_id": 1, "category_id": 18, "bbox": [8, 6, 40, 30],
                                     "area": 1200, "iscrowd": 0},
                                    {"id": 2, "image_id": 1, "category_id": 1, "bbox": [0, 0, 20, 20],
                                     "area": 400, "iscrowd": 1}],
                    "categories": [{"id": 1, "name": "person"}, {"id": 18, "name": "dog"}]}
            z.writestr(f"annotations/instances_{split}.json", json.dumps(coco))
    return buf.getvalue()


@pytest.fixture
def tiny(server, tmp_path, data_helpers, monkeypatch):
    """A 'tiny' entry in the dataset table, served by the test server."""
    data = coco_zip(tmp_path, data_helpers)
    server.files["tiny.zip"] = data
    entry = dl.DatasetSource(description="test", prepare=dl.prepare_coco, files=[
        dl.RemoteFile(f"{server.base}/files/tiny.zip", sha256=hashlib.sha256(data).hexdigest(), size=len(data))])
    monkeypatch.setitem(dl.DATASETS, "tiny", entry)
    return data


def _check_tiny(data_yaml: Path):
    cfg = load_data_yaml(data_yaml)
    assert cfg.names == ["person", "dog"] and set(cfg.splits) == {"train", "val"}
    label = cfg.root / "labels" / "train" / "000000000001.txt"
    assert label.read_text() == "1 0.35 0.35 0.5 0.5\n"  # dog, 8,6 40x30 in 80x60; the crowd box is ignore
    assert "train" in cfg.annotations


def test_complete_download(tiny, server, tmp_path, capsys):
    out = tmp_path / "datasets"
    data_yaml = dl.download_dataset("tiny", out, progress=False)
    _check_tiny(data_yaml)
    assert (out / "downloads" / "tiny.zip").read_bytes() == tiny
    assert server.requests == [("/files/tiny.zip", None)]
    assert dl.download_dataset("tiny", out, progress=False) == data_yaml  # a second run does nothing
    assert "nothing to do" in capsys.readouterr().out and len(server.requests) == 1


def test_interrupted_download_resumes(tiny, server, tmp_path):
    server.cuts, server.cut_after = 2, 1500  # first two responses stop after 1500 bytes each
    data_yaml = dl.download_dataset("tiny", tmp_path / "d", progress=False, backoff=0.01)
    _check_tiny(data_yaml)
    assert [r for _, r in server.requests] == [None, "bytes=1500-", "bytes=3000-"]
    assert (tmp_path / "d" / "downloads" / "tiny.zip").read_bytes() == tiny


def test_incomplete_after_retries_keeps_part_then_resumes(tiny, server, tmp_path):
    server.cuts, server.cut_after = 10, 1000
    with pytest.raises(DataError, match=r"download incomplete after 2 attempts \(.*\); the partial file"):
        dl.download_dataset("tiny", tmp_path / "d", retries=1, progress=False, backoff=0)
    part = tmp_path / "d" / "downloads" / "tiny.zip.part"
    assert part.read_bytes() == tiny[:2000]
    server.cuts = 0
    _check_tiny(dl.download_dataset("tiny", tmp_path / "d", progress=False))
    assert server.requests[-1][1] == "bytes=2000-"


def test_wrong_checksum_is_rejected_and_kept_aside(tiny, server, tmp_path, monkeypatch):
    monkeypatch.setattr(dl.DATASETS["tiny"].files[0], "sha256", "0" * 64)
    with pytest.raises(DataError, match="verification failed.*sha256.*kept as"):
        dl.download_dataset("tiny", tmp_path / "d", progress=False)
    downloads = tmp_path / "d" / "downloads"
    assert (downloads / "tiny.zip.bad").read_bytes() == tiny
    assert not (downloads / "tiny.zip").exists() and not (tmp_path / "d" / "tiny").exists()


def test_cli_with_url_base(tiny, server, tmp_path, monkeypatch):
    # the table points elsewhere; --url-base sends every request to the test server
    monkeypatch.setattr(dl.DATASETS["tiny"].files[0], "url", "http://example.invalid/somewhere/tiny.zip")
    rc = main(["data", "download", "tiny", "--out", str(tmp_path / "d"), "--url-base", server.base + "/mirror/"])
    assert rc == 0
    assert server.requests == [("/mirror/tiny.zip", None)]
    _check_tiny(tmp_path / "d" / "tiny" / "data.yaml")


def test_http_error_is_clean(tiny, server, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(dl.DATASETS["tiny"].files[0], "url", server.base + "/missing.zip")
    assert main(["data", "download", "tiny", "--out", str(tmp_path / "d")]) == 2
    assert "HTTP 404" in capsys.readouterr().err


def test_unpack_refuses_path_traversal(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("../outside.txt", "x")
    with pytest.raises(DataError, match="outside"):
        dl.unpack(archive, tmp_path / "raw")
    assert not (tmp_path / "outside.txt").exists()


def voc_tar(tmp_path: Path, data_helpers, year: str, lists: dict[str, list[str]]) -> bytes:
    root = tmp_path / f"vocsrc{year}"
    base = root / "VOCdevkit" / f"VOC{year}"
    for stems in lists.values():
        for stem in stems:
            data_helpers.write_image(base / "JPEGImages" / f"{stem}.jpg", 50, 40)
            (base / "Annotations").mkdir(parents=True, exist_ok=True)
            (base / "Annotations" / f"{stem}.xml").write_text(
                f"<annotation><filename>{stem}.jpg</filename><size><width>50</width><height>40</height></size>"
                "<object><name>cat</name><difficult>0</difficult><bndbox><xmin>1</xmin><ymin>1</ymin>"
                "<xmax>25</xmax><ymax>20</ymax></bndbox></object></annotation>")
    (base / "ImageSets" / "Main").mkdir(parents=True)
    for name, stems in lists.items():
        (base / "ImageSets" / "Main" / f"{name}.txt").write_text("".join(s + "\n" for s in stems))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        t.add(root / "VOCdevkit", arcname="VOCdevkit")
    return buf.getvalue()


def test_voc_download_merges_years(server, tmp_path, data_helpers, monkeypatch):
    tars = {"voc07.tar": voc_tar(tmp_path, data_helpers, "2007",
                                 {"trainval": ["000001", "000002"], "test": ["000003"]}),
            "voc12.tar": voc_tar(tmp_path, data_helpers, "2012", {"trainval": ["2008_000001"]})}
    server.files.update(tars)
    monkeypatch.setitem(dl.DATASETS, "tinyvoc", dl.DatasetSource(description="test", prepare=dl.prepare_voc, files=[
        dl.RemoteFile(f"{server.base}/{k}", md5=hashlib.md5(v).hexdigest()) for k, v in tars.items()]))
    cfg = load_data_yaml(dl.download_dataset("tinyvoc", tmp_path / "d", progress=False))
    assert [p.name for p in cfg.splits["train"]] == ["000001.jpg", "000002.jpg", "2008_000001.jpg"]
    assert [p.name for p in cfg.splits["val"]] == ["000003.jpg"]
    assert (cfg.root / "labels" / "val" / "000003.txt").read_text() == "7 0.25 0.25 0.5 0.5\n"  # cat = 7


def _closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_server_says_so_once_without_retrying(tiny, tmp_path, monkeypatch, capfd):
    """A refused connection is not retried (5 retries would wait 31 s): one error line naming the way out."""
    monkeypatch.setattr(dl.DATASETS["tiny"].files[0], "url", f"http://127.0.0.1:{_closed_port()}/tiny.zip")
    monkeypatch.setattr(dl.time, "sleep", lambda s: pytest.fail(f"slept {s} s before retrying a refused connection"))
    assert main(["data", "download", "tiny", "--out", str(tmp_path / "d")]) == 2
    out, err = capfd.readouterr()
    assert out == "" and len(err.splitlines()) == 1
    assert "cannot reach 127.0.0.1: Connection refused" in err and "--url-base" in err
    assert f"put tiny.zip into {tmp_path / 'd' / 'downloads'}/" in err and ".part" not in err
    assert not (tmp_path / "d").exists()  # nothing written


def test_no_dns_says_no_network_at_once(tiny, tmp_path, monkeypatch, capfd):
    """A name that does not resolve (the offline case) fails at once; the lookup is refused here, offline."""
    def no_dns(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    monkeypatch.setattr(dl.time, "sleep", lambda s: pytest.fail("retried a DNS failure"))
    monkeypatch.setattr(dl.DATASETS["tiny"].files[0], "url", "http://images.example.org/tiny.zip")
    assert main(["data", "download", "tiny", "--out", str(tmp_path / "d")]) == 2
    err = capfd.readouterr().err
    assert err.splitlines() == [err.strip()]
    assert "cannot resolve the host images.example.org (no network, or no DNS)" in err and "--url-base" in err


def test_retries_zero_means_one_attempt(tiny, server, tmp_path, capsys):
    server.cuts, server.cut_after = 10, 1000
    with pytest.raises(DataError, match=r"download incomplete after 1 attempt \(--retries 0\)"):
        dl.download_dataset("tiny", tmp_path / "d", retries=0, progress=False)
    assert len(server.requests) == 1 and capsys.readouterr().out == ""  # no "retry" line either


def test_a_local_mirror_by_file_url(tiny, tmp_path, monkeypatch):
    """--url-base file://FOLDER installs from archives on disk (checksums still apply): the offline way."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "tiny.zip").write_bytes(tiny)
    monkeypatch.setattr(dl.DATASETS["tiny"].files[0], "url", "http://example.invalid/tiny.zip")
    assert main(["data", "download", "tiny", "--out", str(tmp_path / "d"), "--url-base", mirror.as_uri()]) == 0
    _check_tiny(tmp_path / "d" / "tiny" / "data.yaml")
    with pytest.raises(DataError, match="no such file"):
        dl.fetch((mirror / "other.zip").as_uri(), tmp_path / "x" / "other.zip", progress=False)
