"""Atomic writes: the destination is either the old file or the complete new one, never a partial file."""

import os
import stat

import pytest

from yololab.fileio import atomic_path, atomic_write, write_bytes_atomic, write_text_atomic


def test_writes_create_folders_and_usual_permissions(tmp_path):
    p = write_text_atomic(tmp_path / "a" / "b.txt", "héllo\r\nworld\n")
    assert p.read_bytes() == "héllo\r\nworld\n".encode()  # newlines as given
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~mask  # not mkstemp's 0600
    assert write_bytes_atomic(tmp_path / "c.bin", b"\x00\x01").read_bytes() == b"\x00\x01"
    assert sorted(x.name for x in tmp_path.rglob("*")) == ["a", "b.txt", "c.bin"]  # no temporary left


def test_failed_write_keeps_old_file_and_leaves_no_temporary(tmp_path):
    dst = tmp_path / "ckpt.pt"
    dst.write_bytes(b"old")

    def broken(f):
        f.write(b"half of the new")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(dst, broken, fsync=True)
    assert dst.read_bytes() == b"old"
    assert [x.name for x in tmp_path.iterdir()] == ["ckpt.pt"]


def test_atomic_path_keeps_suffix_for_writers_that_pick_format_from_it(tmp_path):
    with atomic_path(tmp_path / "fig.svg") as tmp:
        assert tmp.endswith(".svg") and os.path.dirname(tmp) == str(tmp_path)
        assert not (tmp_path / "fig.svg").exists()
        with open(tmp, "w") as f:
            f.write("<svg/>")
    assert (tmp_path / "fig.svg").read_text() == "<svg/>"


def test_read_yaml_names_the_file_in_one_line(tmp_path):
    from yololab.errors import ConfigError, DataError
    from yololab.fileio import read_yaml

    good = tmp_path / "good.yaml"
    good.write_text("\ufeffa: 1\nb: [x, y]\n", encoding="utf-8")  # a BOM is allowed
    assert read_yaml(good, ConfigError) == {"a": 1, "b": ["x", "y"]}
    (tmp_path / "empty.yaml").write_text("")
    assert read_yaml(tmp_path / "empty.yaml", ConfigError) is None
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [images\n")
    with pytest.raises(DataError, match=r"^data\.yaml here: not valid YAML \(") as e:
        read_yaml(bad, DataError, "data.yaml here")
    assert "\n" not in str(e.value)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=f"^{latin}: not a UTF-8 text file$"):
        read_yaml(latin, ConfigError)
