"""The detector's training samples, synthesised on the fly from photos at native resolution.

* positives — full-image pixelation (factor in [1.5, 4], fractional too) or a mosaic over 10-100%
  of the crop with 4-32 px blocks;
* negatives — the clean photo, or a hard negative: bicubic/bilinear upscaling (blurry is not
  pixelated), Gaussian blur, sharpening, low-quality JPEG (its 8x8 grid is not pixelation);
* then, for both, at random: resizing (0.5-1.0, any interpolation; positives never below 1.5 px
  blocks), JPEG quality 40-95, Gaussian noise.

Crops are at most ``deepclarity.detect.CROP_SIZE`` a side; small photos give smaller crops (the
detector's features pad them), never upscaled ones. Sample ``i`` is drawn from
``numpy.random.default_rng([seed, i])``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from deepclarity.degrade import RESIZE_METHODS, jpeg, mosaic, pixelate, resize
from deepclarity.detect import CROP_SIZE, crop_features

__all__ = ["Sample", "synthesize", "SynthDataset", "validation_set"]


@dataclass
class Sample:
    """One synthesised crop."""

    crop: np.ndarray  # HxWx3 uint8, at most CROP_SIZE per side
    label: int  # 1 = pixelated
    recipe: str  # what was done, for logs and debugging


def _region(img: np.ndarray, rng: np.random.Generator, side: int) -> np.ndarray:
    """A random ``side x side`` window of ``img`` (the whole image where it is smaller)."""
    h, w = img.shape[:2]
    y = int(rng.integers(0, max(1, h - side + 1)))
    x = int(rng.integers(0, max(1, w - side + 1)))
    return img[y:y + side, x:x + side]


def synthesize(img: np.ndarray, rng: np.random.Generator, label: int, size: int = CROP_SIZE) -> Sample:
    """One training (or validation) sample from photo ``img`` (``HxWx3 uint8``) with the given label."""
    steps = []
    # Post-resize first decided, so the region is large enough to still fill a crop afterwards.
    factor = 1.0
    if label == 1 and rng.random() < 0.7:
        factor = float(rng.choice([2.0, 3.0, 4.0])) if rng.random() < 0.2 else float(rng.uniform(1.5, 4.0))
    resize_scale = 1.0
    if rng.random() < 0.3:
        low = max(0.5, 1.5 / factor) if factor > 1 else 0.5
        resize_scale = float(rng.uniform(low, 1.0)) if low < 1.0 else 1.0
    side = int(math.ceil(size / resize_scale)) + 8
    region = np.ascontiguousarray(_region(img, rng, side))

    if label == 1:
        if factor > 1:
            region = pixelate(region, factor)
            steps.append(f"pixelate {factor:.2f}")
        else:
            h, w = region.shape[:2]
            area = float(rng.uniform(0.1, 1.0)) * min(h, size / resize_scale) * min(w, size / resize_scale)
            aspect = float(np.exp(rng.uniform(-0.7, 0.7)))
            bh = int(min(h, max(8, round(math.sqrt(area * aspect)))))
            bw = int(min(w, max(8, round(area / max(bh, 1)))))
            y0 = int(rng.integers(0, h - bh + 1))
            x0 = int(rng.integers(0, w - bw + 1))
            block = int(rng.integers(4, 33))
            region = mosaic(region, (x0, y0, x0 + bw, y0 + bh), block)
            steps.append(f"mosaic {bw}x{bh} block {block}")
    else:
        r = rng.random()
        if r < 0.25:
            up = float(rng.uniform(1.5, 4.0))
            small = _region(img, rng, max(8, int(side / up)))
            method = "bicubic" if rng.random() < 0.6 else "bilinear"
            region = resize(small, up, method)
            steps.append(f"{method} x{up:.2f}")
        elif r < 0.40:
            sigma = float(rng.uniform(0.5, 2.0))
            region = cv2.GaussianBlur(region, (0, 0), sigma)
            steps.append(f"blur {sigma:.2f}")
        elif r < 0.55:
            amount = float(rng.uniform(0.5, 2.0))
            blurred = cv2.GaussianBlur(region, (0, 0), float(rng.uniform(0.8, 2.0)))
            region = cv2.addWeighted(region, 1 + amount, blurred, -amount, 0)
            steps.append(f"sharpen {amount:.2f}")
        elif r < 0.70:
            q = int(rng.integers(10, 41))
            region = jpeg(np.ascontiguousarray(region), q)
            steps.append(f"jpeg q{q}")

    if resize_scale < 1.0:
        method = str(rng.choice(sorted(RESIZE_METHODS)))
        region = resize(region, resize_scale, method)
        steps.append(f"resize {resize_scale:.2f} {method}")
    if rng.random() < 0.4:
        q = int(rng.integers(40, 96))
        region = jpeg(np.ascontiguousarray(region), q)
        steps.append(f"jpeg q{q}")
    if rng.random() < 0.15:
        sigma = float(rng.uniform(1.0, 4.0))
        noisy = region.astype(np.float32) + rng.normal(0, sigma, region.shape).astype(np.float32)
        region = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
        steps.append(f"noise {sigma:.1f}")
    crop = np.ascontiguousarray(_region(region, rng, size))
    return Sample(crop, label, ", ".join(steps) or "clean")


class SynthDataset(Dataset):
    """Sample ``i``: photo and recipe drawn from ``rng([seed, i])``, label ``i % 2``; returns the
    detector input ``(3, CROP_SIZE, CROP_SIZE)`` float32 (:func:`crop_features` of ``kind``) and the label."""

    def __init__(self, images: list[np.ndarray], kind: str, seed: int) -> None:
        self.images, self.kind, self.seed = images, kind, seed

    def __len__(self) -> int:
        return 2**62

    def __getitem__(self, i: int):
        rng = np.random.default_rng([self.seed, i])
        img = self.images[int(rng.integers(len(self.images)))]
        sample = synthesize(img, rng, label=i % 2)
        return torch.from_numpy(crop_features(sample.crop, self.kind)), sample.label


def validation_set(images: list[np.ndarray], kind: str, seed: int, per_image: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed set: ``per_image`` crops (labels alternating) of each validation photo, as
    ``(N,3,CROP_SIZE,CROP_SIZE)`` float32 features and ``(N,)`` int64 labels."""
    feats, labels = [], []
    for n, img in enumerate(images):
        for k in range(per_image):
            rng = np.random.default_rng([seed, 1_000_003, n, k])
            s = synthesize(img, rng, label=k % 2)
            feats.append(crop_features(s.crop, kind))
            labels.append(s.label)
    return torch.from_numpy(np.stack(feats)), torch.tensor(labels)
