"""A small video transformer with divided space-time attention (TimeSformer, Bertasius et al., ICML 2021).

Each frame is cut into ``patch`` x ``patch`` patches, embedded linearly, and given a learned position
(shared by all frames) and a learned time embedding (shared by all positions). Each block attends
first across time (a patch to the same place in the other frames), then across space (a patch to the
other patches of its frame, and the class token), then applies an MLP: the "divided" scheme that costs
``T + N`` instead of ``T * N`` keys per query. The class token goes through the spatial attention of
every frame and is averaged back; its final state is classified.

Written from primitives: :class:`Attention` is scaled dot-product attention with one input and one
output projection (tested equal to ``torch.nn.MultiheadAttention`` with the same weights).
"""

from __future__ import annotations

import torch
from torch import nn


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}")
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        weights = ((q * self.scale) @ k.transpose(-2, -1)).softmax(-1)  # (B, heads, N, N)
        return self.proj((weights @ v).transpose(1, 2).reshape(b, n, d))


class DividedBlock(nn.Module):
    """x = x + time-attn(LN(x)); x = x + space-attn(LN(x)); x = x + MLP(LN(x)), on (B, 1 + T*N, D)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm_t, self.attn_t = nn.LayerNorm(dim), Attention(dim, heads)
        self.norm_s, self.attn_s = nn.LayerNorm(dim), Attention(dim, heads)
        self.norm_mlp = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, int(dim * mlp_ratio)), nn.GELU(), nn.Linear(int(dim * mlp_ratio), dim))

    def forward(self, x: torch.Tensor, t: int) -> torch.Tensor:
        b, _, d = x.shape
        cls, p = x[:, :1], x[:, 1:]
        n = p.shape[1] // t
        # time: each of the N places attends over its T frames
        pt = p.reshape(b, t, n, d).transpose(1, 2).reshape(b * n, t, d)
        pt = pt + self.attn_t(self.norm_t(pt))
        p = pt.reshape(b, n, t, d).transpose(1, 2).reshape(b * t, n, d)
        # space: each frame's N patches plus (a copy of) the class token
        s = torch.cat([cls.repeat_interleave(t, 0), p], 1)
        s = s + self.attn_s(self.norm_s(s))
        cls = s[:, :1].reshape(b, t, d).mean(1, keepdim=True)
        x = torch.cat([cls, s[:, 1:].reshape(b, t * n, d)], 1)
        return x + self.mlp(self.norm_mlp(x))


class TimeSformer(nn.Module):
    """Patch embedding -> ``depth`` divided space-time blocks -> LayerNorm -> class token -> linear."""

    input_layout = "TCHW"

    def __init__(self, num_classes: int, img_size: int = 64, frames: int = 8, patch: int = 8, dim: int = 128,
                 depth: int = 4, heads: int = 4, dropout: float = 0.0):
        super().__init__()
        if img_size % patch:
            raise ValueError(f"image size {img_size} must be a multiple of the patch size {patch}")
        self.frames, self.img_size = frames, img_size
        self.patch_embed = nn.Conv2d(3, dim, patch, stride=patch)
        n = (img_size // patch) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + n, dim))
        self.time_embed = nn.Parameter(torch.zeros(1, frames, 1, dim))
        self.blocks = nn.ModuleList(DividedBlock(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(dim, num_classes)
        for p in (self.cls_token, self.pos_embed, self.time_embed):
            nn.init.trunc_normal_(p, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _, h, w = x.shape
        if t != self.frames or h != self.img_size or w != self.img_size:
            raise ValueError(f"TimeSformer was built for {self.frames}x{self.img_size}x{self.img_size} clips, "
                             f"got {t}x{h}x{w}")
        p = self.patch_embed(x.flatten(0, 1)).flatten(2).transpose(1, 2)  # (B*T, N, D)
        p = p + self.pos_embed[:, 1:]
        n, d = p.shape[1:]
        p = (p.reshape(b, t, n, d) + self.time_embed).reshape(b, t * n, d)
        x = torch.cat([(self.cls_token + self.pos_embed[:, :1]).expand(b, -1, -1), p], 1)
        for blk in self.blocks:
            x = blk(x, t)
        return self.head(self.dropout(self.norm(x)[:, 0]))
