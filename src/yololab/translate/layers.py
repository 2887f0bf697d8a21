"""Positional encodings, the feed-forward block, and the encoder and decoder layers.

A layer is a residual stack of sub-blocks (attention, feed-forward), each wrapped as either
post-norm, ``x = norm(x + drop(f(x)))`` as in the original paper, or pre-norm,
``x = x + drop(f(norm(x)))``, which trains stably without a long warm-up (Xiong et al. 2020).
Attribute names follow ``nn.TransformerEncoderLayer`` / ``nn.TransformerDecoderLayer``
(``linear1``, ``norm1`` ...), so their weights map one to one.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from yololab.translate.attention import KVCache, MultiHeadAttention


class SinusoidalPositionalEncoding(nn.Module):
    """PE[pos, 2i] = sin(pos / 10000^(2i/d)), PE[pos, 2i+1] = cos(...): fixed, no parameters."""

    def __init__(self, d_model: int, max_len: int = 512):
        super().__init__()
        pos = torch.arange(max_len, dtype=torch.float32)[:, None]
        freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(pos * freq)
        pe[:, 1::2] = torch.cos(pos * freq[: d_model // 2])
        self.register_buffer("pe", pe, persistent=False)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        """Add the encodings of positions ``offset .. offset + T - 1`` to ``x`` ``(B, T, d)``."""
        return x + self.pe[offset: offset + x.size(1)].to(x.dtype)


class LearnedPositionalEncoding(nn.Module):
    """One trained vector per position (as BERT / GPT-2)."""

    def __init__(self, d_model: int, max_len: int = 512):
        super().__init__()
        self.pe = nn.Embedding(max_len, d_model)
        nn.init.normal_(self.pe.weight, std=0.02)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        return x + self.pe.weight[offset: offset + x.size(1)].to(x.dtype)


POSITIONAL = {"sinusoidal": SinusoidalPositionalEncoding, "learned": LearnedPositionalEncoding}


class FeedForward(nn.Module):
    """Position-wise linear -> activation -> dropout -> linear."""

    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0, activation: str = "relu"):
        super().__init__()
        if activation not in ("relu", "gelu"):
            raise ValueError(f"activation must be 'relu' or 'gelu', got {activation!r}")
        self.linear1, self.linear2 = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)
        self.act = F.relu if activation == "relu" else F.gelu
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear2(self.dropout(self.act(self.linear1(x))))


class EncoderLayer(nn.Module):
    """Self-attention over the source, then the feed-forward block."""

    def __init__(self, d_model: int, heads: int, d_ff: int, dropout: float = 0.1, attn_dropout: float = 0.0,
                 activation: str = "relu", norm_first: bool = True, eps: float = 1e-5):
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, heads, attn_dropout)
        self.ff = FeedForward(d_model, d_ff, dropout, activation)
        self.norm1, self.norm2 = nn.LayerNorm(d_model, eps=eps), nn.LayerNorm(d_model, eps=eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, src_mask: Tensor | None = None) -> Tensor:
        if self.norm_first:
            h = self.norm1(x)
            x = x + self.dropout(self.self_attn(h, mask=src_mask))
            return x + self.dropout(self.ff(self.norm2(x)))
        x = self.norm1(x + self.dropout(self.self_attn(x, mask=src_mask)))
        return self.norm2(x + self.dropout(self.ff(x)))


class DecoderLayer(nn.Module):
    """Masked self-attention over the target so far, cross-attention to the source, feed-forward."""

    def __init__(self, d_model: int, heads: int, d_ff: int, dropout: float = 0.1, attn_dropout: float = 0.0,
                 activation: str = "relu", norm_first: bool = True, eps: float = 1e-5):
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, heads, attn_dropout)
        self.cross_attn = MultiHeadAttention(d_model, heads, attn_dropout)
        self.ff = FeedForward(d_model, d_ff, dropout, activation)
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(d_model, eps=eps) for _ in range(3))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, memory: Tensor, tgt_mask: Tensor | None = None, memory_mask: Tensor | None = None,
                cache: KVCache | None = None) -> Tensor:
        drop = self.dropout
        if self.norm_first:
            x = x + drop(self.self_attn(self.norm1(x), mask=tgt_mask, cache=cache))
            x = x + drop(self.cross_attn(self.norm2(x), memory, mask=memory_mask, cache=cache))
            return x + drop(self.ff(self.norm3(x)))
        x = self.norm1(x + drop(self.self_attn(x, mask=tgt_mask, cache=cache)))
        x = self.norm2(x + drop(self.cross_attn(x, memory, mask=memory_mask, cache=cache)))
        return self.norm3(x + drop(self.ff(x)))
