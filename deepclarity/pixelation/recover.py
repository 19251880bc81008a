"""De-pixelation: the exact cell edges of a block grid and the low-resolution image it holds.

Integer block edges follow :func:`~deepclarity.degrade.pixelate`'s rule: a block whose real-valued
start is ``v`` starts at pixel ``ceil(v - 1/2)`` (round half down), so an axis of ``L`` pixels cut
into ``n`` blocks has edges ``ceil(k * L / n - 1/2)``, exactly
:func:`~deepclarity.degrade.block_starts` (:func:`block_edges`, :func:`grid_edges`).
:func:`refine_grid` snaps an estimated grid (:func:`~.grid.estimate_grid`) to those edges;
:func:`recover_lowres` reads one value per cell back (the median of its interior by default, robust
to JPEG ringing), and :func:`expand_lowres` is its inverse.
"""

from __future__ import annotations

import numpy as np

from ..errors import ImageError
from .grid import GridEstimate, _gray, boundary_profile

__all__ = ["block_edges", "grid_axes", "grid_edges", "lowres_shape", "refine_grid", "recover_lowres",
           "expand_lowres", "grid_fit", "grid_contrast", "MIN_GRID_FIT_DB", "MIN_GRID_CONTRAST_DB"]

_EPS = 1e-7
#: Share of a cell's size ignored on each side when averaging its interior (JPEG ringing, blur).
INTERIOR_MARGIN = 0.15
RECOVER_METHODS = ("median", "mean", "center", "trimmed")
#: Share of a cell's interior values dropped at each end by the ``"trimmed"`` mean.
TRIM_SHARE = 0.2
#: Cells of at least this many 8-bit pixels take their median by sorting (:func:`_median`).
RADIX_MEDIAN_PIXELS = 32
#: A grid explains a whole image when the block image it holds matches the image to within this
#: PSNR-Y (dB, :func:`grid_fit`): exact pixelation fits exactly, pixelation then JPEG q75 well above
#: this, the whole-image grid of a mosaic over part of an image well below. ``restore`` acts on the
#: whole image only above it, and ``detect`` then answers one box over the whole image.
MIN_GRID_FIT_DB = 30.0
#: A grid is the image's own block grid, not merely a fine grid a smooth image fits anyway, when it
#: fits at least this much better (dB, :func:`grid_contrast`) than itself moved by half a block.
#: Chosen on training photos the network was unsure of (pixelated, JPEG'd and resized ones against
#: clean, JPEG q30 and bicubic-upscaled ones; its effect: ``python -m evaluation.second_look_rule``).
MIN_GRID_CONTRAST_DB = 3.5


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


def _median(cells: np.ndarray) -> np.ndarray:
    """``np.median(cells, axis=-1)`` (float64), the same values: 8-bit cells of many pixels are
    sorted (a radix sort, several times faster than the partition ``np.median`` uses there)."""
    n = cells.shape[-1]
    if cells.dtype != np.uint8 or n < RADIX_MEDIAN_PIXELS:
        return np.median(cells, axis=-1)
    ordered = np.sort(cells, axis=-1, kind="stable")
    if n % 2:
        return ordered[..., n // 2].astype(np.float64)
    return (ordered[..., n // 2 - 1].astype(np.float64) + ordered[..., n // 2]) / 2


def recover_lowres(img: np.ndarray, grid: GridEstimate, *, method: str = "median",
                   refine: bool = True, margin: float = INTERIOR_MARGIN) -> np.ndarray:
    """The low-resolution image a pixelated ``img`` holds: one value per block.

    Args:
        img: ``HxW`` or ``HxWxC`` ``uint8``/``uint16`` (or float) pixelated image.
        grid: its :class:`GridEstimate` (from :func:`estimate_grid`, or made by hand to force a
            block size; ``phase_xy`` defaults to ``(0, 0)``).
        method: ``"median"`` (default; robust to JPEG) or ``"mean"`` of each block's interior,
            ``"trimmed"``: the mean of its interior without the lowest and highest
            :data:`TRIM_SHARE` (robust to JPEG like the median, and as exact as the mean for
            block-average mosaics), or ``"center"``: the block's centre pixel.
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
    # Cells of equal interior size are gathered together into one (rows, cols, C, pixels) array:
    # their pixel rows first (one band per interior height), then their columns.
    for hv in np.unique(hs):
        ri = np.flatnonzero(hs == hv)
        band = img3[(ylo[ri, None] + np.arange(hv)).ravel()]  # (r * hv, W, C)
        for wv in np.unique(ws):
            ci = np.flatnonzero(ws == wv)
            cells = band[:, (xlo[ci, None] + np.arange(wv)).ravel()]  # (r * hv, c * wv, C)
            cells = cells.reshape(ri.size, hv, ci.size, wv, channels).transpose(0, 2, 4, 1, 3)
            cells = cells.reshape(ri.size, ci.size, channels, hv * wv)
            if method == "trimmed":
                k = int(TRIM_SHARE * cells.shape[-1])
                ordered = np.sort(cells, axis=-1)
                out[ri[:, None], ci[None, :]] = ordered[..., k:cells.shape[-1] - k].mean(axis=-1)
            elif method == "median":
                out[ri[:, None], ci[None, :]] = _median(cells)
            else:
                out[ri[:, None], ci[None, :]] = cells.mean(axis=-1)
    if np.issubdtype(arr.dtype, np.integer):
        info = np.iinfo(arr.dtype)
        out = np.clip(np.rint(out), info.min, info.max)
    out = out.astype(arr.dtype)
    return out[..., 0] if arr.ndim == 2 else out


def expand_lowres(low: np.ndarray, height: int, width: int, grid: GridEstimate) -> np.ndarray:
    """The inverse of :func:`recover_lowres`: every cell of ``grid`` filled with its value, an
    ``height x width`` block image (``low`` is ``lowres_shape(height, width, grid)``)."""
    ys, xs = grid_edges(height, width, grid)
    # Each cell's value repeated over its rows, then its columns (edges run from 0 to the side).
    return np.repeat(np.repeat(low, np.diff(ys), axis=0), np.diff(xs), axis=1)


def grid_fit(img: np.ndarray, low: np.ndarray, grid: GridEstimate) -> float:
    """PSNR-Y (dB) of ``img`` (``HxWx3`` ``uint8``) against the block image of ``low`` (its
    :func:`recover_lowres` on ``grid``, ``uint8``): how well ``grid`` explains the whole image
    (see :data:`MIN_GRID_FIT_DB`)."""
    from ..metrics import psnr_of_y, rgb_to_y

    # Y is per pixel, so Y of the block image is the block image of Y: convert the small image.
    return psnr_of_y(expand_lowres(rgb_to_y(low), *img.shape[:2], grid), rgb_to_y(img))


def grid_contrast(img: np.ndarray, grid: GridEstimate, *, fit: float | None = None) -> float:
    """How much better (dB) ``grid`` explains ``img`` (``HxWx3`` ``uint8``) than the same grid moved
    by half a block on each axis: :func:`grid_fit` of each, on its own cells (no refinement;
    ``fit``: ``grid``'s own when already measured).

    A smooth image is fitted well by any fine grid, wherever it lies; blocks are fitted by their own
    grid only, so its cells' values change at the block edges and a half-block shift mixes two
    cells in each. ``inf`` when only ``grid`` fits exactly, ``nan`` when both do (a flat image).
    """
    (bx, px), (by, py) = grid_axes(grid)
    moved = GridEstimate(grid.block_size, (bx, by), ((px + bx / 2) % bx, (py + by / 2) % by), grid.confidence)
    own = grid_fit(img, recover_lowres(img, grid, refine=False), grid) if fit is None else fit
    shifted = grid_fit(img, recover_lowres(img, moved, refine=False), moved)
    if np.isinf(own) and np.isinf(shifted):
        return float("nan")
    return float(own - shifted)
