"""``Conv3d``: ``torch.nn.Conv3d`` that steps around a wrong bf16 weight gradient of PyTorch's CPU kernel.

Measured with torch 2.14.1 on an AMD EPYC (native bf16): under CPU bf16 autocast, the weight gradient of
a convolution whose kernel is 3 deep in time with padding 1, applied to a 2-frame input, is garbage
(inf, NaN or values near 1e38 where float32 gives tens); the output and the input gradient are right,
and 1, 3, 4, 5, 6 or 8 frames are right. Video networks reach 2 frames in their late stages (R3D-18 and
R(2+1)D-18 at layer 3 for 8-frame clips, C3D's conv5 for 16-frame clips), so bf16 training produced a
non-finite loss within three steps. This layer computes exactly those calls in float32 and every other
call as ``nn.Conv3d`` does; parameters and state dicts are unchanged (``tests/video``)."""

from __future__ import annotations

import torch
from torch import nn


def bf16_weight_grad_is_wrong(x: torch.Tensor, conv: nn.Conv3d) -> bool:
    """True for the calls where CPU bf16 autocast gives a wrong weight gradient (see the module's docstring)."""
    return (x.device.type == "cpu" and x.shape[-3] == 2 and conv.kernel_size[0] == 3 and conv.padding[0] == 1
            and torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16)


class Conv3d(nn.Conv3d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bf16_weight_grad_is_wrong(x, self):
            with torch.autocast("cpu", enabled=False):
                return super().forward(x.float())
        return super().forward(x)
