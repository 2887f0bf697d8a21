"""The sentencepiece tokenizer kept in checkpoints, and the sacrebleu scores."""

from __future__ import annotations

import pytest
import sacrebleu

from yololab.errors import WeightsError
from yololab.translate.metrics import corpus_scores, sentence_bleu
from yololab.translate.tokenizer import EOS, PAD, UNK, Tokenizer

TEXT = ["A man in a blue shirt is standing on a ladder.", "Ein Mann in einem blauen Hemd steht auf einer Leiter.",
        "Two dogs play in the snow.", "Zwei Hunde spielen im Schnee."] * 5


def test_tokenizer_round_trip_bytes_and_unknown_characters():
    tok = Tokenizer.train(TEXT, vocab_size=8000)  # soft limit: a tiny corpus gets fewer pieces
    assert 30 < len(tok) < 400
    again = Tokenizer(tok.proto)
    assert again.encode(TEXT[:2]) == tok.encode(TEXT[:2])
    assert tok.decode(tok.encode(TEXT[:2])) == TEXT[:2]
    ids = tok.encode(["Zwei ☃ Hunde ✈"])[0]  # characters never seen: the unknown piece, never an error
    assert UNK in ids and tok.decode([ids + [EOS, PAD]]) == ["Zwei  ⁇  Hunde  ⁇ "]
    with pytest.raises(WeightsError, match="not a sentencepiece model"):
        Tokenizer(b"\x08\x01garbage")
    with pytest.raises(WeightsError, match="empty"):
        Tokenizer(b"")


def test_scores_equal_sacrebleu_and_carry_signatures():
    hyp = ["The cat sat on the mat.", "A dog runs in the park", "Hello there"]
    ref = ["The cat sat on a mat.", "A dog is running in the park.", "Hello there!"]
    s = corpus_scores(hyp, ref)
    assert s.bleu == pytest.approx(sacrebleu.corpus_bleu(hyp, [ref]).score)
    assert s.chrf == pytest.approx(sacrebleu.corpus_chrf(hyp, [ref]).score)
    assert "tok:13a" in s.bleu_signature and "case:mixed" in s.bleu_signature and "version:" in s.bleu_signature
    assert s.bleu_detail.startswith("BLEU = ")
    assert corpus_scores(ref, ref).bleu == pytest.approx(100.0)
    assert sentence_bleu(hyp, ref)[2] == pytest.approx(sacrebleu.sentence_bleu(hyp[2], [ref[2]]).score)
