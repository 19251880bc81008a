"""A second look at photos the network was unsure of: censor mosaics found by their cells.

The detector network scores a photo by its most confident 160 px tile, so a small censor box, or
one cut across tile borders, can leave every tile just under the threshold. Block-grid evidence
(:func:`~deepclarity.pixelation.find_pixelated_boxes`) finds such a box directly, but on photos
it also finds "mosaics" in fine texture, and a JPEG'd photo's own 8 px DCT blocks look exactly
like one. So a box counts only when it passes a strict version of the screenshot rule
(:func:`~deepclarity.pixelation.screens.mosaic_colours`: a confident grid of at least
:data:`MIN_PHOTO_BLOCK` px, nearly all cells flat, many distinct flat-cell colours, no one or two
colours dominating) and its block is not JPEG's 8 px (:func:`jpeg_grid`).
:meth:`deepclarity.detect.Detector.detect` takes this look only when the network's probability is
at least ``SECOND_LOOK_P``; the thresholds were chosen on training photos (clean, JPEG q30,
upscaled, blurred, and partial censors; ``python -m evaluation.second_look_rule``), never on the
benchmark.
"""

from __future__ import annotations

import numpy as np

from .boxes import cell_flatness
from .grid import GridEstimate
from .screens import find_censor_mosaics, mosaic_colours

__all__ = ["PHOTO_HINTS", "MIN_PHOTO_BLOCK", "MIN_PHOTO_CONFIDENCE", "MIN_PHOTO_DISTINCT", "MAX_PHOTO_MAJOR",
           "MIN_PHOTO_FLAT", "jpeg_grid", "is_photo_mosaic", "find_photo_mosaics"]

#: Block sizes looked for on photos (censors over faces and plates run coarser than on text).
PHOTO_HINTS = (4.0, 6.0, 9.0, 13.0, 18.0, 24.0)
#: A photo mosaic has blocks of at least this many pixels...
MIN_PHOTO_BLOCK = 5.0
#: ... a grid at least this confident...
MIN_PHOTO_CONFIDENCE = 0.8
#: ... at least this many distinct flat-cell colours that differ from a neighbouring cell...
MIN_PHOTO_DISTINCT = 20
#: ... its two most common flat-cell colours cover at most this share of its flat cells...
MAX_PHOTO_MAJOR = 0.3
#: ... and at least this share of its cells is flat (texture leaves a few busy cells in any box).
MIN_PHOTO_FLAT = 0.92
#: JPEG's DCT blocks are 8 px.
JPEG_BLOCK = 8


def jpeg_grid(grid: GridEstimate) -> bool:
    """Whether ``grid`` may be a JPEG's own block grid: 8 px within half a pixel. Its phase does
    not tell (a heavily compressed photo's measured phase lands anywhere), so a censor of 8 px
    blocks is left to the network's verdict."""
    return grid.found and abs(grid.block_size - JPEG_BLOCK) <= 0.5


def is_photo_mosaic(img: np.ndarray, box: tuple[int, int, int, int], grid: GridEstimate) -> bool:
    """Whether ``box`` on its ``grid`` is a censor mosaic by the strict photo rule (module docstring)."""
    if not grid.found or grid.block_size < MIN_PHOTO_BLOCK or grid.confidence < MIN_PHOTO_CONFIDENCE:
        return False
    if jpeg_grid(grid):
        return False
    if cell_flatness(img, box, grid).mean() < MIN_PHOTO_FLAT:
        return False
    distinct, major = mosaic_colours(img, box, grid)
    return distinct >= MIN_PHOTO_DISTINCT and major <= MAX_PHOTO_MAJOR


def find_photo_mosaics(rgb: np.ndarray, *, near: np.ndarray | None = None,
                       max_boxes: int = 8) -> list[tuple[tuple[int, int, int, int], GridEstimate]]:
    """Censor mosaics on a photo that pass :func:`is_photo_mosaic` (touching ``near``, ``HxW``
    bool, when given), largest first."""
    return find_censor_mosaics(rgb, hints=PHOTO_HINTS, accept=is_photo_mosaic, min_blocks=2.0, near=near,
                               max_boxes=max_boxes)
