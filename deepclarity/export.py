"""ONNX export of the generators, and an onnxruntime backend that runs them.

``deepclarity export MODEL --format onnx -o FILE`` writes a graph with dynamic height and width and
checks it against PyTorch on 8-bit outputs (at most 1/255 apart). :class:`OnnxModule` wraps an
onnxruntime session as a module, so :func:`deepclarity.runtime.run_model` (tiling included) and
:class:`deepclarity.enhance.Upscaler` run it exactly like a PyTorch network.

onnx and onnxruntime are an optional extra (``pip install deepclarity[onnx]``); without them the
functions here raise :class:`~deepclarity.errors.ModelError` saying how to install them.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from .errors import ModelError

__all__ = ["ONNX_OPSET", "onnx_available", "export_onnx", "check_onnx", "OnnxModule", "cached_onnx"]

ONNX_OPSET = 17
#: Largest difference allowed between ONNX and PyTorch outputs once both are rounded to 8 bits.
MAX_DIFF_8BIT = 1


def onnx_available() -> bool:
    """Whether onnx and onnxruntime import."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _require_onnx() -> None:
    if not onnx_available():
        raise ModelError("ONNX export and the onnxruntime backend need the onnx extra: "
                         "pip install 'deepclarity[onnx]' (make test installs it)")


def _as_module(model: nn.Module | str) -> nn.Module:
    if isinstance(model, str):
        from .models import create_model
        from .runtime import prepare_model

        model = prepare_model(create_model(model), torch.device("cpu"))
    return model.eval()


def export_onnx(model: nn.Module | str, path: str | os.PathLike, *, opset: int = ONNX_OPSET) -> Path:
    """Write ``model`` (a module or a registry name) to ``path`` as ONNX, input ``lr``
    ``(1, 3, H, W)`` float32 in [0, 1] with dynamic ``H`` and ``W``, output ``sr``; atomically.

    Raises:
        ModelError: the onnx extra is missing, or the model cannot be exported.
    """
    _require_onnx()
    module = _as_module(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.rand(1, 3, 48, 64)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (example,), tmp, input_names=["lr"], output_names=["sr"],
                              dynamic_axes={"lr": {2: "height", 3: "width"}, "sr": {2: "out_height", 3: "out_width"}},
                              opset_version=opset, dynamo=False)
        os.replace(tmp, path)
    except Exception as exc:  # the exporter raises many kinds
        raise ModelError(f"ONNX export failed: {exc}".splitlines()[0]) from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _to_8bit(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.int16)


def check_onnx(model: nn.Module | str, path: str | os.PathLike,
               sizes: tuple[tuple[int, int], ...] = ((37, 53), (64, 96))) -> int:
    """Largest difference, in 8-bit levels, between ``path`` and ``model`` on random inputs of
    ``sizes`` (different from the export size, which proves the dynamic axes).

    Raises:
        ModelError: the difference is over :data:`MAX_DIFF_8BIT`.
    """
    module = _as_module(model)
    onnx_module = OnnxModule(path)
    gen = torch.Generator().manual_seed(0)
    worst = 0
    for h, w in sizes:
        x = torch.rand(1, 3, h, w, generator=gen)
        with torch.inference_mode():
            ref = module(x).float().numpy()
        got = onnx_module(x).numpy()
        if got.shape != ref.shape:
            raise ModelError(f"{path}: ONNX output {got.shape} but PyTorch {ref.shape} for a {w}x{h} input")
        worst = max(worst, int(np.abs(_to_8bit(got) - _to_8bit(ref)).max()))
    if worst > MAX_DIFF_8BIT:
        raise ModelError(f"{path}: ONNX output differs from PyTorch by {worst}/255 (allowed {MAX_DIFF_8BIT})")
    return worst


class OnnxModule(nn.Module):
    """An onnxruntime session on the CPU as a module: ``(B, 3, H, W)`` float32 -> the graph's
    output as a float32 tensor. ``threads`` defaults to PyTorch's intra-op thread count."""

    def __init__(self, path: str | os.PathLike, *, threads: int | None = None) -> None:
        super().__init__()
        _require_onnx()
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ModelError(f"{path}: not a usable ONNX model ({str(exc).splitlines()[0]})") from exc
        self.path = Path(path)
        self._input = self.session.get_inputs()[0].name
        self._lock = threading.Lock()

    def forward(self, x: Tensor) -> Tensor:
        arr = np.ascontiguousarray(x.detach().float().cpu().numpy())
        with self._lock:
            out = self.session.run(None, {self._input: arr})[0]
        return torch.from_numpy(out)


def cache_dir() -> Path:
    """Where exported graphs are kept: ``$DEEPCLARITY_CACHE`` or ``~/.cache/deepclarity``."""
    env = os.environ.get("DEEPCLARITY_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "deepclarity"


def cached_onnx(name: str, weights: str | os.PathLike) -> Path:
    """The ONNX graph of registry model ``name`` with ``weights``, exported and checked once and
    kept in :func:`cache_dir` under the weight file's sha256 (a new weight file gets a new graph)."""
    digest = hashlib.sha256(Path(weights).read_bytes()).hexdigest()[:16]
    path = cache_dir() / "onnx" / f"{name}-{digest}.onnx"
    if not path.is_file():
        from .models import create_model
        from .runtime import prepare_model

        module = prepare_model(create_model(name, weights=weights), torch.device("cpu"))
        tmp = export_onnx(module, path.with_name(path.stem + ".unchecked.onnx"))
        check_onnx(module, tmp)
        os.replace(tmp, path)
    return path
