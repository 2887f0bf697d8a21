"""Greedy and beam-search decoding, batched, with or without the key/value cache.

Both feed the decoder one position per step. With ``use_cache`` (the default) each step runs the new
position only and reads earlier keys and values from a :class:`KVCache`; without it each step re-runs
the whole prefix, which is slower and gives the same tokens (the tests check it).

Beam search keeps ``beam`` live hypotheses per sentence. A candidate that ends the sentence (EOS)
among the best ``beam`` of a step is set aside with its score divided by the GNMT length penalty
``((5 + length) / 6) ** alpha`` (Wu et al. 2016); a sentence is done when ``beam`` hypotheses are set
aside, and the best of them by penalized score wins.
"""

from __future__ import annotations

import torch
from torch import Tensor

from yololab.translate.attention import KVCache
from yololab.translate.model import Transformer
from yololab.translate.tokenizer import BOS, EOS, PAD


def output_limits(src: Tensor, model: Transformer, max_len: int | None = None, a: float = 1.5, b: int = 10) -> Tensor:
    """Per sentence, the most tokens to generate (EOS included): ``max_len`` if given, else ``a * source
    length + b``; never beyond the model's positions. Per sentence, so that a sentence decodes the same
    whatever it is batched with."""
    if max_len is not None:
        limits = torch.full((src.size(0),), max_len, device=src.device)
    else:
        limits = (a * (src != PAD).sum(1)).long() + b
    return limits.clamp(1, model.cfg.max_len - 1)


def _step(model: Transformer, tokens: Tensor, memory: Tensor, src_mask: Tensor, cache: KVCache | None,
          last: Tensor) -> Tensor:
    """Log-probabilities (float32) of the next token after ``tokens`` ``(N, t)``.

    Padding and BOS are never generated; rows where ``last`` is True may only end (EOS).
    """
    t = tokens.size(1)
    if cache is not None:
        logits = model.decode(tokens[:, -1:], memory, src_mask, cache, offset=t - 1)
    else:
        logits = model.decode(tokens, memory, src_mask)
    logp = logits[:, -1].float().log_softmax(-1)
    logp[:, [PAD, BOS]] = float("-inf")
    if last.any():
        only_eos = torch.full_like(logp[0], float("-inf"))
        only_eos[EOS] = 0.0
        logp[last] = only_eos
    return logp


@torch.no_grad()
def greedy(model: Transformer, src: Tensor, max_len: int | None = None, use_cache: bool = True) -> list[list[int]]:
    """Most likely token at every step; returns the ids of each sentence without BOS/EOS.

    ``max_len`` counts generated tokens including EOS (default: see :func:`output_limits`).
    """
    limits = output_limits(src, model, max_len)
    memory, src_mask = model.encode(src)
    tokens = torch.full((src.size(0), 1), BOS, dtype=torch.long, device=src.device)
    done = torch.zeros(src.size(0), dtype=torch.bool, device=src.device)
    cache = KVCache() if use_cache else None
    for step in range(int(limits.max())):
        nxt = _step(model, tokens, memory, src_mask, cache, step >= limits - 1).argmax(-1)
        nxt = nxt.masked_fill(done, PAD)
        tokens = torch.cat([tokens, nxt[:, None]], 1)
        done |= nxt == EOS
        if done.all():
            break
    return [_strip(row) for row in tokens[:, 1:].tolist()]


def _strip(ids: list[int]) -> list[int]:
    return ids[: ids.index(EOS)] if EOS in ids else [i for i in ids if i != PAD]


def length_penalty(length: int, alpha: float) -> float:
    return ((5 + length) / 6) ** alpha


@torch.no_grad()
def beam_search(model: Transformer, src: Tensor, beam: int = 5, alpha: float = 0.6, max_len: int | None = None,
                use_cache: bool = True) -> tuple[list[list[int]], list[float]]:
    """Best hypothesis per sentence (ids without BOS/EOS) and its length-penalized log-probability.

    A sentence stops when it has ``beam`` finished hypotheses and none of its live ones, at its
    current length penalty, scores above the best finished one (exact for ``alpha = 0``, where
    scores only fall as hypotheses grow).
    """
    if beam < 1:
        raise ValueError(f"beam must be >= 1, got {beam}")
    n, k = src.size(0), beam
    limits = output_limits(src, model, max_len).repeat_interleave(k)
    memory, src_mask = model.encode(src)
    memory, src_mask = memory.repeat_interleave(k, 0), src_mask.repeat_interleave(k, 0)
    tokens = torch.full((n * k, 1), BOS, dtype=torch.long, device=src.device)
    scores = torch.full((n, k), float("-inf"), device=src.device)
    scores[:, 0] = 0.0  # all beams start identical: expand only the first
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(n)]
    done = [False] * n
    cache = KVCache() if use_cache else None
    base = torch.arange(n, device=src.device)[:, None] * k
    for step in range(int(limits.max())):
        logp = _step(model, tokens, memory, src_mask, cache, step >= limits - 1)
        vocab = logp.size(-1)
        cand = (scores.view(-1, 1) + logp).view(n, k * vocab)
        top_scores, top_idx = cand.topk(2 * k, dim=1)
        origin, token = top_idx // vocab, top_idx % vocab
        is_eos = token == EOS
        lp = length_penalty(step + 1, alpha)
        for b, j in (is_eos[:, :k] & top_scores[:, :k].isfinite()).nonzero().tolist():
            if not done[b]:
                finished[b].append((top_scores[b, j].item() / lp, tokens[b * k + origin[b, j], 1:].tolist()))
        live_scores, pick = top_scores.masked_fill(is_eos, float("-inf")).topk(k, dim=1)
        best_live = (live_scores[:, 0] / lp).tolist()
        for b in range(n):
            if not done[b] and len(finished[b]) >= k:
                finished[b] = sorted(finished[b], key=lambda x: -x[0])[:k]
                done[b] = finished[b][0][0] >= best_live[b]
        if all(done):
            break
        beams = (base + origin.gather(1, pick)).view(-1)
        tokens = torch.cat([tokens.index_select(0, beams), token.gather(1, pick).view(-1, 1)], 1)
        scores = live_scores
        if cache is not None:
            cache.reorder(beams)
    best = [max(f, key=lambda x: x[0]) for f in finished]
    return [seq for _, seq in best], [score for score, _ in best]


def translate_ids(model: Transformer, src_ids: list[list[int]], beam: int = 1, alpha: float = 0.6,
                  max_tokens: int = 4096, use_cache: bool = True) -> list[list[int]]:
    """Decode many sentences in length-sorted batches of about ``max_tokens`` source tokens; input order kept."""
    from yololab.translate.batching import pad

    device = next(model.parameters()).device
    order = sorted(range(len(src_ids)), key=lambda i: len(src_ids[i]))
    out: list[list[int]] = [[] for _ in src_ids]
    i = 0
    while i < len(order):
        longest, j = 0, i
        while j < len(order) and max(longest, len(src_ids[order[j]])) * (j - i + 1) * beam <= max_tokens:
            longest = max(longest, len(src_ids[order[j]]))
            j += 1
        j = max(j, i + 1)
        batch = [order[x] for x in range(i, j)]
        src = pad([src_ids[x] for x in batch]).to(device)
        if beam == 1:
            hyps = greedy(model, src, use_cache=use_cache)
        else:
            hyps = beam_search(model, src, beam, alpha, use_cache=use_cache)[0]
        for x, h in zip(batch, hyps):
            out[x] = h
        i = j
    return out
