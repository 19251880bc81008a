"""Losses of the generators and the exponential moving average of their weights.

Images are ``(B,3,H,W)`` float32 in [0, 1]; every loss returns a scalar tensor (compute them in fp32:
the FFT and the binary cross-entropy want it under autocast).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["PIXEL_LOSSES", "pixel_loss", "charbonnier", "frequency_loss", "feature_matching", "relativistic_loss",
           "EMA"]

#: Names accepted by :func:`pixel_loss` (``--loss``).
PIXEL_LOSSES = ("l1", "charbonnier")


def charbonnier(sr: Tensor, hr: Tensor, eps: float = 1e-6) -> Tensor:
    """Mean of ``sqrt((sr - hr)^2 + eps)``: L1 with a smooth minimum."""
    return torch.sqrt((sr - hr) ** 2 + eps).mean()


def pixel_loss(sr: Tensor, hr: Tensor, kind: str) -> Tensor:
    """``kind`` ``"charbonnier"`` (:func:`charbonnier`) or ``"l1"`` (mean absolute error)."""
    if kind == "charbonnier":
        return charbonnier(sr, hr)
    return F.l1_loss(sr, hr)


def frequency_loss(sr: Tensor, hr: Tensor) -> Tensor:
    """L1 between FFT amplitudes: asks for the truth's high-frequency energy, not its exact phase."""
    return F.l1_loss(torch.fft.rfft2(sr, norm="ortho").abs(), torch.fft.rfft2(hr, norm="ortho").abs())


def feature_matching(fake: list[Tensor], real: list[Tensor]) -> Tensor:
    """Mean over discriminator stages of L1(fake, real) / mean |real| (each stage weighs the same);
    ``real`` is not differentiated."""
    return sum(F.l1_loss(f, r.detach()) / (r.detach().abs().mean() + 1e-6) for f, r in zip(fake, real)) / len(real)


def relativistic_loss(pos: Tensor, neg: Tensor) -> Tensor:
    """ESRGAN's relativistic-average loss on logits ``(B,1)`` that pushes ``pos`` above ``neg`` on average."""
    ones, zeros = torch.ones_like(pos), torch.zeros_like(neg)
    return (F.binary_cross_entropy_with_logits(pos - neg.mean(), ones)
            + F.binary_cross_entropy_with_logits(neg - pos.mean(), zeros)) / 2


class EMA:
    """Exponential moving average of a model's weights (decay warmed up over the first steps).

    ``model`` is a frozen copy in eval mode: the one validated and shipped.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Move toward ``model`` after optimiser step ``step`` (0-based); buffers that are not
        floating point are copied."""
        d = min(self.decay, (1 + step) / (10 + step))
        for e, p in zip(self.model.state_dict().values(), model.state_dict().values()):
            if e.is_floating_point():
                e.lerp_(p, 1 - d)
            else:
                e.copy_(p)
