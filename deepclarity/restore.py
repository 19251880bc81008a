"""One-step restoration of pixelated images: detect -> recover the block grid -> super-resolve.

A nearest-neighbour-pixelated image holds exactly one low-resolution image, one value per block
(:func:`deepclarity.grid.recover_lowres`). Rather than upscaling the blocks (the prototype resized
every input to 480 px wide and ran the generator, whatever the pixelation), :class:`Restorer`
recovers that image and super-resolves it by the right factor: the generator's x4, then a resize
to the requested output size (by default the input's). A censor mosaic over part of the image
(:func:`deepclarity.grid.find_mosaic_region`) is restored alone and pasted back.

One function for every front end: the CLI's ``restore`` and the app's "Auto" mode call
:meth:`Restorer.restore`.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field, replace

import numpy as np

from .enhance import DEFAULT_UPSCALER, MAX_OUTPUT_PIXELS, MAX_OUTSCALE, load_upscaler, resize_to, to_gray3
from .errors import DeepClarityError, ImageError
from .grid import (GridEstimate, estimate_grid, expand_lowres, find_mosaic_region, grid_axes, grid_edges,
                   recover_lowres, refine_grid)
from .io import LoadedImage, read_image, to_uint8
from .metrics import psnr_y

__all__ = ["ANTIALIAS_SIGMA", "MIN_GRID_FIT_DB", "WHEN_CLEAN", "Restored", "Restorer", "load_restorer",
           "restoration_model", "sample_positions"]

#: The recovered grid is point-sampled (one pixel per block) and so aliased, while the benchmark
#: generators were trained on antialiased (MATLAB bicubic) low-resolution images; a light Gaussian
#: blur first makes it look like what they know. Measured on astronaut/coffee crops pixelated
#: x2-x4: +1.5 to +2.4 dB over no blur with sigma 0.5 (0.8 and 1.1 are worse). Not applied for the
#: restoration variants (``<model>-pixel``), which were trained on point-sampled images.
ANTIALIAS_SIGMA = 0.5

#: Full-image restoration only when the block image of the recovered grid matches the image to
#: within this PSNR-Y (dB); below it the grid does not explain the image (a wrong grid, or a
#: mosaic over part of it that was not found) and the image is kept ("no-grid"), never made worse.
#: Exact pixelation fits exactly, pixelation then JPEG q75 well above this, the whole-image grid of
#: a mosaic over a quarter of the image well below (tests/unit/test_restore.py checks both sides).
MIN_GRID_FIT_DB = 30.0

#: What to do with an image the detector calls clean: leave it (resized to the output size only)
#: or enhance it with the generator.
WHEN_CLEAN = ("keep", "enhance")


@dataclass
class Restored:
    """The result of :meth:`Restorer.restore`.

    Attributes:
        image: the result, written back in kind by :func:`deepclarity.io.write_image` (gray stays
            gray, alpha kept, 16-bit kept); ``image.path`` is ``None``.
        action: ``"restored"`` (whole image de-pixelated), ``"restored-region"`` (a mosaic over
            part of it), ``"enhanced"`` / ``"kept"`` (not pixelated), or ``"no-grid"`` (pixelated
            but no block grid was found: resized only).
        pixelated: the detector's verdict (``True`` also when forced).
        probability: the detector's probability (``None`` when forced without detection).
        block_size: block side in pixels used to recover the grid, when one was.
        region: ``(x0, y0, x1, y1)`` of the restored mosaic in input pixels, for partial mosaics.
        lowres_size: ``(width, height)`` of the recovered low-resolution image.
        model: the generator used (the restoration variant, e.g. ``mobilesr-pixel``, for
            whole-image pixelation).
        seconds: wall time.
        detection: the detector's full answer (region map included) for the apps.
    """

    image: LoadedImage
    action: str
    pixelated: bool
    probability: float | None
    block_size: float | None
    region: tuple[int, int, int, int] | None
    lowres_size: tuple[int, int] | None
    model: str
    seconds: float
    detection: object = field(default=None, repr=False, compare=False)

    def to_record(self) -> dict:
        """The JSON-able summary the CLI prints per file."""
        return {
            "action": self.action,
            "pixelated": bool(self.pixelated),
            "probability": None if self.probability is None else round(float(self.probability), 6),
            "block_size": None if self.block_size is None else round(float(self.block_size), 3),
            "region": None if self.region is None else [int(v) for v in self.region],
            "lowres_size": None if self.lowres_size is None else [int(v) for v in self.lowres_size],
            "model": self.model,
            "size": f"{self.image.width}x{self.image.height}",
            "seconds": round(self.seconds, 3),
        }


def sample_positions(height: int, width: int, grid: GridEstimate, *,
                     point_sampled: bool) -> tuple[np.ndarray, np.ndarray]:
    """Where in the input (pixels, continuous) each value of ``recover_lowres(img, grid)`` came from.

    A censor mosaic holds each cell's mean: the value belongs to the cell's centre
    (``point_sampled=False``). Nearest-neighbour pixelation holds one *pixel* per block, the one
    nearest the block's (fractional) centre — ``floor(centre) + 0.5`` with pixel-centre rounding
    as Pillow and :func:`deepclarity.degrade.pixelate` do — half a pixel off the centre for even
    block sizes. Drawing the values there instead of at the centres is worth +0.4 to +3 dB
    (factors 4 and 2, astronaut and coffee crops).

    Returns:
        ``(row_positions, col_positions)``, one per grid cell, increasing.
    """
    (bx, px), (by, py) = grid_axes(grid)
    row_edges, col_edges = grid_edges(height, width, grid)

    def axis(edges: np.ndarray, block: float, phase: float) -> np.ndarray:
        edges = edges.astype(np.float64)
        if not point_sampled:
            return (edges[:-1] + edges[1:]) / 2
        cont = phase + np.round((edges - phase) / block) * block  # the fractional boundaries
        cont[0], cont[-1] = edges[0], edges[-1]
        return np.floor((cont[:-1] + cont[1:]) / 2) + 0.5

    return axis(row_edges, by, py), axis(col_edges, bx, px)


def restoration_model(model: str) -> str:
    """The generator that super-resolves recovered grids for ``model``: its restoration variant
    ``<model>-pixel`` (fine-tuned on one pixel per block, which is what a pixelated image holds)
    when that is registered and its weights are shipped, else ``model`` itself."""
    from .models import list_models

    variant = f"{model.lower()}-pixel"
    return variant if any(s.name == variant and s.has_weights for s in list_models("sr")) else model.lower()


class Restorer:
    """Detector + grid recovery + generator, loaded once.

    Args:
        model: the generator (:data:`deepclarity.enhance.UPSCALERS`); recovered grids go through
            its restoration variant when one is shipped (:func:`restoration_model`), images left
            clean but enhanced through ``model`` itself.
        method: the detector (``"canny"`` or ``"rgb"``).
        device, fp32, tile, tile_pad: as for :class:`deepclarity.enhance.Upscaler`.
        threshold: the detector's threshold (default: the calibrated one in its model card).
    """

    def __init__(self, model: str = DEFAULT_UPSCALER, *, method: str = "canny", device: str = "auto",
                 fp32: bool = False, tile: int | None = None, tile_pad: int = 16,
                 threshold: float | None = None) -> None:
        from .detect import load_detector

        self.upscaler = load_upscaler(model, device=device, fp32=fp32, tile=tile, tile_pad=tile_pad)
        self.grid_upscaler = load_upscaler(restoration_model(model), device=device, fp32=fp32, tile=tile,
                                           tile_pad=tile_pad)
        self.detector = load_detector(method, device=device, fp32=fp32, threshold=threshold)

    @property
    def model(self) -> str:
        return self.upscaler.name

    def _superresolve(self, low: np.ndarray, row_pos: np.ndarray, col_pos: np.ndarray,
                      height: int, width: int, in_height: int, in_width: int, *,
                      point_sampled: bool = True) -> np.ndarray:
        """The recovered grid ``low`` (one value per block), super-resolved and drawn at
        ``height x width`` so that each value lands where it was taken from.

        ``row_pos``/``col_pos`` are those places in input pixels (continuous, pixel centres at
        ``i + 0.5``), see :func:`sample_positions`: each block keeps its own place and size, which
        matters for fractional factors and for mosaics, whose last row/column is often narrower
        (a uniform resize gave 18.6 dB instead of 21.0 on a 12-px mosaic of the astronaut).
        Output pixel centres are mapped into the input, then between neighbouring samples into
        the generator's output, and read there (Lanczos). Point samples (pixelation) go through
        the restoration variant when one is shipped; a mosaic's cell means are an antialiased
        image already and go through the plain generator.
        """
        import cv2

        upscaler = self.grid_upscaler if point_sampled else self.upscaler
        blur = ANTIALIAS_SIGMA if upscaler.trained_on == "bicubic" else 0.0
        soft = cv2.GaussianBlur(low, (0, 0), blur) if blur > 0 else low
        sr = upscaler.upscale_array(soft)
        if min(low.shape[:2]) < 2:
            return resize_to(sr, height, width)
        scale = sr.shape[0] / low.shape[0]
        # Where low-res pixel u lands in the generator's output (pixel index): antialiased
        # training pairs are centre-aligned (scale * (u + 0.5) - 0.5); point-sampled ones took
        # the pixel at scale * u + scale // 2 (degrade.nearest_downscale).
        offset = scale // 2 if upscaler.trained_on == "nearest" else (scale - 1) / 2
        # An output smaller than the generator's (blocks under 4 px) is averaged down to it first:
        # read directly, generated pixels in between would be dropped (aliasing).
        shrink = (min(1.0, height / sr.shape[0]), min(1.0, width / sr.shape[1]))
        if shrink != (1.0, 1.0):
            size = (max(1, round(sr.shape[1] * shrink[1])), max(1, round(sr.shape[0] * shrink[0])))
            sr = cv2.resize(sr, size, interpolation=cv2.INTER_AREA)

        def lowres_index(pos: np.ndarray, n_out: int, length: int) -> np.ndarray:
            """Fractional low-res index of every output pixel centre (piecewise linear in pos)."""
            x = (np.arange(n_out) + 0.5) * (length / n_out)
            k = np.clip(np.searchsorted(pos, x, side="right") - 1, 0, pos.size - 2)
            return k + (x - pos[k]) / (pos[k + 1] - pos[k])

        uy, ux = lowres_index(row_pos, height, in_height), lowres_index(col_pos, width, in_width)
        map_x, map_y = np.meshgrid(((scale * ux + offset + 0.5) * shrink[1] - 0.5).astype(np.float32),
                                   ((scale * uy + offset + 0.5) * shrink[0] - 0.5).astype(np.float32))
        return cv2.remap(sr, map_x, map_y, interpolation=cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REPLICATE)

    def restore(self, image: LoadedImage | np.ndarray | str | os.PathLike, *, force: bool = False,
                outscale: float = 1.0, when_clean: str = "keep", threshold: float | None = None,
                max_output_pixels: int | None = MAX_OUTPUT_PIXELS) -> Restored:
        """Restore ``image`` if it is pixelated (or ``force``), else keep or enhance it.

        Args:
            image: a :class:`LoadedImage`, a path, bytes or an array.
            force: treat the image as pixelated whatever the detector says.
            outscale: output size / input size (default 1: the input's size).
            when_clean: ``"keep"`` or ``"enhance"`` for images that are not pixelated.
            threshold: the detector's threshold for this call.
            max_output_pixels: refuse results larger than this.

        Raises:
            ImageError: unreadable input or a result over the limit.
        """
        if when_clean not in WHEN_CLEAN:
            raise DeepClarityError(f"when_clean must be one of {', '.join(WHEN_CLEAN)}, got {when_clean!r}")
        if not np.isfinite(outscale) or not (0 < outscale <= MAX_OUTSCALE):
            raise DeepClarityError(f"outscale must be in (0, {MAX_OUTSCALE:g}], got {outscale}")
        t0 = time.perf_counter()
        loaded = image if isinstance(image, LoadedImage) else read_image(image)
        h, w = loaded.height, loaded.width
        out_h, out_w = max(1, round(h * outscale)), max(1, round(w * outscale))
        if max_output_pixels is not None and out_h * out_w > max_output_pixels:
            raise ImageError(f"{loaded.source}: the result would be {out_w}x{out_h} "
                             f"({out_w * out_h / 1e6:.1f} MP), over the limit of {max_output_pixels / 1e6:.1f} MP")

        detection = self.detector.detect(loaded, threshold=threshold, estimate_block=False)
        pixelated = detection.pixelated or force
        if not pixelated:
            if when_clean == "enhance":
                result = self.upscaler.enhance(loaded, outscale=outscale, max_output_pixels=max_output_pixels)
                return self._done(result.image, "enhanced", detection, None, None, None, t0, pixelated)
            return self._done(self._finish(loaded, resize_to(loaded.pixels, out_h, out_w), out_h, out_w),
                              "kept", detection, None, None, None, t0, pixelated)

        rgb8 = to_uint8(loaded.pixels)
        grid = estimate_grid(rgb8)
        region = find_mosaic_region(rgb8, grid if grid.found else None)
        if region is not None:
            x0, y0, x1, y1 = region
            crop = loaded.pixels[y0:y1, x0:x1]
            local = estimate_grid(to_uint8(crop))
            if not local.found:  # a small mosaic: its cells start at the box corner
                block = grid.block_xy if grid.found else None
                local = GridEstimate(grid.block_size, block, (0.0, 0.0), grid.confidence) if block else local
            if local.found:
                local = refine_grid(crop, local)
                low = recover_lowres(crop, local, refine=False)
                rows, cols = sample_positions(crop.shape[0], crop.shape[1], local, point_sampled=False)
                base = resize_to(loaded.pixels, out_h, out_w)
                sx0, sy0 = round(x0 * outscale), round(y0 * outscale)
                sx1, sy1 = min(out_w, round(x1 * outscale)), min(out_h, round(y1 * outscale))
                base[sy0:sy1, sx0:sx1] = self._superresolve(low, rows, cols, sy1 - sy0, sx1 - sx0, *crop.shape[:2],
                                                            point_sampled=False)
                return self._done(self._finish(loaded, base, out_h, out_w), "restored-region", detection,
                                  local.block_size, region, (low.shape[1], low.shape[0]), t0, pixelated)
        if grid.found:
            grid = refine_grid(loaded.pixels, grid)
            low = recover_lowres(loaded.pixels, grid, refine=False)
        if not grid.found or self._grid_fit(rgb8, to_uint8(low), grid) < MIN_GRID_FIT_DB:
            return self._done(self._finish(loaded, resize_to(loaded.pixels, out_h, out_w), out_h, out_w),
                              "no-grid", detection, None, None, None, t0, pixelated)
        rows, cols = sample_positions(h, w, grid, point_sampled=True)
        up = self._superresolve(low, rows, cols, out_h, out_w, h, w)
        return self._done(self._finish(loaded, up, out_h, out_w), "restored", detection, grid.block_size, None,
                          (low.shape[1], low.shape[0]), t0, pixelated)

    @staticmethod
    def _grid_fit(rgb8: np.ndarray, low8: np.ndarray, grid: GridEstimate) -> float:
        """PSNR-Y (dB) of the image against the block image of ``low8``, its grid recovered with
        ``grid`` (8-bit): how well ``grid`` explains the image (see :data:`MIN_GRID_FIT_DB`)."""
        return psnr_y(expand_lowres(low8, *rgb8.shape[:2], grid), rgb8)

    @staticmethod
    def _finish(loaded: LoadedImage, pixels: np.ndarray, out_h: int, out_w: int) -> LoadedImage:
        """The result in kind: grayscale collapsed back to gray, alpha resized alongside."""
        if loaded.grayscale:
            pixels = to_gray3(pixels)
        alpha = None if loaded.alpha is None else resize_to(loaded.alpha, out_h, out_w)
        return replace(loaded, pixels=np.ascontiguousarray(pixels), alpha=alpha, path=None)

    def _done(self, image: LoadedImage, action: str, detection, block: float | None,
              region, lowres, t0: float, pixelated: bool) -> Restored:
        return Restored(image, action, pixelated, detection.probability if detection else None, block, region,
                        lowres, self.grid_upscaler.name if action == "restored" else self.model,
                        time.perf_counter() - t0, detection)


_RESTORERS: dict[tuple, Restorer] = {}
_LOCK = threading.Lock()


def load_restorer(model: str = DEFAULT_UPSCALER, *, method: str = "canny", device: str = "auto",
                  fp32: bool = False, tile: int | None = None, tile_pad: int = 16,
                  threshold: float | None = None) -> Restorer:
    """A shared :class:`Restorer` per setting (its detector and generator are cached too)."""
    key = (model.lower(), method, device, fp32, tile, tile_pad, threshold)
    with _LOCK:
        if key not in _RESTORERS:
            _RESTORERS[key] = Restorer(model, method=method, device=device, fp32=fp32, tile=tile,
                                       tile_pad=tile_pad, threshold=threshold)
        return _RESTORERS[key]
