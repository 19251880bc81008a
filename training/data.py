"""Training data: the image split, loading, the resumable sampler, and super-resolution pairs.

Both entry points split ``<data>/train`` by image with the library's one split
(:func:`deepclarity.datasets.is_validation`), so the validation photos of the detector and of the
generators are the same files and never seen in training; ``evaluation/`` holds out the same photos.

Every sample ``i`` is drawn from ``numpy.random.default_rng([seed, i])`` and the loader asks for
indices ``step * batch, step * batch + 1, ...`` (:class:`FromStep`), so a run is reproducible and a
resumed run continues with exactly the samples an uninterrupted run would have seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset
from tqdm import tqdm

from deepclarity.datasets import is_validation, training_images
from deepclarity.degrade import imresize, nearest_downscale
from deepclarity.errors import DeepClarityError
from deepclarity.io import read_image, to_uint8

__all__ = ["SCALE", "DEGRADATIONS", "split_images", "load_images", "FromStep", "Pair",
           "make_pairs", "validation_pairs", "dihedral", "to_tensor", "PatchDataset"]

#: Upscaling factor of the generators.
SCALE = 4


# ------------------------------------------------------------------------------- split and loading


def split_images(data: Path, subsets: list[str] | None = None) -> tuple[list[Path], list[Path]]:
    """Image files under ``<data>/train`` (or its ``subsets`` folders) as ``(training, validation)``,
    split by :func:`deepclarity.datasets.is_validation`; exits with the reason when there are none."""
    try:
        paths = training_images(data, subsets)
    except DeepClarityError as exc:
        raise SystemExit(str(exc)) from None
    return [p for p in paths if not is_validation(p, data)], [p for p in paths if is_validation(p, data)]


def load_images(paths: list[Path], desc: str) -> list[np.ndarray]:
    """Decode ``paths`` to ``HxWx3 uint8`` RGB (16-bit files scaled down), with a progress bar."""
    return [to_uint8(read_image(p).pixels) for p in tqdm(paths, desc=f"loading {desc}", unit="img", leave=False)]


class FromStep(torch.utils.data.Sampler):
    """Indices ``start, start+1, ...`` without end: resuming at step k continues with the same samples."""

    def __init__(self, start: int) -> None:
        self.start = start

    def __iter__(self):
        i = self.start
        while True:
            yield i
            i += 1


# ------------------------------------------------------------------------- super-resolution pairs


@dataclass
class Pair:
    """One photo: ``hr`` HxWx3 uint8 (H, W multiples of 4) and ``lr`` its /4 (see :data:`DEGRADATIONS`)."""

    hr: np.ndarray
    lr: np.ndarray


#: How the LR image is made. ``bicubic``: the MATLAB-compatible bicubic (the SR benchmarks'
#: protocol). ``nearest``: one pixel per 4x4 block, exactly what a nearest-neighbour-pixelated
#: image holds (``degrade.nearest_downscale``) — for the restoration variants (``<model>-pixel``)
#: that ``deepclarity restore`` feeds with the grid it recovers.
DEGRADATIONS = {
    "bicubic": lambda hr: imresize(hr, 1.0 / SCALE),
    "nearest": lambda hr: nearest_downscale(hr, SCALE),
}


def make_pairs(images: list[np.ndarray], min_lr: int, degradation: str = "bicubic") -> list[Pair]:
    """Training pairs: each ``HxWx3 uint8`` photo cropped to a multiple of 4 and degraded once;
    photos whose LR side is below ``min_lr`` (the patch) are left out."""
    pairs = []
    for hr in tqdm(images, desc="downscaling", unit="img", leave=False):
        h, w = hr.shape[:2]
        hr = np.ascontiguousarray(hr[: h - h % SCALE, : w - w % SCALE])
        if min(hr.shape[:2]) // SCALE >= min_lr:
            pairs.append(Pair(hr, DEGRADATIONS[degradation](hr)))
    return pairs


def validation_pairs(images: list[np.ndarray], crop: int, degradation: str = "bicubic") -> list[Pair]:
    """Centre crops (at most ``crop`` HR pixels a side, multiples of 4) of the validation photos."""
    out = []
    for img in images:
        h, w = img.shape[:2]
        ch, cw = min(h, crop) // SCALE * SCALE, min(w, crop) // SCALE * SCALE
        y, x = (h - ch) // 2, (w - cw) // 2
        hr = np.ascontiguousarray(img[y:y + ch, x:x + cw])
        out.append(Pair(hr, DEGRADATIONS[degradation](hr)))
    return out


def dihedral(x: np.ndarray, k: int) -> np.ndarray:
    """One of the 8 flips/rotations of an HxWxC array (``k`` in 0..7)."""
    if k & 4:
        x = x[:, ::-1]
    return np.rot90(x, k & 3)


def to_tensor(x: np.ndarray) -> Tensor:
    """``HxWxC uint8`` -> ``(C,H,W)`` float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1))).float().div_(255.0)


class PatchDataset(Dataset):
    """Sample ``i``: photo, position and flip drawn from ``rng([seed, i])``; returns aligned
    ``(LR (3,patch,patch), HR (3,4*patch,4*patch))`` float32 in [0, 1]."""

    def __init__(self, pairs: list[Pair], patch: int, seed: int) -> None:
        self.pairs, self.patch, self.seed = pairs, patch, seed

    def __len__(self) -> int:
        return 2**62

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        rng = np.random.default_rng([self.seed, i])
        pair = self.pairs[int(rng.integers(len(self.pairs)))]
        p = self.patch
        y = int(rng.integers(0, pair.lr.shape[0] - p + 1))
        x = int(rng.integers(0, pair.lr.shape[1] - p + 1))
        k = int(rng.integers(8))
        lr = dihedral(pair.lr[y:y + p, x:x + p], k)
        hr = dihedral(pair.hr[SCALE * y:SCALE * (y + p), SCALE * x:SCALE * (x + p)], k)
        return to_tensor(lr), to_tensor(hr)
