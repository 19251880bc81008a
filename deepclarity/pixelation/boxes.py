"""Where the blocks are: boxes of pixelation in an image, each with its own block size and phase.

Block-grid evidence is local and needs no grid: along a row, a pixelated stretch one block long
holds exactly one step (the block boundary) and no other change, whether the blocks are
nearest samples or block averages; a JPEG round trip adds small ripples around the step but
leaves it the largest change by far. So for every pixel, a window of about one block along
``x`` (``y``) is *block-like* when its largest neighbour difference is a real step and the
rest of the window changes little next to it (:func:`grid_evidence`). Text and texture fail
(several changes per window), flat areas and gradients fail (no step), and where both axes are
block-like in most of a neighbourhood, blocks are likely (:func:`find_pixelated_boxes`). A lone
UI border is block-like along one axis only; a ruled table passes the map but not the check
that follows: each box must hold a block grid, estimated inside it alone from boundary profiles
restricted to the box (:func:`estimate_box_grid`, which also works on strips a few blocks high
by sharing the period between the axes).
"""

from __future__ import annotations

import cv2
import numpy as np

from .grid import MAX_BLOCK, GridEstimate, _comb_correlations, _gray

__all__ = ["grid_evidence", "find_pixelated_boxes", "estimate_box_grid", "box_area", "box_overlap", "snap_box",
           "cell_stats", "cell_flatness", "trim_box", "trim_blank", "extend_to_partial_cells",
           "flat_mosaic_box"]

#: A step at least this large (8-bit levels) can be a block boundary.
MIN_STEP = 6.0
#: Within a block-long window, everything but the largest step may add up to this share of it.
RESIDUAL_SHARE = 0.6
#: A step counts in a box's profile from this share of its strongest steps (90th percentile) up.
STEP_SHARE = 0.3
#: Neighbour differences up to this many levels are noise (JPEG ripples), not changes.
NOISE = 3.0
#: Share of block-like pixels (each axis) in a 3-block neighbourhood for it to count as blocks.
MIN_DENSITY = 0.35
#: A cell is flat (a mosaic cell, JPEG'd or not) when its gray levels deviate by at most this much.
FLAT_CELL_STD = 6.0
#: An outer line of cells stays in a box when at least this share of its cells is flat.
TRIM_SHARE = 0.5
#: When a component's box holds no grid, it is measured again this many blocks in from each side.
CORE_MARGIN = 1.5
#: A box is a mosaic when, after trimming, it holds at least this many cells...
MIN_CELLS = 12
#: ... and at least this share of them is flat.
MIN_FLAT_SHARE = 0.6


def _shift(a: np.ndarray, n: int, axis: int) -> np.ndarray:
    """``a`` moved by ``n`` pixels towards the start along ``axis`` (``out[x] = a[x + n]``), zero-filled."""
    out = np.zeros_like(a)
    if n <= 0 or n >= a.shape[axis]:
        return out
    if axis == 1:
        out[:, :-n] = a[:, n:]
    else:
        out[:-n, :] = a[n:, :]
    return out


def _axis_evidence(gray: np.ndarray, k: int, axis: int) -> np.ndarray:
    """``HxW`` bool: the ``2k+1``-long window along ``axis`` centred on each pixel holds two steps
    about a block apart (``k - 1`` to ``k + 1`` pixels), at most three steps, and little change
    besides (see the module's description)."""
    h, w = gray.shape
    d = np.zeros((h, w), np.float32)
    # Changes of a few levels (JPEG ripples, dithering) are not counted.
    if axis == 1:
        d[:, :-1] = np.maximum(np.abs(np.diff(gray, axis=1)) - NOISE, 0)
        line = np.ones((1, 5), np.uint8)
        size = (2 * k + 1, 1)  # cv2 sizes are (width, height)
    else:
        d[:-1, :] = np.maximum(np.abs(np.diff(gray, axis=0)) - NOISE, 0)
        line = np.ones((5, 1), np.uint8)
        size = (1, 2 * k + 1)
    steps = (d >= MIN_STEP - NOISE) & (d >= cv2.dilate(d, line, borderType=cv2.BORDER_REFLECT))
    pairs = steps & (_shift(steps, k, axis) | _shift(steps, k - 1, axis) | _shift(steps, k + 1, axis))
    s32 = steps.astype(np.float32)
    n_steps = cv2.boxFilter(s32, -1, size, normalize=False, borderType=cv2.BORDER_CONSTANT)
    on = cv2.boxFilter(d * s32, -1, size, normalize=False, borderType=cv2.BORDER_CONSTANT)
    rest = cv2.boxFilter(d * (1 - s32), -1, size, normalize=False, borderType=cv2.BORDER_CONSTANT)
    near_pair = cv2.dilate(pairs.astype(np.uint8), np.ones(size[::-1], np.uint8)) > 0
    return near_pair & (n_steps <= 3.5) & (rest <= RESIDUAL_SHARE * on)


def grid_evidence(img: np.ndarray, block: float) -> np.ndarray:
    """``HxW`` float32 in [0, 1]: how block-like each pixel's neighbourhood is for blocks of
    about ``block`` pixels: the share of pixels block-like along either axis
    (:func:`_axis_evidence`) in a window two blocks wide. ``img`` is ``HxW[xC]`` uint8."""
    gray = _gray(img).astype(np.float32)
    k = int(max(2, round(block)))
    side = 2 * k + 1
    either = _axis_evidence(gray, k, 1) | _axis_evidence(gray, k, 0)
    return cv2.boxFilter(either.astype(np.float32), -1, (side, side), borderType=cv2.BORDER_REFLECT)


def _step_profile(gray: np.ndarray, axis: int) -> np.ndarray:
    """Count of steps at each position along ``axis`` (1 = over x): a neighbour difference of at
    least :data:`MIN_STEP` and :data:`STEP_SHARE` of the strong steps' 90th percentile that is
    the largest within two pixels either side (so the ripples JPEG leaves beside a step do not
    count). Entry ``x`` is the step between ``x`` and ``x + 1``."""
    g = gray.astype(np.float32)
    d = np.abs(np.diff(g, axis=axis))
    if d.size == 0:
        return np.zeros(0)
    kernel = np.ones((1, 5) if axis == 1 else (5, 1), np.uint8)
    peak = cv2.dilate(d, kernel, borderType=cv2.BORDER_REFLECT)
    # JPEG ripples grow with the contrast of the steps they surround: the bar rises with it.
    strong = d[d > MIN_STEP]
    bar = max(MIN_STEP, STEP_SHARE * float(np.percentile(strong, 90))) if strong.size else MIN_STEP
    steps = (d >= bar) & (d >= peak)
    return steps.sum(axis=1 - axis).astype(np.float64)


def _teeth_hit(profile: np.ndarray, period: float, phase: float) -> int:
    """How many teeth of the comb ``(period, phase)`` fall on a position with a step."""
    x = np.flatnonzero(profile > 0)
    on = ((x - phase) % period) < 1.0
    return int(np.unique(np.floor((x[on] - phase) / period)).size)


def _step_phase(profile: np.ndarray, period: float, comb_phase: float) -> float:
    """Where the steps of ``profile`` sit modulo ``period``: the circular mean of the step counts
    within a quarter period of the comb's tooth (``comb_phase`` is the first phase whose 1-px
    tooth catches them, up to a pixel early, so it only says which steps belong to the grid)."""
    x = np.arange(profile.size, dtype=np.float64)
    values = np.nan_to_num(profile, nan=0.0)
    offset = (x - comb_phase - 0.5) % period
    near = np.minimum(offset, period - offset) <= period / 4.0
    angle = 2.0 * np.pi * x / period
    total = complex(np.sum(values[near] * np.cos(angle[near])), np.sum(values[near] * np.sin(angle[near])))
    if abs(total) <= 1e-9:
        return float(comb_phase)
    return float((np.angle(total) / (2.0 * np.pi) * period) % period)


def estimate_box_grid(img: np.ndarray, box: tuple[int, int, int, int] | None = None, *,
                      min_confidence: float = 0.5, min_block: float = 2.0,
                      max_block: float = MAX_BLOCK) -> GridEstimate:
    """Block size and phase inside ``box`` ``(x0, y0, x1, y1)`` of ``img`` (the whole image when
    ``None``), from that box alone.

    Each axis gives a profile of step counts (:func:`_step_profile`: robust to JPEG ripples, the
    same for nearest-sample and block-average blocks). Blocks being square, one period is fitted
    to both axes: every candidate from 2 px to a third of the longer side is scored by the comb
    correlation (:func:`~.grid._comb_correlations`, best phase per axis) of each axis, weighted
    by its number of steps (and, under six blocks long, by its share of six blocks), so a strip
    one block high (a censored line of text) is measured along its length and only phased
    across it. A whole number of pixels within 12% that fits
    about as well (97% of the score) is preferred. Phases are in image coordinates (the first
    boundary at or after 0). ``block_size`` is ``None`` when that score is under
    ``min_confidence`` or fewer than three grid lines carry steps (a lone UI border is no grid).
    """
    arr = np.asarray(img)
    h, w = arr.shape[:2]
    x0, y0, x1, y1 = (0, 0, w, h) if box is None else (int(v) for v in box)
    x0, y0 = max(0, x0), max(0, y0)
    crop = arr[y0:y1, x0:x1]
    none = GridEstimate(None, None, None, 0.0)
    if crop.shape[0] < 3 or crop.shape[1] < 3:
        return none
    gray = _gray(crop)
    profiles = [_step_profile(gray, axis) for axis in (1, 0)]  # x, then y
    counts = np.array([p.sum() for p in profiles])
    longest = max(crop.shape[:2])
    top = min(max_block, longest / 3.0)
    bottom = max(2.0, min_block)
    if counts.sum() < 3 or top < bottom:
        return none

    def score(periods: np.ndarray) -> tuple[np.ndarray, list]:
        total, weights, phases = np.zeros(periods.size), np.zeros(periods.size), []
        for p, n in zip(profiles, counts):
            if n == 0 or p.std() <= 1e-9:
                phases.append(np.zeros(periods.size))
                continue
            nbins = max(8, int(round(periods.max() / 0.05)))
            corr, phase = _comb_correlations(p, periods, nbins)
            # An axis only a few blocks long can fit a wrong period by dropping a tooth: it
            # counts in proportion to its blocks, fully from six on.
            weight = n * np.minimum(1.0, (p.size + 1) / (6.0 * periods))
            total += weight * corr
            weights += weight
            phases.append(phase)
        return total / np.maximum(weights, 1e-12), phases

    coarse = np.arange(bottom, top + 1e-9, 0.1)
    if coarse.size == 0:
        return none
    corr, _ = score(coarse)
    centre = float(coarse[int(np.argmax(corr))])
    fine = np.arange(max(bottom, centre - 0.1), min(top, centre + 0.1) + 1e-9, 0.01)
    corr, phases = score(fine)
    i = int(np.argmax(corr))
    period, confidence = float(fine[i]), float(corr[i])
    fx, fy = float(phases[0][i]), float(phases[1][i])
    # Censor tools use whole-pixel blocks: prefer the nearest integer when it fits about as well.
    whole = float(round(period))
    if bottom <= whole <= top and whole != period and abs(whole - period) <= 0.12 * period:
        c, ph = score(np.array([whole]))
        if c[0] >= 0.97 * confidence:
            period, confidence, fx, fy = whole, float(c[0]), float(ph[0][0]), float(ph[1][0])
    teeth = _teeth_hit(profiles[0], period, fx) + _teeth_hit(profiles[1], period, fy)
    if confidence < min_confidence or teeth < 3:
        return GridEstimate(None, None, None, max(confidence, 0.0))
    # A profile entry x is the step between x and x+1, so blocks start at x+1; then back to
    # image coordinates.
    phx = (_step_phase(profiles[0], period, fx) + 1 + x0) % period
    phy = (_step_phase(profiles[1], period, fy) + 1 + y0) % period
    return GridEstimate(period, (period, period), (float(phx), float(phy)), confidence)


def box_area(box: tuple) -> int:
    """Pixels in an ``(x0, y0, x1, y1)`` box (end exclusive)."""
    return (box[2] - box[0]) * (box[3] - box[1])


def box_overlap(a: tuple, b: tuple) -> float:
    """Intersection over the smaller box of two ``(x0, y0, x1, y1)`` boxes."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    return iw * ih / max(min(box_area(a), box_area(b)), 1)


def snap_box(box: tuple[int, int, int, int], grid: GridEstimate, height: int, width: int) -> tuple[int, int, int, int]:
    """``box`` with each side moved to the nearest line of ``grid`` (within half a block),
    clipped to the image."""
    (bx, by), (px, py) = grid.block_xy, grid.phase_xy

    def near(v: int, b: float, p: float, limit: int) -> int:
        k = round((v - p) / b)
        line = int(round(p + k * b))
        return int(min(max(line if abs(line - v) <= b / 2 else v, 0), limit))

    x0, y0, x1, y1 = box
    nx0, nx1 = near(x0, bx, px, width), near(x1, bx, px, width)
    ny0, ny1 = near(y0, by, py, height), near(y1, by, py, height)
    if nx1 <= nx0:
        nx0, nx1 = x0, x1
    if ny1 <= ny0:
        ny0, ny1 = y0, y1
    return nx0, ny0, nx1, ny1


def _cell_edges(box: tuple[int, int, int, int], grid: GridEstimate) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, cols)``: the edges of ``grid``'s cells inside ``box``, relative to its corner."""
    from .recover import block_edges

    x0, y0, x1, y1 = box
    (bx, by), (px, py) = grid.block_xy, grid.phase_xy
    return block_edges(y1 - y0, by, (py - y0) % by), block_edges(x1 - x0, bx, (px - x0) % bx)


def _interior(edges: np.ndarray, block: float) -> np.ndarray:
    """Per pixel along one axis split into spans at ``edges``: 1.0 where the pixel lies a fifth
    of the block (at least 1 px) in from both ends of its span, else 0.0; spans too thin to have
    an interior count whole."""
    margin = max(1, int(block) // 5)
    idx = np.arange(edges[-1])
    span = np.searchsorted(edges, idx, side="right") - 1
    inside = (idx - edges[span] >= margin) & (edges[span + 1] - 1 - idx >= margin)
    small = np.diff(edges) <= 2 * margin
    return (inside | small[span]).astype(np.float64)


def _cell_averager(box: tuple[int, int, int, int], grid: GridEstimate):
    """A function taking an ``HxW`` array over ``box`` to the mean of each cell of ``grid`` over
    its interior only (:func:`_interior`), so a grid phase off by a pixel or JPEG ringing at the
    cell's edges does not make a mosaic cell busy."""
    rows, cols = _cell_edges(box, grid)
    (bx, by) = grid.block_xy
    weight = np.outer(_interior(rows, by), _interior(cols, bx))

    def cells(a: np.ndarray) -> np.ndarray:
        return np.add.reduceat(np.add.reduceat(a, rows[:-1], axis=0), cols[:-1], axis=1)

    n = np.maximum(cells(weight), 1.0)
    return lambda a: cells(a * weight) / n


def _gray_variance(img: np.ndarray, box: tuple[int, int, int, int], average) -> np.ndarray:
    x0, y0, x1, y1 = box
    g = _gray(np.asarray(img)[y0:y1, x0:x1]).astype(np.float64)
    mean = average(g)
    return average(g * g) - mean * mean


def cell_stats(img: np.ndarray, box: tuple[int, int, int, int], grid: GridEstimate) -> tuple[np.ndarray, np.ndarray]:
    """Per cell of ``grid`` inside ``box``: ``(rows, cols, C)`` mean colour and ``(rows, cols)``
    gray variance, both of the cell's interior only (:func:`cell_flatness`)."""
    x0, y0, x1, y1 = box
    average = _cell_averager(box, grid)
    arr = np.asarray(img)[y0:y1, x0:x1].astype(np.float64)
    colour = arr.reshape(arr.shape[0], arr.shape[1], -1)
    means = np.stack([average(colour[..., c]) for c in range(colour.shape[2])], axis=-1)
    return means, _gray_variance(img, box, average)


def cell_flatness(img: np.ndarray, box: tuple[int, int, int, int], grid: GridEstimate) -> np.ndarray:
    """``(rows, cols)`` bool: which cells of ``grid`` inside ``box`` are flat (gray standard
    deviation at most :data:`FLAT_CELL_STD`), as the cells of a mosaic are, JPEG'd or not. Only
    each cell's interior counts (a fifth of the block, at least 1 px, off every side), so a grid
    phase off by a pixel or JPEG ringing at the cell's edges does not make a mosaic cell busy.
    Gray only: the colour means of :func:`cell_stats` are not computed here (a hot path)."""
    return _gray_variance(img, box, _cell_averager(box, grid)) <= FLAT_CELL_STD ** 2


def trim_box(img: np.ndarray, box: tuple[int, int, int, int], grid: GridEstimate, *,
             share: float = TRIM_SHARE) -> tuple[int, int, int, int]:
    """``box`` without the outer lines of cells (rows or columns of ``grid``) of which less than
    ``share`` are flat (:func:`cell_flatness`): the block-evidence map runs a block or two past a
    mosaic into the picture, and restoring those cells would flatten real detail."""
    flat = cell_flatness(img, box, grid)
    rows, cols = _cell_edges(box, grid)
    r0, r1, c0, c1 = 0, flat.shape[0], 0, flat.shape[1]
    while r1 - r0 > 2 and c1 - c0 > 2:
        sides = {"top": flat[r0, c0:c1].mean(), "bottom": flat[r1 - 1, c0:c1].mean(),
                 "left": flat[r0:r1, c0].mean(), "right": flat[r0:r1, c1 - 1].mean()}
        side = min(sides, key=sides.get)
        if sides[side] >= share:
            break
        if side == "top":
            r0 += 1
        elif side == "bottom":
            r1 -= 1
        elif side == "left":
            c0 += 1
        else:
            c1 -= 1
    return box[0] + int(cols[c0]), box[1] + int(rows[r0]), box[0] + int(cols[c1]), box[1] + int(rows[r1])


def _span_stats(line: np.ndarray, edges: np.ndarray, block: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of ``line`` (1-D gray) over each span ``[edges[k], edges[k+1])``,
    its interior only (:func:`_interior`), as :func:`_cell_averager` does."""
    wgt = _interior(edges, block)
    n = np.maximum(np.add.reduceat(wgt, edges[:-1]), 1.0)
    mean = np.add.reduceat(line * wgt, edges[:-1]) / n
    var = np.add.reduceat(line * line * wgt, edges[:-1]) / n - mean * mean
    return mean, np.sqrt(np.maximum(var, 0.0))


def _partial_rows(gray: np.ndarray, y0: int, x0: int, x1: int, edges: np.ndarray, block: float) -> int:
    """How many rows just above row ``y0`` (between columns ``x0`` and ``x1``, cells split at
    ``edges`` relative to ``x0``) are a mosaic's partial cells: a box's edge rarely falls on the
    grid, so the censor's outer cells are cut short, and trimming to whole cells loses them. Row
    ``y0 - 1`` counts when it is flat within each cell (:data:`FLAT_CELL_STD`, 80% of the cells)
    and changes at the cells' edges only (80% of its steps above :data:`NOISE`, one of at least
    twice :data:`MIN_STEP`: a smooth picture changes everywhere, a blank margin nowhere or only
    by the JPEG ringing of the cells beside it); each row further up counts while it repeats the
    one below it within :data:`NOISE`; at most a block less one pixel."""
    count = 0
    below = None
    boundary = np.zeros(max(0, x1 - x0 - 1), bool)
    boundary[edges[1:-1] - 1] = True  # diff index k is the change between pixels k and k + 1
    for y in range(y0 - 1, max(-1, y0 - int(np.ceil(block))), -1):
        line = gray[y, x0:x1].astype(np.float64)
        _, std = _span_stats(line, edges, block)
        if (std <= FLAT_CELL_STD).mean() < 0.8:
            break
        if below is None:
            d = np.abs(np.diff(line))
            near = np.maximum(np.r_[0.0, d[:-1]], np.r_[d[1:], 0.0])
            steps = (d > NOISE) & (d >= near)  # JPEG ripples beside a step are not steps
            on_edges = d[steps & boundary]
            if on_edges.size == 0 or on_edges.max() < 2 * MIN_STEP or on_edges.sum() < 0.8 * d[steps].sum():
                break
        elif np.abs(line - below).mean() > NOISE:
            break
        below = line
        count += 1
    return count


def extend_to_partial_cells(img: np.ndarray, box: tuple[int, int, int, int],
                            grid: GridEstimate) -> tuple[int, int, int, int]:
    """``box`` (sides on lines of ``grid``) grown on each side by the mosaic's partial cells
    beyond it (:func:`_partial_rows`), to the pixel: a text-line censor 20 px tall with 12 px
    blocks is mostly partial cells."""
    rows, cols = _cell_edges(box, grid)
    (bx, by) = grid.block_xy
    reach = int(np.ceil(max(bx, by)))  # partial cells are under a block deep: gray only that far
    arr = np.asarray(img)
    ox, oy = max(0, box[0] - reach), max(0, box[1] - reach)
    gray = _gray(arr[oy:box[3] + reach, ox:box[2] + reach]).astype(np.float32)
    h, w = gray.shape
    x0, y0, x1, y1 = box[0] - ox, box[1] - oy, box[2] - ox, box[3] - oy
    top = _partial_rows(gray, y0, x0, x1, cols, by)
    bottom = _partial_rows(gray[::-1], h - y1, x0, x1, cols, by)
    left = _partial_rows(gray.T, x0, y0, y1, rows, bx)
    right = _partial_rows(gray.T[::-1], w - x1, y0, y1, rows, bx)
    return box[0] - left, box[1] - top, box[2] + right, box[3] + bottom


def trim_blank(img: np.ndarray, box: tuple[int, int, int, int], grid: GridEstimate) -> tuple[int, int, int, int]:
    """``box`` without its blank outer lines of cells (all flat and one gray level within
    ``2 * NOISE``), down to a single line: the background around a censored line of text, which
    no one can tell from an invisible censored margin, and which would put the box a block or
    more past the censor on every side."""
    x0, y0, x1, y1 = box
    average = _cell_averager(box, grid)
    gray = _gray(np.asarray(img)[y0:y1, x0:x1]).astype(np.float64)
    mean = average(gray)
    flat = average(gray * gray) - mean * mean <= FLAT_CELL_STD ** 2
    rows, cols = _cell_edges(box, grid)
    r0, r1, c0, c1 = 0, flat.shape[0], 0, flat.shape[1]

    def blank(f: np.ndarray, m: np.ndarray) -> bool:
        return bool(f.all()) and float(np.ptp(m)) <= 2 * NOISE

    while True:
        if r1 - r0 > 1 and blank(flat[r0, c0:c1], mean[r0, c0:c1]):
            r0 += 1
        elif r1 - r0 > 1 and blank(flat[r1 - 1, c0:c1], mean[r1 - 1, c0:c1]):
            r1 -= 1
        elif c1 - c0 > 1 and blank(flat[r0:r1, c0], mean[r0:r1, c0]):
            c0 += 1
        elif c1 - c0 > 1 and blank(flat[r0:r1, c1 - 1], mean[r0:r1, c1 - 1]):
            c1 -= 1
        else:
            break
    return x0 + int(cols[c0]), y0 + int(rows[r0]), x0 + int(cols[c1]), y0 + int(rows[r1])


def _holds_mosaic(img: np.ndarray, box: tuple[int, int, int, int], grid: GridEstimate) -> bool:
    """Whether ``box`` holds at least :data:`MIN_CELLS` cells of ``grid``, at least
    :data:`MIN_FLAT_SHARE` of them flat (:func:`cell_flatness`), as a mosaic does."""
    flat = cell_flatness(img, box, grid)
    return flat.size >= MIN_CELLS and flat.mean() >= MIN_FLAT_SHARE


def find_pixelated_boxes(img: np.ndarray, block: float, *, near: np.ndarray | None = None,
                         min_blocks: float = 2.0, min_confidence: float = 0.5, min_block: float = 2.0,
                         max_block: float = MAX_BLOCK,
                         max_boxes: int = 8) -> list[tuple[tuple[int, int, int, int], GridEstimate]]:
    """Boxes of blocks of about ``block`` pixels in ``img`` (``HxW[xC]`` uint8), largest first.

    The block-like neighbourhoods of :func:`grid_evidence` (at least :data:`MIN_DENSITY`),
    closed over two blocks (cells of one flat colour inside a mosaic show no steps) and split
    into connected groups; each group's bounding box is kept when it spans ``min_blocks`` blocks
    on each side, touches ``near`` (``HxW`` bool, e.g. where the detector fired) when given,
    and holds a block grid of its own (:func:`estimate_box_grid` with ``min_confidence``, over
    the box or, failing that, :data:`CORE_MARGIN` blocks inside it);
    its sides are then snapped to that grid (:func:`snap_box`) and outer lines of cells that
    are mostly not flat trimmed off (:func:`trim_box`); a box left with fewer than :data:`MIN_CELLS`
    cells or under :data:`MIN_FLAT_SHARE` flat ones is dropped. At most ``max_boxes`` boxes
    (and three times as many groups checked). Returns ``[(box, grid), ...]``
    with ``box = (x0, y0, x1, y1)``, end exclusive.
    """
    arr = np.asarray(img)
    h, w = arr.shape[:2]
    k = int(max(2, round(block)))
    mask = (grid_evidence(arr, block) >= MIN_DENSITY).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((2 * k + 1, 2 * k + 1), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    found, checked = [], 0
    for i in np.argsort(-stats[1:, cv2.CC_STAT_AREA]) + 1:
        if len(found) >= max_boxes or checked >= 3 * max_boxes:
            break
        x0, y0 = int(stats[i, cv2.CC_STAT_LEFT]), int(stats[i, cv2.CC_STAT_TOP])
        bw, bh = int(stats[i, cv2.CC_STAT_WIDTH]), int(stats[i, cv2.CC_STAT_HEIGHT])
        if bw < min_blocks * block or bh < min_blocks * block:
            continue
        box = (x0, y0, x0 + bw, y0 + bh)
        if near is not None and not near[y0:y0 + bh, x0:x0 + bw].any():
            continue
        checked += 1
        grid = estimate_box_grid(arr, box, min_confidence=min_confidence, min_block=min_block, max_block=max_block)
        if not grid.found:
            # The evidence runs up to two blocks past a mosaic, into text or borders whose
            # boundaries can drown a thin mosaic's grid: measure it again inside, keep the box
            # (trimming below drops the outer lines of cells that are not the mosaic's).
            m = int(round(CORE_MARGIN * block))
            if bw - 2 * m < min_blocks * block or bh - 2 * m < min_blocks * block:
                continue
            grid = estimate_box_grid(arr, (x0 + m, y0 + m, x0 + bw - m, y0 + bh - m), min_confidence=min_confidence,
                                     min_block=min_block, max_block=max_block)
            if not grid.found:
                continue
        box = trim_box(arr, snap_box(box, grid, h, w), grid)
        if not _holds_mosaic(arr, box, grid):
            continue  # a few cells, or mostly busy ones: texture or JPEG blocking, not a mosaic
        found.append((extend_to_partial_cells(arr, box, grid), grid))
    return found


def flat_mosaic_box(img: np.ndarray, box: tuple[int, int, int, int], grids, *,
                    min_confidence: float = 0.5) -> tuple[tuple[int, int, int, int], GridEstimate] | None:
    """The mosaic inside a loose ``box`` (e.g. the tiles the detector fired on) by its flat cells,
    for when :func:`find_pixelated_boxes` finds none: a mosaic resized after censoring has ramps,
    not steps, at its block edges, so the block-evidence map misses it, but its cells' interiors
    stay flat. For each candidate of ``grids`` (:class:`GridEstimate` in image coordinates, e.g.
    measured over the whole box or over one tile; those not found are skipped), ``box`` is
    snapped to the grid and trimmed to its flat cells (:func:`trim_box`), and the grid measured
    again inside the trimmed box alone; the first that holds a grid of at least
    ``min_confidence`` and at least :data:`MIN_CELLS` cells, :data:`MIN_FLAT_SHARE` of them flat,
    is returned as ``(box, grid)``; else ``None``."""
    arr = np.asarray(img)
    h, w = arr.shape[:2]
    for grid in grids:
        if grid is None or not grid.found:
            continue
        trimmed = trim_box(arr, snap_box(box, grid, h, w), grid)
        own = estimate_box_grid(arr, trimmed, min_confidence=min_confidence)
        if not own.found or abs(own.block_size - grid.block_size) > 0.1 * grid.block_size:
            continue
        if _holds_mosaic(arr, trimmed, own):
            return trimmed, own
    return None
