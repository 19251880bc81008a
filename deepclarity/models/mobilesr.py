"""MobileSR: a tiny x4 generator built from depthwise-separable inverted-residual blocks.

Two definitions live here:

* :class:`MobileSR` — the shipped design. All work happens at the *input* resolution; a 3x3
  convolution makes ``3 * scale^2`` channels that a pixel shuffle turns into the residual, which is
  added to a bilinear upsampling of the input (the "bilinear upsampling path"). No BatchNorm.
* :class:`MobileSRSeed` — the prototype's architecture, kept for comparison: BatchNorm everywhere,
  two "bilinear x2 then 3x3 conv" stages that run at 2x and 4x resolution (why it needs 2.25 s per
  1080p frame on our CPU), a tanh output. 121K parameters.

Both map ``(B, 3, H, W)`` float32 in [0, 1] to ``(B, 3, 4H, 4W)`` in about [0, 1] (not clamped).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .layers import InvertedResidual, conv


class MobileSR(nn.Module):
    """Low-resolution MobileSR: head conv, ``blocks`` inverted residuals, pixel-shuffle tail."""

    def __init__(self, channels: int = 32, blocks: int = 6, expansion: int = 2, scale: int = 4) -> None:
        super().__init__()
        self.scale = scale
        self.head = conv(3, channels, 3)
        self.body = nn.Sequential(*[InvertedResidual(channels, expansion) for _ in range(blocks)])
        self.tail = nn.Sequential(conv(channels, 3 * scale * scale, 3), nn.PixelShuffle(scale))
        # An untrained net starts as its bilinear path (~bicubic quality), not as noise.
        self.tail[0].weight.data.mul_(0.1)
        self.tail[0].bias.data.zero_()

    def forward(self, x: Tensor) -> Tensor:
        feat = self.head(x)
        feat = feat + self.body(feat)
        base = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return base + self.tail(feat)


class MobileSRSeed(nn.Module):
    """The prototype's MobileSR (32 channels, 6 blocks, expansion 6), with per-layer PReLUs."""

    def __init__(self, channels: int = 32, blocks: int = 6, expansion: int = 6) -> None:
        super().__init__()
        self.head = nn.Sequential(conv(3, channels, 3), nn.BatchNorm2d(channels), nn.PReLU())
        self.body = nn.Sequential(
            *[InvertedResidual(channels, expansion, batch_norm=True) for _ in range(blocks)],
        )
        self.fuse = nn.Sequential(conv(channels, channels, 3), nn.BatchNorm2d(channels))
        self.up = nn.Sequential(*[
            nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
                          conv(channels, channels, 3), nn.PReLU())
            for _ in range(2)
        ])
        self.tail = conv(channels, 3, 3)

    def forward(self, x: Tensor) -> Tensor:
        feat = self.head(x)
        feat = feat + self.fuse(self.body(feat))
        return (self.tail(self.up(feat)).tanh() + 1.0) / 2.0
