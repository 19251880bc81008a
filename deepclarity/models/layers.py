"""Small building blocks shared by the generators.

Every block creates its own activation modules: a module given as a default argument (the
prototype's ``act=nn.PReLU()``) is one object shared by every instance, so all its blocks trained a
single PReLU slope.
"""

from __future__ import annotations

from typing import Callable

from torch import Tensor, nn

Activation = Callable[[], nn.Module]


def conv(cin: int, cout: int, kernel: int = 3, *, stride: int = 1, groups: int = 1,
         bias: bool = True) -> nn.Conv2d:
    """A 'same'-padded convolution."""
    return nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=bias)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand -> 3x3 depthwise -> 1x1 project, plus identity.

    ``(B, C, H, W) -> (B, C, H, W)``. ``batch_norm`` reproduces the prototype (BN after each
    convolution, ReLU); without it the block suits SR, where BN hurts and costs time.
    """

    def __init__(self, channels: int, expansion: int = 6, *, batch_norm: bool = False,
                 act: Activation = nn.ReLU) -> None:
        super().__init__()
        hidden = channels * expansion
        layers: list[nn.Module] = [conv(channels, hidden, 1)]
        if batch_norm:
            layers.append(nn.BatchNorm2d(hidden))
        layers += [act(), conv(hidden, hidden, 3, groups=hidden)]
        if batch_norm:
            layers.append(nn.BatchNorm2d(hidden))
        layers += [act(), conv(hidden, channels, 1)]
        if batch_norm:
            layers.append(nn.BatchNorm2d(channels))
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResidualBlock(nn.Module):
    """SRResNet block: conv-(BN)-PReLU-conv-(BN) plus identity. ``(B,C,H,W) -> (B,C,H,W)``."""

    def __init__(self, channels: int, *, batch_norm: bool, act: Activation = nn.PReLU) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv(channels, channels, 3)]
        if batch_norm:
            layers.append(nn.BatchNorm2d(channels))
        layers += [act(), conv(channels, channels, 3)]
        if batch_norm:
            layers.append(nn.BatchNorm2d(channels))
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class PixelShuffleUp(nn.Sequential):
    """conv to ``C * factor^2`` channels -> PixelShuffle -> activation: ``(B,C,H,W) -> (B,C,fH,fW)``."""

    def __init__(self, channels: int, factor: int = 2, act: Activation = nn.PReLU) -> None:
        super().__init__(conv(channels, channels * factor * factor, 3), nn.PixelShuffle(factor), act())
