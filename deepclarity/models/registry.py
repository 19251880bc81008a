"""The model zoo: one name per network, mapped to its builder, task, scale and weight file.

``create_model("mobilesr")`` builds the network and loads ``weights/mobilesr.safetensors``
(strictly); ``pretrained=False`` gives the random initialisation used to start training.
Weight files are looked for in ``$DEEPCLARITY_WEIGHTS`` or, by default, the repository's
``weights/`` folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable

from torch import nn

from ..errors import ModelError
from .detector import build_detector
from .discriminator import Discriminator
from .mobilesr import MobileSR, MobileSRSeed
from .srresnet import MiniSRResNet
from .weights import count_params, load_weights, read_card

__all__ = ["ModelSpec", "TASKS", "register", "get_spec", "list_models", "create_model", "weights_dir"]

TASKS = ("detect", "sr", "discriminator")


def weights_dir() -> Path:
    """Where weight files live: ``$DEEPCLARITY_WEIGHTS`` or ``<repo>/weights``."""
    env = os.environ.get("DEEPCLARITY_WEIGHTS")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "weights"


@dataclass(frozen=True)
class ModelSpec:
    """What the zoo knows about one model name.

    Attributes:
        name: registry key, e.g. ``"mobilesr"``.
        task: ``"detect"``, ``"sr"`` or ``"discriminator"``.
        builder: makes a randomly initialised ``nn.Module``.
        scale: upscaling factor (1 for non-SR models).
        weights: weight file name inside :func:`weights_dir`, or ``None`` for architectures kept
            only for comparison or training.
        description: one line for ``deepclarity models`` and the apps.
        degradation: for SR models, the low-resolution images it was trained on: ``"bicubic"``
            (the SR protocol) or ``"nearest"`` (one pixel per block: a restoration variant).
        derived_from: the registry name this model is fine-tuned from (``None``: trained from scratch).
    """

    name: str
    task: str
    builder: Callable[[], nn.Module] = field(repr=False, compare=False)
    scale: int = 1
    weights: str | None = None
    description: str = ""
    degradation: str = "bicubic"
    derived_from: str | None = None

    @cached_property
    def num_params(self) -> int:
        return count_params(self.builder())

    @property
    def weights_path(self) -> Path | None:
        return weights_dir() / self.weights if self.weights else None

    @property
    def has_weights(self) -> bool:
        path = self.weights_path
        return path is not None and path.is_file()

    @property
    def card(self) -> dict | None:
        path = self.weights_path
        return read_card(path) if path is not None else None


_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    if spec.task not in TASKS:
        raise ValueError(f"unknown task {spec.task!r} for {spec.name}")
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def get_spec(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name.lower()]
    except KeyError:
        raise ModelError(f"unknown model {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def list_models(task: str | None = None) -> list[ModelSpec]:
    return [s for s in _REGISTRY.values() if task is None or s.task == task]


def create_model(name: str, *, pretrained: bool = True, weights: str | os.PathLike | None = None) -> nn.Module:
    """Build model ``name``; with ``pretrained`` load its weights (or the file given).

    Returns the module in eval mode on the CPU; :mod:`deepclarity.runtime` moves it to a device.

    Raises:
        ModelError: unknown name, no weights shipped or trained yet, or a file that does not fit.
    """
    spec = get_spec(name)
    model = spec.builder()
    if weights is None and pretrained:
        if spec.weights_path is None:
            raise ModelError(f"{spec.name} is an architecture kept for comparison; it has no weight file")
        if not spec.weights_path.is_file():
            raise ModelError(f"no trained weights for {spec.name} at {spec.weights_path}; "
                             "train them with the scripts in training/")
        weights = spec.weights_path
    if weights is not None:
        load_weights(model, weights)
    return model.eval()


register(ModelSpec("detector-canny", "detect", lambda: build_detector("canny"), 1, "detector-canny.safetensors",
                   "method 2: MobileNetV3-small on Canny edge maps (proposed)"))
register(ModelSpec("detector-rgb", "detect", lambda: build_detector("rgb"), 1, "detector-rgb.safetensors",
                   "method 1: MobileNetV3-small on RGB (baseline)"))
register(ModelSpec("mobilesr", "sr", MobileSR, 4, "mobilesr.safetensors",
                   "MobileSR: inverted residuals at low resolution, bilinear path, x4"))
register(ModelSpec("mobilesr-seed", "sr", MobileSRSeed, 4, None,
                   "the prototype's MobileSR (upsampling convolutions at output resolution)"))
register(ModelSpec("minisrresnet", "sr", MiniSRResNet, 4, "minisrresnet.safetensors",
                   "MiniSRResNet: 8 residual blocks, 64 channels, no BatchNorm, bicubic skip, x4"))
register(ModelSpec("minisrgan", "sr", MiniSRResNet, 4, "minisrgan.safetensors",
                   "MiniSRGAN: MiniSRResNet fine-tuned with the discriminator, x4", derived_from="minisrresnet"))
# Restoration variants: the same networks fine-tuned on nearest-neighbour-sampled LR (one pixel per
# block, what grid recovery gives back); ``deepclarity restore`` uses one when its weights exist.
register(ModelSpec("mobilesr-pixel", "sr", MobileSR, 4, "mobilesr-pixel.safetensors",
                   "MobileSR fine-tuned on pixelated (one pixel per block) LR, for restoration",
                   degradation="nearest", derived_from="mobilesr"))
register(ModelSpec("minisrresnet-pixel", "sr", MiniSRResNet, 4, "minisrresnet-pixel.safetensors",
                   "MiniSRResNet fine-tuned on pixelated (one pixel per block) LR, for restoration",
                   degradation="nearest", derived_from="minisrresnet"))
register(ModelSpec("minisrresnet-seed", "sr", MiniSRResNet.seed, 4, None,
                   "the prototype's MiniSRResNet/MiniSRGAN architecture (BatchNorm, tanh)"))
register(ModelSpec("discriminator", "discriminator", Discriminator, 1, None,
                   "SRGAN-style discriminator used to train MiniSRGAN"))
