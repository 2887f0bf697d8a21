"""Scaled dot-product attention, multi-head attention with a key/value cache, and the two masks.

Masks are boolean and say where a query **may** look (True = attend), broadcastable to
``(batch, heads, queries, keys)``; this is the convention of ``F.scaled_dot_product_attention``
(``nn.MultiheadAttention`` uses the opposite one, True = blocked).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def padding_mask(tokens: Tensor, pad_id: int) -> Tensor:
    """``(B, S)`` token ids -> ``(B, 1, 1, S)``: True at real tokens, False at padding (keys to ignore)."""
    return (tokens != pad_id)[:, None, None, :]


def causal_mask(size: int, device: torch.device | str | None = None) -> Tensor:
    """``(1, 1, T, T)`` lower-triangular: position t sees positions 0..t (no peeking at the future)."""
    return torch.ones(size, size, dtype=torch.bool, device=device).tril()[None, None]


def scaled_dot_product_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None,
                                 dropout: float = 0.0) -> tuple[Tensor, Tensor]:
    """softmax(q k^T / sqrt(d) + mask) v, as in "Attention Is All You Need" (eq. 1).

    q ``(..., Tq, d)``, k and v ``(..., Tk, d)``; returns the output ``(..., Tq, d)`` and the
    attention weights ``(..., Tq, Tk)`` (before dropout). A query whose keys are all masked gets
    zero weights (and so a zero output) rather than NaN.
    """
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(-1)
    if mask is not None:
        weights = weights.nan_to_num(0.0)  # rows with every key masked: softmax of all -inf
    out = F.dropout(weights, dropout) @ v if dropout > 0 else weights @ v
    return out, weights


class KVCache:
    """Keys and values already computed during incremental decoding, one entry per attention module.

    Self-attention appends one position per step; cross-attention projects the encoder output once
    and reuses it. ``reorder(index)`` follows beam search when it reshuffles hypotheses.
    """

    def __init__(self):
        self.store: dict[int, tuple[Tensor, Tensor]] = {}

    def get(self, key: int) -> tuple[Tensor, Tensor] | None:
        return self.store.get(key)

    def set(self, key: int, k: Tensor, v: Tensor) -> None:
        self.store[key] = (k, v)

    def reorder(self, index: Tensor) -> None:
        self.store = {key: (k.index_select(0, index), v.index_select(0, index)) for key, (k, v) in self.store.items()}

    def __len__(self) -> int:
        return len(self.store)


class MultiHeadAttention(nn.Module):
    """Project to ``heads`` subspaces, attend in each, concatenate, project back (the paper's fig. 2).

    The query/key/value projections are one packed ``(3d, d)`` linear layer (one matmul for
    self-attention), laid out as ``nn.MultiheadAttention``'s ``in_proj_weight`` so weights map one to one.
    """

    def __init__(self, d_model: int, heads: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model={d_model} is not divisible by heads={heads}")
        self.d_model, self.heads, self.dropout = d_model, heads, dropout
        self.in_proj = nn.Linear(d_model, 3 * d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)
        self.last_weights: Tensor | None = None  # (B, heads, Tq, Tk) when record_weights is on
        self.record_weights = False

    def _split(self, x: Tensor) -> Tensor:  # (B, T, d) -> (B, heads, T, d/heads)
        b, t, _ = x.shape
        return x.view(b, t, self.heads, -1).transpose(1, 2)

    def forward(self, query: Tensor, memory: Tensor | None = None, mask: Tensor | None = None,
                cache: KVCache | None = None) -> Tensor:
        """Self-attention when ``memory`` is None, else cross-attention from ``query`` to ``memory``.

        With a ``cache``, self-attention appends this call's keys/values to the cached ones (``query``
        holds only the new positions) and cross-attention projects ``memory`` once.
        """
        d = self.d_model
        w, b = self.in_proj.weight, self.in_proj.bias
        if memory is None:  # self-attention: one matmul for q, k, v
            q, k, v = self.in_proj(query).split(d, dim=-1)
            q, k, v = self._split(q), self._split(k), self._split(v)
            if cache is not None:
                past = cache.get(id(self))
                if past is not None:
                    k, v = torch.cat([past[0], k], 2), torch.cat([past[1], v], 2)
                cache.set(id(self), k, v)
        else:  # cross-attention: q from the decoder, k and v from the encoder output
            q = self._split(F.linear(query, w[:d], None if b is None else b[:d]))
            past = cache.get(id(self)) if cache is not None else None
            if past is None:
                k, v = F.linear(memory, w[d:], None if b is None else b[d:]).split(d, dim=-1)
                k, v = self._split(k), self._split(v)
                if cache is not None:
                    cache.set(id(self), k, v)
            else:
                k, v = past
        out, weights = scaled_dot_product_attention(q, k, v, mask, self.dropout if self.training else 0.0)
        if self.record_weights:
            self.last_weights = weights.detach()
        bsz, _, t, _ = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(bsz, t, d))
