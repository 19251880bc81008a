"""Block-grid estimation: how large are the blocks of a pixelated image, and where do they start.

A nearest-neighbour-pixelated image is constant inside each block, so the absolute difference
between neighbouring columns (rows) is near zero inside blocks and spikes on block boundaries.
Averaged over rows, that gives a 1-D "boundary energy" profile per axis. For every candidate block
size ``p`` (fractional allowed) and phase ``phi`` we correlate the profile with a comb of one
1-px tooth per block, ``{x : (x - phi) mod p < 1}``; the best-correlated comb gives the block size
and phase, and its correlation is the confidence (natural images spread their edges everywhere).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .errors import ImageError

__all__ = ["GridEstimate", "boundary_profile", "estimate_period", "estimate_grid", "block_edges", "expand_lowres",
           "grid_axes", "grid_edges", "lowres_shape", "refine_grid", "recover_lowres", "find_mosaic_region"]

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


# ------------------------------------------------------------------------------- de-pixelation
#
# Integer block edges follow degrade.pixelate's rule: a block whose real-valued start is ``v``
# starts at pixel ``ceil(v - 1/2)`` (round half down), so an axis of ``L`` pixels cut into ``n``
# blocks has edges ``ceil(k * L / n - 1/2)``, exactly :func:`degrade.block_starts`.

_EPS = 1e-7
#: Share of a cell's size ignored on each side when averaging its interior (JPEG ringing, blur).
INTERIOR_MARGIN = 0.15
RECOVER_METHODS = ("median", "mean", "center")


def _round_half_down(values: np.ndarray) -> np.ndarray:
    return np.ceil(np.asarray(values, dtype=np.float64) - 0.5 - _EPS).astype(np.int64)


def _check_axis(length: int, block: float, phase: float) -> tuple[int, float, float]:
    length, block, phase = int(length), float(block), float(phase)
    if length < 1:
        raise ValueError(f"block_edges: length must be >= 1, got {length}")
    if not (np.isfinite(block) and block >= 1.0):
        raise ValueError(f"block_edges: block size must be a finite number >= 1, got {block}")
    if not np.isfinite(phase):
        raise ValueError(f"block_edges: phase must be finite, got {phase}")
    return length, block, phase % block


def block_edges(length: int, block: float, phase: float = 0.0) -> np.ndarray:
    """Integer cell boundaries along one axis of a grid of (fractional) ``block`` size.

    Cell ``k`` spans ``[round(phase + k*block), round(phase + (k+1)*block))``, rounding half down
    as :func:`degrade.pixelate` does; a phase over half a pixel leaves a partial first cell
    ``[0, round(phase))``, and the last cell ends at ``length`` (it may be partial too).
    For an axis pixelated by ``f`` (``n = round(length / f)`` blocks), ``block = length / n`` and
    ``phase = 0`` give exactly ``degrade.block_starts(length, f)`` followed by ``length``.

    Args:
        length: pixels on the axis (``>= 1``).
        block: block size in pixels (``>= 1``, fractional allowed).
        phase: start of a block in pixels; taken modulo ``block``.

    Returns:
        ``(n_cells + 1,)`` int64, strictly increasing, from ``0`` to ``length`` (no empty cell).
    """
    length, block, phase = _check_axis(length, block, phase)
    k = np.arange(int(np.ceil((length - phase) / block)) + 2)
    starts = _round_half_down(phase + k * block)
    starts = starts[(starts > 0) & (starts < length)]
    return np.unique(np.concatenate([[0], starts, [length]]).astype(np.int64))


def grid_axes(grid: GridEstimate) -> tuple[tuple[float, float], tuple[float, float]]:
    """``((bx, px), (by, py))`` of a found grid; ``ValueError`` otherwise."""
    if grid is None or not isinstance(grid, GridEstimate):
        raise ValueError(f"expected a GridEstimate with a block size, got {grid!r}")
    if grid.block_xy is None and grid.block_size is None:
        raise ValueError("the grid has no block size (estimate_grid found no grid): nothing to recover")
    bx, by = grid.block_xy if grid.block_xy is not None else (grid.block_size, grid.block_size)
    px, py = grid.phase_xy if grid.phase_xy is not None else (0.0, 0.0)
    return (float(bx), float(px)), (float(by), float(py))


def grid_edges(height: int, width: int, grid: GridEstimate) -> tuple[np.ndarray, np.ndarray]:
    """Cell boundaries ``(row_edges, col_edges)`` of ``grid`` over an ``height x width`` image
    (:func:`block_edges` on each axis); each ``(n + 1,)`` int64 from 0 to the side length."""
    (bx, px), (by, py) = grid_axes(grid)
    return block_edges(height, by, py), block_edges(width, bx, px)


def lowres_shape(height: int, width: int, grid: GridEstimate) -> tuple[int, int]:
    """``(rows, cols)``: one per grid cell, partial border cells included; the shape
    ``recover_lowres(img, grid, refine=False)`` returns for an ``height x width`` image."""
    rows, cols = grid_edges(height, width, grid)
    return rows.size - 1, cols.size - 1


def _check_image(img: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(img)
    if arr.ndim not in (2, 3) or arr.shape[0] == 0 or arr.shape[1] == 0 or arr.size == 0:
        raise ImageError(f"{name}: expected a non-empty HxW or HxWxC array, got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ImageError(f"{name}: expected an integer or float image, got dtype {arr.dtype}")
    return arr


def _comb_scores(values: np.ndarray, valid: np.ndarray, length: int,
                 periods: np.ndarray, phases: np.ndarray) -> np.ndarray:
    """Mean boundary energy on the integer edges of each ``(period, phase)`` pair.

    Edge ``e`` (a block starting at pixel ``e``) is the step between pixels ``e - 1`` and ``e``:
    profile entry ``e - 1``. Edges outside ``[1, length - 1]`` or the mask do not count.
    """
    out = np.full(periods.size, -np.inf)
    kmax = int(np.ceil(length / periods.min())) + 2
    k = np.arange(-1, kmax, dtype=np.float64)
    chunk = max(1, 2_000_000 // k.size)
    for s in range(0, periods.size, chunk):
        e = _round_half_down(phases[s:s + chunk, None] + k[None, :] * periods[s:s + chunk, None])
        idx = np.clip(e - 1, 0, length - 2)
        ok = (e >= 1) & (e <= length - 1) & valid[idx]
        count = ok.sum(axis=1)
        total = (values[idx] * ok).sum(axis=1)
        out[s:s + chunk] = np.where(count > 0, total / np.maximum(count, 1), -np.inf)
    return out


def _refine_axis(profile: np.ndarray, length: int, block: float, phase: float,
                 rel: float) -> tuple[float, float]:
    """Best ``(block, phase)`` within ``rel`` of ``block`` (any phase) for one axis' profile."""
    valid = ~np.isnan(profile)
    if not valid.any() or float(np.nanstd(profile)) <= 1e-12:
        return block, phase % block
    values = np.where(valid, profile, 0.0)
    low, high = max(1.0, block * (1 - rel)), block * (1 + rel)
    # Coarse: the comb drifts by at most one pixel across the axis between neighbouring periods.
    step = block / length
    periods = np.arange(low, high + step / 2, step)
    phases = np.arange(0.0, high, 0.25)
    pp, ff = (a.ravel() for a in np.meshgrid(periods, phases, indexing="ij"))
    keep = ff < pp
    pp, ff = pp[keep], ff[keep]
    score = _comb_scores(values, valid, length, pp, ff)
    best = int(np.argmax(score))
    # Fine: a tenth of that around the winner, phase to 0.05 px.
    fp = np.arange(max(1.0, pp[best] - 2 * step), pp[best] + 2.05 * step, step / 10)
    ph = np.arange(-0.5, 0.5 + 1e-9, 0.05) + ff[best]
    fp, ph = (a.ravel() for a in np.meshgrid(fp, ph, indexing="ij"))
    # Special candidates: integer sizes, whole-axis divisions length / n (degrade.pixelate's
    # grids) and the given size, each at every phase (0.05 px steps) and at the given phase.
    n0 = length / pp[best]
    special = [float(round(block))] if abs(round(block) - block) <= rel * block else []
    special += [length / n for n in range(max(1, int(n0) - 2), int(n0) + 4) if low <= length / n <= high]
    special.append(block)
    sweeps = [np.append(np.arange(0.0, q, 0.05), phase) for q in special]
    sp = np.concatenate([np.full(f.size, q) for q, f in zip(special, sweeps)])
    sf = np.concatenate(sweeps)
    cand_p = np.concatenate([sp, fp, [pp[best]]])
    cand_f = np.concatenate([sf, ph, [ff[best]]]) % cand_p
    cand_s = _comb_scores(values, valid, length, cand_p, cand_f)
    top = cand_s.max()
    tied = cand_s >= top - 1e-9 * max(abs(top), 1e-12)
    # Among equals: the first special size (in the order above), else the middle tied size; then
    # phase 0 if it is among them, else the middle tied phase.
    first = np.flatnonzero(tied[:sp.size])
    if first.size:
        period = cand_p[first[0]]
    else:
        tp = np.sort(cand_p[tied])
        period = tp[tp.size // 2]
    same = np.flatnonzero(tied & (cand_p == period))
    zero = same[np.minimum(cand_f[same], period - cand_f[same]) < 1e-9]
    i = zero[0] if zero.size else same[np.argsort(cand_f[same])[same.size // 2]]
    return float(cand_p[i]), float(cand_f[i] % cand_p[i])


def refine_grid(img: np.ndarray, grid: GridEstimate, mask: np.ndarray | None = None, *,
                rel: float = 0.05) -> GridEstimate:
    """Snap a grid to the block boundaries of ``img`` so that its integer edges are exact.

    :func:`estimate_grid` places a comb of 1-px teeth, which fits any block size within about
    one pixel per axis of the truth; edges extrapolated from it can drift by a pixel or more.
    Here every block size within ``rel`` of the given one and every phase (0.25 px, then a finer
    pass at 0.05 px) is scored by the mean boundary energy (:func:`boundary_profile`) on its
    integer edges (:func:`block_edges`), and the best wins; among equals, an integer size, a
    whole-axis division ``length / n`` (:func:`degrade.pixelate`'s grids) or the given size is
    preferred (in that order), else the middle one; then phase 0, else the middle phase.
    An axis shorter than 3 pixels keeps the given size and phase.

    Args:
        img: ``HxW`` or ``HxWxC`` (any dtype).
        grid: a :class:`GridEstimate` with a block size (estimated or made by hand).
        mask: optional ``HxW`` bool: measure boundaries only there.
        rel: relative search range around the given block size.

    Returns:
        A new :class:`GridEstimate` (same confidence) whose ``block_xy``/``phase_xy`` give the
        refined edges through :func:`grid_edges`.
    """
    arr = _check_image(img, "refine_grid")
    (bx, px), (by, py) = grid_axes(grid)
    h, w = arr.shape[:2]
    gray = _gray(arr)
    if w >= 3:
        bx, px = _refine_axis(boundary_profile(gray, 1, mask), w, bx, px, rel)
    if h >= 3:
        by, py = _refine_axis(boundary_profile(gray, 0, mask), h, by, py, rel)
    return GridEstimate(float((bx + by) / 2), (bx, by), (px, py), float(grid.confidence))


def _interior(edges: np.ndarray, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """``(lo, hi)`` of each cell shrunk by ``round(margin * size)`` per side, keeping >= 1 px."""
    a, b = edges[:-1], edges[1:]
    size = b - a
    shrink = np.minimum(np.floor(margin * size + 0.5).astype(np.int64), (size - 1) // 2)
    return a + shrink, b - shrink


def recover_lowres(img: np.ndarray, grid: GridEstimate, *, method: str = "median",
                   refine: bool = True, margin: float = INTERIOR_MARGIN) -> np.ndarray:
    """The low-resolution image a pixelated ``img`` holds: one value per block.

    Args:
        img: ``HxW`` or ``HxWxC`` ``uint8``/``uint16`` (or float) pixelated image.
        grid: its :class:`GridEstimate` (from :func:`estimate_grid`, or made by hand to force a
            block size; ``phase_xy`` defaults to ``(0, 0)``).
        method: ``"median"`` (default; robust to JPEG) or ``"mean"`` of each block's interior,
            or ``"center"``: the block's centre pixel.
        refine: first snap the grid to the image with :func:`refine_grid` (needed for exact
            edges from an estimated grid); ``False`` uses ``grid`` exactly as given.
        margin: share of a block's size ignored on each side (ringing and blur at borders);
            at least one pixel is always kept.

    Returns:
        ``rows x cols[xC]`` array, same dtype as ``img`` (integers rounded and clipped), with
        ``(rows, cols) = lowres_shape(H, W, grid)`` of the (refined) grid.

    Raises:
        ImageError: ``img`` is empty or not an image array.
        ValueError: ``grid`` is ``None`` / has no block size, or ``method`` is unknown.
    """
    arr = _check_image(img, "recover_lowres")
    if method not in RECOVER_METHODS:
        raise ValueError(f"recover_lowres: method must be one of {RECOVER_METHODS}, got {method!r}")
    grid_axes(grid)
    if refine:
        grid = refine_grid(arr, grid)
    ys, xs = grid_edges(arr.shape[0], arr.shape[1], grid)
    img3 = arr[..., None] if arr.ndim == 2 else arr
    if method == "center":
        cy, cx = (ys[:-1] + ys[1:]) // 2, (xs[:-1] + xs[1:]) // 2
        out = img3[cy[:, None], cx[None, :]]
        return out[..., 0] if arr.ndim == 2 else out.copy()
    ylo, yhi = _interior(ys, margin)
    xlo, xhi = _interior(xs, margin)
    hs, ws = yhi - ylo, xhi - xlo
    channels = img3.shape[2]
    out = np.empty((ys.size - 1, xs.size - 1, channels), dtype=np.float64)
    # Cells of equal interior size are gathered together into one (rows, cols, C, pixels) array.
    for hv in np.unique(hs):
        ri = np.flatnonzero(hs == hv)
        rows = ylo[ri, None] + np.arange(hv)
        for wv in np.unique(ws):
            ci = np.flatnonzero(ws == wv)
            cols = xlo[ci, None] + np.arange(wv)
            cells = img3[rows[:, :, None, None], cols[None, None, :, :]]  # (r, hv, c, wv, C)
            cells = cells.transpose(0, 2, 4, 1, 3).reshape(ri.size, ci.size, channels, hv * wv)
            reduce = np.median if method == "median" else np.mean
            out[ri[:, None], ci[None, :]] = reduce(cells, axis=-1)
    if np.issubdtype(arr.dtype, np.integer):
        info = np.iinfo(arr.dtype)
        out = np.clip(np.rint(out), info.min, info.max)
    out = out.astype(arr.dtype)
    return out[..., 0] if arr.ndim == 2 else out


# ---------------------------------------------------------------------------------- mosaic region

#: A box covering at least this share of the image is full-image pixelation, not a censor mosaic.
MAX_MOSAIC_COVER = 0.9
#: A step between flat runs counts as a cell border when it exceeds this many ``tol``: smooth
#: sky and gradients step by a level or two between flat runs too.
STEP_FACTOR = 4.0
#: A mosaic cell differs from at least this many of its (constant) neighbours; a flat area next
#: to the mosaic differs from one only.
MIN_STEPS = 2
#: A line of cells along the region's border joins it when this share of its cells is constant.
GROW_SHARE = 0.75


def expand_lowres(low: np.ndarray, height: int, width: int, grid: GridEstimate) -> np.ndarray:
    """The inverse of :func:`recover_lowres`: every cell of ``grid`` filled with its value, an
    ``height x width`` block image (``low`` is ``lowres_shape(height, width, grid)``)."""
    ys, xs = grid_edges(height, width, grid)
    rows = np.searchsorted(ys, np.arange(height), side="right") - 1
    cols = np.searchsorted(xs, np.arange(width), side="right") - 1
    return low[rows[:, None], cols[None, :]]


def _channels_float(arr: np.ndarray) -> np.ndarray:
    img3 = arr[..., None] if arr.ndim == 2 else arr
    return img3.astype(np.float32)


def _flat_mask(img3: np.ndarray, tol: float, window: int = 33) -> np.ndarray:
    """``HxW`` bool: where the image looks like a mosaic before any grid is known.

    Most pixels there equal their right and lower neighbours (within ``tol`` in every channel),
    and the steps between them are isolated (flat on both sides), unlike texture (no flat
    pixels), flat sky or saturated areas (no steps, or only steps of a few ``tol``). Dilated a
    little so the cell borders are included.
    """
    h, w = img3.shape[:2]
    ax = np.abs(np.diff(img3, axis=1)).max(axis=2)  # (H, W-1): step from x to x+1
    ay = np.abs(np.diff(img3, axis=0)).max(axis=2)  # (H-1, W)
    dx, dy = ax <= tol, ay <= tol
    flat = np.zeros((h, w), np.float32)
    flat[:-1, :-1] = dx[:-1, :] & dy[:, :-1]
    steps = np.zeros((h, w), np.float32)
    big = STEP_FACTOR * tol
    steps[:, 1:-2] += (ax[:, 1:-1] > big) & dx[:, :-2] & dx[:, 2:]
    steps[1:-2, :] += (ay[1:-1, :] > big) & dy[:-2, :] & dy[2:, :]
    size = (window, window)
    flat_share = cv2.boxFilter(flat, -1, size, borderType=cv2.BORDER_REFLECT)
    step_share = cv2.boxFilter(steps, -1, size, borderType=cv2.BORDER_REFLECT)
    region = ((flat_share > 0.5) & (step_share > 0.02)).astype(np.uint8)
    return cv2.dilate(region, np.ones((5, 5), np.uint8)).astype(bool)


def _with_end(edges: np.ndarray, start: int, end: int) -> np.ndarray:
    """Edges within ``[start, end]``, ending with ``end``."""
    inner = edges[(edges >= start) & (edges < end)]
    return np.append(inner, end)


def _extend_partial(img3: np.ndarray, edges: np.ndarray, across: np.ndarray, end: int, tol: float,
                    axis: int, share: float = 0.75) -> int:
    """Move ``end`` (a box side on ``axis``: 1 = right, 0 = bottom) over a narrower last line of
    cells: pixel lines from ``end`` on that are constant within each cell of ``across`` (the
    box's cell edges on the other axis) and equal to the line at ``end`` (each in ``share`` of
    the cells / pixels, so a stray natural cell in the box does not stop it)."""
    length = img3.shape[axis]
    if end >= length:
        return end
    after = edges[edges > end]
    stop = int(after[0]) if after.size else length

    def line(i: int) -> np.ndarray:
        return img3[across[0]:across[-1], i] if axis == 1 else img3[i, across[0]:across[-1]]

    first = line(end)
    flat = [np.abs(first[a:b] - first[a]).max() <= tol
            for a, b in zip(across[:-1] - across[0], across[1:] - across[0])]
    if np.mean(flat) < share:
        return end
    new_end = end + 1
    while new_end < stop - 1 and np.mean(np.abs(line(new_end) - first).max(axis=-1) <= tol) >= share:
        new_end += 1
    return new_end


def find_mosaic_region(img: np.ndarray, grid: GridEstimate | None = None, *, min_blocks: int = 3,
                       tol: float | None = None) -> tuple[int, int, int, int] | None:
    """Bounding box of a censor mosaic (block-constant region) over part of ``img``.

    A grid cell belongs to the mosaic when it is constant (every channel's standard deviation
    within ``tol / 2``) and differs (by more than ``tol``) from at least :data:`MIN_STEPS` of its
    four neighbours that are constant too: inside a mosaic, neighbouring cells are constant and
    step on the grid lines, while flat sky or a saturated area is constant but like its
    neighbours, and where it meets texture the neighbour is not constant. The largest
    8-connected group of such cells (one-cell holes closed) gives the box, snapped to the grid;
    a line of mostly constant cells just outside it joins it (border cells in smooth parts of
    the picture), and its right and bottom sides extend over a narrower last row/column of
    mosaic cells. The grid is snapped twice with :func:`refine_grid`: over the flat mask, then
    inside the first box; half the given block size is tried too (estimates can lock onto 2x).
    Exact mosaics only: with the default ``tol``, JPEG ringing makes cells non-constant.

    Args:
        img: ``HxW`` or ``HxWxC``; ``uint8``/``uint16`` (or float in [0, 1]).
        grid: the mosaic's :class:`GridEstimate` (approximate is fine); ``None`` estimates it
            with :func:`estimate_grid` over a mask of flat pixels with isolated steps.
        min_blocks: fewest cells the box must span on each axis.
        tol: constancy tolerance in pixel units; default 1/255 of the dtype's range (1 for uint8).

    Returns:
        ``(x0, y0, x1, y1)`` ints, end exclusive; ``None`` when there is no such region (or no
        grid), or when it covers at least :data:`MAX_MOSAIC_COVER` of the image (full-image
        pixelation).

    Raises:
        ImageError: ``img`` is empty or not an image array.
        ValueError: ``grid`` is neither ``None`` nor a :class:`GridEstimate`.
    """
    arr = _check_image(img, "find_mosaic_region")
    if grid is not None and not isinstance(grid, GridEstimate):
        raise ValueError(f"find_mosaic_region: grid must be a GridEstimate or None, got {grid!r}")
    h, w = arr.shape[:2]
    if tol is None:
        tol = float(np.iinfo(arr.dtype).max) / 255.0 if np.issubdtype(arr.dtype, np.integer) else 1 / 255
    if min(h, w) < 2:
        return None
    img3 = _channels_float(arr)
    mask = _flat_mask(img3, tol)
    if not mask.any():
        return None
    given = grid is not None
    if not given:
        grid = estimate_grid(arr, mask)
    if not grid.found:
        return None
    if _constant_share(img3, refine_grid(arr, grid), tol) >= MAX_MOSAIC_COVER:
        return None  # the whole image is block-constant: full-image pixelation
    (bx, px), (by, py) = grid_axes(grid)
    # Grid estimates sometimes lock onto twice the block size: try half of it as well (it wins
    # only when clearly better: it also fits a mosaic of the full size). A grid estimated over
    # the whole image can also miss a mosaic over a quarter of it (the picture's own edges
    # dominate): the estimate over the flat mask competes too.
    candidates = [(grid, 1.0)]
    if min(bx, by) >= 4.0:
        candidates.append((GridEstimate((bx + by) / 4, (bx / 2, by / 2), (px, py), grid.confidence), 1.25))
    if given:
        masked = estimate_grid(arr, mask)
        if masked.found:
            candidates.append((masked, 1.0))
    best, best_area = None, 0
    for cand, margin in candidates:
        found = _mosaic_cells_box(arr, img3, refine_grid(arr, cand, mask), tol, min_blocks)
        if found is not None:
            # Second pass: snap the grid inside the found region only, a block in from its
            # sides (the first mask also holds natural texture and flat areas, whose chance
            # steps can pull the edges by a pixel).
            box, _, refined = found
            inner = np.zeros((h, w), bool)
            bx2, by2 = (int(np.ceil(b)) for b in refined.block_xy)
            if box[2] - box[0] >= 5 * bx2 and box[3] - box[1] >= 5 * by2:
                inner[box[1] + by2:box[3] - by2, box[0] + bx2:box[2] - bx2] = True
            else:
                inner[box[1]:box[3], box[0]:box[2]] = True
            again = _mosaic_cells_box(arr, img3, refine_grid(arr, refined, inner), tol, min_blocks)
            if again is not None and again[1] >= found[1]:
                found = again
        if found is not None and found[1] > best_area * margin:
            best, best_area = found[0], found[1]
    if best is None:
        return None
    x0, y0, x1, y1 = best
    if (x1 - x0) * (y1 - y0) >= MAX_MOSAIC_COVER * h * w:
        return None
    return best


def _cell_stats(img3: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per grid cell: mean of every channel, largest channel standard deviation, pixel count."""
    img64 = img3.astype(np.float64)
    sums = np.add.reduceat(np.add.reduceat(img64, ys[:-1], axis=0), xs[:-1], axis=1)
    sq = np.add.reduceat(np.add.reduceat(img64 * img64, ys[:-1], axis=0), xs[:-1], axis=1)
    counts = np.outer(np.diff(ys), np.diff(xs))
    mean = sums / counts[..., None]
    std = np.sqrt(np.maximum(sq / counts[..., None] - mean * mean, 0.0)).max(axis=2)
    return mean, std, counts


def _constant_share(img3: np.ndarray, grid: GridEstimate, tol: float) -> float:
    """Share of the image's pixels in cells of ``grid`` that are constant (std within ``tol / 2``)."""
    h, w = img3.shape[:2]
    ys, xs = grid_edges(h, w, grid)
    _, std, counts = _cell_stats(img3, ys, xs)
    return float(counts[std <= tol * 0.5].sum()) / (h * w)


def _mosaic_cells_box(arr: np.ndarray, img3: np.ndarray, grid: GridEstimate, tol: float,
                      min_blocks: int) -> tuple[tuple[int, int, int, int], int, GridEstimate] | None:
    """``(box, area, grid)`` of the largest group of mosaic cells of ``grid`` (see
    :func:`find_mosaic_region`); ``area`` counts the pixels of its flagged cells."""
    h, w = arr.shape[:2]
    ys, xs = grid_edges(h, w, grid)
    if ys.size < min_blocks + 1 or xs.size < min_blocks + 1:
        return None
    mean, std, counts = _cell_stats(img3, ys, xs)
    constant = std <= tol * 0.5
    steps = np.zeros(std.shape, np.int64)  # constant neighbours that differ, per cell
    dx = (np.abs(np.diff(mean, axis=1)).max(axis=2) > tol) & constant[:, 1:] & constant[:, :-1]
    dy = (np.abs(np.diff(mean, axis=0)).max(axis=2) > tol) & constant[1:, :] & constant[:-1, :]
    steps[:, :-1] += dx
    steps[:, 1:] += dx
    steps[:-1, :] += dy
    steps[1:, :] += dy
    cells = (constant & (steps >= MIN_STEPS)).astype(np.uint8)
    # Close one-cell holes (cells like their neighbours); the zero border keeps the closing from
    # growing the region along the image border.
    closed = cv2.morphologyEx(np.pad(cells, 1), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    cells = (closed[1:-1, 1:-1] > 0) & constant
    n, labels, stats, _ = cv2.connectedComponentsWithStats(cells.astype(np.uint8), connectivity=8)
    if n <= 1:
        return None
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    c0, r0 = int(stats[best, cv2.CC_STAT_LEFT]), int(stats[best, cv2.CC_STAT_TOP])
    cw, rh = int(stats[best, cv2.CC_STAT_WIDTH]), int(stats[best, cv2.CC_STAT_HEIGHT])
    if cw < min_blocks or rh < min_blocks:
        return None
    # Mosaic cells on the region's border may differ from one constant neighbour only (a smooth
    # part of the picture): take in a line of cells just outside when most of it is constant.
    c1, r1 = c0 + cw, r0 + rh  # end exclusive, in cells
    share = GROW_SHARE
    if c0 > 0 and constant[r0:r1, c0 - 1].mean() >= share:
        c0 -= 1
    if c1 < constant.shape[1] and constant[r0:r1, c1].mean() >= share:
        c1 += 1
    if r0 > 0 and constant[r0 - 1, c0:c1].mean() >= share:
        r0 -= 1
    if r1 < constant.shape[0] and constant[r1, c0:c1].mean() >= share:
        r1 += 1
    cw, rh = c1 - c0, r1 - r0
    x0, x1, y0, y1 = int(xs[c0]), int(xs[c1]), int(ys[r0]), int(ys[r1])
    # A last, narrower column (row) of mosaic cells: constant down (across) each grid cell,
    # and the same for every pixel column (row) of it.
    x1 = _extend_partial(img3, xs, ys[r0:r0 + rh + 1], x1, tol, axis=1)
    y1 = _extend_partial(img3, ys, _with_end(xs, x0, x1), y1, tol, axis=0)
    area = int(counts[labels == best].sum())
    return (x0, y0, x1, y1), area, grid
