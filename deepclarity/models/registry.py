"""The model zoo: the one list of model names, their tasks, scales, weight files and detector methods.

``create_model("mobilesr")`` builds the network and loads ``weights/mobilesr.safetensors``
(strictly); ``pretrained=False`` gives the random initialisation used to start training.
Weight files are looked for in ``$DEEPCLARITY_WEIGHTS`` or, by default, the repository's
``weights/`` folder.

An entry is either a *network* (a ``builder`` that makes an ``nn.Module``) or, for super-resolution,
a *function* of the pixels (``bicubic``: MATLAB-compatible interpolation, the reference every table
starts from). Every front end derives its choices from here: :func:`sr_model_names` (the upscalers
``deepclarity enhance`` offers), :func:`detector_methods` (``--method``), :data:`TASKS`. Adding a
model is one :func:`register` call here plus the file that defines its network.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable

import numpy as np
from torch import nn

from ..degrade import imresize
from ..errors import ModelError
from .detector import build_detector
from .discriminator import Discriminator
from .mobilesr import MobileSR, MobileSRSeed
from .repsr import MobileSRRep
from .srresnet import MiniSRResNet
from .weights import count_params, load_weights, read_card

__all__ = ["ModelSpec", "TASKS", "DEGRADATIONS", "register", "get_spec", "list_models", "create_model",
           "weights_dir", "sr_model_names", "detector_methods"]

TASKS = ("detect", "sr", "discriminator")

#: What an SR model's low-resolution training images were: ``"bicubic"`` (MATLAB ``imresize``,
#: the SR protocol) or ``"nearest"`` (one pixel per block, what a pixelated image holds).
DEGRADATIONS = ("bicubic", "nearest")


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
        builder: makes a randomly initialised ``nn.Module``; ``None`` for a function entry.
        scale: upscaling factor (1 for non-SR models).
        weights: weight file name inside :func:`weights_dir`, or ``None`` for architectures kept
            only for comparison or training, and for function entries.
        description: one line for ``deepclarity models`` and the apps.
        degradation: for SR networks, the low-resolution images it was trained on (one of
            :data:`DEGRADATIONS`): ``"bicubic"`` (the SR protocol) or ``"nearest"`` (one pixel
            per block: a restoration variant); ``None`` for entries that were never trained.
        derived_from: the registry name this model is fine-tuned from (``None``: trained from scratch).
        method: for detectors, the ``--method`` name that selects it (``"canny"``, ``"rgb"``).
        function: for SR entries without a network, ``(img, scale) -> img``: ``HxWx3``
            ``uint8``/``uint16`` in, the image ``scale`` times larger out, same dtype.
    """

    name: str
    task: str
    builder: Callable[[], nn.Module] | None = field(default=None, repr=False, compare=False)
    scale: int = 1
    weights: str | None = None
    description: str = ""
    degradation: str | None = "bicubic"
    derived_from: str | None = None
    method: str | None = None
    function: Callable[[np.ndarray, int], np.ndarray] | None = field(default=None, repr=False, compare=False)

    @property
    def is_network(self) -> bool:
        """Whether this entry is a network (``builder``) rather than a function of the pixels."""
        return self.builder is not None

    @property
    def kind(self) -> str:
        """``"network"`` or ``"function"``."""
        return "network" if self.is_network else "function"

    @property
    def shipped(self) -> bool:
        """Ready to use once installed: a network with a weight file of its own, or a function
        entry (which needs none). Architectures kept for comparison are not."""
        return self.weights is not None or not self.is_network

    @property
    def is_restoration_variant(self) -> bool:
        """An SR network trained on something other than the SR protocol's bicubic images (the
        ``<model>-pixel`` variants ``deepclarity restore`` picks by itself)."""
        return self.task == "sr" and self.degradation not in (None, "bicubic")

    @cached_property
    def num_params(self) -> int:
        """Parameters of the network (0 for a function entry)."""
        return count_params(self.builder()) if self.builder is not None else 0

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
    """Add ``spec`` to the zoo (names are case-insensitive and unique); returns it.

    Raises:
        ValueError: an unknown task or degradation, a name or detector method already taken, or an
            entry that is neither a network nor (for SR) a function.
    """
    if spec.task not in TASKS:
        raise ValueError(f"unknown task {spec.task!r} for {spec.name}")
    if spec.name != spec.name.lower():
        raise ValueError(f"model names are lower case, got {spec.name!r}")
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} is already registered")
    if (spec.builder is None) == (spec.function is None):
        raise ValueError(f"{spec.name}: give exactly one of builder (a network) or function")
    if spec.function is not None and (spec.task != "sr" or spec.weights is not None):
        raise ValueError(f"{spec.name}: only super-resolution entries can be functions, and they have no weights")
    if spec.degradation is not None and spec.degradation not in DEGRADATIONS:
        raise ValueError(f"{spec.name}: unknown degradation {spec.degradation!r} (use {', '.join(DEGRADATIONS)})")
    if spec.task == "detect":
        if not spec.method:
            raise ValueError(f"detector {spec.name} needs a method name")
        if spec.method in detector_methods():
            raise ValueError(f"detector method {spec.method!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def get_spec(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name.lower()]
    except KeyError:
        raise ModelError(f"unknown model {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def list_models(task: str | None = None) -> list[ModelSpec]:
    """Every registered entry (of ``task`` when given), in registration order."""
    return [s for s in _REGISTRY.values() if task is None or s.task == task]


def sr_model_names(*, shipped_only: bool = True, variants: bool = False) -> tuple[str, ...]:
    """Names of the super-resolution entries: the networks in registration order, then the
    functions (``bicubic``, the reference).

    Args:
        shipped_only: only entries that are ready once installed (:attr:`ModelSpec.shipped`: a
            network with a weight file of its own, or a function), not architectures kept for
            comparison. Whether the weight file is present on this machine is not checked.
        variants: also the restoration variants (:attr:`ModelSpec.is_restoration_variant`).
    """
    specs = [s for s in list_models("sr")
             if (s.shipped or not shipped_only) and (variants or not s.is_restoration_variant)]
    return tuple(s.name for s in sorted(specs, key=lambda s: not s.is_network))


def detector_methods() -> dict[str, str]:
    """Detector ``--method`` name -> registry name, e.g. ``{"canny": "detector-canny", ...}``."""
    return {s.method: s.name for s in list_models("detect") if s.method}


def create_model(name: str, *, pretrained: bool = True, weights: str | os.PathLike | None = None) -> nn.Module:
    """Build model ``name``; with ``pretrained`` load its weights (or the file given).

    Returns the module in eval mode on the CPU; :mod:`deepclarity.runtime` moves it to a device.

    Raises:
        ModelError: unknown name, a function entry (not a network), no weights shipped or trained
            yet, or a file that does not fit.
    """
    spec = get_spec(name)
    if spec.builder is None:
        raise ModelError(f"{spec.name} is not a network ({spec.description}); "
                         "run it through deepclarity.enhance.Upscaler")
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


def _matlab_bicubic(img: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB-compatible bicubic interpolation by ``scale`` (:func:`~deepclarity.degrade.imresize`)."""
    return imresize(img, scale)


register(ModelSpec("detector-canny", "detect", lambda: build_detector("canny"), 1, "detector-canny.safetensors",
                   "method 2: MobileNetV3-small on Canny edge maps (proposed)", method="canny"))
register(ModelSpec("detector-rgb", "detect", lambda: build_detector("rgb"), 1, "detector-rgb.safetensors",
                   "method 1: MobileNetV3-small on RGB (baseline)", method="rgb"))
register(ModelSpec("mobilesr", "sr", MobileSR, 4, "mobilesr.safetensors",
                   "MobileSR: inverted residuals at low resolution, bilinear path, x4"))
register(ModelSpec("mobilesr-rep", "sr", MobileSRRep, 4, "mobilesr-rep.safetensors",
                   "MobileSR-Rep: plain 3x3 convolutions at low resolution, multi-branch in training and "
                   "folded for inference, bilinear path, x4"))
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
# The reference: interpolation, no network and no weights (offered after the networks).
register(ModelSpec("bicubic", "sr", None, 4, None, "bicubic interpolation (MATLAB imresize), the reference",
                   degradation=None, function=_matlab_bicubic))
register(ModelSpec("discriminator", "discriminator", Discriminator, 1, None,
                   "SRGAN-style discriminator used to train MiniSRGAN"))
