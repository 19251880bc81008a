"""SRGAN-style discriminator used to fine-tune MiniSRGAN.

Eight 3x3 convolutions (64 -> 512 channels, stride 2 every second one), LeakyReLU, then global
average pooling and a two-layer head, so any patch size works. ``forward(x, features=True)``
also returns the activations after each stage for a feature-matching loss (no pretrained VGG exists
offline). Input ``(B, 3, H, W)`` in [0, 1]; output logits ``(B, 1)``.
"""

from __future__ import annotations

from torch import Tensor, nn

from .layers import conv


class Discriminator(nn.Module):
    def __init__(self, channels: int = 64, batch_norm: bool = True) -> None:
        super().__init__()
        widths = [channels, channels, 2 * channels, 2 * channels, 4 * channels, 4 * channels,
                  8 * channels, 8 * channels]
        stages = []
        cin = 3
        for i, cout in enumerate(widths):
            layers: list[nn.Module] = [conv(cin, cout, 3, stride=2 if i % 2 else 1, bias=not (batch_norm and i))]
            if batch_norm and i:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            stages.append(nn.Sequential(*layers))
            cin = cout
        self.stages = nn.ModuleList(stages)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 16 * channels),
                                  nn.LeakyReLU(0.2, inplace=True), nn.Linear(16 * channels, 1))

    def forward(self, x: Tensor, features: bool = False):
        feats = []
        h = x * 2.0 - 1.0
        for stage in self.stages:
            h = stage(h)
            feats.append(h)
        logits = self.head(h)
        return (logits, feats) if features else logits
