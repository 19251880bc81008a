"""What the training scripts share: the image split, the LR schedule, a resumable sampler.

Both scripts split ``<data>/train`` by image with the same hash, so the validation photos of the
detector and of the generators are the same files and never seen in training.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from deepclarity.io import list_images, read_image, to_uint8


def training_images(data: Path, subsets: list[str] | None = None) -> list[Path]:
    """Image files under ``<data>/train`` (or only its ``subsets`` folders); never ``benchmark/``."""
    root = data / "train"
    if not root.is_dir():
        raise SystemExit(f"{root} not found (give --data, the datasets root)")
    if not subsets:
        return list_images(root, recursive=True)
    missing = [s for s in subsets if not (root / s).is_dir()]
    if missing:
        raise SystemExit(f"{root}: no folder {', '.join(missing)}")
    return [p for s in subsets for p in list_images(root / s, recursive=True)]


def is_validation(path: Path, data: Path) -> bool:
    """Split by image, stably: ~10% of files (by a hash of their relative path) are validation."""
    rel = path.relative_to(data).as_posix()
    return int(hashlib.sha1(rel.encode()).hexdigest(), 16) % 10 == 0


def load_images(paths: list[Path], desc: str) -> list[np.ndarray]:
    """Decode ``paths`` to ``HxWx3 uint8`` RGB (16-bit files scaled down), with a progress bar."""
    return [to_uint8(read_image(p).pixels) for p in tqdm(paths, desc=f"loading {desc}", unit="img", leave=False)]


def lr_at(step: int, total: int, peak: float, warmup: int, floor: float = 0.0) -> float:
    """Linear warm-up to ``peak``, then cosine decay to ``floor * peak`` at ``total``."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


class FromStep(torch.utils.data.Sampler):
    """Indices ``start, start+1, ...``: resuming at step k continues with the same samples."""

    def __init__(self, start: int) -> None:
        self.start = start

    def __iter__(self):
        i = self.start
        while True:
            yield i
            i += 1
