"""Block-grid estimation: how large are the blocks of a pixelated image, and where do they start.

A nearest-neighbour-pixelated image is constant inside each block, so the absolute difference
between neighbouring columns (rows) is near zero inside blocks and spikes on block boundaries.
Averaged over rows, that gives a 1-D "boundary energy" profile per axis. For every candidate block
size ``p`` (fractional allowed) and phase ``phi`` we measure the share of the profile's energy that
falls on a comb with one tooth per block, ``{x : (x - phi) mod p < 1}``. The true block size puts
(almost) all energy on its comb; half of it (``p/2``) does too but needs twice the teeth, and double
it (``2p``) catches only half the energy — so we take the *largest* size whose comb holds nearly the
best share. The share also serves as confidence: natural images spread their edges everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["GridEstimate", "boundary_profile", "estimate_period", "estimate_grid"]

MIN_BLOCK = 1.5
MAX_BLOCK = 64.0


@dataclass
class GridEstimate:
    """Block size and grid phase of a pixelated image (``None`` when no grid was found).

    Attributes:
        block_size: mean block side in pixels (fractional), the average of both axes.
        block_xy: ``(bx, by)`` block width and height.
        phase_xy: ``(px, py)`` position in pixels of the first block boundary on each axis
            (blocks start at ``px + k * bx``).
        confidence: in [0, 1]: share of boundary energy on the grid, minus what a random comb
            of the same density would catch.
    """

    block_size: float | None
    block_xy: tuple[float, float] | None
    phase_xy: tuple[float, float] | None
    confidence: float

    @property
    def found(self) -> bool:
        return self.block_size is not None


def _gray(img: np.ndarray) -> np.ndarray:
    arr = np.asarray(img)
    if arr.ndim == 3 and arr.shape[2] >= 3:
        arr = cv2.cvtColor(np.ascontiguousarray(arr[..., :3]), cv2.COLOR_RGB2GRAY)
    elif arr.ndim == 3:
        arr = arr[..., 0]
    return arr.astype(np.float32)


def boundary_profile(img: np.ndarray, axis: int, mask: np.ndarray | None = None) -> np.ndarray:
    """Mean absolute difference between neighbours along ``axis`` (1 = columns -> profile over x).

    Entry ``x`` measures the step between pixel ``x`` and ``x + 1``. ``mask`` (``HxW`` bool) limits
    the average to the pixels it marks (e.g. the tiles the detector found pixelated).
    """
    gray = _gray(img)
    diff = np.abs(np.diff(gray, axis=axis))
    if mask is not None:
        m = mask[:, 1:] & mask[:, :-1] if axis == 1 else mask[1:, :] & mask[:-1, :]
        weight = m.sum(axis=1 - axis).astype(np.float32)
        profile = (diff * m).sum(axis=1 - axis) / np.maximum(weight, 1.0)
    else:
        profile = diff.mean(axis=1 - axis)
    # Subtract a running minimum: inside blocks the difference is ~0 (any 5 px window holds such a
    # position when blocks are >= 1.5 px), so what remains is boundary energy, not content.
    row = profile.reshape(1, -1).astype(np.float32)
    floor = cv2.erode(row, np.ones((1, 5), np.uint8), borderType=cv2.BORDER_REFLECT)[0]
    return np.maximum(profile - floor, 0.0)


def _comb_share(profile: np.ndarray, period: float, phase_step: float = 0.05) -> tuple[float, float]:
    """Best (share of energy on a 1-px-wide comb of ``period``, its phase) over all phases."""
    x = np.arange(profile.size, dtype=np.float64)
    nbins = max(1, int(round(period / phase_step)))
    bins = np.floor((x % period) / period * nbins).astype(np.int64) % nbins
    hist = np.bincount(bins, weights=profile, minlength=nbins)
    width = max(1, int(round(nbins / period)))  # one pixel of phase
    circ = np.concatenate([hist, hist[: width - 1]])
    window = np.convolve(circ, np.ones(width), mode="valid")[:nbins]
    best = int(np.argmax(window))
    return float(window[best]), best * period / nbins


def estimate_period(profile: np.ndarray, min_block: float = MIN_BLOCK,
                    max_block: float = MAX_BLOCK) -> tuple[float | None, float, float]:
    """Block size along one axis from its boundary profile: ``(period or None, phase, confidence)``."""
    total = float(profile.sum())
    n = profile.size
    max_block = min(max_block, n / 3.0)  # need at least three blocks to call it a grid
    if total <= 1e-6 or max_block < min_block:
        return None, 0.0, 0.0
    coarse = np.arange(min_block, max_block + 1e-9, 0.02)
    shares = np.array([_comb_share(profile, p, phase_step=0.1)[0] for p in coarse]) / total
    # Chance level: a comb of period p covers 1/p of the positions.
    excess = shares - 1.0 / coarse
    best = float(excess.max())
    if best <= 0:
        return None, 0.0, 0.0
    # The largest period that keeps nearly the best share (p/2, p/3 ... tie with p; 2p loses half).
    good = np.flatnonzero(shares >= 0.9 * shares[np.argmax(excess)])
    p0 = float(coarse[good.max()])
    fine = np.arange(max(min_block, p0 - 0.03), p0 + 0.0301, 0.002)
    scored = [(_comb_share(profile, p, 0.02), p) for p in fine]
    (share, phase), period = max(scored, key=lambda t: (t[0][0], t[1]))
    confidence = max(0.0, share / total - 1.0 / period) / max(1e-9, 1.0 - 1.0 / period)
    return period, phase, float(confidence)


def estimate_grid(img: np.ndarray, mask: np.ndarray | None = None, *,
                  min_confidence: float = 0.25) -> GridEstimate:
    """Estimate block size and phase of ``img`` (``HxW[xC]``), optionally only where ``mask`` is set.

    Returns a :class:`GridEstimate`; ``block_size`` is ``None`` when either axis shows no grid with
    at least ``min_confidence``.
    """
    results = []
    for axis in (1, 0):  # x, then y
        period, phase, conf = estimate_period(boundary_profile(img, axis, mask))
        results.append((period, phase, conf))
    (px, phx, cx), (py, phy, cy) = results
    confidence = float(min(cx, cy))
    if px is None or py is None or confidence < min_confidence:
        return GridEstimate(None, None, None, confidence)
    # Boundary between pixel x and x+1 means the block starts at x+1.
    return GridEstimate(float((px + py) / 2), (px, py), ((phx + 1) % px, (phy + 1) % py), confidence)
