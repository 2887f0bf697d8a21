"""Parallel corpora from disk: a folder of split files (Multi30K, the toy grammar), two aligned files, or a TSV.

A corpus folder holds one file per split and language, ``<split>.<lang>`` or ``<split>.<lang>.gz``, aligned
line by line: ``train``, ``val`` and any test splits (Multi30K's ``test_2016_flickr``, the toy grammar's
``test``). Lines are split on ``\\n`` only (a stray U+2028 inside a sentence must not shift the
alignment), ``\\r\\n`` is accepted. Pairs with an empty side are skipped and counted.
"""

from __future__ import annotations

import gzip
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

from yololab.errors import DataError

SPLIT_FILE = re.compile(r"^(?P<split>[A-Za-z0-9_-]+)\.(?P<lang>[A-Za-z]{2,3}(?:[_-][A-Za-z]+)?)(?P<gz>\.gz)?$")


def read_lines(path: str | Path) -> list[str]:
    """Lines of a UTF-8 text file (gzip allowed), without line ends; a bad byte is an error naming its offset."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise DataError(f"{path}: corrupt gzip file ({e})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise DataError(f"{path}: not UTF-8 text: byte 0x{raw[e.start]:02x} at byte offset {e.start} "
                        f"(line {line}{', after decompression' if path.suffix == '.gz' else ''})") from None
    text = text.removeprefix("\ufeff")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last line, it does not start a new one
    return [line.removesuffix("\r") for line in lines]


def read_parallel(src: str | Path, tgt: str | Path) -> list[tuple[str, str]]:
    """Two aligned files -> pairs; different line counts are an error naming both files and counts."""
    a, b = read_lines(src), read_lines(tgt)
    if len(a) != len(b):
        raise DataError(f"misaligned parallel files: {src} has {len(a)} lines but {tgt} has {len(b)}")
    return list(zip(a, b))


def read_tsv(path: str | Path) -> list[tuple[str, str]]:
    """``source<TAB>target`` per line."""
    pairs = []
    for i, line in enumerate(read_lines(path), 1):
        if not line.strip():
            pairs.append(("", ""))  # counted as empty with the others
            continue
        cols = line.split("\t")
        if len(cols) != 2:
            raise DataError(f"{path}:{i}: expected 2 tab-separated columns (source, target), got {len(cols)}")
        pairs.append((cols[0], cols[1]))
    return pairs


@dataclass
class Corpus:
    """Sentence pairs per split, with where they came from and what was skipped."""

    name: str
    src_lang: str
    tgt_lang: str
    splits: dict[str, list[tuple[str, str]]]
    skipped_empty: dict[str, int] = field(default_factory=dict)

    @property
    def test_splits(self) -> list[str]:
        return [s for s in self.splits if s not in ("train", "val")]

    def summary(self) -> str:
        parts = [f"{s} {len(p):,}" + (f" ({self.skipped_empty[s]} empty skipped)" if self.skipped_empty.get(s) else "")
                 for s, p in self.splits.items()]
        return f"{self.name} {self.src_lang}->{self.tgt_lang}: " + ", ".join(parts)


def drop_empty(pairs: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], int]:
    kept = [(s.strip(), t.strip()) for s, t in pairs if s.strip() and t.strip()]
    return kept, len(pairs) - len(kept)


def folder_files(folder: Path) -> dict[tuple[str, str], Path]:
    """(split, lang) -> file for every ``<split>.<lang>[.gz]`` in ``folder``."""
    files = {}
    for p in sorted(folder.iterdir()):
        m = SPLIT_FILE.match(p.name)
        if m and p.is_file():
            files.setdefault((m["split"], m["lang"]), p)
    return files


def load_folder(folder: str | Path, src_lang: str | None = None, tgt_lang: str | None = None) -> Corpus:
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: corpus folder not found")
    files = folder_files(folder)
    if not files:
        raise DataError(f"{folder}: no corpus files; expected <split>.<lang>[.gz] files such as train.en, "
                        f"train.de, val.en, val.de")
    langs = sorted({lang for _, lang in files})
    for lang in (src_lang, tgt_lang):
        if lang is not None and lang not in langs:
            raise DataError(f"{folder}: no files for language {lang!r} (languages found: {langs})")
    if src_lang is None or tgt_lang is None:
        if len(langs) != 2:
            raise DataError(f"{folder}: holds languages {langs}; say which with --src-lang and --tgt-lang")
        if src_lang is None and tgt_lang is None:
            src_lang, tgt_lang = _default_direction(folder, langs)
        elif src_lang is None:
            src_lang = next(x for x in langs if x != tgt_lang)
        else:
            tgt_lang = next(x for x in langs if x != src_lang)
    splits, skipped = {}, {}
    for split in sorted({s for s, _ in files}, key=lambda s: (s != "train", s != "val", s)):
        sf, tf = files.get((split, src_lang)), files.get((split, tgt_lang))
        if sf is None or tf is None:
            continue
        splits[split], skipped[split] = drop_empty(read_parallel(sf, tf))
    for need in ("train", "val"):
        if need not in splits:
            raise DataError(f"{folder}: no {need}.{src_lang} / {need}.{tgt_lang} pair of files "
                            f"(found: {', '.join(p.name for p in files.values()) or 'none'})")
    return Corpus(folder.name, src_lang, tgt_lang, splits, skipped)


def _default_direction(folder: Path, langs: list[str]) -> tuple[str, str]:
    """The toy grammar writes ``corpus.json`` naming its direction; otherwise alphabetical order."""
    meta = folder / "corpus.json"
    if meta.is_file():
        import json

        d = json.loads(meta.read_text())
        return d["src_lang"], d["tgt_lang"]
    return langs[0], langs[1]


def load_pairs(train: list[tuple[str, str]], val: list[tuple[str, str]] | None, name: str, src_lang: str,
               tgt_lang: str, val_fraction: float = 0.05, seed: int = 0) -> Corpus:
    """A user corpus: training pairs and optional validation pairs (else a seeded slice of the training ones)."""
    train, skipped_train = drop_empty(train)
    skipped = {"train": skipped_train}
    if val is None:
        if len(train) < 2:
            raise DataError(f"{name}: {len(train)} usable sentence pairs; need at least 2 to hold out validation")
        idx = list(range(len(train)))
        random.Random(seed).shuffle(idx)
        n_val = min(max(1, round(len(train) * val_fraction)), 1000)
        held = set(idx[:n_val])
        val = [p for i, p in enumerate(train) if i in held]
        train = [p for i, p in enumerate(train) if i not in held]
    else:
        val, skipped["val"] = drop_empty(val)
    if not train or not val:
        raise DataError(f"{name}: no usable sentence pairs in the {'training' if not train else 'validation'} data")
    return Corpus(name, src_lang, tgt_lang, {"train": train, "val": val}, skipped)


def load_corpus(data: str | None = None, src: str | None = None, tgt: str | None = None, tsv: str | None = None,
                val_src: str | None = None, val_tgt: str | None = None, val_tsv: str | None = None,
                src_lang: str | None = None, tgt_lang: str | None = None, val_fraction: float = 0.05,
                seed: int = 0) -> Corpus:
    """One of: a corpus folder (``data``), two aligned files (``src`` + ``tgt``), or a TSV file."""
    given = [x for x in (data, src or tgt, tsv) if x]
    if len(given) != 1:
        raise DataError("give exactly one corpus: --data FOLDER, or --src FILE --tgt FILE, or --tsv FILE")
    if data:
        return load_folder(data, src_lang, tgt_lang)
    if tsv:
        val = read_tsv(val_tsv) if val_tsv else None
        return load_pairs(read_tsv(tsv), val, Path(tsv).name, src_lang or "src", tgt_lang or "tgt", val_fraction, seed)
    if not (src and tgt):
        raise DataError("--src and --tgt go together: the source file and its aligned target file")
    if bool(val_src) != bool(val_tgt):
        raise DataError("--val-src and --val-tgt go together")
    val = read_parallel(val_src, val_tgt) if val_src else None
    return load_pairs(read_parallel(src, tgt), val, Path(src).stem, src_lang or "src", tgt_lang or "tgt",
                      val_fraction, seed)
