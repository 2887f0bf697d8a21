"""`yololab classify download` against a CIFAR-format archive served from 127.0.0.1 (tests/conftest.py server)."""

from __future__ import annotations

import hashlib
import io
import tarfile

import numpy as np
import pytest

from yololab.classify import cifar
from yololab.classify.cifar import read_cifar
from yololab.data.download import RemoteFile
from yololab.errors import DataError


@pytest.fixture
def archive(synth_set, server, monkeypatch):
    """Our synthetic set packed as the official cifar-10-python.tar.gz, served by the test server."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        t.add(synth_set, arcname="cifar-10-batches-py")
    data = buf.getvalue()
    server.files["cifar-10-python.tar.gz"] = data
    monkeypatch.setitem(cifar.SOURCES, "cifar10", RemoteFile(f"{server.base}/kriz/cifar-10-python.tar.gz",
                                                             md5=hashlib.md5(data).hexdigest()))
    return data


def test_interrupted_download_resumes_and_unpacks(archive, server, synth_set, tmp_path, capsys):
    server.cuts, server.cut_after = 2, 3000  # the first two responses stop after 3000 bytes
    folder = cifar.download_cifar("cifar10", tmp_path / "d", progress=False, backoff=0.01)
    assert folder == tmp_path / "d" / "cifar-10-batches-py"
    assert [r for _, r in server.requests] == [None, "bytes=3000-", "bytes=6000-"]
    assert (tmp_path / "d" / "downloads" / "cifar-10-python.tar.gz").read_bytes() == archive
    np.testing.assert_array_equal(read_cifar(folder, "val").images, read_cifar(synth_set, "val").images)
    assert cifar.download_cifar("cifar10", tmp_path / "d", progress=False) == folder  # done: nothing fetched
    assert len(server.requests) == 3


def test_wrong_checksum_keeps_the_file_aside(archive, server, tmp_path, monkeypatch):
    monkeypatch.setattr(cifar.SOURCES["cifar10"], "md5", "0" * 32)
    with pytest.raises(DataError, match="verification failed.*md5.*kept as"):
        cifar.download_cifar("cifar10", tmp_path / "d", progress=False)
    assert (tmp_path / "d" / "downloads" / "cifar-10-python.tar.gz.bad").read_bytes() == archive
    assert not (tmp_path / "d" / "cifar-10-batches-py").exists()


def test_official_table():
    assert cifar.SOURCES["cifar10"].filename == "cifar-10-python.tar.gz"
    assert cifar.SOURCES["cifar100"].md5 == "eb9058c3a382ffc7106e4002c42a8d85"  # torchvision's, the site's
