"""C3D (Tran et al., "Learning Spatiotemporal Features with 3D Convolutional Networks", ICCV 2015).

Eight 3x3x3 convolutions (64, 128, 256, 256, 512, 512, 512, 512 channels) and five max pools (the first
spatial only, so time is pooled late), then fc6 and fc7 (4096 units, dropout 0.5) and the classifier.
On its native 16x112x112 clips pool5 yields 512x1x4x4 = 8,192 features for fc6; for other sizes an
adaptive average pool brings the map to 1x4x4 (the identity at the native size). It needs clips of at
least 16 frames (time is halved four times before pool5). ``fc_dim`` narrows fc6/fc7 for small data.
"""

from __future__ import annotations

import torch
from torch import nn

from yololab.video.models.conv3d import Conv3d


def _conv(c_in: int, c_out: int) -> list[nn.Module]:
    return [Conv3d(c_in, c_out, 3, padding=1), nn.ReLU(inplace=True)]


class C3D(nn.Module):
    input_layout = "CTHW"
    min_frames = 16

    def __init__(self, num_classes: int = 487, fc_dim: int = 4096, dropout: float = 0.5):
        super().__init__()
        self.features = nn.Sequential(
            *_conv(3, 64), nn.MaxPool3d((1, 2, 2), (1, 2, 2)),
            *_conv(64, 128), nn.MaxPool3d(2, 2),
            *_conv(128, 256), *_conv(256, 256), nn.MaxPool3d(2, 2),
            *_conv(256, 512), *_conv(512, 512), nn.MaxPool3d(2, 2),
            *_conv(512, 512), *_conv(512, 512), nn.MaxPool3d(2, 2, padding=(0, 1, 1)),
            nn.AdaptiveAvgPool3d((1, 4, 4)),
        )
        self.classifier = nn.Sequential(
            nn.Linear(512 * 16, fc_dim), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(fc_dim, fc_dim), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(fc_dim, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[2] < self.min_frames:
            raise ValueError(f"C3D needs clips of at least {self.min_frames} frames, got {x.shape[2]}")
        return self.classifier(self.features(x).flatten(1))
