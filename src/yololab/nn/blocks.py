"""Building blocks of the YOLO backbones and necks, from Darknet-53's residual to YOLO11's C2PSA.

Each block is written from its definition; the submodule names (cv1, cv2, cv3, m, ...) are those of
the yolov5 / Ultralytics references so that their weights load by renaming the layer prefix only.
Shapes in comments use B = batch, C = channels, H x W = spatial size.
"""

from __future__ import annotations

import torch
from torch import nn

from yololab.nn.conv import Conv


def repeat(make_block, n: int) -> nn.Module:
    """``n`` blocks in sequence; a single block is returned as is (not wrapped), as the references do.

    yolov5 / Ultralytics wrap a YAML row repeated ``n > 1`` times in ``nn.Sequential`` (weight keys
    ``model.6.0.cv1...``) and leave ``n == 1`` bare (``model.2.cv1...``); mirroring that keeps weight
    import a prefix rename.
    """
    return make_block() if n == 1 else nn.Sequential(*(make_block() for _ in range(n)))


class Concat(nn.Module):
    """Concatenate a list of tensors along the channel dimension (a module so it shows up as a block)."""

    def __init__(self, dim: int = 1):
        super().__init__()
        self.dim = dim

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(xs, self.dim)


class Upsample(nn.Upsample):
    """Nearest-neighbour 2x upsampling (a module so it shows up as a block)."""

    def __init__(self, scale_factor: int = 2):
        super().__init__(scale_factor=scale_factor, mode="nearest")


class Bottleneck(nn.Module):
    """Two convolutions with an optional residual connection: ``x + cv2(cv1(x))``.

    ``k`` gives the two kernel sizes: (3, 3) in C2f / C3k2 (Ultralytics), (1, 3) in C3 and in the
    Darknet residual. The hidden width is ``c2 * e``. The shortcut is used only when c1 == c2.
    """

    def __init__(self, c1: int, c2: int, shortcut: bool = True, g: int = 1, k: tuple[int, int] = (3, 3),
                 e: float = 0.5, act: bool | str = True):
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, k[0], 1, act=act)
        self.cv2 = Conv(c_, c2, k[1], 1, g=g, act=act)
        self.add = shortcut and c1 == c2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class DarknetResidual(Bottleneck):
    """Darknet-53's residual unit: 1x1 conv to half the channels, 3x3 conv back, plus the input.

    Identical to yolov5's ``Bottleneck(c1, c2, shortcut, e=0.5)``. (The YOLOv3 neck's 1x1 / 3x3 pairs
    have no shortcut: they are plain ``Bottleneck(shortcut=False, k=(1, 3))``.)
    """

    def __init__(self, c1: int, c2: int, shortcut: bool = True, act: bool | str = True):
        super().__init__(c1, c2, shortcut, k=(1, 3), e=0.5, act=act)


class C3(nn.Module):
    """CSP bottleneck with 3 convolutions (YOLOv5).

    The input takes two paths: ``cv1`` then ``n`` bottlenecks, and a plain 1x1 ``cv2``; ``cv3`` fuses
    their concatenation. Only half the channels go through the expensive bottlenecks.
    """

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True, g: int = 1, e: float = 0.5,
                 k: tuple[int, int] = (1, 3)):
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c1, c_, 1, 1)
        self.cv3 = Conv(2 * c_, c2, 1)
        self.m = nn.Sequential(*(Bottleneck(c_, c_, shortcut, g, k=k, e=1.0) for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))


class C3k(C3):
    """C3 whose bottlenecks use k x k kernels in both convolutions (YOLO11, inside C3k2)."""

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True, g: int = 1, e: float = 0.5,
                 k: int = 3):
        super().__init__(c1, c2, n, shortcut, g, e, k=(k, k))


class C2f(nn.Module):
    """CSP bottleneck with 2 convolutions, "faster" (YOLOv8).

    ``cv1`` splits into two halves (a, b); each of the ``n`` blocks processes the previous output and
    every intermediate output is kept, so ``cv2`` sees ``(2 + n) * c`` channels: a dense, cheap
    gradient path.
    """

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = False, g: int = 1, e: float = 0.5):
        super().__init__()
        self.c = int(c2 * e)  # hidden channels of each branch
        self.cv1 = Conv(c1, 2 * self.c, 1, 1)
        self.cv2 = Conv((2 + n) * self.c, c2, 1)
        self.m = nn.ModuleList(Bottleneck(self.c, self.c, shortcut, g, k=(3, 3), e=1.0) for _ in range(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = list(self.cv1(x).chunk(2, 1))  # [a, b], each (B, c, H, W)
        for block in self.m:
            y.append(block(y[-1]))
        return self.cv2(torch.cat(y, 1))


class C3k2(C2f):
    """YOLO11's C2f variant: each inner block is a C3k (``c3k=True``) or a plain Bottleneck (e=0.5)."""

    def __init__(self, c1: int, c2: int, n: int = 1, c3k: bool = False, e: float = 0.5, g: int = 1,
                 shortcut: bool = True):
        super().__init__(c1, c2, n, shortcut, g, e)
        self.m = nn.ModuleList(
            C3k(self.c, self.c, 2, shortcut, g) if c3k else Bottleneck(self.c, self.c, shortcut, g)
            for _ in range(n)
        )


class SPP(nn.Module):
    """Spatial pyramid pooling (YOLOv3-SPP / YOLOv4): max-pools of several sizes side by side."""

    def __init__(self, c1: int, c2: int, k: tuple[int, ...] = (5, 9, 13)):
        super().__init__()
        c_ = c1 // 2
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c_ * (len(k) + 1), c2, 1, 1)
        self.m = nn.ModuleList(nn.MaxPool2d(kernel_size=x, stride=1, padding=x // 2) for x in k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cv1(x)
        return self.cv2(torch.cat([x] + [pool(x) for pool in self.m], 1))


class SPPF(nn.Module):
    """SPP, fast: three 5x5 max-pools in a row give the same values as parallel 5, 9 and 13 pools."""

    def __init__(self, c1: int, c2: int, k: int = 5):
        super().__init__()
        c_ = c1 // 2
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c_ * 4, c2, 1, 1)
        self.m = nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cv1(x)
        y1 = self.m(x)  # receptive field 5
        y2 = self.m(y1)  # 9
        y3 = self.m(y2)  # 13
        return self.cv2(torch.cat((x, y1, y2, y3), 1))


class Attention(nn.Module):
    """Multi-head self-attention over the H*W positions of a feature map, plus a depthwise positional conv.

    One 1x1 conv ``qkv`` produces, per head, a query and a key of ``key_dim = head_dim * attn_ratio``
    channels and a value of ``head_dim`` channels (laid out head by head). The output is
    ``proj(attention(v) + pe(v))``, where ``pe`` is a 3x3 depthwise conv on the values.
    """

    def __init__(self, dim: int, num_heads: int = 8, attn_ratio: float = 0.5):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.key_dim = int(self.head_dim * attn_ratio)
        self.scale = self.key_dim ** -0.5
        self.qkv = Conv(dim, dim + 2 * self.key_dim * num_heads, 1, act=False)
        self.proj = Conv(dim, dim, 1, act=False)
        self.pe = Conv(dim, dim, 3, 1, g=dim, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        N = H * W
        qkv = self.qkv(x).view(B, self.num_heads, 2 * self.key_dim + self.head_dim, N)
        q, k, v = qkv.split([self.key_dim, self.key_dim, self.head_dim], dim=2)  # (B, heads, d, N) each
        attn = ((q * self.scale).transpose(-2, -1) @ k).softmax(dim=-1)  # (B, heads, N, N)
        out = (v @ attn.transpose(-2, -1)).view(B, C, H, W)  # weighted sum of values
        return self.proj(out + self.pe(v.reshape(B, C, H, W)))


class PSABlock(nn.Module):
    """Transformer-style block on a feature map: ``x + attn(x)`` then ``x + ffn(x)`` (1x1 conv MLP)."""

    def __init__(self, c: int, attn_ratio: float = 0.5, num_heads: int = 4, shortcut: bool = True):
        super().__init__()
        self.attn = Attention(c, attn_ratio=attn_ratio, num_heads=num_heads)
        self.ffn = nn.Sequential(Conv(c, c * 2, 1), Conv(c * 2, c, 1, act=False))
        self.add = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x) if self.add else self.attn(x)
        x = x + self.ffn(x) if self.add else self.ffn(x)
        return x


class C2PSA(nn.Module):
    """YOLO11's attention stage: split in two halves, run ``n`` PSABlocks on one, fuse both with ``cv2``."""

    def __init__(self, c1: int, c2: int, n: int = 1, e: float = 0.5):
        super().__init__()
        assert c1 == c2, "C2PSA keeps the channel count"
        self.c = int(c1 * e)
        self.cv1 = Conv(c1, 2 * self.c, 1, 1)
        self.cv2 = Conv(2 * self.c, c1, 1)
        self.m = nn.Sequential(*(PSABlock(self.c, attn_ratio=0.5, num_heads=max(self.c // 64, 1))
                                 for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.cv1(x).split((self.c, self.c), dim=1)
        return self.cv2(torch.cat((a, self.m(b)), 1))


class DFL(nn.Module):
    """Distribution Focal Loss integral (Generalized Focal Loss): expected value of a discrete distribution.

    Each box side is predicted as ``reg_max`` logits over the distances 0 .. reg_max-1 (in stride units);
    the distance is ``sum_i softmax(logits)_i * i``, computed as a fixed 1x1 conv with weights 0..reg_max-1
    (a non-trainable parameter, as in the reference, so parameter counts match).
    """

    def __init__(self, c1: int = 16):
        super().__init__()
        self.c1 = c1
        self.conv = nn.Conv2d(c1, 1, 1, bias=False).requires_grad_(False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.arange(c1, dtype=torch.float).view(1, c1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 4 * c1, A) logits -> (B, 4, A) expected distances."""
        b, _, a = x.shape
        prob = x.view(b, 4, self.c1, a).transpose(2, 1).softmax(1)  # (B, c1, 4, A)
        return self.conv(prob).view(b, 4, a)
