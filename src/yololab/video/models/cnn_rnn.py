"""The seed plan's baseline, CNN -> LSTM -> FC, and its control, CNN -> mean over frames -> FC.

Each frame goes through a ResNet-18 (torchvision's ``resnet18`` without its classifier: 512 features
per frame); an LSTM or GRU of 1-2 layers reads the sequence; the last step's output (or the mean of all
steps) is classified. The control averages the frame features instead, so it sees which frames a clip
holds but not their order: on classes that differ only in the direction of time (left vs right, grow
vs shrink) it cannot do better than chance, and the gap between the two is what the recurrence learns.

Input ``(B, T, 3, H, W)``. ``freeze_encoder`` keeps the ResNet's weights and batch-norm statistics
fixed (useful with pretrained weights, loaded from a local torchvision state dict).

``frame_input="residual"`` feeds the encoder each frame minus the clip's mean frame, a cheap form of background
subtraction (in the family of TSN's RGB-difference input, Wang et al. 2016): what does not move (the
background, still objects) cancels, and what moves shows as its current place set against its faint
trail, so where an object is along its path becomes a local pattern a CNN sees in one frame. Without it a
ResNet trained from scratch on small frames must learn absolute positions through its padding, which
takes far more steps (docs/video.md, "Targets"). The control takes the option too and stays blind to
order either way: a mean over time of per-frame features is the same for a clip played backwards.

``frame_input="motion"`` (CNN+LSTM/GRU only) gives the encoder six channels per frame: the residual above and
the difference from the previous frame (zero for the first), TSN's RGB-difference input. A difference shows
where the object arrived and where it left, so the sense of a small turn or step is a local pattern of one
frame, up to the sign of object minus background, which the residual supplies. The encoder's first
convolution takes 6 channels (a torchvision ``resnet18`` file leaves it at its initialization, and says
so). The control refuses it: per-frame differences tell the direction of time, so a mean over them would
no longer be blind to order.
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn


FRAME_INPUTS = ("rgb", "residual", "motion")


def resnet18_encoder() -> nn.Module:
    """ResNet-18 up to its global average pool: ``(N, 3, H, W) -> (N, 512)``."""
    net = torchvision.models.resnet18(weights=None)
    net.fc = nn.Identity()
    return net


class FrameEncoderModel(nn.Module):
    """Shared part: per-frame ResNet-18 features ``(B, T, 512)`` and optional freezing."""

    input_layout = "TCHW"
    feature_dim = 512

    def __init__(self, freeze_encoder: bool = False, frame_input: str = "rgb"):
        super().__init__()
        if frame_input not in FRAME_INPUTS:
            raise ValueError(f"frame_input must be one of {', '.join(FRAME_INPUTS)}, got {frame_input!r}")
        self.encoder = resnet18_encoder()
        self.frame_input = frame_input
        if frame_input == "motion":  # residual + difference: 6 input channels
            c = self.encoder.conv1
            self.encoder.conv1 = nn.Conv2d(6, c.out_channels, c.kernel_size, c.stride, c.padding, bias=False)
        self.freeze_encoder = freeze_encoder
        if freeze_encoder:
            self.encoder.requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze_encoder:  # frozen means frozen: batch-norm statistics too
            self.encoder.eval()
        return self

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[:2]
        if self.frame_input != "rgb":
            residual = x - x.mean(1, keepdim=True)
            if self.frame_input == "motion":
                diff = torch.cat([torch.zeros_like(x[:, :1]), x[:, 1:] - x[:, :-1]], 1)
                residual = torch.cat([residual, diff], 2)
            x = residual
        return self.encoder(x.flatten(0, 1)).view(b, t, -1)


class CNNRNN(FrameEncoderModel):
    """ResNet-18 per frame -> LSTM/GRU (``layers`` deep, ``hidden`` wide) -> last step or mean -> linear."""

    def __init__(self, num_classes: int, rnn: str = "lstm", hidden: int = 256, layers: int = 1, pool: str = "last",
                 dropout: float = 0.0, freeze_encoder: bool = False, frame_input: str = "rgb"):
        super().__init__(freeze_encoder, frame_input)
        if rnn not in ("lstm", "gru") or pool not in ("last", "mean") or layers not in (1, 2):
            raise ValueError(f"rnn must be lstm|gru, pool last|mean, layers 1|2; got {rnn}, {pool}, {layers}")
        cell = nn.LSTM if rnn == "lstm" else nn.GRU
        self.rnn = cell(self.feature_dim, hidden, num_layers=layers, batch_first=True,
                        dropout=dropout if layers > 1 else 0.0)
        self.pool = pool
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq, _ = self.rnn(self.frame_features(x))  # (B, T, hidden)
        h = seq[:, -1] if self.pool == "last" else seq.mean(1)
        return self.fc(self.dropout(h))


class FrameAverage(FrameEncoderModel):
    """The control: ResNet-18 per frame -> mean over time -> linear (order of frames ignored)."""

    def __init__(self, num_classes: int, dropout: float = 0.0, freeze_encoder: bool = False, frame_input: str = "rgb"):
        if frame_input == "motion":
            raise ValueError("frame_avg (the control) takes frame_input rgb or residual: frame differences tell "
                             "the direction of time, and the control must stay blind to it")
        super().__init__(freeze_encoder, frame_input)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(self.feature_dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.frame_features(x).mean(1)))
