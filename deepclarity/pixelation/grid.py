"""Block-grid estimation: how large are the blocks of a pixelated image, and where do they start.

A nearest-neighbour-pixelated image is constant inside each block, so the absolute difference
between neighbouring columns (rows) is near zero inside blocks and spikes on block boundaries.
Averaged over rows, that gives a 1-D "boundary energy" profile per axis (:func:`boundary_profile`).
For every candidate block size ``p`` (fractional allowed) and phase ``phi`` we correlate the profile
with a comb of one 1-px tooth per block, ``{x : (x - phi) mod p < 1}``; the best-correlated comb
gives the block size and phase (:func:`estimate_period`, :func:`estimate_grid`), and its correlation
is the confidence (natural images spread their edges everywhere).

The estimate places the comb to within about a pixel per axis; :func:`~.recover.refine_grid` snaps
it to exact integer edges before blocks are read back.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["GridEstimate", "boundary_profile", "estimate_period", "estimate_grid"]

MIN_BLOCK = 1.5
MAX_BLOCK = 64.0
#: Longest stretch of a profile searched for a period (a window of the strongest boundary energy).
MAX_PROFILE = 768
#: Smallest image side on which a grid is estimated (shorter profiles correlate with combs by chance).
MIN_SIDE = 24


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
    """Luma in the image's own dtype (``uint8`` stays ``uint8``: the fast, exact profile path)."""
    arr = np.asarray(img)
    if arr.ndim == 3 and arr.shape[2] >= 3:
        arr = cv2.cvtColor(np.ascontiguousarray(arr[..., :3]), cv2.COLOR_RGB2GRAY)
    elif arr.ndim == 3:
        arr = arr[..., 0]
    return arr


def boundary_profile(img: np.ndarray, axis: int, mask: np.ndarray | None = None) -> np.ndarray:
    """Mean absolute difference between neighbours along ``axis`` (1 = columns -> profile over x).

    Entry ``x`` measures the step between pixel ``x`` and ``x + 1``. ``mask`` (``HxW`` bool) limits
    the average to the pixels it marks (e.g. the tiles the detector found pixelated); positions
    with no marked pixel are NaN (unknown) and take no part in the estimate.
    """
    gray = _gray(img)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
    # Averaging every other row (column) gives the same profile shape at half the cost.
    stride = 2 if gray.shape[1 - axis] > 512 else 1
    if stride > 1:
        gray = gray[::stride] if axis == 1 else gray[:, ::stride]
        if mask is not None:
            mask = mask[::stride] if axis == 1 else mask[:, ::stride]
    weight = None
    if mask is not None:
        m = mask[:, 1:] & mask[:, :-1] if axis == 1 else mask[1:, :] & mask[:-1, :]
        weight = m.sum(axis=1 - axis).astype(np.float32)
    if gray.dtype == np.uint8:
        # Integer sums of 8-bit steps are exact: the same profile as the float path below, faster.
        a, b = (gray[:, 1:], gray[:, :-1]) if axis == 1 else (gray[1:, :], gray[:-1, :])
        diff = cv2.absdiff(np.ascontiguousarray(a), np.ascontiguousarray(b))
        if mask is not None:
            diff = diff * m.view(np.uint8)
        sums = cv2.reduce(diff, 1 - axis, cv2.REDUCE_SUM, dtype=cv2.CV_32S).reshape(-1).astype(np.float32)
        profile = sums / (np.maximum(weight, 1.0) if weight is not None else np.float32(diff.shape[1 - axis]))
    else:
        diff = np.abs(np.diff(gray.astype(np.float32), axis=axis))
        if mask is not None:
            profile = (diff * m).sum(axis=1 - axis) / np.maximum(weight, 1.0)
        else:
            profile = diff.mean(axis=1 - axis)
    # Subtract a running minimum: inside blocks the difference is ~0 (any 5 px window holds such a
    # position when blocks are >= 1.5 px), so what remains is boundary energy, not content.
    row = profile.reshape(1, -1).astype(np.float32)
    floor = cv2.erode(row, np.ones((1, 5), np.uint8), borderType=cv2.BORDER_REFLECT)[0]
    out = np.maximum(profile - floor, 0.0).astype(np.float64)
    if weight is not None:
        out[weight == 0] = np.nan  # outside the mask: unknown, not "no boundary"
    return out


def _comb_correlations(profile: np.ndarray, periods: np.ndarray, nbins: int) -> tuple[np.ndarray, np.ndarray]:
    """For each period, the best Pearson correlation over phases between ``profile`` and a comb
    of 1-px teeth ``{x : (x - phase) mod period < 1}``; returns ``(correlations, phases)``.

    Phases are quantised to ``nbins`` per period, all periods at once (one ``bincount``).
    Correlation (rather than the share of energy on the comb) is what tells the block size from
    its multiples and halves: a comb of ``2p`` catches only half the boundaries, one of ``p/2``
    adds as many teeth where there are none, and both correlate less than the true comb.
    """
    valid = ~np.isnan(profile)
    values = np.where(valid, profile, 0.0)
    n = int(valid.sum())
    periods = np.asarray(periods, dtype=np.float64).reshape(-1)
    m = periods.size
    x = np.arange(profile.size, dtype=np.float64)
    bins = (np.floor((x[None, :] % periods[:, None]) / periods[:, None] * nbins).astype(np.int64) % nbins)
    flat = (bins + np.arange(m)[:, None] * nbins).ravel()
    sums = np.bincount(flat, weights=np.tile(values, m), minlength=m * nbins).reshape(m, nbins)
    counts = np.bincount(flat, weights=np.tile(valid.astype(np.float64), m),
                         minlength=m * nbins).reshape(m, nbins)
    widths = np.maximum(1, np.rint(nbins / periods).astype(np.int64))  # one pixel of phase

    def window(a: np.ndarray) -> np.ndarray:
        # Circular sum over ``width`` consecutive phase bins starting at each bin.
        ext = np.concatenate([a, a], axis=1)
        csum = np.concatenate([np.zeros((m, 1)), np.cumsum(ext, axis=1)], axis=1)
        start = np.arange(nbins)[None, :]
        return csum[np.arange(m)[:, None], start + widths[:, None]] - csum[:, :nbins]

    on_sum, on_count = window(sums), window(counts)
    density = on_count / n
    mean, std = float(values[valid].mean()), float(values[valid].std())
    spread = np.sqrt(np.clip(density * (1.0 - density), 1e-12, None))
    corr = (on_sum / n - mean * density) / (max(std, 1e-12) * spread)
    corr[(density <= 0) | (density >= 1)] = -1.0
    best = np.argmax(corr, axis=1)
    return corr[np.arange(m), best], best * periods / nbins


def _best_in_range(profile: np.ndarray, low: float, high: float, step: float) -> tuple[float, float, float]:
    """Best ``(correlation, phase, period)`` for periods in ``[low, high]``: a coarse pass at 4x
    ``step``, then ``step`` around the best coarse period."""
    nbins = max(8, int(round(high / 0.05)))
    coarse = np.arange(low, high + 4 * step, 4 * step)
    corr, _ = _comb_correlations(profile, coarse, nbins)
    centre = coarse[int(np.argmax(corr))]
    fine = np.arange(max(low, centre - 4 * step), centre + 4 * step + step / 2, step)
    corr, phase = _comb_correlations(profile, fine, nbins)
    i = int(np.argmax(corr))
    return float(corr[i]), float(phase[i]), float(fine[i])


def _spectral_candidates(profile: np.ndarray, min_block: float, max_block: float,
                         peaks: int = 4) -> list[float]:
    """Candidate block sizes from the strongest peaks of the profile's spectrum.

    A comb of period ``p`` peaks at frequency ``1/p`` and its harmonics; periods under 2 px alias
    to ``1 - 1/p``. So each peak ``f`` proposes ``k/f`` and ``k/(1-f)`` for ``k = 1, 2, 3``.
    """
    n = profile.size
    size = 1 << int(np.ceil(np.log2(16 * n)))
    centred = np.nan_to_num(profile - np.nanmean(profile), nan=0.0)
    spectrum = np.abs(np.fft.rfft(centred, size))
    freqs = np.fft.rfftfreq(size)
    # Local maxima; the last bin (Nyquist, period exactly 2) has no right neighbour.
    inner = np.arange(1, spectrum.size)
    right = np.append(spectrum[2:], -np.inf)
    is_peak = (spectrum[inner] > spectrum[inner - 1]) & (spectrum[inner] >= right)
    inner = inner[is_peak & (freqs[inner] >= 1.0 / max_block * 0.9)]
    top = inner[np.argsort(spectrum[inner])[::-1][:peaks]]
    candidates = set()
    for f in freqs[top]:
        for k in (1, 2, 3):
            for period in (k / f, k / (1.0 - f)):
                if min_block <= period <= max_block:
                    candidates.add(round(float(period), 4))
    return sorted(candidates)


def estimate_period(profile: np.ndarray, min_block: float = MIN_BLOCK,
                    max_block: float = MAX_BLOCK) -> tuple[float | None, float, float]:
    """Block size along one axis from its boundary profile: ``(period or None, phase, confidence)``.

    Candidates come from the spectrum; each is refined on a grid fine enough that the comb drifts
    by under a quarter pixel over the whole axis, and the best-correlated comb wins. ``confidence``
    is that correlation (1 = every boundary and nothing else; natural images stay low).
    """
    offset = 0
    if profile.size > MAX_PROFILE:  # the most energetic window is plenty, and 2-4x faster
        energy = np.concatenate([[0.0], np.cumsum(np.nan_to_num(profile, nan=0.0))])
        offset = int(np.argmax(energy[MAX_PROFILE:] - energy[:-MAX_PROFILE]))
        profile = profile[offset:offset + MAX_PROFILE]
    n = profile.size
    known = profile[~np.isnan(profile)]
    max_block = min(max_block, known.size / 3.0)  # need at least three blocks to call it a grid
    if known.size < 8 or float(known.std()) <= 1e-9 or max_block < min_block:
        return None, 0.0, 0.0
    best = (-1.0, 0.0, 0.0)  # (correlation, phase, period)
    for centre in _spectral_candidates(profile, min_block, max_block):
        # The spectrum locates a period to about p^2/n; the comb must be placed to p/(4n).
        half_width = max(0.004 * centre, centre * centre / n)
        step = max(0.25 * centre / n, 1e-4)
        found = _best_in_range(profile, max(min_block, centre - half_width), centre + half_width, step)
        if found[0] > best[0]:
            best = found
    corr, phase, period = best
    if corr <= 0:
        return None, 0.0, 0.0
    return period, (phase + offset) % period, float(corr)


def _refine_near(profile: np.ndarray, centre: float, rel: float = 0.01) -> tuple[float, float, float]:
    """Best ``(correlation, phase, period)`` within ``rel`` of ``centre``."""
    step = max(0.25 * centre / profile.size, 1e-4)
    return _best_in_range(profile, max(MIN_BLOCK, centre * (1 - rel)), centre * (1 + rel), step)


def estimate_grid(img: np.ndarray, mask: np.ndarray | None = None, *,
                  min_confidence: float = 0.35) -> GridEstimate:
    """Estimate block size and phase of ``img`` (``HxW[xC]``), optionally only where ``mask`` is set.

    Blocks are usually square: when the two axes disagree by more than 10%, the period whose
    weaker axis correlates best is used for both, unless separate periods fit clearly better
    (then the blocks really are rectangular).
    Returns a :class:`GridEstimate`; ``block_size`` is ``None`` when either axis shows no grid with
    at least ``min_confidence``.
    """
    h, w = np.shape(img)[:2]
    if min(h, w) < MIN_SIDE:  # too few pixels for a periodicity to mean anything
        return GridEstimate(None, None, None, 0.0)
    gray = _gray(img)
    profiles = [boundary_profile(gray, axis, mask) for axis in (1, 0)]  # x, then y
    (px, phx, cx), (py, phy, cy) = (estimate_period(p) for p in profiles)
    if px is not None and py is not None and abs(px - py) > 0.1 * max(px, py):
        # Score a grid by its weaker axis: a JPEG 8x8 grid or a multiple can win one axis alone.
        separate = min(cx, cy)
        shared = []
        for q in (px, py):
            (c1, f1, q1), (c2, f2, q2) = (_refine_near(p, q) for p in profiles)
            shared.append((min(c1, c2), (q1, f1, c1), (q2, f2, c2)))
        score, xs, ys = max(shared, key=lambda t: t[0])
        if score >= 0.8 * separate:
            (px, phx, cx), (py, phy, cy) = xs, ys
    confidence = float(min(cx, cy))
    if px is None or py is None or confidence < min_confidence:
        return GridEstimate(None, None, None, confidence)
    # Boundary between pixel x and x+1 means the block starts at x+1.
    return GridEstimate(float((px + py) / 2), (px, py), ((phx + 1) % px, (phy + 1) % py), confidence)
