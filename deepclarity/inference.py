"""Which numeric precision and which backend a generator runs with.

``precision`` is ``auto``, ``fp32``, ``bf16`` or ``fp16``; ``backend`` is ``auto``, ``torch`` or
``onnx`` (onnxruntime, CPU, fp32). ``auto`` never guesses: it follows the *inference record* that
``python -m evaluation.calibrate_inference`` measured for the weight file and wrote into the model
card (``inference``: PSNR change in bf16 on Set5/Set14, largest ONNX difference in 8-bit levels,
CPU seconds per 1080p frame of each option, the memory layout each PyTorch option measured faster
in (``cpu_channels_last``), and the fastest option that keeps the picture:
bf16 only when PSNR moves by at most :data:`MAX_BF16_PSNR_DELTA_DB`, ONNX only when it is within
1/255 of PyTorch). Without a record for the current weights, ``auto`` is fp32 PyTorch on the CPU,
and fp16 autocast on CUDA (as before). The process-wide defaults come from
``$DEEPCLARITY_PRECISION`` and ``$DEEPCLARITY_BACKEND`` (the apps' ``--precision``/``--backend``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import DeepClarityError

if TYPE_CHECKING:  # torch is imported by the functions that need it, so CLIs answer --help at once
    import torch

__all__ = ["PRECISIONS", "BACKENDS", "MAX_BF16_PSNR_DELTA_DB", "InferenceChoice", "choose_inference",
           "inference_record", "default_precision", "default_backend"]

#: Precision names for ``--precision`` (training and inference).
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
BACKENDS = ("auto", "torch", "onnx")
#: Largest PSNR change (dB, any benchmark set) for which ``auto`` may run a model in bf16.
MAX_BF16_PSNR_DELTA_DB = 0.02


@dataclass(frozen=True)
class InferenceChoice:
    """How a generator runs: ``precision`` (fp32/bf16/fp16), ``backend`` (torch/onnx), why, and
    whether PyTorch on the CPU runs it in channels_last memory (as measured per option and
    recorded in the card; ``None``: the device's default)."""

    precision: str
    backend: str
    reason: str
    channels_last: bool | None = None

    @property
    def label(self) -> str:
        return f"{self.backend}-{self.precision}"


def default_precision() -> str:
    """``$DEEPCLARITY_PRECISION`` or ``auto``."""
    return (os.environ.get("DEEPCLARITY_PRECISION") or "auto").lower()


def default_backend() -> str:
    """``$DEEPCLARITY_BACKEND`` or ``auto``."""
    return (os.environ.get("DEEPCLARITY_BACKEND") or "auto").lower()


def inference_record(card: dict | None) -> dict | None:
    """The card's measured ``inference`` record, if it was measured on these very weights."""
    record = (card or {}).get("inference")
    if not isinstance(record, dict) or record.get("weights_sha256") != (card or {}).get("sha256"):
        return None
    return record


def _onnx_ready() -> bool:
    from .export import onnx_available

    return onnx_available()


def choose_inference(card: dict | None, device: "torch.device", precision: str | None = None,
                     backend: str | None = None, *, is_network: bool = True) -> InferenceChoice:
    """Resolve ``precision``/``backend`` (``None``: the process defaults) for a model with
    ``card`` on ``device``.

    Raises:
        DeepClarityError: an unknown name, fp16 or ONNX where they cannot run, ONNX with bf16.
    """
    precision = (precision or default_precision()).lower()
    backend = (backend or default_backend()).lower()
    if precision not in PRECISIONS:
        raise DeepClarityError(f"unknown precision {precision!r} (use {', '.join(PRECISIONS)})")
    if backend not in BACKENDS:
        raise DeepClarityError(f"unknown backend {backend!r} (use {', '.join(BACKENDS)})")
    if not is_network:
        return InferenceChoice("fp32", "torch", "not a network")
    cuda = device.type == "cuda"
    if precision == "fp16" and not cuda:
        raise DeepClarityError("fp16 runs on CUDA only; use bf16 or fp32 on the CPU")
    if backend == "onnx":
        if cuda:
            raise DeepClarityError("the onnx backend runs on the CPU; use --device cpu or --backend torch")
        if precision not in ("auto", "fp32"):
            raise DeepClarityError("the onnx backend runs in fp32; use --precision fp32 or auto")
        if not _onnx_ready():
            raise DeepClarityError("the onnx backend needs the onnx extra: pip install 'deepclarity[onnx]'")
        return InferenceChoice("fp32", "onnx", "asked for")
    if cuda:
        return InferenceChoice("fp16" if precision == "auto" else precision, "torch",
                               "CUDA default (fp16 autocast)" if precision == "auto" else "asked for")
    from .runtime import cpu_has_native_bf16

    record = inference_record(card)
    layouts = (record or {}).get("cpu_channels_last", {})
    if precision != "auto":
        return InferenceChoice(precision, "torch", "asked for", bool(layouts.get(f"torch-{precision}", False)))
    if record is None:
        return InferenceChoice("fp32", "torch", "no inference measurement for these weights")
    allowed = [label for label in record.get("cpu_ranking", [])
               if (backend == "auto" or label.startswith(backend + "-"))
               and (not label.startswith("onnx-") or _onnx_ready())
               and (not label.endswith("-bf16") or cpu_has_native_bf16())]
    if not allowed:
        return InferenceChoice("fp32", "torch", "no measured option available")
    chosen_backend, chosen_precision = allowed[0].split("-", 1)
    return InferenceChoice(chosen_precision, chosen_backend, "fastest measured option that keeps the picture",
                           bool(layouts.get(allowed[0], False)) if chosen_backend == "torch" else None)
