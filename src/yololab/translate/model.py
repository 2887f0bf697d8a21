"""The encoder-decoder Transformer of "Attention Is All You Need" (Vaswani et al. 2017), from primitives.

    source ids -> embed * sqrt(d) + positions -> N x EncoderLayer -> memory
    target ids -> embed * sqrt(d) + positions -> N x DecoderLayer(memory) -> linear -> logits

With ``tie_embeddings`` (and one joint subword vocabulary) the source embedding, the target embedding
and the output projection are one matrix (Press & Wolf 2017), which helps small corpora such as
Multi30K. Pre-norm models end each stack with a LayerNorm. ``decode`` with a :class:`KVCache` feeds
one new target position at a time and reuses the keys and values of earlier positions.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from yololab.translate.attention import KVCache, MultiHeadAttention, causal_mask, padding_mask
from yololab.translate.layers import POSITIONAL, DecoderLayer, EncoderLayer


@dataclass
class TransformerConfig:
    vocab_size: int
    d_model: int = 256
    heads: int = 4
    enc_layers: int = 3
    dec_layers: int = 3
    d_ff: int = 1024
    dropout: float = 0.1
    attn_dropout: float = 0.0
    activation: str = "relu"
    norm_first: bool = True
    positional: str = "sinusoidal"
    max_len: int = 256
    tie_embeddings: bool = True
    pad_id: int = 0
    bos_id: int = 2
    eos_id: int = 3

    def to_dict(self) -> dict:
        return asdict(self)


class Transformer(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        if cfg.positional not in POSITIONAL:
            raise ValueError(f"positional must be one of {sorted(POSITIONAL)}, got {cfg.positional!r}")
        self.cfg = cfg
        d = cfg.d_model
        self.src_embed = nn.Embedding(cfg.vocab_size, d, padding_idx=cfg.pad_id)
        self.tgt_embed = self.src_embed if cfg.tie_embeddings else nn.Embedding(cfg.vocab_size, d, padding_idx=cfg.pad_id)
        self.src_pos = POSITIONAL[cfg.positional](d, cfg.max_len)
        self.tgt_pos = POSITIONAL[cfg.positional](d, cfg.max_len)
        self.embed_dropout = nn.Dropout(cfg.dropout)
        layer_args = {"d_model": d, "heads": cfg.heads, "d_ff": cfg.d_ff, "dropout": cfg.dropout,
                          "attn_dropout": cfg.attn_dropout, "activation": cfg.activation, "norm_first": cfg.norm_first}
        self.encoder = nn.ModuleList(EncoderLayer(**layer_args) for _ in range(cfg.enc_layers))
        self.decoder = nn.ModuleList(DecoderLayer(**layer_args) for _ in range(cfg.dec_layers))
        # pre-norm leaves the residual stream un-normalized: normalize once at the end of each stack
        self.enc_norm = nn.LayerNorm(d) if cfg.norm_first else nn.Identity()
        self.dec_norm = nn.LayerNorm(d) if cfg.norm_first else nn.Identity()
        self.generator = nn.Linear(d, cfg.vocab_size, bias=False)
        self._init_weights()
        if cfg.tie_embeddings:
            self.generator.weight = self.tgt_embed.weight

    def _init_weights(self) -> None:
        """Xavier-uniform matrices, zero biases, N(0, d^-1/2) embeddings (fairseq's choices)."""
        for name, p in self.named_parameters():
            if "embed" in name:
                nn.init.normal_(p, std=self.cfg.d_model ** -0.5)
                with torch.no_grad():
                    p[self.cfg.pad_id].zero_()
            elif p.dim() > 1 and "pos" not in name:
                nn.init.xavier_uniform_(p)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def _embed(self, embed: nn.Embedding, pos: nn.Module, ids: Tensor, offset: int = 0) -> Tensor:
        return self.embed_dropout(pos(embed(ids) * math.sqrt(self.cfg.d_model), offset))

    def encode(self, src: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, S)`` source ids -> memory ``(B, S, d)`` and its padding mask ``(B, 1, 1, S)``."""
        src_mask = padding_mask(src, self.cfg.pad_id)
        x = self._embed(self.src_embed, self.src_pos, src)
        for layer in self.encoder:
            x = layer(x, src_mask)
        return self.enc_norm(x), src_mask

    def decode(self, tgt: Tensor, memory: Tensor, src_mask: Tensor, cache: KVCache | None = None,
               offset: int = 0, keep: Tensor | None = None) -> Tensor:
        """Target ids ``(B, T)`` -> logits ``(B, T, vocab)``, or ``(n, vocab)`` for the ``n`` positions where
        the boolean ``keep`` ``(B, T)`` is True (training skips the padding: the output layer and the loss
        over the vocabulary are the costliest part of a small model's step).

        Without a cache, ``tgt`` is the whole prefix and a causal mask keeps each position from seeing
        later ones. With a cache, ``tgt`` holds the new positions from ``offset`` on, and the cache
        supplies the keys and values of positions ``0 .. offset-1`` (so no mask is needed for one
        position at a time).
        """
        t = tgt.size(1)
        tgt_mask = causal_mask(t, tgt.device) if cache is None or t > 1 else None
        if cache is not None and t > 1 and offset > 0:
            raise ValueError("a cached decode step takes one new position at a time (or the whole prefix from 0)")
        x = self._embed(self.tgt_embed, self.tgt_pos, tgt, offset)
        for layer in self.decoder:
            x = layer(x, memory, tgt_mask, src_mask, cache)
        if keep is not None:
            x = x[keep]
        return self.generator(self.dec_norm(x))

    def forward(self, src: Tensor, tgt: Tensor, keep: Tensor | None = None) -> Tensor:
        """Teacher forcing: logits for every target position (or those where ``keep``) given the source
        and the target prefix."""
        memory, src_mask = self.encode(src)
        return self.decode(tgt, memory, src_mask, keep=keep)

    @contextlib.contextmanager
    def recording_attention(self):
        """Within this block every attention module keeps its last weights (for the attention maps)."""
        modules = [m for m in self.modules() if isinstance(m, MultiHeadAttention)]
        for m in modules:
            m.record_weights = True
        try:
            yield
        finally:
            for m in modules:
                m.record_weights = False

    def attention_weights(self) -> dict[str, list[Tensor]]:
        """The weights recorded by the last call: encoder self-, decoder self- and cross-attention, per layer."""
        return {"encoder": [layer.self_attn.last_weights for layer in self.encoder],
                "decoder": [layer.self_attn.last_weights for layer in self.decoder],
                "cross": [layer.cross_attn.last_weights for layer in self.decoder]}


def num_parameters(model: nn.Module) -> int:
    """Parameters counted once even when tied."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
