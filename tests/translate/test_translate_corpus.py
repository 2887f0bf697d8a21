"""Reading parallel corpora: Multi30K, aligned files, TSV, and every kind of bad input."""

from __future__ import annotations

import gzip

import pytest
from helpers import shared_data

from yololab.errors import DataError
from yololab.translate.batching import collate, encode_pairs, token_batches
from yololab.translate.corpus import load_corpus, load_folder, read_lines, read_parallel, read_tsv
from yololab.translate.tokenizer import BOS, EOS, PAD, Tokenizer


@pytest.mark.parametrize("tgt,counts", [("de", (29000, 1014, 1000)), ("fr", (29000, 1014, 1000))])
def test_multi30k(tgt, counts):
    multi30k = shared_data("multi30k")
    corpus = load_folder(multi30k, "en", tgt)
    assert list(corpus.splits) == ["train", "val", "test_2016_flickr"]
    assert tuple(len(p) for p in corpus.splits.values()) == counts
    assert corpus.test_splits == ["test_2016_flickr"]
    assert corpus.splits["test_2016_flickr"][0][0] == "A man in an orange hat starring at something."
    with pytest.raises(DataError, match=r"languages \['de', 'en', 'fr'\]; say which"):
        load_folder(multi30k)
    with pytest.raises(DataError, match="no files for language 'xx'"):
        load_folder(multi30k, "en", "xx")


def test_read_lines_gzip_crlf_bom_and_unicode_separators(tmp_path):
    p = tmp_path / "a.txt.gz"
    p.write_bytes(gzip.compress("\ufeffone\r\ntwo\u2028still two\n\nfour".encode()))
    assert read_lines(p) == ["one", "two\u2028still two", "", "four"]


def test_non_utf8_names_file_and_offset(tmp_path):
    p = tmp_path / "latin1.de"
    p.write_bytes("Grüße\n".encode() + "Straße".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1.de: not UTF-8 text: byte 0xdf at byte offset 12 \(line 2\)"):
        read_lines(p)


def test_misaligned_files_name_both_and_counts(tmp_path):
    (tmp_path / "a.en").write_text("one\ntwo\nthree\n")
    (tmp_path / "a.de").write_text("eins\nzwei\n")
    with pytest.raises(DataError, match=r"a.en has 3 lines but .*a.de has 2"):
        read_parallel(tmp_path / "a.en", tmp_path / "a.de")


def test_tsv_and_empty_lines_counted(tmp_path):
    p = tmp_path / "pairs.tsv"
    p.write_text("hello\tbonjour\n\nyes\t\t\n")
    with pytest.raises(DataError, match=r"pairs.tsv:3: expected 2 tab-separated columns .* got 3"):
        read_tsv(p)
    p.write_text("hello\tbonjour\n\nyes\toui\n \tvide\ncat\tchat\n")
    corpus = load_corpus(tsv=str(p), val_fraction=0.3)
    assert corpus.skipped_empty == {"train": 2}
    assert len(corpus.splits["train"]) + len(corpus.splits["val"]) == 3 and corpus.splits["val"]
    with pytest.raises(DataError, match="exactly one corpus"):
        load_corpus(tsv=str(p), src=str(p), tgt=str(p))


def test_user_files_with_validation_files(tmp_path):
    for name, text in {"tr.src": "a\nb\nc\n", "tr.tgt": "A\nB\nC\n", "va.src": "d\n", "va.tgt": "D\n"}.items():
        (tmp_path / name).write_text(text)
    c = load_corpus(src=str(tmp_path / "tr.src"), tgt=str(tmp_path / "tr.tgt"), val_src=str(tmp_path / "va.src"),
                    val_tgt=str(tmp_path / "va.tgt"))
    assert c.splits == {"train": [("a", "A"), ("b", "B"), ("c", "C")], "val": [("d", "D")]}
    with pytest.raises(DataError, match="--val-src and --val-tgt go together"):
        load_corpus(src=str(tmp_path / "tr.src"), tgt=str(tmp_path / "tr.tgt"), val_src=str(tmp_path / "va.src"))
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "val.en").write_text("x\n")
    (folder / "val.de").write_text("y\n")
    with pytest.raises(DataError, match="no train.en / train.de pair of files"):
        load_folder(folder, "en", "de")


def test_overlong_truncated_and_counted_and_token_batches():
    pairs = [("a b c", "x y"), ("a " * 50, "x"), ("b", "y " * 50)] + [("a b", "x y z")] * 20
    tok = Tokenizer.train([w for p in pairs for w in p], vocab_size=40)
    enc = encode_pairs(tok, pairs, max_len=10)
    assert enc.truncated == 2
    assert max(map(len, enc.src)) <= 10 and max(map(len, enc.tgt)) <= 10
    assert all(s[-1] == EOS for s in enc.src) and all(t[0] == BOS and t[-1] == EOS for t in enc.tgt)
    batches = token_batches(enc, max_tokens=30, seed=0, epoch=0)
    assert sorted(i for b in batches for i in b) == list(range(len(pairs)))  # every pair once
    for b in batches:
        src, tgt_in, tgt_out = collate(enc, b)
        assert max(src.numel(), tgt_in.numel()) <= 30 or len(b) == 1
        assert (tgt_in[:, 1:] == tgt_out[:, :-1]).all() and (src[:, 0] != PAD).all()
    assert token_batches(enc, 30, seed=0, epoch=1) != batches  # reshuffled every epoch, same for the same seed
    assert token_batches(enc, 30, seed=0, epoch=0) == batches
    shards = [token_batches(enc, 30, seed=0, epoch=0, rank=r, world=2) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) and not set(map(tuple, shards[0])) & set(map(tuple, shards[1]))
