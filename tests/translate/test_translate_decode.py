"""Greedy and beam search: with the key/value cache they decode exactly what they decode without it."""

from __future__ import annotations

import pytest
import torch

from yololab.translate.batching import pad
from yololab.translate.decode import beam_search, greedy, length_penalty, translate_ids
from yololab.translate.tokenizer import BOS, EOS
from yololab.translate.translator import Translator


@pytest.fixture(scope="module")
def trained(tiny_run, toy_corpus):
    tr = Translator.from_checkpoint(tiny_run / "weights" / "last.pt")
    sentences = (toy_corpus / "test.en").read_text().splitlines()[:6]
    src = pad([ids + [EOS] for ids in tr.tokenizer.encode(sentences)])
    return tr.model, src


def test_greedy_cached_equals_uncached(trained):
    model, src = trained
    cached, plain = greedy(model, src), greedy(model, src, use_cache=False)
    assert cached == plain
    assert len({len(s) for s in cached}) > 1  # sentences of different lengths: EOS was generated


def test_beam_cached_equals_uncached(trained):
    model, src = trained
    (seqs, scores), (seqs2, scores2) = beam_search(model, src, 4, 0.6), beam_search(model, src, 4, 0.6, use_cache=False)
    assert seqs == seqs2
    torch.testing.assert_close(torch.tensor(scores), torch.tensor(scores2), atol=1e-4, rtol=0)


def sequence_logprob(model, src: torch.Tensor, seq: list[int]) -> float:
    tgt = torch.tensor([[BOS] + seq + [EOS]])
    with torch.no_grad():
        logp = model(src[None], tgt[:, :-1]).float().log_softmax(-1)
    return logp[0].gather(1, tgt[0, 1:, None]).sum().item()


def test_beam_scores_are_penalized_logprobs_and_beat_greedy(trained):
    model, src = trained
    limit = 64
    greedy_logprob = [sequence_logprob(model, src[i], seq) for i, seq in enumerate(greedy(model, src, max_len=limit))]
    for alpha in (0.0, 1.0):
        seqs, scores = beam_search(model, src, beam=5, alpha=alpha, max_len=limit)
        ended = [i for i in range(len(src)) if len(seqs[i]) < limit - 1]  # EOS chosen, not forced
        assert ended
        for i in ended:
            assert abs(sequence_logprob(model, src[i], seqs[i]) / length_penalty(len(seqs[i]) + 1, alpha)
                       - scores[i]) < 1e-3
        if alpha == 0.0:  # the search finds more likely translations than greedy decoding, on the whole
            assert sum(scores) > sum(greedy_logprob)


def test_beam_of_one_is_greedy_and_batching_keeps_order(trained):
    model, src = trained
    assert beam_search(model, src, beam=1, alpha=0.0)[0] == greedy(model, src)
    ids = [row[row != 0].tolist() for row in src]
    one_by_one = [greedy(model, torch.tensor([s]))[0] for s in ids]
    assert translate_ids(model, ids, beam=1, max_tokens=40) == one_by_one  # several batches, input order back
