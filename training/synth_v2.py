"""Detector training samples, synthesis v2: pixelation as people meet it (``--synthesis v2``).

v1 (:mod:`training.synth`, the default, which the shipped weights were trained with) draws
everything from photos. v2 adds what the screenshot and censor benchmark slices
(:mod:`deepclarity.eval.censor`) measure, always from ``<data>/train`` only:

* carriers — photos (40%), real screenshots from ``train/screens`` (25%) and drawn ones (35%,
  :mod:`training.carriers`: rendered text in DejaVu or Pillow's font, UI panels/buttons/tables,
  charts and line art, flat-colour graphics, checkerboards and tiles, screentones);
* positives — full-image pixelation (nearest down/up by 1.5-4, as v1; on screenshots and drawn
  carriers, since revision 2, ``WHOLE_SCREEN_SHARE`` of the positives are the whole crop pixelated
  by 2.15-4, nearest or area-averaged: revision 1 had almost none, and the network it trained
  learnt to call a screenshot pixelated by 2-3 px clean, like a HiDPI one) or censor mosaics by
  :func:`~deepclarity.degrade.censor` (block average or nearest sample, any grid phase, blocks
  2-32 px log-uniform) over regions of every shape: a thin strip over a line of text (10-40 px
  tall), a face-sized box (40-120 px), two to four boxes, or the whole crop;
* negatives — the clean carrier, or a hard negative: UI or line art upscaled x2 by nearest
  neighbour (HiDPI), bicubic/bilinear upscaling, blur, low-quality JPEG;
* post-processing, for both — screenshot scaling by x1.25/x1.5/x2 (bilinear or bicubic), resizing
  by 0.5-1.0 with any interpolation (never below 1.5 px blocks), JPEG quality 50-95;
* small inputs — 10% of samples are 16-64 px tall snippets, mirrored out to a full crop exactly
  as :func:`deepclarity.detect.pad_small` does at inference.

**Pixel-art icons and UI upscaled x2 by nearest neighbour are labelled clean (0).** A HiDPI UI
doubles every pixel of its icons and widgets: that is the content as designed, nothing was lost
and nothing can be restored, and flagging every such screenshot would make the detector useless
on screenshots. So integer x2 nearest-neighbour upscaling of non-photo content (UI, line art,
pixel-art icons) is a hard negative. Blocks of 3 px or more, any mosaic, and any nearest
upscaling of a photo remain positive: those are the pixelation users ask about.

Sample ``i`` is drawn from ``numpy.random.default_rng([seed, i])`` as in v1 (label ``i % 2``).

``--synthesis mix`` draws a share of samples (``V1_SHARE_IN_MIX``) from v1 on photos and the rest
from v2: fine-tuning on v2 alone made the detector forget small-factor and resized pixelation of
photos (photo suite accuracy 0.994 -> 0.949 after 5000 v2 steps), which v1 keeps in view.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from deepclarity.degrade import CENSOR_MODES, RESIZE_METHODS, censor_regions, jpeg, pixelate, resize
from deepclarity.detect import CROP_SIZE, crop_features, pad_small

from .carriers import CARRIERS, pixel_art_icon
from .synth import Sample, _region, synthesize, validation_set

__all__ = ["REVISION", "synthesize_v2", "SynthDatasetV2", "validation_set_v2", "validation_set_mix", "region_boxes"]

#: Share of v1 photo samples in ``--synthesis mix``.
V1_SHARE_IN_MIX = 0.5
#: Revision of the v2 samples, recorded in the card: weights validated on another revision's samples
#: set no bar for a run (2: whole screenshots and drawn carriers pixelated at small factors).
REVISION = 2
#: Share of positives on screenshots and drawn carriers that are pixelated as a whole (revision 2).
WHOLE_SCREEN_SHARE = 0.3
#: Smallest factor of that whole-image pixelation: clear of HiDPI's exact x2, a hard negative.
WHOLE_SCREEN_MIN_FACTOR = 2.15
#: Carrier kinds and their shares.
CARRIER_SHARES = {"photo": 0.40, "screen": 0.25, "drawn": 0.35}


def _carrier(photos, screens, rng: np.random.Generator, side: int) -> tuple[np.ndarray, str]:
    r = rng.random()
    if r < CARRIER_SHARES["photo"] or (not screens and r < CARRIER_SHARES["photo"] + CARRIER_SHARES["screen"]):
        img = photos[int(rng.integers(len(photos)))]
        return np.ascontiguousarray(_region(img, rng, side)), "photo"
    if r < CARRIER_SHARES["photo"] + CARRIER_SHARES["screen"]:
        img = screens[int(rng.integers(len(screens)))]
        return np.ascontiguousarray(_region(img, rng, side)), "screen"
    name = str(rng.choice(sorted(CARRIERS)))
    return CARRIERS[name](side, side, rng), name


def _block(rng: np.random.Generator, low: float = 2.0, high: float = 32.0) -> int:
    return int(round(math.exp(rng.uniform(math.log(low), math.log(high)))))


def region_boxes(h: int, w: int, rng: np.random.Generator, block: int) -> tuple[list[tuple[int, int, int, int]], str]:
    """Boxes ``(x0, y0, x1, y1)`` of one region shape inside an ``h x w`` crop: a text strip,
    a face-sized box, several boxes, or the whole crop; and the shape's name."""
    r = rng.random()

    def box(bh: int, bw: int) -> tuple[int, int, int, int]:
        bh, bw = max(1, min(h, bh)), max(1, min(w, bw))
        y0, x0 = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
        return x0, y0, x0 + bw, y0 + bh

    if r < 0.35:
        th = int(rng.integers(10, 41))
        return [box(th, int(th * rng.uniform(3, 12)))], "strip"
    if r < 0.6:
        s = int(rng.integers(40, 121))
        return [box(s, int(s * rng.uniform(0.7, 1.3)))], "face"
    if r < 0.8:
        def side(n: int) -> int:  # at least two blocks, at most half the side (both bounds clipped to n)
            lo = min(n, max(10, 2 * block))
            return int(rng.integers(lo, max(lo + 1, n // 2)))
        return [box(side(h), side(w)) for _ in range(int(rng.integers(2, 5)))], "boxes"
    return [(0, 0, w, h)], "whole"


def synthesize_v2(photos: list[np.ndarray], screens: list[np.ndarray], rng: np.random.Generator, label: int,
                  size: int = CROP_SIZE) -> Sample:
    """One v2 sample (see the module description) with the given label: an ``HxWx3`` ``uint8``
    crop of at most ``size`` a side (snippets are already mirrored out to ``size``)."""
    steps = []
    # Post-resize first decided, so the carrier is large enough to still fill a crop afterwards.
    post = 1.0
    r = rng.random()
    if r < 0.1:
        post = float(rng.choice([1.25, 1.5, 2.0]))  # screenshot scaling
    elif r < 0.35:
        post = float(rng.uniform(0.5, 1.0))
    snippet = rng.random() < 0.1
    side = int(math.ceil(size / post)) + 8
    img, kind = _carrier(photos, screens, rng, side)
    steps.append(kind)
    h, w = img.shape[:2]
    min_block = 1.5 / post if post < 1.0 else 1.0

    if label == 1:
        r = rng.random()
        if r < 0.2 and kind == "photo":
            factor = float(rng.uniform(max(1.5, min_block), 4.0))
            img = pixelate(img, factor)
            steps.append(f"pixelate {factor:.2f}")
        elif r < WHOLE_SCREEN_SHARE and kind != "photo":
            # A whole screenshot pixelated at a small factor: decimated (nearest) or averaged
            # (area), blocks of two sizes unless the factor is whole; never the exact x2 of HiDPI.
            factor = float(rng.uniform(max(WHOLE_SCREEN_MIN_FACTOR, min_block), 4.0))
            if rng.random() < 0.5:
                img = pixelate(img, factor)
                steps.append(f"pixelate {factor:.2f}")
            else:
                small = cv2.resize(img, (max(1, round(w / factor)), max(1, round(h / factor))),
                                   interpolation=cv2.INTER_AREA)
                img = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
                steps.append(f"pixelate area {factor:.2f}")
        else:
            block = max(_block(rng), int(math.ceil(max(2.0, min_block))))
            boxes, shape = region_boxes(h, w, rng, block)
            mode = str(rng.choice(CENSOR_MODES))
            img, truth = censor_regions(img, boxes, block, rng, mode=mode)
            steps.append(f"censor {mode} {shape} x{len(truth)} block {block}")
    else:
        r = rng.random()
        if r < 0.15 and kind != "photo":
            # HiDPI: UI / line art doubled by nearest neighbour, or a pixel-art icon pasted x2.
            if rng.random() < 0.5:
                half = np.ascontiguousarray(img[: (h + 1) // 2, : (w + 1) // 2])
                img = np.ascontiguousarray(np.repeat(np.repeat(half, 2, 0), 2, 1)[:h, :w])
                steps.append("nearest x2 (HiDPI)")
            else:
                s = int(rng.integers(8, 33))
                icon = np.repeat(np.repeat(pixel_art_icon(s, rng), 2, 0), 2, 1)
                y0, x0 = int(rng.integers(0, max(1, h - 2 * s))), int(rng.integers(0, max(1, w - 2 * s)))
                img = img.copy()
                img[y0:y0 + 2 * s, x0:x0 + 2 * s] = icon[: h - y0, : w - x0]
                steps.append(f"pixel-art icon {s} x2")
        elif r < 0.3:
            up = float(rng.uniform(1.5, 4.0))
            small = np.ascontiguousarray(img[: max(8, int(h / up)), : max(8, int(w / up))])
            method = "bicubic" if rng.random() < 0.6 else "bilinear"
            img = resize(small, up, method)
            steps.append(f"{method} x{up:.2f}")
        elif r < 0.4:
            sigma = float(rng.uniform(0.5, 2.0))
            img = cv2.GaussianBlur(img, (0, 0), sigma)
            steps.append(f"blur {sigma:.2f}")
        elif r < 0.5:
            q = int(rng.integers(10, 41))
            img = jpeg(np.ascontiguousarray(img), q)
            steps.append(f"jpeg q{q}")

    if post != 1.0:
        method = str(rng.choice(["bilinear", "bicubic"])) if post > 1.0 else str(rng.choice(sorted(RESIZE_METHODS)))
        img = resize(img, post, method)
        steps.append(f"resize {post:.2f} {method}")
    if rng.random() < 0.5:
        q = int(rng.integers(50, 96))
        img = jpeg(np.ascontiguousarray(img), q)
        steps.append(f"jpeg q{q}")
    crop = np.ascontiguousarray(_region(img, rng, size))
    if snippet:
        ch = int(rng.integers(16, 65))
        cw = int(rng.integers(ch * 2, size + 1))
        y0 = int(rng.integers(0, max(1, crop.shape[0] - ch + 1)))
        x0 = int(rng.integers(0, max(1, crop.shape[1] - cw + 1)))
        crop = pad_small(np.ascontiguousarray(crop[y0:y0 + ch, x0:x0 + cw]), size)[:size, :size]
        steps.append(f"snippet {ch}px")
    return Sample(crop, label, ", ".join(steps))


class SynthDatasetV2(Dataset):
    """Sample ``i``: drawn from ``rng([seed, i])`` with label ``i % 2``; returns the detector input
    ``(3, CROP_SIZE, CROP_SIZE)`` float32 (:func:`crop_features` of ``kind``) and the label."""

    def __init__(self, photos: list[np.ndarray], screens: list[np.ndarray], kind: str, seed: int,
                 v1_share: float = 0.0) -> None:
        self.photos, self.screens, self.kind, self.seed = photos or screens, screens, kind, seed
        self.v1_share = v1_share  # mix: this share of samples is v1's (photos only)

    def __len__(self) -> int:
        return 2**62

    def __getitem__(self, i: int):
        rng = np.random.default_rng([self.seed, i])
        if self.v1_share and rng.random() < self.v1_share:
            img = self.photos[int(rng.integers(len(self.photos)))]
            sample = synthesize(img, rng, label=i % 2)
        else:
            sample = synthesize_v2(self.photos, self.screens, rng, label=i % 2)
        return torch.from_numpy(crop_features(sample.crop, self.kind)), sample.label


def validation_set_v2(photos: list[np.ndarray], screens: list[np.ndarray], kind: str, seed: int,
                      per_image: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed v2 set: ``per_image`` crops (labels alternating) per validation image (photos and
    screenshots), as ``(N,3,CROP_SIZE,CROP_SIZE)`` float32 features and ``(N,)`` int64 labels."""
    feats, labels = [], []
    for n in range(len(photos) + len(screens)):
        for k in range(per_image):
            rng = np.random.default_rng([seed, 1_000_003, n, k])
            s = synthesize_v2(photos or screens, screens, rng, label=k % 2)
            feats.append(crop_features(s.crop, kind))
            labels.append(s.label)
    return torch.from_numpy(np.stack(feats)), torch.tensor(labels)


def validation_set_mix(photos: list[np.ndarray], screens: list[np.ndarray], kind: str, seed: int,
                       per_image: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The mix's fixed set: v1's validation crops of the photos followed by v2's set."""
    x1, y1 = validation_set(photos or screens, kind, seed, per_image)
    x2, y2 = validation_set_v2(photos, screens, kind, seed, per_image)
    return torch.cat([x1, x2]), torch.cat([y1, y2])
