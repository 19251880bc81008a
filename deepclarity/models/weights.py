"""Weight files: safetensors (no pickle) plus a model-card JSON beside each file.

The card is written by the training script, never by hand: architecture, parameter count, data,
steps, metrics and the SHA-256 of the weight file, which :func:`load_weights` checks.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch import nn

from ..errors import ModelError
from ..files import atomic_write

__all__ = ["card_path", "read_card", "write_card", "save_weights", "load_weights", "sha256_of", "count_params"]


def inference_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """What is shipped for ``model``: its ``inference_state_dict()`` when it has one (a network
    re-parameterised for inference, e.g. MobileSR-Rep's folded convolutions), else its
    ``state_dict()``."""
    own = getattr(model, "inference_state_dict", None)
    return own() if callable(own) else model.state_dict()


def count_params(model: nn.Module) -> int:
    """Number of parameters at inference (buffers such as BatchNorm statistics excluded; a
    re-parameterised network counts its folded form)."""
    if callable(getattr(model, "inference_state_dict", None)):
        return sum(v.numel() for v in model.inference_state_dict().values())
    return sum(p.numel() for p in model.parameters())


def card_path(weights: str | os.PathLike) -> Path:
    """``foo.safetensors`` -> ``foo.json``."""
    return Path(weights).with_suffix(".json")


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_card(weights: str | os.PathLike) -> dict[str, Any] | None:
    """The model card beside ``weights``, or ``None`` when there is none."""
    path = card_path(weights)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: unreadable model card: {exc}") from None


def save_weights(model: nn.Module, path: str | os.PathLike, card: dict[str, Any], *,
                 half: bool = False) -> dict[str, Any]:
    """Write ``model``'s state dict to ``path`` (safetensors) and its card to ``path.json``.

    ``half`` stores floating-point tensors as float16 (half the file; :func:`load_weights` casts
    them back to the model's dtype). The card gets ``file``, ``sha256``, ``params``, ``size_mb``,
    ``stored_dtype`` and ``arch`` (the class name) added. Both files are replaced atomically.
    Returns the card written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in inference_state(model).items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    payload = save(state, metadata={"arch": type(model).__name__})
    atomic_write(path, payload)
    digest = hashlib.sha256(payload).hexdigest()
    full = dict(card)
    full.update(
        file=path.name,
        sha256=digest,
        arch=type(model).__name__,
        params=count_params(model),
        size_mb=round(path.stat().st_size / 1e6, 3),
        stored_dtype="float16" if half else "float32",
    )
    write_card(path, full)
    return full


def write_card(weights: str | os.PathLike, card: dict[str, Any]) -> Path:
    """Write ``card`` as the model card beside ``weights`` (atomically, keys sorted)."""
    return atomic_write(card_path(weights), (json.dumps(card, indent=2, sort_keys=True) + "\n").encode())


def load_weights(model: nn.Module, path: str | os.PathLike, *, verify: bool = True) -> nn.Module:
    """Load ``path`` into ``model`` strictly (every key, every shape) and return ``model``.

    Raises:
        ModelError: missing file, checksum mismatch with the card, unreadable file, or keys/shapes
            that do not match ``model``'s architecture; the message names both.
    """
    path = Path(path)
    arch = type(model).__name__
    if not path.is_file():
        raise ModelError(f"weights file {path} not found (needed by {arch})")
    card = read_card(path) if verify else None
    if card and card.get("sha256") and card["sha256"] != sha256_of(path):
        raise ModelError(f"{path}: SHA-256 does not match its model card {card_path(path).name}; "
                         "the file is corrupt or was replaced without its card")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{path}: not a readable safetensors file ({exc})") from None
    own = inference_state(model)
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} keys (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} keys (e.g. {unexpected[0]})")
        if shapes:
            k = sorted(shapes)[0]
            parts.append(f"{len(shapes)} shape mismatches (e.g. {k}: file {tuple(state[k].shape)} "
                         f"vs model {tuple(own[k].shape)})")
        raise ModelError(f"{path} does not fit architecture {arch}: " + "; ".join(parts))
    with torch.no_grad():
        loader = getattr(model, "load_inference_state_dict", None)
        if callable(loader):
            loader({k: v.to(own[k].dtype) for k, v in state.items()})
        else:
            model.load_state_dict(state, strict=True)
    return model
