"""MiniSRResNet: SRResNet with 8 residual blocks, 64 channels and two pixel-shuffle x2 stages.

MiniSRGAN is the same generator fine-tuned adversarially (``training/train_sr.py``), so both
registry entries build this class.

* ``MiniSRResNet()`` — the shipped design: no BatchNorm (it hurts SR and costs time) and a global
  bicubic skip, so the network learns only the residual over bicubic upsampling.
* ``MiniSRResNet.seed()`` — the prototype: BatchNorm in every block, 9x9 head, tanh output on
  [-1, 1] data; 943K parameters (its single shared PReLU is replaced by one per layer).

``(B, 3, H, W)`` float32 in [0, 1] -> ``(B, 3, 4H, 4W)`` in about [0, 1] (not clamped).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .layers import PixelShuffleUp, ResidualBlock, conv


class MiniSRResNet(nn.Module):
    def __init__(self, channels: int = 64, blocks: int = 8, *, batch_norm: bool = False,
                 bicubic_skip: bool = True, tanh_output: bool = False) -> None:
        super().__init__()
        self.bicubic_skip = bicubic_skip
        self.tanh_output = tanh_output
        self.head = nn.Sequential(conv(3, channels, 9), nn.PReLU())
        self.body = nn.Sequential(*[ResidualBlock(channels, batch_norm=batch_norm) for _ in range(blocks)])
        fuse: list[nn.Module] = [conv(channels, channels, 3)]
        if batch_norm:
            fuse.append(nn.BatchNorm2d(channels))
        self.fuse = nn.Sequential(*fuse)
        self.up = nn.Sequential(PixelShuffleUp(channels), PixelShuffleUp(channels))
        self.tail = conv(channels, 3, 3)
        if bicubic_skip and not tanh_output:  # an untrained net starts as its bicubic path
            self.tail.weight.data.mul_(0.1)
            self.tail.bias.data.zero_()

    @classmethod
    def seed(cls) -> "MiniSRResNet":
        """The prototype's architecture (BatchNorm, no skip, tanh on [-1, 1])."""
        return cls(batch_norm=True, bicubic_skip=False, tanh_output=True)

    def forward(self, x: Tensor) -> Tensor:
        inp = x * 2.0 - 1.0 if self.tanh_output else x
        feat = self.head(inp)
        feat = feat + self.fuse(self.body(feat))
        out = self.tail(self.up(feat))
        if self.tanh_output:
            return (out.tanh() + 1.0) / 2.0
        if self.bicubic_skip:
            out = out + F.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False)
        return out
