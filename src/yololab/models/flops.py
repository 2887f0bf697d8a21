"""Count a detector's FLOPs with PyTorch's own operator-level counter.

``torch.utils.flop_counter.FlopCounterMode`` counts the FLOPs of the matrix operations that dominate
a CNN (convolutions, matmuls incl. attention, linear layers) as 2 x multiply-accumulates; it ignores
element-wise work (BatchNorm, activations, additions, pooling, upsampling, bias adds). The papers'
and the references' "GFLOPs" are the same convention, measured with ``thop`` (which hooks modules: it
also misses functional matmuls, such as YOLO11's attention, and adds the conv bias and BatchNorm
element-wise ops); tests/models/test_zoo_flops.py reconciles the two and finds them within 1%.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call
from torch.utils.flop_counter import FlopCounterMode


def count_flops(model: nn.Module, imgsz: int | tuple[int, int] = 640) -> float:
    """GFLOPs of one forward pass on a ``(1, 3, imgsz, imgsz)`` input (eval mode, no grad).

    The model's train/eval mode is restored afterwards; its weights are not changed. The forward runs on
    PyTorch's "meta" device (shapes only, no arithmetic), so counting even YOLOv3 at 640 is instant.
    """
    h, w = (imgsz, imgsz) if isinstance(imgsz, int) else imgsz
    # the same model with every parameter and buffer replaced by a shape-only meta tensor
    meta_state = {name: torch.empty_like(t, device="meta")
                  for name, t in [*model.named_parameters(), *model.named_buffers()]}
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            functional_call(model, meta_state, (torch.empty(1, 3, h, w, device="meta"),))
    finally:
        model.train(was_training)
    return counter.get_total_flops() / 1e9
