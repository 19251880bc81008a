"""One-step restoration of pixelated images: detect -> recover the block grid -> super-resolve.

A nearest-neighbour-pixelated image holds exactly one low-resolution image, one value per block
(:func:`deepclarity.pixelation.recover_lowres`). Rather than upscaling the blocks (the prototype resized
every input to 480 px wide and ran the generator, whatever the pixelation), :class:`Restorer`
recovers that image and super-resolves it by the right factor: the generator's x4, then a resize
to the requested output size (by default the input's). A censor mosaic over part of the image
(:func:`deepclarity.pixelation.find_mosaic_region`) is restored alone and pasted back; one that was
JPEG'd or resized afterwards is found from the detector's boxes instead and rebuilt on each box's
own grid (:func:`deepclarity.pixelation.restore_regions`), leaving every pixel outside the boxes as
it was.

One function for every front end: the CLI's ``restore`` and the correction app's Restore mode call
:meth:`Restorer.restore`; its result, :class:`Restored`, says what was done (an :class:`Action`)
and where (the mosaic's box in input and in output pixels), so no front end recomputes it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from enum import StrEnum

import numpy as np

from .cache import ModelCache
from .detect import SCREEN_CENSOR, Detection
from .enhance import (DEFAULT_UPSCALER, MAX_OUTPUT_PIXELS, MAX_OUTSCALE, Upscaler, load_upscaler, resize_to,
                      sharpen, to_gray3)
from .errors import DeepClarityError, ImageError
from .io import LoadedImage, read_image, to_uint8
from .pixelation import (MIN_GRID_FIT_DB, GridEstimate, RegionRestore, estimate_grid, find_mosaic_region, grid_axes,
                         grid_edges, grid_fit, recover_lowres, refine_grid, restore_regions)
from .pixelation.regions import MAX_MOSAIC_COVER

__all__ = ["ANTIALIAS_SIGMA", "MIN_GRID_FIT_DB", "MIN_BOX_GRID_CONFIDENCE", "WHEN_CLEAN", "Action", "Box", "Restored",
           "Restorer", "load_restorer", "restoration_model", "sample_positions"]

#: The recovered grid is point-sampled (one pixel per block) and so aliased, while the benchmark
#: generators were trained on antialiased (MATLAB bicubic) low-resolution images; a light Gaussian
#: blur first makes it look like what they know. Measured on astronaut/coffee crops pixelated
#: x2-x4: +1.5 to +2.4 dB over no blur with sigma 0.5 (0.8 and 1.1 are worse). Not applied for the
#: restoration variants (``<model>-pixel``), which were trained on point-sampled images.
ANTIALIAS_SIGMA = 0.5

#: A detected box is rebuilt (or called too coarse) only when its own grid was measured at least
#: this confidently (:func:`~deepclarity.pixelation.estimate_box_grid`'s default bar).
MIN_BOX_GRID_CONFIDENCE = 0.5

#: What to do with an image the detector calls clean: leave it (resized to the output size only)
#: or enhance it with the generator.
WHEN_CLEAN = ("keep", "enhance")

#: A box ``(x0, y0, x1, y1)`` in pixels, ``x1``/``y1`` exclusive.
Box = tuple[int, int, int, int]


class Action(StrEnum):
    """What :meth:`Restorer.restore` did to an image. A ``str``: each value is the text the CLI
    and JSON records print (``Action.RESTORED == "restored"``)."""

    #: The whole image was pixelated: rebuilt from its block grid.
    RESTORED = "restored"
    #: A censor mosaic over part of the image was restored in place, the rest only resized.
    RESTORED_REGION = "restored-region"
    #: Not pixelated, and enhanced anyway (``when_clean="enhance"``).
    ENHANCED = "enhanced"
    #: Not pixelated: kept (resized to the output size only).
    KEPT = "kept"
    #: Called pixelated, but no block grid explains the image: resized only.
    NO_GRID = "no-grid"


@dataclass
class Restored:
    """The result of :meth:`Restorer.restore`.

    Attributes:
        image: the result, written back in kind by :func:`deepclarity.io.write_image` (gray stays
            gray, alpha kept, 16-bit kept); ``image.path`` is ``None``.
        action: what was done (:class:`Action`).
        pixelated: the detector's verdict (``True`` also when forced).
        probability: the detector's probability (``None`` when forced without detection).
        block_size: block side in pixels used to recover the grid, when one was.
        region: the restored mosaic's box in input pixels (:data:`Box`), for partial mosaics.
        lowres_size: ``(width, height)`` of the recovered low-resolution image.
        model: the generator used (the restoration variant, e.g. ``mobilesr-pixel``, for
            whole-image pixelation).
        seconds: wall time.
        detection: the detector's full answer (region map included), ``None`` when not run.
        output_region: the same mosaic's box in output pixels: where the restored pixels were
            pasted (and sharpened) in ``image``; ``None`` unless ``action`` is
            :attr:`Action.RESTORED_REGION`.
        sharpened: the unsharp-mask amount applied to what was restored or enhanced (0: none).
        boxes: for mosaics found by the detector's boxes (JPEG'd or resized ones), what was done
            to each box (:class:`~deepclarity.pixelation.RegionRestore`: ``restored``,
            ``too-coarse``, ``kept``, ``no-grid``, and ``text``: a censor on a screenshot, never
            restored); empty on the other paths.
    """

    image: LoadedImage
    action: Action
    pixelated: bool
    probability: float | None
    block_size: float | None
    region: Box | None
    lowres_size: tuple[int, int] | None
    model: str
    seconds: float
    detection: Detection | None = field(default=None, repr=False, compare=False)
    output_region: Box | None = None
    sharpened: float = 0.0
    boxes: list[RegionRestore] = field(default_factory=list)

    @property
    def too_coarse(self) -> list[RegionRestore]:
        """The detected boxes left as they were because their blocks are too large to restore."""
        return [b for b in self.boxes if b.status == "too-coarse"]

    @property
    def over_text(self) -> list[RegionRestore]:
        """The censor boxes on a screenshot left as they were: the text under them is gone."""
        return [b for b in self.boxes if b.status == "text"]

    def to_record(self) -> dict:
        """The JSON-able summary the CLI prints per file."""
        return {
            "action": self.action.value,
            "pixelated": bool(self.pixelated),
            "probability": None if self.probability is None else round(float(self.probability), 6),
            "block_size": None if self.block_size is None else round(float(self.block_size), 3),
            "region": None if self.region is None else [int(v) for v in self.region],
            "lowres_size": None if self.lowres_size is None else [int(v) for v in self.lowres_size],
            "model": self.model,
            "size": f"{self.image.width}x{self.image.height}",
            "seconds": round(self.seconds, 3),
            "boxes": [{"box": [int(v) for v in b.box], "status": b.status,
                       "block_size": None if b.block_size is None else round(float(b.block_size), 3)}
                      for b in self.boxes],
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
    (the registered SR model ``derived_from`` it with ``degradation == "nearest"``, fine-tuned on
    one pixel per block, which is what a pixelated image holds) when its weights are shipped,
    else ``model`` itself."""
    from .models import list_models

    name = model.lower()
    for spec in list_models("sr"):
        if spec.derived_from == name and spec.degradation == "nearest" and spec.has_weights:
            return spec.name
    return name


def _degradation(upscaler: Upscaler) -> str | None:
    """What ``upscaler``'s generator was trained on, from the registry: ``"bicubic"`` (antialiased
    low-resolution images) or ``"nearest"`` (one pixel per block); ``None`` for bicubic
    interpolation."""
    from .models import get_spec

    return None if upscaler.name == "bicubic" else get_spec(upscaler.name).degradation


def _checked_amount(amount: float) -> float:
    amount = float(amount)
    if not np.isfinite(amount) or amount < 0:
        raise DeepClarityError(f"the sharpening amount must be a number >= 0, got {amount}")
    return amount


class Restorer:
    """Detector + grid recovery + generator, loaded once.

    Args:
        model: the generator (:data:`deepclarity.enhance.UPSCALERS`); recovered grids go through
            its restoration variant when one is shipped (:func:`restoration_model`), images left
            clean but enhanced through ``model`` itself.
        method: the detector (``"canny"`` or ``"rgb"``).
        device, fp32, tile, tile_pad, precision, backend: as for :class:`deepclarity.enhance.Upscaler`
            (the generators; the detector keeps its own precision).
        threshold: the detector's threshold (default: the calibrated one in its model card).
        sharpen: default unsharp-mask amount for :meth:`restore` (0 = off).
    """

    def __init__(self, model: str = DEFAULT_UPSCALER, *, method: str = "canny", device: str = "auto",
                 fp32: bool = False, tile: int | None = None, tile_pad: int = 16,
                 threshold: float | None = None, sharpen: float = 0.0, precision: str | None = None,
                 backend: str | None = None) -> None:
        from .detect import load_detector

        self.sharpen = _checked_amount(sharpen)
        self.upscaler = load_upscaler(model, device=device, fp32=fp32, tile=tile, tile_pad=tile_pad,
                                      precision=precision, backend=backend)
        self.grid_upscaler = load_upscaler(restoration_model(model), device=device, fp32=fp32, tile=tile,
                                           tile_pad=tile_pad, precision=precision, backend=backend)
        self.detector = load_detector(method, device=device, fp32=fp32, threshold=threshold)

    @property
    def model(self) -> str:
        return self.upscaler.name

    @staticmethod
    def _generate(low: np.ndarray, upscaler: Upscaler) -> np.ndarray:
        """``low`` (one value per block) through ``upscaler``, blurred first by
        :data:`ANTIALIAS_SIGMA` for generators trained on antialiased images."""
        import cv2

        blur = ANTIALIAS_SIGMA if _degradation(upscaler) == "bicubic" else 0.0
        return upscaler.upscale_array(cv2.GaussianBlur(low, (0, 0), blur) if blur > 0 else low)

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
        degradation = _degradation(upscaler)
        sr = self._generate(low, upscaler)
        if min(low.shape[:2]) < 2:
            return resize_to(sr, height, width)
        scale = sr.shape[0] / low.shape[0]
        # Where low-res pixel u lands in the generator's output (pixel index): antialiased
        # training pairs are centre-aligned (scale * (u + 0.5) - 0.5); point-sampled ones took
        # the pixel at scale * u + scale // 2 (degrade.nearest_downscale).
        offset = scale // 2 if degradation == "nearest" else (scale - 1) / 2
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
                max_output_pixels: int | None = MAX_OUTPUT_PIXELS, sharpen_amount: float | None = None) -> Restored:
        """Restore ``image`` if it is pixelated (or ``force``), else keep or enhance it.

        Args:
            image: a :class:`LoadedImage`, a path, bytes or an array.
            force: treat the image as pixelated whatever the detector says.
            outscale: output size / input size (default 1: the input's size).
            when_clean: ``"keep"`` or ``"enhance"`` for images that are not pixelated.
            threshold: the detector's threshold for this call.
            max_output_pixels: refuse results larger than this.
            sharpen_amount: unsharp-mask strength (:func:`deepclarity.enhance.sharpen`) applied
                to what was restored or enhanced, and only to that: the whole result for
                :attr:`Action.RESTORED` / :attr:`Action.ENHANCED`, the mosaic's box
                (``output_region``) for :attr:`Action.RESTORED_REGION`, nothing for a kept
                image. ``None``: the ``sharpen`` the restorer was made with; 0 = off.

        Raises:
            ImageError: unreadable input or a result over the limit.
            DeepClarityError: a bad ``when_clean``, ``outscale`` or ``sharpen_amount``.
        """
        if when_clean not in WHEN_CLEAN:
            raise DeepClarityError(f"when_clean must be one of {', '.join(WHEN_CLEAN)}, got {when_clean!r}")
        if not np.isfinite(outscale) or not (0 < outscale <= MAX_OUTSCALE):
            raise DeepClarityError(f"outscale must be in (0, {MAX_OUTSCALE:g}], got {outscale}")
        amount = self.sharpen if sharpen_amount is None else _checked_amount(sharpen_amount)
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
                return self._done(result.image, Action.ENHANCED, detection, t0, pixelated, amount=amount)
            return self._done(self._finish(loaded, resize_to(loaded.pixels, out_h, out_w), out_h, out_w),
                              Action.KEPT, detection, t0, pixelated)

        rgb8 = to_uint8(loaded.pixels)
        grid = estimate_grid(rgb8)
        # Exact mosaics only: a JPEG's flat areas are exact 8x8 cells too (its DCT blocks).
        region = None if loaded.format == "JPEG" else find_mosaic_region(rgb8, grid if grid.found else None)
        if region is not None:
            x0, y0, x1, y1 = region
            crop = loaded.pixels[y0:y1, x0:x1]
            local = estimate_grid(to_uint8(crop))
            if not local.found:  # a small mosaic: its cells start at the box corner
                block = grid.block_xy if grid.found else None
                local = GridEstimate(grid.block_size, block, (0.0, 0.0), grid.confidence) if block else local
            if local.found:
                local = refine_grid(crop, local)
            if local.found and _on_jpeg_grid(local, x0, y0):
                local = GridEstimate(None, None, None, 0.0)  # JPEG blocking, not a mosaic: try the boxes
            if local.found:
                low = recover_lowres(crop, local, refine=False)
                rows, cols = sample_positions(crop.shape[0], crop.shape[1], local, point_sampled=False)
                base = resize_to(loaded.pixels, out_h, out_w)
                sx0, sy0 = round(x0 * outscale), round(y0 * outscale)
                sx1, sy1 = min(out_w, round(x1 * outscale)), min(out_h, round(y1 * outscale))
                base[sy0:sy1, sx0:sx1] = self._superresolve(low, rows, cols, sy1 - sy0, sx1 - sx0, *crop.shape[:2],
                                                            point_sampled=False)
                return self._done(self._finish(loaded, base, out_h, out_w), Action.RESTORED_REGION, detection,
                                  t0, pixelated, block=local.block_size, region=region,
                                  lowres=(low.shape[1], low.shape[0]), output_region=(sx0, sy0, sx1, sy1),
                                  amount=amount)
        if grid.found:
            grid = refine_grid(loaded.pixels, grid)
            low = recover_lowres(loaded.pixels, grid, refine=False)
        if not grid.found or grid_fit(rgb8, to_uint8(low), grid) < MIN_GRID_FIT_DB:
            return self._restore_boxes(loaded, rgb8, detection, threshold, out_h, out_w, t0, pixelated, amount)
        rows, cols = sample_positions(h, w, grid, point_sampled=True)
        up = self._superresolve(low, rows, cols, out_h, out_w, h, w)
        return self._done(self._finish(loaded, up, out_h, out_w), Action.RESTORED, detection, t0, pixelated,
                          block=grid.block_size, lowres=(low.shape[1], low.shape[0]), amount=amount)

    def _restore_boxes(self, loaded: LoadedImage, rgb8: np.ndarray, detection: Detection, threshold: float | None,
                       out_h: int, out_w: int, t0: float, pixelated: bool, amount: float) -> Restored:
        """Mosaics that neither the exact search nor the whole-image grid explain (JPEG'd or
        resized after censoring, nearest sample or block average): the detector's boxes, each
        rebuilt on its own grid by :func:`~deepclarity.pixelation.restore_regions` (a trimmed mean
        per block, the generator, a seamless blend, nothing changed outside the boxes, a box left
        as it was when that would not explain it). :attr:`Action.NO_GRID` when no box was
        restored; ``boxes`` says why (e.g. ``too-coarse``). ``rgb8``: ``loaded``'s pixels in 8 bits."""
        from .detect import locate

        h, w = rgb8.shape[:2]
        threshold = self.detector.threshold_for(h, w) if threshold is None else threshold
        located = locate(rgb8, detection, threshold)
        if located.basis == SCREEN_CENSOR:
            # A censor mosaic on a screenshot is almost always over text: one colour per block
            # cannot give the letters back, and smoothing the blocks only blurs them (measured:
            # +0.01 dB over the censored-screenshot slice, the worst image -0.31 dB). Say so.
            report = [RegionRestore(r.xyxy, r.block_size, "text") for r in located.regions]
            base = resize_to(loaded.pixels, out_h, out_w)
            return self._done(self._finish(loaded, base, out_h, out_w), Action.NO_GRID, located, t0, pixelated,
                              boxes=report)
        # A box whose grid is a guess (the fallback of the tiles that fired, measured at low
        # confidence) has no block size to act on, or to call too coarse.
        boxes = [r if r.confidence >= MIN_BOX_GRID_CONFIDENCE else replace(r, block_size=None, phase=None)
                 for r in located.regions if r.w * r.h < MAX_MOSAIC_COVER * h * w]
        out8, report = restore_regions(rgb8, boxes, upscale=lambda low: self._generate(low, self.upscaler))
        done = [r for r in report if r.status == "restored"]
        if not done:
            base = resize_to(loaded.pixels, out_h, out_w)
            return self._done(self._finish(loaded, base, out_h, out_w), Action.NO_GRID, located, t0, pixelated,
                              boxes=report)
        pixels = loaded.pixels.copy()
        for r in done:  # only the restored boxes change; 16-bit inputs keep their depth elsewhere
            x0, y0, x1, y1 = r.box
            part = out8[y0:y1, x0:x1]
            pixels[y0:y1, x0:x1] = part if pixels.dtype == np.uint8 else part.astype(np.uint16) * 257
        region = (min(r.box[0] for r in done), min(r.box[1] for r in done),
                  max(r.box[2] for r in done), max(r.box[3] for r in done))
        sx, sy = out_w / w, out_h / h
        output_region = (round(region[0] * sx), round(region[1] * sy), min(out_w, round(region[2] * sx)),
                         min(out_h, round(region[3] * sy)))
        return self._done(self._finish(loaded, resize_to(pixels, out_h, out_w), out_h, out_w),
                          Action.RESTORED_REGION, located, t0, pixelated, block=done[0].block_size, region=region,
                          output_region=output_region, amount=amount, boxes=report)

    @staticmethod
    def _finish(loaded: LoadedImage, pixels: np.ndarray, out_h: int, out_w: int) -> LoadedImage:
        """The result in kind: grayscale collapsed back to gray, alpha resized alongside."""
        if loaded.grayscale:
            pixels = to_gray3(pixels)
        alpha = None if loaded.alpha is None else resize_to(loaded.alpha, out_h, out_w)
        return replace(loaded, pixels=np.ascontiguousarray(pixels), alpha=alpha, path=None)

    def _done(self, image: LoadedImage, action: Action, detection: Detection | None, t0: float, pixelated: bool,
              *, block: float | None = None, region: Box | None = None, lowres: tuple[int, int] | None = None,
              output_region: Box | None = None, amount: float = 0.0,
              boxes: list[RegionRestore] | None = None) -> Restored:
        """The :class:`Restored` record; ``image`` sharpened by ``amount`` first (within
        ``output_region`` when there is one)."""
        if amount > 0:
            pixels = image.pixels
            if output_region is None:
                pixels = sharpen(pixels, amount)
            else:
                x0, y0, x1, y1 = output_region
                pixels = pixels.copy()
                pixels[y0:y1, x0:x1] = sharpen(pixels[y0:y1, x0:x1], amount)
            image = replace(image, pixels=pixels)
        return Restored(image, action, pixelated, detection.probability if detection else None, block, region,
                        lowres, self.grid_upscaler.name if action is Action.RESTORED else self.model,
                        time.perf_counter() - t0, detection, output_region, amount, boxes or [])


_RESTORERS = ModelCache("restorers")


def _on_jpeg_grid(grid: GridEstimate, x0: int, y0: int) -> bool:
    """Whether ``grid`` (of a crop at ``(x0, y0)``) is JPEG's own: 8 or 16 px cells starting on
    multiples of 8 in the image, where a compressed image's flat areas are exactly constant."""
    if grid.block_xy is None or grid.phase_xy is None:
        return False
    if not all(min(abs(b - 8), abs(b - 16)) <= 0.02 * b for b in grid.block_xy):
        return False
    return all(min((o + p) % 8, 8 - (o + p) % 8) <= 0.5 for o, p in zip((x0, y0), grid.phase_xy))


def load_restorer(model: str = DEFAULT_UPSCALER, *, method: str = "canny", device: str = "auto",
                  fp32: bool = False, tile: int | None = None, tile_pad: int = 16,
                  threshold: float | None = None, sharpen: float = 0.0, precision: str | None = None,
                  backend: str | None = None) -> Restorer:
    """A shared :class:`Restorer` per setting and resolved device (its detector and generators are
    shared too), rebuilt when one of their weight files changes (:mod:`deepclarity.cache`)."""
    from .cache import device_key, registry_identity
    from .inference import default_backend, default_precision
    from .models import detector_methods

    dev = device_key(device)
    precision, backend = precision or default_precision(), backend or default_backend()
    key = (model.lower(), method, dev, fp32, tile, tile_pad, threshold, sharpen, precision, backend)
    identity = registry_identity(model.lower(), restoration_model(model), detector_methods().get(method))
    return _RESTORERS.load(key, identity, lambda: Restorer(model, method=method, device=dev, fp32=fp32, tile=tile,
                                                           tile_pad=tile_pad, threshold=threshold, sharpen=sharpen,
                                                           precision=precision, backend=backend))
