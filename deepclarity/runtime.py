"""The one CUDA-aware place: device choice, precision, threads, and tiled inference.

Every entry point (library, CLI, apps, evaluation) runs networks through :func:`prepare_model`
and :func:`run_model`, so CPU and GPU share the same preprocessing and the same tiling. On CUDA
the forward pass runs under fp16 autocast with channels_last memory; on the CPU in fp32 or bf16
(channels_last where a model measured faster with it).

Tiling (as Real-ESRGAN's ``RealESRGANer``): the input is cut into ``tile x tile`` pieces, each
read with ``tile_pad`` pixels of real context around it, and only the centre of each output is
kept. With ``tile_pad`` at least the network's receptive radius the result equals untiled
inference; activation memory is bounded by the tile size, not by the image size.
"""

from __future__ import annotations

import contextlib
import math
import os
from typing import Iterator

import numpy as np
import torch
from torch import Tensor, nn

from .errors import DeviceError, ImageError
from .inference import PRECISIONS

__all__ = [
    "select_device",
    "configure_threads",
    "image_workers",
    "image_worker_count",
    "use_fp16",
    "PRECISIONS",
    "cpu_has_native_bf16",
    "resolve_precision",
    "autocast",
    "prepare_model",
    "use_channels_last",
    "model_channels_last",
    "to_model_input",
    "inference_mode",
    "image_to_tensor",
    "tensor_to_image",
    "tile_boxes",
    "run_model",
]


def select_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; ``"cuda"``/``"cuda:1"``/``"cpu"`` as asked.

    Raises:
        DeviceError: CUDA was asked for but is not available (or the index does not exist).
    """
    if isinstance(device, torch.device):
        name = str(device)
    else:
        name = str(device or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"unknown device {device!r} (use auto, cpu or cuda[:N])") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError("CUDA was requested but no CUDA device is available; use --device cpu or auto")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(f"CUDA device {dev.index} does not exist ({torch.cuda.device_count()} present)")
    elif dev.type != "cpu":
        raise DeviceError(f"unsupported device {device!r} (use auto, cpu or cuda[:N])")
    return dev


def configure_threads(threads: int | None = None) -> int:
    """Set PyTorch's intra-op CPU threads (default: ``$DEEPCLARITY_THREADS`` or all cores).

    Returns the number in force, so benchmarks can print it beside their figures.
    """
    if threads is None:
        env = os.environ.get("DEEPCLARITY_THREADS")
        threads = int(env) if env else (os.cpu_count() or 1)
    threads = max(1, int(threads))
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def image_worker_count(device: torch.device, workers: int | None = None) -> int:
    """How many images :func:`image_workers` processes at once (``workers`` when given)."""
    if workers is None:
        workers = torch.get_num_threads() if device.type == "cpu" else 2
    return max(1, int(workers))


@contextlib.contextmanager
def image_workers(device: torch.device, workers: int | None = None) -> Iterator[int]:
    """Images to process at once for a batch of files, with PyTorch's CPU threads shared out.

    On the CPU, small per-image work (decode, Canny, a 24-crop batch, grid search) leaves cores
    idle between PyTorch's parallel regions; one image per core with one PyTorch thread each
    keeps them all busy (``deepclarity bench detect``). Yields the worker count (default: the
    configured threads on the CPU, 2 on CUDA so decoding overlaps the GPU) and restores the
    thread setting afterwards.
    """
    threads = torch.get_num_threads()
    workers = image_worker_count(device, workers)
    per_worker = max(1, threads // workers) if device.type == "cpu" else threads
    torch.set_num_threads(per_worker)
    try:
        yield workers
    finally:
        torch.set_num_threads(threads)


def use_fp16(device: torch.device, fp32: bool = False) -> bool:
    """Half precision (autocast) is used on CUDA unless ``fp32`` is forced; never on the CPU."""
    return device.type == "cuda" and not fp32


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX), where bf16 autocast pays."""
    try:
        if torch.ops.mkldnn._is_mkldnn_bf16_supported():
            with open("/proc/cpuinfo") as f:
                flags = f.read()
            return "avx512_bf16" in flags or "amx_bf16" in flags
    except (AttributeError, OSError, RuntimeError):
        pass
    return False


def resolve_precision(device: torch.device, precision: str = "auto") -> str:
    """``auto`` -> ``bf16`` on a CPU with native bf16, ``bf16``/``fp16`` on CUDA (bf16 where the GPU
    supports it), else ``fp32``; an explicit name is checked against the device.

    Raises:
        DeviceError: unknown name, or fp16 asked for on the CPU.
    """
    precision = (precision or "auto").lower()
    if precision not in PRECISIONS:
        raise DeviceError(f"unknown precision {precision!r} (use {', '.join(PRECISIONS)})")
    if precision == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "bf16" if cpu_has_native_bf16() else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise DeviceError("fp16 runs on CUDA only; use bf16 or fp32 on the CPU")
    return precision


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Mixed precision for ``precision`` (``fp32``: none): weights stay fp32, matmuls and
    convolutions run in bf16/fp16."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def fuse_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every BatchNorm that directly follows a convolution (in an ``nn.Sequential``) into
    that convolution, in place, for inference: the same function in one layer instead of two
    (the detector's MobileNetV3 spent a quarter of its CPU time in BatchNorm)."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        names = list(seq._modules)
        for first, second in zip(names, names[1:]):
            conv, bn = seq._modules[first], seq._modules[second]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and not conv.training:
                seq._modules[first] = fuse_conv_bn_eval(conv, bn)
                seq._modules[second] = nn.Identity()
    return model


def prepare_model(model: nn.Module, device: torch.device, *, channels_last: bool | None = None) -> nn.Module:
    """Eval mode, no gradients, BatchNorm folded into its convolution (:func:`fuse_batchnorm`),
    multi-branch blocks folded into one convolution (a model's ``fold()``, e.g. MobileSR-Rep), on
    ``device``, in channels_last memory when :func:`use_channels_last` says so (always on CUDA; on
    the CPU where a model measured faster)."""
    model = fuse_batchnorm(model.eval()).requires_grad_(False).to(device)
    if callable(getattr(model, "fold", None)):  # re-parameterised networks: branches -> one conv
        model.fold()
    if use_channels_last(device, channels_last):
        model = model.to(memory_format=torch.channels_last)
    return model


def use_channels_last(device: torch.device, requested: bool | None = None) -> bool:
    """channels_last by default on CUDA only; ``requested`` overrides (the detector's MobileNetV3
    runs about 40% faster with it on our CPU; for each generator on the CPU the layout is measured
    by ``evaluation.calibrate_inference`` and read from its card, :mod:`deepclarity.inference`)."""
    return device.type == "cuda" if requested is None else bool(requested)


def model_channels_last(model: nn.Module) -> bool:
    """Whether ``model`` was prepared in channels_last memory (its first spatial convolution
    weight is laid out so), so its inputs are given in the same layout."""
    for p in model.parameters():
        if p.dim() == 4 and p.shape[-1] > 1:
            return p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
    return False


def to_model_input(x: Tensor, device: torch.device, channels_last: bool) -> Tensor:
    """Move a batch to ``device`` in the memory format its model was prepared with."""
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


@contextlib.contextmanager
def inference_mode(device: torch.device, fp16: bool = False, precision: str | None = None) -> Iterator[None]:
    """``torch.inference_mode`` plus autocast: ``precision`` ``"bf16"``/``"fp16"``, or (when
    ``precision`` is ``None``) fp16 when ``fp16`` on CUDA."""
    if precision is None:
        precision = "fp16" if fp16 and device.type == "cuda" else "fp32"
    with torch.inference_mode(), autocast(device, precision):
        yield


def image_to_tensor(img: np.ndarray) -> Tensor:
    """``HxWxC`` ``uint8``/``uint16`` (or ``HxW``) -> ``(1, C, H, W)`` float32 in [0, 1] on the CPU."""
    arr = np.asarray(img)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3:
        raise ImageError(f"expected an HxW or HxWxC image, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        scale = 255.0
    elif arr.dtype == np.uint16:
        scale = 65535.0
    else:
        raise ImageError(f"expected uint8 or uint16 pixels, got {arr.dtype}")
    t = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)[None]
    return t.float().div_(scale)


def tensor_to_image(t: Tensor, dtype: np.dtype | type = np.uint8) -> np.ndarray:
    """``(1, C, H, W)`` or ``(C, H, W)`` float in [0, 1] -> ``HxWxC`` ``uint8``/``uint16``, rounded and
    clipped (NaN becomes 0)."""
    if t.ndim == 4:
        if t.shape[0] != 1:
            raise ValueError(f"expected a batch of one, got {tuple(t.shape)}")
        t = t[0]
    top = 65535.0 if np.dtype(dtype) == np.uint16 else 255.0
    out = t.detach().float().cpu().nan_to_num(0.0).clamp(0, 1).mul(top).round()
    return out.permute(1, 2, 0).numpy().astype(dtype)


def tile_boxes(height: int, width: int, tile: int) -> list[tuple[int, int, int, int]]:
    """``(y0, y1, x0, x1)`` boxes of at most ``tile x tile`` that cover the image exactly once.

    Tiles are spread evenly (``ceil(H / tile)`` rows of nearly equal height) so no sliver tile
    is left at the edge.
    """
    if tile <= 0 or (height <= tile and width <= tile):
        return [(0, height, 0, width)]
    rows, cols = math.ceil(height / tile), math.ceil(width / tile)
    ys = [round(i * height / rows) for i in range(rows + 1)]
    xs = [round(j * width / cols) for j in range(cols + 1)]
    return [(ys[i], ys[i + 1], xs[j], xs[j + 1]) for i in range(rows) for j in range(cols)]


def run_model(
    model: nn.Module,
    x: Tensor,
    *,
    scale: int = 1,
    device: torch.device | None = None,
    fp16: bool = False,
    tile: int = 0,
    tile_pad: int = 16,
    precision: str | None = None,
) -> Tensor:
    """Apply an image-to-image ``model`` (output ``scale`` times larger) to ``x``, tiled if asked.

    Args:
        model: already :func:`prepare_model`-ed on ``device``.
        x: ``(B, C, H, W)`` float32 in [0, 1], on any device.
        scale: output/input size ratio of ``model``.
        device: where the model lives (default: where its parameters are).
        fp16: autocast to half precision (honoured on CUDA only).
        tile: tile side in input pixels; 0 = whole image at once.
        tile_pad: context in input pixels read around each tile and then discarded.
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"`` autocast; overrides ``fp16`` when given.

    Returns:
        ``(B, C', H*scale, W*scale)`` float32 on the CPU (assembled there, so GPU memory stays
        bounded by the tile).
    """
    if device is None:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
    b, _, h, w = x.shape
    boxes = tile_boxes(h, w, tile)
    layout = model_channels_last(model) if isinstance(model, nn.Module) else False
    out: Tensor | None = None
    with inference_mode(device, fp16, precision):
        for y0, y1, x0, x1 in boxes:
            py0, py1 = max(0, y0 - tile_pad), min(h, y1 + tile_pad)
            px0, px1 = max(0, x0 - tile_pad), min(w, x1 + tile_pad)
            piece = to_model_input(x[:, :, py0:py1, px0:px1], device, layout)
            result = model(piece).float()
            if len(boxes) == 1:
                return result.cpu()
            if out is None:
                out = torch.empty((b, result.shape[1], h * scale, w * scale), dtype=torch.float32)
            oy, ox = (y0 - py0) * scale, (x0 - px0) * scale
            out[:, :, y0 * scale:y1 * scale, x0 * scale:x1 * scale] = result[
                :, :, oy:oy + (y1 - y0) * scale, ox:ox + (x1 - x0) * scale
            ].cpu()
    assert out is not None
    return out
