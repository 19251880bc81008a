"""Enhance (plain super-resolution) of whole images: one place for the plumbing every front end needs.

:class:`Upscaler` is the one super-resolution forward path: ``deepclarity enhance``, the apps,
restoration, ``deepclarity eval sr``, ``deepclarity bench sr`` and training validation
(:meth:`Upscaler.from_module`) all run through it. It wraps any x4 SR entry of the registry (a
generator, or the ``bicubic`` reference, a function of the pixels) and handles what real files
bring, Real-ESRGAN-style, so every front end gets it for free:

* any output scale (the model's x4, then a resize to ``outscale``);
* alpha upscaled separately (bicubic) and kept; 16-bit stays 16-bit; grayscale stays grayscale;
  EXIF orientation is applied when the file is read (:mod:`deepclarity.io`);
* tiling with context padding (:func:`deepclarity.runtime.run_model`), chosen automatically for
  large inputs so memory stays bounded;
* an optional unsharp-mask sharpening of the result (the prototype's "sharpen" option).

Models are loaded once per setting and device and shared (:func:`load_upscaler`,
:mod:`deepclarity.cache`).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import cv2
import numpy as np

from .cache import ModelCache
from .errors import DeepClarityError, ImageError
from .io import LoadedImage, read_image

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

__all__ = ["UPSCALERS", "DEFAULT_UPSCALER", "AUTO_TILE", "MAX_OUTPUT_PIXELS", "Upscaler", "Enhanced",
           "load_upscaler", "sharpen", "resize_to", "to_gray3", "output_path"]

#: The default generator: MobileSR-Rep beats MobileSR on every benchmark set at a similar CPU cost
#: (`python evaluation/eval_sr.py ...` and `deepclarity bench sr` in the README); MobileSR stays offered.
DEFAULT_UPSCALER = "mobilesr-rep"
SCALE = 4
# Inputs with more pixels than AUTO_TILE**2 are run in AUTO_TILE x AUTO_TILE tiles: MiniSRResNet's
# last stage holds 64 channels at 4x resolution, ~4 GB of float32 for a 1000x1000 input.
AUTO_TILE = 256
MAX_OUTSCALE = 16.0
# Largest result by default: the float32 output alone is 12 bytes a pixel before it becomes uint8.
MAX_OUTPUT_PIXELS = 200_000_000


def sharpen(img: np.ndarray, amount: float, sigma: float = 1.0) -> np.ndarray:
    """Unsharp mask: ``img + amount * (img - blur(img))``; ``amount`` 0 returns ``img`` unchanged.

    ``img``: ``HxW`` or ``HxWxC`` ``uint8``/``uint16``; the result has the same shape and dtype.
    """
    if amount <= 0:
        return img
    top = np.iinfo(img.dtype).max
    f = img.astype(np.float32)
    out = f + amount * (f - cv2.GaussianBlur(f, (0, 0), sigma))
    return np.clip(np.rint(out), 0, top).astype(img.dtype)


def to_gray3(rgb: np.ndarray) -> np.ndarray:
    """``HxWx3`` -> the channel mean replicated to 3 channels, same dtype: a result made from a
    grayscale input is written back as gray, whatever colour a network let in."""
    return np.repeat(np.round(rgb.astype(np.float32).mean(axis=2, keepdims=True)).astype(rgb.dtype), 3, axis=2)


def resize_to(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize ``img`` (any channels, ``uint8``/``uint16``) to ``height x width``: area averaging when
    shrinking, Lanczos when enlarging (Real-ESRGAN's choice for ``--outscale``)."""
    h, w = img.shape[:2]
    if (h, w) == (height, width):
        return img
    shrink = height * width < h * w
    out = cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LANCZOS4)
    return out.reshape((height, width) + img.shape[2:]) if img.ndim == 3 and out.ndim == 2 else out


@dataclass
class Enhanced:
    """The result of :meth:`Upscaler.enhance`.

    Attributes:
        image: the upscaled image, written back in kind by :func:`deepclarity.io.write_image`
            (gray stays gray, alpha kept, 16-bit kept); ``image.path`` is ``None``.
        model: which upscaler made it.
        outscale: output size / input size.
        tile: tile side used (0 = whole image).
        seconds: wall time of the upscaling.
    """

    image: LoadedImage
    model: str
    outscale: float
    tile: int
    seconds: float
    info: dict = field(default_factory=dict)


def __getattr__(name: str):
    """``UPSCALERS``: the upscalers offered to users, read from the registry when asked for
    (:func:`deepclarity.models.sr_model_names`: the shipped x4 generators, then ``bicubic``)."""
    if name == "UPSCALERS":
        from .models import sr_model_names

        return sr_model_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@contextlib.contextmanager
def _evaluating(module: "nn.Module | None") -> Iterator[None]:
    """``module`` in eval mode for the block, its training flag restored afterwards."""
    if module is None or not module.training:
        yield
        return
    module.eval()
    try:
        yield
    finally:
        module.train()


class Upscaler:
    """A x4 super-resolution entry of the registry with the image plumbing around it.

    Args:
        model: a registered x4 SR name: one of :data:`UPSCALERS`, a restoration variant, or an
            architecture given ``weights``.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
        fp32: no fp16 autocast on CUDA.
        tile: tile side in input pixels; ``None`` = automatic (:data:`AUTO_TILE` for large
            inputs), 0 = never tile.
        tile_pad: context read around each tile and then discarded.
        weights: a weight file instead of the shipped one.
        precision, backend: as :func:`~deepclarity.inference.choose_inference` (default ``auto``).
        channels_last: PyTorch memory layout (default: the one measured faster for the chosen
            option on the CPU, recorded in the card; always channels_last on CUDA).

    A module that is not in the registry (a network being trained) goes through the same path
    with :meth:`from_module`.
    """

    def __init__(self, model: str = DEFAULT_UPSCALER, *, device: str = "auto", fp32: bool = False,
                 tile: int | None = None, tile_pad: int = 16, weights: str | os.PathLike | None = None,
                 precision: str | None = None, backend: str | None = None,
                 channels_last: bool | None = None) -> None:
        from .inference import choose_inference
        from .models import create_model, get_spec, read_card
        from .runtime import prepare_model, select_device

        dev = select_device(device)
        spec = get_spec(model)
        if spec.task != "sr" or spec.scale != SCALE:
            raise DeepClarityError(f"{spec.name} is not a x{SCALE} super-resolution model")
        if weights is not None and not spec.is_network:
            raise DeepClarityError(f"{spec.name} is not a network; it takes no weight file")
        card = (read_card(weights) if weights is not None else spec.card) if spec.is_network else None
        #: The precision and backend in use, and why (:func:`deepclarity.inference.choose_inference`).
        self.inference = choose_inference(card, dev, "fp32" if fp32 and not precision else precision, backend,
                                          is_network=spec.is_network)
        module = None
        if spec.is_network and self.inference.backend == "onnx":
            from .export import OnnxModule, cached_onnx

            module = OnnxModule(cached_onnx(spec.name, weights if weights is not None else spec.weights_path))
        elif spec.is_network:
            layout = self.inference.channels_last if channels_last is None else channels_last
            module = prepare_model(create_model(spec.name, weights=weights), dev, channels_last=layout)
        self._setup(spec.name, dev, fp32, tile, tile_pad, module, spec.function, spec.degradation)
        self.precision = self.inference.precision
        self.fp16 = self.precision == "fp16"
        #: The registry entry behind this upscaler (``None`` for :meth:`from_module`).
        self.spec = spec

    @classmethod
    def from_module(cls, module: "nn.Module", *, name: str = "module", device=None, fp32: bool = True,
                    tile: int | None = 0, tile_pad: int = 16, degradation: str | None = "bicubic",
                    precision: str | None = None) -> "Upscaler":
        """An upscaler around a x4 ``module`` that is not (or not yet) in the registry: training
        validates its generator through the same path as ``deepclarity enhance`` and ``eval sr``.

        The module is used as it is: not copied, moved, fused or frozen; it runs in eval mode
        and its training flag is restored after each call.

        Args:
            module: ``(B,3,H,W) float32 in [0,1] -> (B,3,4H,4W)``, already on ``device``.
            name: what :attr:`name` and results report.
            device: where the module is (default: where its parameters are).
            fp32: no fp16 autocast on CUDA (default: full precision).
            tile, tile_pad: as for the constructor (default: the whole image at once).
            degradation: what its low-resolution training images were (:attr:`trained_on`).
            precision: ``"bf16"``/``"fp16"`` autocast instead of ``fp32``'s choice.
        """
        import torch

        from .runtime import select_device

        if device is None:
            param = next(module.parameters(), None)
            device = param.device if param is not None else torch.device("cpu")
        self = cls.__new__(cls)
        self._setup(name, select_device(device), fp32, tile, tile_pad, module, None, degradation)
        self.spec = None
        from .inference import InferenceChoice

        if precision not in (None, "auto"):
            self.precision, self.fp16 = precision, precision == "fp16"
        self.inference = InferenceChoice(self.precision, "torch", "a module given directly")
        return self

    def _setup(self, name: str, device, fp32: bool, tile: int | None, tile_pad: int,
               module: "nn.Module | None", function: Callable[[np.ndarray, int], np.ndarray] | None,
               trained_on: str | None) -> None:
        from .runtime import use_fp16

        if tile is not None and tile < 0:
            raise DeepClarityError(f"tile must be >= 0, got {tile}")
        if tile_pad < 0:
            raise DeepClarityError(f"tile_pad must be >= 0, got {tile_pad}")
        self.name = name
        self.device = device
        self.fp16 = use_fp16(device, fp32)
        #: Autocast precision of the forward pass (``fp32``, ``bf16`` or ``fp16``).
        self.precision = "fp16" if self.fp16 else "fp32"
        self.tile, self.tile_pad = tile, tile_pad
        #: The network (``None`` for a function entry such as ``bicubic``).
        self.model = module
        self._function = function
        #: What the generator's low-resolution training images were (the registry's
        #: ``degradation``): ``"bicubic"`` (the SR protocol) or ``"nearest"`` (one pixel per block,
        #: for restoration); ``None`` for interpolation, which was never trained.
        self.trained_on = trained_on
        self._lock = threading.Lock()  # one forward pass at a time per model (apps share it)

    def tile_for(self, height: int, width: int) -> int:
        """The tile side used for an input of ``height x width``."""
        if self.model is None:  # functions (bicubic) never tile
            return 0
        if self.tile is not None:
            return self.tile
        return AUTO_TILE if height * width > AUTO_TILE * AUTO_TILE else 0

    def upscale_array(self, img: np.ndarray) -> np.ndarray:
        """x4 of ``HxWx3`` ``uint8``/``uint16`` RGB -> ``4Hx4Wx3``, same dtype."""
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype not in (np.uint8, np.uint16):
            raise ImageError(f"expected HxWx3 uint8/uint16 RGB, got {img.shape} {img.dtype}")
        if self.model is None:
            return self._function(img, SCALE)
        from .runtime import image_to_tensor, run_model, tensor_to_image

        x = image_to_tensor(img)
        with self._lock, _evaluating(self.model):
            out = run_model(self.model, x, scale=SCALE, device=self.device, precision=self.precision,
                            tile=self.tile_for(*img.shape[:2]), tile_pad=self.tile_pad)
        return tensor_to_image(out, img.dtype)

    def enhance(self, image: LoadedImage | np.ndarray | str | os.PathLike, *, outscale: float = SCALE,
                sharpen_amount: float = 0.0, max_output_pixels: int | None = MAX_OUTPUT_PIXELS) -> Enhanced:
        """Enhance ``image``: super-resolve it by ``outscale`` (model x4, then resized), keeping
        alpha, bit depth and grayscale.

        Args:
            image: a :class:`LoadedImage`, a path, bytes or an array (read by :func:`read_image`).
            outscale: output size / input size, in (0, :data:`MAX_OUTSCALE`]; the output is
                ``round(H * outscale) x round(W * outscale)``.
            sharpen_amount: unsharp-mask strength after upscaling (0 = off).
            max_output_pixels: refuse (``ImageError``) results larger than this (``None``: no limit).

        Raises:
            ImageError: unreadable input, or an output too large or empty.
        """
        if not np.isfinite(outscale) or not (0 < outscale <= MAX_OUTSCALE):
            raise DeepClarityError(f"outscale must be in (0, {MAX_OUTSCALE:g}], got {outscale}")
        loaded = image if isinstance(image, LoadedImage) else read_image(image)
        h, w = loaded.height, loaded.width
        out_h, out_w = max(1, round(h * outscale)), max(1, round(w * outscale))
        # The model's x4 image exists before any resize to outscale, so it counts against the limit.
        peak_w, peak_h = max(out_w, SCALE * w), max(out_h, SCALE * h)
        if max_output_pixels is not None and peak_w * peak_h > max_output_pixels:
            raise ImageError(f"{loaded.source}: upscaling {w}x{h} needs a {peak_w}x{peak_h} image "
                             f"({peak_w * peak_h / 1e6:.1f} MP), over the limit of {max_output_pixels / 1e6:.1f} MP")
        t0 = time.perf_counter()
        pixels = loaded.pixels
        if loaded.grayscale:  # one channel through the model, replicated: no colour can appear
            pixels = np.repeat(pixels[..., :1], 3, axis=2)
        up = resize_to(self.upscale_array(pixels), out_h, out_w)
        if loaded.grayscale:
            up = to_gray3(up)
        up = sharpen(up, sharpen_amount)
        alpha = None
        if loaded.alpha is not None:
            alpha = resize_to(loaded.alpha, out_h, out_w) if outscale < 1 else cv2.resize(
                loaded.alpha, (out_w, out_h), interpolation=cv2.INTER_CUBIC)
        result = replace(loaded, pixels=np.ascontiguousarray(up), alpha=alpha, path=None)
        return Enhanced(result, self.name, outscale, self.tile_for(h, w), time.perf_counter() - t0)


_UPSCALERS = ModelCache("upscalers")


def load_upscaler(model: str = DEFAULT_UPSCALER, *, device: str = "auto", fp32: bool = False,
                  tile: int | None = None, tile_pad: int = 16, precision: str | None = None,
                  backend: str | None = None) -> Upscaler:
    """A shared :class:`Upscaler`: each model is loaded once per process and resolved device (the
    apps call this per request), and again only when its weight file is replaced (e.g. by a
    training run); see :mod:`deepclarity.cache`. ``precision``/``backend`` ``None`` follow the
    process defaults (:mod:`deepclarity.inference`)."""
    from .cache import device_key, registry_identity
    from .inference import default_backend, default_precision
    from .models import get_spec

    name = get_spec(model).name
    dev = device_key(device)
    precision, backend = precision or default_precision(), backend or default_backend()
    return _UPSCALERS.load((name, dev, fp32, tile, tile_pad, precision, backend), registry_identity(name),
                           lambda: Upscaler(name, device=dev, fp32=fp32, tile=tile, tile_pad=tile_pad,
                                            precision=precision, backend=backend))


def output_path(src: Path, outdir: Path, *, suffix: str, ext: str = "auto", has_alpha: bool = False) -> Path:
    """Where ``enhance``/``restore`` write the result of ``src``: ``outdir/<stem>[_suffix].<ext>``.

    ``ext`` ``"auto"`` keeps the input's extension when it is writable (PNG, JPEG, WebP) and
    otherwise uses PNG; alpha forces PNG whenever the format cannot hold it (JPEG).
    """
    from .io import WRITABLE_EXTENSIONS

    if ext == "auto":
        ext = src.suffix.lower().lstrip(".") if src.suffix.lower() in WRITABLE_EXTENSIONS else "png"
    if has_alpha and ext in ("jpg", "jpeg"):  # JPEG cannot hold alpha (Real-ESRGAN does the same)
        ext = "png"
    stem = f"{src.stem}_{suffix}" if suffix else src.stem
    return outdir / f"{stem}.{ext}"
