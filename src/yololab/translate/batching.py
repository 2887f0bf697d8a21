"""Sentence pairs -> token ids -> batches holding about the same number of tokens.

Batching by token count (as fairseq's ``--max-tokens``) instead of by sentences keeps every step about
the same cost: pairs are sorted by length (ties in a seeded random order), cut into batches whose
padded size ``sentences x longest`` stays under the budget, and the batches are shuffled.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
from torch import Tensor

from yololab.translate.tokenizer import BOS, EOS, PAD, Tokenizer


@dataclass
class EncodedPairs:
    """Source ids end with EOS; target ids are ``BOS ... EOS`` (input = all but the last, output = all but the first)."""

    src: list[list[int]]
    tgt: list[list[int]]
    truncated: int  # pairs with a side cut to max_len tokens

    def __len__(self) -> int:
        return len(self.src)


def encode_pairs(tokenizer: Tokenizer, pairs: list[tuple[str, str]], max_len: int) -> EncodedPairs:
    """Tokenize; a side longer than ``max_len`` tokens (marks included) is truncated and counted."""
    src_ids = tokenizer.encode([s for s, _ in pairs])
    tgt_ids = tokenizer.encode([t for _, t in pairs])
    src, tgt, truncated = [], [], 0
    for s, t in zip(src_ids, tgt_ids):
        truncated += len(s) > max_len - 1 or len(t) > max_len - 2
        src.append(s[: max_len - 1] + [EOS])
        tgt.append([BOS] + t[: max_len - 2] + [EOS])
    return EncodedPairs(src, tgt, truncated)


def token_batches(data: EncodedPairs, max_tokens: int, seed: int = 0, epoch: int = 0, shuffle: bool = True,
                  rank: int = 0, world: int = 1) -> list[list[int]]:
    """Index batches whose padded size (sentences x longest side) is at most ``max_tokens``.

    Seeded by (seed, epoch), so a resumed epoch sees the same batches. With ``world`` processes each
    rank takes every ``world``-th batch of the same list (trimmed to a multiple of ``world``).
    """
    rng = random.Random(seed * 1_000_003 + epoch)
    order = list(range(len(data)))
    if shuffle:
        rng.shuffle(order)
    size = [max(len(data.src[i]), len(data.tgt[i])) for i in range(len(data))]
    order.sort(key=lambda i: size[i])  # stable: equal lengths keep the shuffled order
    batches, batch, longest = [], [], 0
    for i in order:
        if batch and max(longest, size[i]) * (len(batch) + 1) > max_tokens:
            batches.append(batch)
            batch, longest = [], 0
        batch.append(i)
        longest = max(longest, size[i])
    if batch:
        batches.append(batch)
    if shuffle:
        rng.shuffle(batches)
    if world > 1:
        batches = batches[: len(batches) // world * world][rank::world]
    return batches


def pad(seqs: list[list[int]]) -> Tensor:
    out = torch.full((len(seqs), max(map(len, seqs))), PAD, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.tensor(s)
    return out


def collate(data: EncodedPairs, idx: list[int]) -> tuple[Tensor, Tensor, Tensor]:
    """-> source ``(B, S)``, target input ``(B, T)`` (BOS ...), target output ``(B, T)`` (... EOS), padded."""
    tgt = pad([data.tgt[i] for i in idx])
    return pad([data.src[i] for i in idx]), tgt[:, :-1], tgt[:, 1:]


class BatchLoader:
    """An iterable of collated batches for one epoch (what the engine's ``train_loader`` returns)."""

    def __init__(self, data: EncodedPairs, batches: list[list[int]]):
        self.data, self.batches = data, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        for idx in self.batches:
            yield collate(self.data, idx)
