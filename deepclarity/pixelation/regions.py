"""Censor mosaics: where a block-constant region covers part of an image.

A mosaic (GIMP Pixelize, Photoshop Mosaic, a screenshot tool's censor box) is a rectangle of
constant cells on a grid over an otherwise natural picture. :func:`find_mosaic_region` finds it
from cell statistics on the grid (:mod:`.grid` estimates it, :func:`~.recover.refine_grid` snaps it)
and returns its bounding box; the restorer then rebuilds only that box.

:func:`restore_regions` rebuilds real mosaics (JPEG'd or resized, block average or nearest sample)
given their boxes and grids (e.g. :attr:`deepclarity.detect.Detection.regions`): each box on its
own grid, one value per block by a trimmed mean of its interior, upscaled back, blended in
without a seam and only inside the box.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .grid import GridEstimate, estimate_grid
from .recover import _check_image, grid_axes, grid_edges, refine_grid

__all__ = ["find_mosaic_region", "RegionRestore", "restore_regions", "COARSE_BLOCK"]

#: Blocks this large (px) hold too little of the picture for restoration to help.
COARSE_BLOCK = 24.0
#: The box must be block-constant on its grid: its block image matches it to within this PSNR
#: (dB; JPEG'd mosaics from quality 50 up pass), else it is kept as it is.
MIN_BLOCK_FIT_DB = 26.0
#: A restored box must explain its blocks: re-averaged on the same grid it matches the input's
#: block values to within this PSNR (dB), else the input is kept. Interpolating coarse blocks of
#: busy content moves the cell means by up to ~24 dB's worth while still gaining over the input
#: (``python -m evaluation.eval_restore --suite censor``), so the bar only stops a failed restoration.
MIN_CONSISTENCY_DB = 20.0

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


@dataclass
class RegionRestore:
    """What :func:`restore_regions` did to one box ``(x0, y0, x1, y1)``: ``status`` is
    ``"restored"``, ``"too-coarse"`` (blocks of at least :data:`COARSE_BLOCK` px), ``"no-grid"``
    (no block size) or ``"kept"`` (the box is not block-constant on its grid, or the restoration
    did not explain its blocks; ``consistency_db`` is the failing PSNR, or for ``"restored"``
    the restoration's re-averaged blocks against the input's); the restorer adds ``"text"``
    (a censor on a screenshot, left as it is: see :class:`deepclarity.restore.Restorer`)."""

    box: tuple[int, int, int, int]
    block_size: float | None
    status: str
    consistency_db: float | None = None


def _onto_grid(image: np.ndarray, n_rows: int, n_cols: int, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """``image`` (the ``n_rows x n_cols`` block values, or an enlargement of them by any factor)
    resampled bicubically onto the pixels of the cells with edges ``ys``/``xs``: each value lands
    on its cell's centre, whatever the grid's phase and partial cells."""
    fy, fx = image.shape[0] / n_rows, image.shape[1] / n_cols

    def coords(edges: np.ndarray, n: int, f: float) -> np.ndarray:
        centres = (edges[:-1] + edges[1:]) / 2.0
        pos = np.arange(edges[-1] - edges[0], dtype=np.float64) + edges[0] + 0.5
        index = np.interp(pos, centres, np.arange(n, dtype=np.float64)) if n > 1 else np.zeros(pos.size)
        return ((index + 0.5) * f - 0.5).astype(np.float32)

    cy, cx = coords(ys, n_rows, fy), coords(xs, n_cols, fx)
    map_x = np.broadcast_to(cx[None, :], (cy.size, cx.size)).copy()
    map_y = np.broadcast_to(cy[:, None], (cy.size, cx.size)).copy()
    out = cv2.remap(np.ascontiguousarray(image), map_x, map_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(cy.size, cx.size, *image.shape[2:])


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def restore_regions(img: np.ndarray, regions, *, upscale=None, feather: float = 6.0,
                    coarse: float = COARSE_BLOCK) -> tuple[np.ndarray, list[RegionRestore]]:
    """Rebuild each pixelated box of ``img`` (``HxWx3`` ``uint8``) on its own grid.

    Args:
        img: the image.
        regions: boxes with their grids: objects with ``x y w h block_size phase`` (a
            :class:`deepclarity.detect.Region`) or dicts with those keys; ``phase`` in image
            coordinates.
        upscale: ``f(low) -> uint8 image``: the recovered blocks (one pixel each) enlarged by any
            factor (a super-resolution model); the result is then resampled bicubically onto the
            box's grid, each block value on its cell's centre. Default: no model, bicubic alone.
        feather: width in pixels of the blend ramp inside each box's sides (at most half a block).
        coarse: block size from which a box is left as it is (``"too-coarse"``).

    Returns:
        ``(image, [RegionRestore, ...])``. Pixels outside every box are the input's, bit for bit;
        a box that its own block image does not match to :data:`MIN_BLOCK_FIT_DB` (no mosaic
        there, or a wrong grid), or whose restoration, averaged back over its grid, does not match the input's block
        values to :data:`MIN_CONSISTENCY_DB` is kept as it was: never worse than the input.
    """
    from .recover import expand_lowres, grid_edges, recover_lowres, refine_grid

    arr = np.ascontiguousarray(img)
    out = arr.copy()
    h, w = arr.shape[:2]
    report = []
    for r in regions:
        def get(k, r=r):
            return r[k] if isinstance(r, dict) else getattr(r, k)

        x0, y0 = max(0, int(get("x"))), max(0, int(get("y")))
        x1, y1 = min(w, int(get("x")) + int(get("w"))), min(h, int(get("y")) + int(get("h")))
        box = (x0, y0, x1, y1)
        block, phase = get("block_size"), get("phase")
        if block is None or phase is None or x1 - x0 < 2 or y1 - y0 < 2:
            report.append(RegionRestore(box, block, "no-grid"))
            continue
        block = float(block)
        if block >= coarse:
            report.append(RegionRestore(box, block, "too-coarse"))
            continue
        crop = arr[y0:y1, x0:x1]
        local = GridEstimate(block, (block, block),
                             ((float(phase[0]) - x0) % block, (float(phase[1]) - y0) % block), 1.0)
        candidates = [local]
        try:
            candidates.append(refine_grid(crop, local))
        except ValueError:
            pass

        def block_fit(grid: GridEstimate, crop=crop) -> tuple[float, np.ndarray]:
            seen = recover_lowres(crop, grid, method="mean", refine=False)
            return _psnr(expand_lowres(seen, *crop.shape[:2], grid), crop), seen

        # The grid (as given, or refined on the crop) whose block image explains the box best.
        fit, seen, local = max(((*block_fit(g), g) for g in candidates), key=lambda t: t[0])
        if fit < MIN_BLOCK_FIT_DB:
            report.append(RegionRestore(box, block, "kept", round(fit, 2)))
            continue
        low = recover_lowres(crop, local, method="trimmed", refine=False)
        ys, xs = grid_edges(crop.shape[0], crop.shape[1], local)
        big = low if upscale is None else np.asarray(upscale(low))
        restored = np.clip(_onto_grid(big.astype(np.float32), low.shape[0], low.shape[1], ys, xs), 0, 255)
        restored = np.rint(restored).astype(np.uint8)
        again = recover_lowres(restored, local, method="mean", refine=False)
        db = _psnr(expand_lowres(again, *crop.shape[:2], local), expand_lowres(seen, *crop.shape[:2], local))
        if db < MIN_CONSISTENCY_DB:
            report.append(RegionRestore(box, block, "kept", round(db, 2)))
            continue
        # A ramp inside the box's sides (none along the image border): no seam, nothing outside.
        ramp = max(1.0, min(feather, block / 2))
        yy = np.arange(y1 - y0, dtype=np.float32)[:, None]
        xx = np.arange(x1 - x0, dtype=np.float32)[None, :]
        dist = np.full((y1 - y0, x1 - x0), np.inf, np.float32)
        if x0 > 0:
            dist = np.minimum(dist, xx + 0.5)
        if x1 < w:
            dist = np.minimum(dist, (x1 - x0 - 0.5) - xx)
        if y0 > 0:
            dist = np.minimum(dist, yy + 0.5)
        if y1 < h:
            dist = np.minimum(dist, (y1 - y0 - 0.5) - yy)
        alpha = np.clip(dist / ramp, 0.0, 1.0)[..., None]
        blended = crop.astype(np.float32) * (1 - alpha) + restored.astype(np.float32) * alpha
        out[y0:y1, x0:x1] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
        report.append(RegionRestore(box, block, "restored", round(db, 2) if np.isfinite(db) else None))
    return out, report
