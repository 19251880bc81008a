"""Censor mosaics on screenshots, told apart from the interface's own grid by their colours.

Screenshots are full of block-like structure that is not censorship: widgets, icons and table
cells laid out on 4 or 8 px grids, flat panels, pixel-aligned text. Block-grid evidence alone
(:func:`~deepclarity.pixelation.find_pixelated_boxes`) finds "mosaics" on almost every clean
screenshot, and the detector network scores many of them close to pixelated. What sets a censor
mosaic apart is its colours: each flat cell holds the average (or one sample) of a patch of text
or picture, so neighbouring cells take many *different* in-between colours, while a UI's flat
cells are nearly all one or two colours (background and panel). :func:`is_censor_mosaic` checks
exactly that on the cells of a box's own grid.

:func:`screen_like` says when to use this test: a screenshot has one colour over a large share
of its pixels (the background), which no photo, JPEG'd or resized, has.

The colour rule misses text censored by nearest sample (its cells take the background's and the
ink's colour), so the detector hands :func:`find_censor_mosaics` a rule of its own (the network
asked about each box, :func:`deepclarity.detect.screen_verdict`) and has each accepted box take
the coarsest grid its cells split (:func:`coarsest_split`) and grow along it to the censor's ends
(:func:`grow_censor`).
"""

from __future__ import annotations

import numpy as np

from .boxes import (FLAT_CELL_STD, NOISE, _cell_edges, box_area, box_overlap, cell_stats, extend_to_partial_cells,
                    find_pixelated_boxes, trim_blank)
from .grid import GridEstimate, _gray
from .recover import MIN_GRID_CONTRAST_DB, MIN_GRID_FIT_DB, grid_contrast, grid_fit, recover_lowres

__all__ = ["SCREEN_SHARE", "MIN_CENSOR_BLOCK", "MIN_CENSOR_CONFIDENCE", "MIN_DISTINCT", "MAX_MAJOR_SHARE",
           "BLOCK_HINTS", "HINT_RANGE", "MIN_STRIP_BLOCKS", "screen_like", "mosaic_colours", "censor_sized",
           "is_censor_mosaic", "grow_censor", "coarsest_split", "find_censor_mosaics", "nearest_doubled"]

#: An image is screen-like when one exact colour covers at least this share of its pixels.
SCREEN_SHARE = 0.25
#: Cell colours are compared after quantising each channel into steps of this many levels.
COLOUR_STEP = 3
#: A censor mosaic has blocks of at least this many pixels (finer grids are the UI's own)...
MIN_CENSOR_BLOCK = 4.0
#: ... a grid at least this confident...
MIN_CENSOR_CONFIDENCE = 0.65
#: ... at least this many distinct flat-cell colours that differ from a neighbouring cell...
MIN_DISTINCT = 12
#: ... and its two most common flat-cell colours cover at most this share of its flat cells.
MAX_MAJOR_SHARE = 0.8
#: Block sizes :func:`find_censor_mosaics` looks for.
BLOCK_HINTS = (4.0, 7.0, 10.0, 13.0, 16.0)
#: A box's own grid is measured inside it within these factors of the hint: the letters of a
#: text line repeat every few blocks and can fit a multiple of the block better than the block.
HINT_RANGE = (0.6, 1.5)
#: A censor over one line of text may be a single block high (the length carries the grid).
MIN_STRIP_BLOCKS = 1.0
#: A censor box grows (:func:`grow_censor`) by this many cells at a time along a row of cells (or
#: one, or twice this many)...
GROW_CELLS = 3
#: ... while at least this share of the cells it adds is flat and they are not all one colour.
GROW_FLAT_SHARE = 0.8
#: Neighbouring cells whose mean colours differ by more than this (8-bit levels) are a change.
CELL_CHANGE = 8.0
#: A grid is a split of one ``k`` times coarser (:func:`coarsest_split`) when at most this share
#: of the changes between its neighbouring cells fall inside the coarser cells...
SPLIT_SHARE = 0.1
#: ... of at least this many changes.
MIN_SPLIT_CHANGES = 6
#: Coarser grids looked for, largest factor first.
SPLIT_FACTORS = (4, 3, 2)
#: An axis may be doubled when its steps inside the 2 px cells average at most this share of its
#: steps between them (:func:`nearest_doubled`'s quick test, before the fit).
DOUBLED_STEP_SHARE = 0.25


def screen_like(rgb: np.ndarray, step: int = 8) -> float:
    """Share of the most common exact colour in ``rgb`` (``HxWx3`` ``uint8``, every ``step``-th
    pixel on each axis): at least :data:`SCREEN_SHARE` for screenshots (their background), less for photos."""
    sample = np.ascontiguousarray(np.asarray(rgb)[::step, ::step, :3]).astype(np.uint32)
    if sample.size == 0:
        return 0.0
    codes = (sample[..., 0] << 16) | (sample[..., 1] << 8) | sample[..., 2]
    _, counts = np.unique(codes.ravel(), return_counts=True)
    return float(counts.max()) / codes.size


def nearest_doubled(rgb: np.ndarray) -> tuple[GridEstimate, np.ndarray] | None:
    """``(grid, half)`` when ``rgb`` (``HxWx3`` ``uint8``) is an image with every pixel doubled by
    nearest neighbour (a HiDPI x2 of an interface: the content as designed), else ``None``.

    ``grid`` is the 2 px grid of the doubled pixels and ``half`` the image they double (one pixel
    per cell, :func:`recover_lowres`). The grid must explain the image (:data:`MIN_GRID_FIT_DB`) and
    fit it :data:`MIN_GRID_CONTRAST_DB` better than itself moved by a pixel (a smooth picture fits
    any fine grid; sharp interface edges only their own). A quick test on the steps inside and
    between the cells (:data:`DOUBLED_STEP_SHARE`) picks the phase and spares the fit elsewhere.
    """
    gray = _gray(rgb).astype(np.int16)
    if min(gray.shape) < 8:
        return None
    phases = []
    for g in (gray, gray.T):  # x, then y
        steps = np.abs(np.diff(g, axis=1)).mean(axis=0)  # steps[x]: between pixels x and x + 1
        even, odd = float(steps[0::2].mean()), float(steps[1::2].mean())
        if even <= DOUBLED_STEP_SHARE * odd:
            phases.append(0.0)  # cells start at even pixels: no step from 2k to 2k + 1
        elif odd <= DOUBLED_STEP_SHARE * even:
            phases.append(1.0)
        else:
            return None
    grid = GridEstimate(2.0, (2.0, 2.0), (phases[0], phases[1]), 1.0)
    half = recover_lowres(rgb, grid, refine=False)
    fit = grid_fit(rgb, half, grid)
    if fit < MIN_GRID_FIT_DB or not grid_contrast(rgb, grid, fit=fit) >= MIN_GRID_CONTRAST_DB:
        return None
    return grid, half


def mosaic_colours(img: np.ndarray, box: tuple[int, int, int, int], grid: GridEstimate) -> tuple[int, float]:
    """``(distinct, major)`` of the flat cells of ``grid`` inside ``box``: how many distinct
    colours (quantised by :data:`COLOUR_STEP`) are held by flat cells that differ from a
    neighbouring flat cell, and the share of flat cells taken by the two most common colours."""
    means, var = cell_stats(img, box, grid)
    flat = var <= FLAT_CELL_STD ** 2
    if not flat.any():
        return 0, 1.0
    q = np.round(means / COLOUR_STEP).astype(np.int64)
    codes = sum(q[..., c] * 1000 ** c for c in range(q.shape[-1]))  # one integer per colour
    _, counts = np.unique(codes[flat], return_counts=True)
    major = float(np.sort(counts)[-2:].sum()) / int(flat.sum())
    differs = np.zeros_like(flat)
    for axis in (0, 1):
        a = [slice(None)] * 2
        b = [slice(None)] * 2
        a[axis], b[axis] = slice(1, None), slice(None, -1)
        both = flat[tuple(a)] & flat[tuple(b)] & (codes[tuple(a)] != codes[tuple(b)])
        differs[tuple(a)] |= both
        differs[tuple(b)] |= both
    return int(np.unique(codes[differs]).size), major


def censor_sized(grid: GridEstimate) -> bool:
    """Whether ``grid`` could be a censor's: found, blocks of at least :data:`MIN_CENSOR_BLOCK` px
    (finer grids are an interface's own) and a confidence of at least :data:`MIN_CENSOR_CONFIDENCE`."""
    return bool(grid.found) and grid.block_size >= MIN_CENSOR_BLOCK and grid.confidence >= MIN_CENSOR_CONFIDENCE


def is_censor_mosaic(img: np.ndarray, box: tuple[int, int, int, int], grid: GridEstimate) -> bool:
    """Whether the cells of ``grid`` in ``box`` look like a censor mosaic rather than an
    interface's own grid: blocks of at least :data:`MIN_CENSOR_BLOCK` px on a grid of at least
    :data:`MIN_CENSOR_CONFIDENCE`, many distinct neighbouring cell colours and no one or two
    colours dominating (:func:`mosaic_colours`). The thresholds were chosen on ``train/screens``
    (clean and censored variants), never on the benchmark."""
    if not censor_sized(grid):
        return False
    distinct, major = mosaic_colours(img, box, grid)
    return distinct >= MIN_DISTINCT and major <= MAX_MAJOR_SHARE


def _adds_censor(img: np.ndarray, cells: tuple[int, int, int, int], grid: GridEstimate) -> bool:
    """Whether the cells of ``grid`` in ``cells`` (a strip beside a censor box) continue it: at least
    :data:`GROW_FLAT_SHARE` of them flat, and those not all one colour (:data:`CELL_CHANGE`; a blank
    margin: no one can tell it censored, and past it lies something else)."""
    if cells[2] <= cells[0] or cells[3] <= cells[1]:
        return False
    means, var = cell_stats(img, cells, grid)
    flat = var <= FLAT_CELL_STD ** 2
    if float(flat.mean()) < GROW_FLAT_SHARE:
        return False
    return float(np.ptp(means[flat], axis=0).max()) > CELL_CHANGE  # the flat cells are not all one colour


def grow_censor(img: np.ndarray, box: tuple[int, int, int, int], grid: GridEstimate) -> tuple[int, int, int, int]:
    """``box`` grown while the cells of ``grid`` beyond it continue the censor
    (:func:`_adds_censor`): :data:`GROW_CELLS` columns at a time to the left and right, a row at a
    time above and below, each step ending on a line of the grid. The block-evidence search often
    finds a piece of a text censor only (the cells of a line one or two blocks high show few
    steps), and the network, shown a crop centred on that piece, sees the whole censor; the
    letters beyond it are not flat cells."""
    h, w = np.asarray(img).shape[:2]
    (bx, by), (px, py) = grid.block_xy, grid.phase_xy

    def line(v: float, b: float, p: float, limit: int) -> int:  # the grid line nearest to v
        return int(min(max(round(p + round((v - p) / b) * b), 0), limit))

    x0, y0, x1, y1 = (int(v) for v in box)
    grown = True
    while grown:
        grown = False
        # A column at a time where a few would cross the censor's end; twice as many where they
        # are blank (a nearest-sample censor of text takes the background's colour in places).
        widths = (GROW_CELLS, 1, 2 * GROW_CELLS)
        steps = [("left", n) for n in widths] + [("right", n) for n in widths] + [("top", 1), ("bottom", 1)]
        for side, n in steps:
            if side == "left":
                cells = (line(x0 - n * bx, bx, px, w), y0, x0, y1)
            elif side == "right":
                cells = (x1, y0, line(x1 + n * bx, bx, px, w), y1)
            elif side == "top":
                cells = (x0, line(y0 - n * by, by, py, h), x1, y0)
            else:
                cells = (x0, y1, x1, line(y1 + n * by, by, py, h))
            if _adds_censor(img, cells, grid):
                x0, y0, x1, y1 = min(x0, cells[0]), min(y0, cells[1]), max(x1, cells[2]), max(y1, cells[3])
                grown = True
    return x0, y0, x1, y1


def coarsest_split(img: np.ndarray, box: tuple[int, int, int, int], grid: GridEstimate) -> GridEstimate:
    """The grid ``k`` (:data:`SPLIT_FACTORS`) times coarser whose cells ``grid``'s cells in ``box``
    split, else ``grid``. A censor's cells fit every fraction of its grid too, and a line of text
    censored by nearest sample repeats its background colour over neighbouring cells, so the box
    search can measure a half or a third of the block; on the true grid the colour changes only
    between its cells, on a fraction of it also inside them (:data:`SPLIT_SHARE` of at least
    :data:`MIN_SPLIT_CHANGES` changes, :data:`CELL_CHANGE` levels; the box at least three coarser
    cells long)."""
    means, _ = cell_stats(img, box, grid)
    changes_x = np.abs(np.diff(means, axis=1)).max(axis=-1) > CELL_CHANGE  # between columns c and c + 1
    changes_y = np.abs(np.diff(means, axis=0)).max(axis=-1) > CELL_CHANGE
    total = int(changes_x.sum() + changes_y.sum())
    if total < MIN_SPLIT_CHANGES:
        return grid
    rows, cols = _cell_edges(box, grid)
    (bx, by), (px, py) = grid.block_xy, grid.phase_xy
    # Each cell's index on the whole grid (a box's first cell may be a partial one).
    index_x = np.floor((box[0] + cols[1:-1] - px + 0.5) / bx).astype(int)  # the cell right of each column change
    index_y = np.floor((box[1] + rows[1:-1] - py + 0.5) / by).astype(int)
    for k in SPLIT_FACTORS:
        if max(means.shape[:2]) < 3 * k:
            continue  # under three coarser cells along the box: too few to tell
        for i in range(k):  # coarse cells start at fine cells i (mod k) on each axis
            inside_x = (index_x - i) % k != 0
            for j in range(k):
                inside_y = (index_y - j) % k != 0
                within = int(changes_x[:, inside_x].sum() + changes_y[inside_y, :].sum())
                if within <= SPLIT_SHARE * total:
                    return GridEstimate(k * grid.block_size, (k * bx, k * by),
                                        (float((px + i * bx) % (k * bx)), float((py + j * by) % (k * by))),
                                        grid.confidence)
    return grid


def _wins(box, grid: GridEstimate, other_box, other: GridEstimate) -> bool:
    """Of two overlapping censor boxes, whether ``box`` replaces ``other_box``: the larger when
    their blocks agree (within 10%: one mosaic seen at two hints, the smaller a piece of it);
    the coarser when one block is a multiple of the other (a mosaic's cells also fit every
    fraction of its grid, and only the true grid's cells are flat, which both boxes passed);
    else the one with the more confident grid."""
    big, small = max(grid.block_size, other.block_size), min(grid.block_size, other.block_size)
    if big <= 1.1 * small:
        return box_area(box) > box_area(other_box)
    ratio = big / small
    if round(ratio) >= 2 and abs(ratio - round(ratio)) <= 0.1 * round(ratio):
        return grid.block_size > other.block_size
    return grid.confidence > other.confidence


def find_censor_mosaics(rgb: np.ndarray, *, hints=BLOCK_HINTS, accept=None, min_blocks: float = MIN_STRIP_BLOCKS,
                        near: np.ndarray | None = None, grow: bool = False,
                        max_boxes: int = 8) -> list[tuple[tuple[int, int, int, int], GridEstimate]]:
    """Censor mosaics anywhere in an image: the boxes of
    :func:`~deepclarity.pixelation.find_pixelated_boxes` at each block size of ``hints`` (each
    box's own grid within :data:`HINT_RANGE` of the hint, at least ``min_blocks`` blocks on a
    side, touching ``near`` when given) that pass ``accept(rgb, box, grid)`` (default
    :func:`is_censor_mosaic`, the screenshot rule), without their blank outer lines
    (:func:`~deepclarity.pixelation.boxes.trim_blank`); of overlapping boxes, the one
    :func:`_wins` says. Largest first, at most ``max_boxes``. With ``grow`` (screenshots), each
    box accepted takes the coarsest grid its cells split (:func:`coarsest_split`) and grows along
    it (:func:`grow_censor`) first."""
    accept = is_censor_mosaic if accept is None else accept
    found: list[tuple[tuple[int, int, int, int], GridEstimate]] = []
    for hint in hints:
        for box, grid in find_pixelated_boxes(rgb, hint, min_blocks=min_blocks, near=near,
                                              min_block=HINT_RANGE[0] * hint, max_block=HINT_RANGE[1] * hint,
                                              max_boxes=max_boxes):
            if not accept(rgb, box, grid):
                continue
            if grow:
                grid = coarsest_split(rgb, box, grid)
                box = grow_censor(rgb, box, grid)
            # Judged with its blank margin (where the thresholds were chosen), reported without it.
            box = extend_to_partial_cells(rgb, trim_blank(rgb, box, grid), grid)
            clash = [i for i, (b2, _) in enumerate(found) if box_overlap(box, b2) > 0.3]
            if all(_wins(box, grid, *found[i]) for i in clash):
                found = [f for i, f in enumerate(found) if i not in clash] + [(box, grid)]
    return sorted(found, key=lambda f: -box_area(f[0]))[:max_boxes]
