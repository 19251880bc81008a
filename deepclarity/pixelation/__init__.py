"""Pixelation geometry: the block grid of a pixelated image, the image it holds, and censor mosaics.

* :mod:`.grid` — block size and phase estimation (:func:`estimate_grid`, :class:`GridEstimate`,
  boundary profiles and comb correlation);
* :mod:`.recover` — exact cell edges (:func:`block_edges`, :func:`grid_edges`,
  :func:`refine_grid`) and the low-resolution image read back from them (:func:`recover_lowres`,
  :func:`expand_lowres`) and how well a grid explains a whole image (:func:`grid_fit`), better
  than itself moved by half a block (:func:`grid_contrast`);
* :mod:`.regions` — where a censor mosaic covers part of an image (:func:`find_mosaic_region`),
  and rebuilding given boxes on their own grids (:func:`restore_regions`);
* :mod:`.boxes` — boxes of pixelation found from local block-grid evidence, robust to JPEG
  (:func:`find_pixelated_boxes`), the grid inside one box (:func:`estimate_box_grid`), and a
  resized mosaic inside a loose box by its flat cells (:func:`flat_mosaic_box`);
* :mod:`.screens` — censor mosaics on screenshots told from the interface's own grid by their
  colours (:func:`screen_like`, :func:`is_censor_mosaic`, :func:`find_censor_mosaics`), and a
  screenshot doubled all over by nearest neighbour (:func:`nearest_doubled`);
* :mod:`.photo_mosaics` — the same search on photos the network was unsure of, by a stricter
  rule that sets JPEG's own 8 px grid aside (:func:`find_photo_mosaics`).

Each builds on the one before (``grid`` <- ``recover`` <- ``regions``); the public names of
all are importable from here.
"""

from .grid import GridEstimate, boundary_profile, estimate_grid, estimate_period
from .recover import (MIN_GRID_CONTRAST_DB, MIN_GRID_FIT_DB, block_edges, expand_lowres, grid_axes, grid_contrast,
                      grid_edges, grid_fit, lowres_shape, recover_lowres, refine_grid)
from .regions import COARSE_BLOCK, RegionRestore, find_mosaic_region, restore_regions
from .boxes import (box_area, box_overlap, cell_flatness, estimate_box_grid, find_pixelated_boxes, flat_mosaic_box,
                    grid_evidence)
from .screens import (MIN_CENSOR_BLOCK, SCREEN_SHARE, censor_sized, coarsest_split, find_censor_mosaics,
                      is_censor_mosaic, mosaic_colours, nearest_doubled, screen_like)
from .photo_mosaics import PHOTO_HINTS, find_photo_mosaics, is_photo_mosaic, jpeg_grid

__all__ = ["GridEstimate", "boundary_profile", "estimate_period", "estimate_grid", "block_edges", "expand_lowres",
           "grid_axes", "grid_edges", "grid_fit", "MIN_GRID_FIT_DB", "grid_contrast", "MIN_GRID_CONTRAST_DB",
           "lowres_shape", "refine_grid", "recover_lowres",
           "find_mosaic_region", "box_area", "box_overlap", "estimate_box_grid", "find_pixelated_boxes",
           "flat_mosaic_box", "grid_evidence", "cell_flatness",
           "COARSE_BLOCK", "RegionRestore", "restore_regions", "MIN_CENSOR_BLOCK", "SCREEN_SHARE", "screen_like",
           "censor_sized", "coarsest_split", "mosaic_colours", "is_censor_mosaic", "find_censor_mosaics",
           "nearest_doubled", "find_photo_mosaics", "is_photo_mosaic",
           "jpeg_grid", "PHOTO_HINTS"]
