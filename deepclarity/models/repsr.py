"""MobileSR-Rep: the MobileSR family rebuilt from plain 3x3 convolutions, re-parameterised.

A plain 3x3 convolution is the shape a CPU (oneDNN) and mobile runtimes run fastest; depthwise
separable blocks have few parameters but little arithmetic per memory access. Like RepVGG / ECBSR /
SPAN, each :class:`RepConv` trains with several parallel branches (3x3, 1x1, a 1x1-expand-then-3x3
pair, identity) that are linear, so they fold *exactly* into one 3x3 convolution for inference
(:meth:`MobileSRRep.fold`): capacity is paid for at training time, not at inference time.

Everything runs at the input resolution; a 3x3 convolution makes ``3 * scale^2`` channels that a
pixel shuffle turns into the residual added to a bilinear upsampling of the input (MobileSR's
bilinear path). ``(B, 3, H, W)`` float32 in [0, 1] -> ``(B, 3, 4H, 4W)`` in about [0, 1].

Weights are stored folded (:meth:`MobileSRRep.inference_state_dict`, one 3x3 conv per layer);
loading them into the training form puts each kernel into the 3x3 branch with the other branches
zeroed (:meth:`MobileSRRep.load_inference_state_dict`), the same function, so training can continue
from shipped weights.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class RepConv(nn.Module):
    """``(B, cin, H, W) -> (B, cout, H, W)``: the sum of a 3x3 conv, a 1x1 conv, a 1x1 (to
    ``expand * cout``) followed by a 3x3 conv, and the identity when ``cin == cout``; or, once
    :meth:`fold`-ed, one 3x3 convolution computing exactly the same function."""

    def __init__(self, cin: int, cout: int, expand: int = 2) -> None:
        super().__init__()
        self.cin, self.cout = cin, cout
        self.folded: nn.Conv2d | None = None
        self.conv3 = nn.Conv2d(cin, cout, 3, padding=1)
        self.conv1 = nn.Conv2d(cin, cout, 1)
        self.expand = nn.Conv2d(cin, cout * expand, 1)
        self.squeeze = nn.Conv2d(cout * expand, cout, 3)  # no padding: the input is padded with the bias
        self.identity = cin == cout

    def forward(self, x: Tensor) -> Tensor:
        if self.folded is not None:
            return self.folded(x)
        # The expand branch pads with its own bias, which is what a zero-padded input gives after
        # the 1x1 convolution: the folded 3x3 conv (zero padding) then matches at the border too.
        e = self.expand(x)
        e = F.pad(e - self.expand.bias.view(1, -1, 1, 1), (1, 1, 1, 1)) + self.expand.bias.view(1, -1, 1, 1)
        out = self.conv3(x) + self.conv1(x) + self.squeeze(e)
        return out + x if self.identity else out

    @torch.no_grad()
    def folded_kernel(self) -> tuple[Tensor, Tensor]:
        """The single 3x3 ``(weight, bias)`` equal to the sum of the branches."""
        if self.folded is not None:
            return self.folded.weight.clone(), self.folded.bias.clone()
        w = self.conv3.weight.clone()
        b = self.conv3.bias.clone() + self.conv1.bias + self.squeeze.bias
        w[:, :, 1, 1] += self.conv1.weight[:, :, 0, 0]
        # squeeze(expand(x)): W[o, i] = sum_e S[o, e] * E[e, i]; the bias of expand passes through S.
        w += torch.einsum("oekl,ei->oikl", self.squeeze.weight, self.expand.weight[:, :, 0, 0])
        b += torch.einsum("oekl,e->o", self.squeeze.weight, self.expand.bias)
        if self.identity:
            w[torch.arange(self.cout), torch.arange(self.cin), 1, 1] += 1.0
        return w, b

    @torch.no_grad()
    def fold(self) -> None:
        """Replace the branches by one 3x3 convolution (inference form)."""
        if self.folded is None:
            w, b = self.folded_kernel()
            self.folded = nn.Conv2d(self.cin, self.cout, 3, padding=1).to(w.device)
            self.folded.weight.copy_(w)
            self.folded.bias.copy_(b)
            for name in ("conv3", "conv1", "expand", "squeeze"):
                delattr(self, name)

    @torch.no_grad()
    def load_folded(self, weight: Tensor, bias: Tensor) -> None:
        """Set the branches so they compute the folded ``(weight, bias)``: everything in the 3x3
        branch, the other branches zero (minus the identity)."""
        w = weight.clone()
        if self.identity:
            w[torch.arange(self.cout), torch.arange(self.cin), 1, 1] -= 1.0
        self.conv3.weight.copy_(w)
        self.conv3.bias.copy_(bias)
        for conv in (self.conv1, self.squeeze):
            conv.weight.zero_()
            conv.bias.zero_()


class MobileSRRep(nn.Module):
    """Head :class:`RepConv`, ``blocks`` RepConv + PReLU, a global skip, and a 3x3 conv to
    ``3 * scale^2`` channels, pixel-shuffled and added to the bilinear upsampling of the input."""

    def __init__(self, channels: int = 32, blocks: int = 5, scale: int = 4, expand: int = 2) -> None:
        super().__init__()
        self.scale = scale
        self.head = RepConv(3, channels, expand)
        self.body = nn.ModuleList(RepConv(channels, channels, expand) for _ in range(blocks))
        self.acts = nn.ModuleList(nn.PReLU(channels, 0.1) for _ in range(blocks))
        self.tail = RepConv(channels, 3 * scale * scale, expand)
        self.shuffle = nn.PixelShuffle(scale)
        # An untrained net starts as its bilinear path (~bicubic quality), not as noise.
        for conv in (self.tail.conv3, self.tail.conv1, self.tail.squeeze):
            conv.weight.data.mul_(0.1)
            conv.bias.data.zero_()

    def rep_convs(self) -> list[RepConv]:
        return [self.head, *self.body, self.tail]

    def forward(self, x: Tensor) -> Tensor:
        feat = self.head(x)
        y = feat
        for conv, act in zip(self.body, self.acts):
            y = act(conv(y))
        base = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return base + self.shuffle(self.tail(y + feat))

    def fold(self) -> "MobileSRRep":
        """Fold every :class:`RepConv` into one 3x3 convolution, in place; returns ``self``.
        :func:`deepclarity.runtime.prepare_model` does this before inference."""
        for conv in self.rep_convs():
            conv.fold()
        return self

    @property
    def is_folded(self) -> bool:
        return all(conv.folded is not None for conv in self.rep_convs())

    def inference_state_dict(self) -> dict[str, Tensor]:
        """The weights as shipped: the folded model's ``state_dict`` (one 3x3 kernel and bias per
        RepConv, ``<name>.folded.weight``/``.bias``, and the PReLU slopes)."""
        model = self if self.is_folded else copy.deepcopy(self).fold()
        return {k: v.detach().clone() for k, v in model.state_dict().items()}

    def load_inference_state_dict(self, state: dict[str, Tensor]) -> None:
        """Load :meth:`inference_state_dict` weights into this model, folded or not (unfolded: each
        kernel goes to the 3x3 branch, the other branches zero: the same function, trainable).

        Raises:
            ValueError: the keys or shapes do not fit (the message names them).
        """
        expected = {k: tuple(v.shape) for k, v in self.inference_state_dict().items()}
        got = {k: tuple(v.shape) for k, v in state.items()}
        if expected != got:
            missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
            shapes = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
            raise ValueError(f"missing {missing[:2]}, unexpected {extra[:2]}, shape mismatches {shapes[:2]}")
        with torch.no_grad():
            for name, module in self.named_modules():
                if isinstance(module, RepConv):
                    w, b = state[f"{name}.folded.weight"], state[f"{name}.folded.bias"]
                    if module.folded is not None:
                        module.folded.weight.copy_(w)
                        module.folded.bias.copy_(b)
                    else:
                        module.load_folded(w, b)
            self.acts.load_state_dict({k[len("acts."):]: v for k, v in state.items() if k.startswith("acts.")})
