"""What the apps show: region-map overlays, the before/after pair, Markdown, download names.

Pure functions of arrays and results (no Gradio), shared by the detection and correction apps:

* :func:`overlay_region_map` tints an image by the detector's per-tile probabilities;
  :func:`region_map_image` does it for a :class:`~deepclarity.restore.Restored` result and
  outlines the restored mosaic (its ``output_region``, mapped by :func:`display_box`).
* :func:`comparison_pair`: the before/after slider's two images.
* :func:`verdict_markdown`: one line about a restoration; :func:`md` escapes user text for
  Markdown; :func:`describe`, :func:`megapixels`, :func:`scale_tag` format sizes.
* :func:`download_name` / :func:`restored_download_name`: the result's file name.
* :func:`upscaler_names` / :func:`upscaler_label` / :func:`upscaler_description`: the models a
  page offers (from the registry) and what it calls them.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from ..enhance import DEFAULT_UPSCALER
from ..errors import DeepClarityError
from ..restore import Action

if TYPE_CHECKING:  # pragma: no cover
    from ..io import LoadedImage
    from ..restore import Box, Restored

__all__ = [
    "DISPLAY_MAX_SIDE", "OVERLAY_ALPHA", "METHOD_LABELS", "REGION_BOX_RGB", "md", "megapixels", "scale_tag",
    "describe", "overlay_region_map", "display_box", "region_map_image", "comparison_pair", "download_name",
    "restored_download_name", "action_words", "verdict_markdown", "upscaler_names", "upscaler_description",
    "upscaler_label",
]

#: Overlays and slider images larger than this (longest side, pixels) are downscaled for display.
DISPLAY_MAX_SIDE = 2048
#: Opacity of the region-map tint.
OVERLAY_ALPHA = 0.35
#: Outline colour of the pixelated boxes on a region map (RGB).
BOX_COLOUR = (255, 0, 255)
#: Detection method -> what the UI calls it (method numbers as in the prototype).
METHOD_LABELS = {
    "canny": "Method 2: Canny edge maps (default)",
    "rgb": "Method 1: RGB pixels (baseline)",
}
#: Colour (RGB) of the box drawn around a restored mosaic on the region map.
REGION_BOX_RGB = (0, 128, 255)
_BICUBIC = "bicubic"
_BICUBIC_DESCRIPTION = "MATLAB-style bicubic, for reference"
#: Longest file stem kept in the download's name (the rest of the name must still fit).
_MAX_STEM = 100

_RED = np.array([255.0, 0.0, 0.0], np.float32)
_GREEN = np.array([0.0, 255.0, 0.0], np.float32)


# ------------------------------------------------------------------------------------- text


def md(text: object) -> str:
    """Escape text for Markdown, a table cell included (file names are user input); one line."""
    text = html.escape(str(text), quote=False)
    for ch in "\\`*_[]|#":
        text = text.replace(ch, "\\" + ch)
    return " ".join(text.split())


def megapixels(pixels: int) -> str:
    """``2_000_000`` -> ``"2 MP"``."""
    return f"{pixels / 1e6:g} MP"


def scale_tag(outscale: float) -> str:
    """``4.0`` -> ``"4"``, ``2.5`` -> ``"2.5"`` (for file names and summaries)."""
    return f"{outscale:g}"


def describe(img: LoadedImage) -> str:
    """``"640×480, RGBA, 8-bit"``: size, channels and bit depth of an image."""
    kind = "gray" if img.grayscale else "RGB"
    if img.alpha is not None:
        kind += "A" if kind == "RGB" else "+alpha"
    return f"{img.width}×{img.height}, {kind}, {img.bit_depth}-bit"


def download_name(upload_name: str, model: str, outscale: float) -> str:
    """Enhance mode's download: ``<original-stem>_<model>_x<scale>.png`` (the stem shortened when
    very long)."""
    stem = Path(upload_name).stem[:_MAX_STEM] or "image"
    return f"{stem}_{model}_x{scale_tag(outscale)}.png"


def restored_download_name(upload_name: str, model: str, outscale: float = 1.0) -> str:
    """Restore mode's download: ``<original-stem>_restored_<model>.png``, with ``_x<scale>`` added
    when the output is not the input's size."""
    stem = Path(upload_name).stem[:_MAX_STEM] or "image"
    tag = "" if outscale == 1 else f"_x{scale_tag(outscale)}"
    return f"{stem}_restored_{model}{tag}.png"


def action_words(res: Restored, outscale: float, label: str) -> str:
    """What :meth:`~deepclarity.restore.Restorer.restore` did, in words (``label``: the model's)."""
    resized = "" if outscale == 1 else f", resized ×{scale_tag(outscale)}"
    grid = (f" from its {res.lowres_size[0]}x{res.lowres_size[1]} block grid"
            if res.lowres_size is not None else "")
    if res.action is Action.RESTORED:
        return f"restored the whole image{grid} with {label}"
    coarse = _coarse_words(res)
    if res.action is Action.RESTORED_REGION and res.region is not None:
        x0, y0, x1, y1 = (int(v) for v in res.region)
        restored = [b for b in res.boxes if b.status == "restored"]
        what = f"{len(restored)} mosaics within" if len(restored) > 1 else "a mosaic at"
        return (f"restored {what} ({x0},{y0})-({x1},{y1}){grid} with {label}, the rest untouched{resized}"
                + (f"; {coarse}" if coarse else ""))
    if res.action is Action.ENHANCED:
        return f"enhanced anyway with {label}"
    if res.action is Action.KEPT:
        return "kept as is" + resized
    if res.action is Action.NO_GRID:
        if res.over_text:
            where = "a censor box" if len(res.over_text) == 1 else f"{len(res.over_text)} censor boxes"
            return (f"{where} on a screenshot, left as is: a mosaic over text keeps one colour per block, "
                    f"and the letters cannot be recovered{resized}")
        if coarse:
            return f"{coarse}, so nothing was restored{resized}"
        return "no block grid was found, so nothing was restored" + resized
    return str(res.action)


def _coarse_words(res: Restored) -> str:
    """``""``, or why some boxes were left alone: their blocks hide too much to restore."""
    sizes = sorted(float(b.block_size) for b in res.too_coarse if b.block_size is not None)
    if not sizes:
        return ""
    where = "a box" if len(sizes) == 1 else f"{len(sizes)} boxes"
    return f"the blocks of {where} ({sizes[0]:.0f} px) are too coarse to restore: nothing there can be recovered"


def verdict_markdown(res: Restored, label: str, outscale: float = 1.0) -> str:
    """One Markdown line about a restoration: the verdict, probability, block size and what was
    done, e.g. ``🟥 **PIXELATED** · probability 0.981 · blocks 4.0 px · restored the whole image
    from its 64x64 block grid with MobileSR``."""
    parts = ["🟥 **PIXELATED**" if res.pixelated else "🟩 **not pixelated**"]
    if res.probability is not None:
        parts.append(f"probability {float(res.probability):.3f}")
    if res.block_size is not None:
        parts.append(f"blocks {float(res.block_size):.1f} px")
    parts.append(md(action_words(res, outscale, label)))
    return " · ".join(parts) + "."


# ----------------------------------------------------------------------------------- models


def upscaler_names(*, available: bool = True) -> tuple[str, ...]:
    """The models the app offers, from the registry, in its order: the x4 super-resolution networks
    trained on the SR protocol (restoration variants are picked by the restorer itself), only
    those whose weights are present when ``available``; then bicubic, which needs none."""
    from ..models import list_models

    names = [s.name for s in list_models("sr") if s.name != _BICUBIC and s.scale == 4 and s.weights is not None
             and s.degradation != "nearest" and (s.has_weights or not available)]
    return (*names, _BICUBIC)


def upscaler_description(name: str) -> str:
    """One line about an upscaler: the model registry's description (bicubic: a fixed one)."""
    if name == _BICUBIC:
        return _BICUBIC_DESCRIPTION
    from ..models import get_spec

    try:
        return get_spec(name).description
    except DeepClarityError:
        return ""


def upscaler_label(name: str, *, short: bool = False) -> str:
    """What the UI calls an upscaler: the name its registry description starts with ("MobileSR:
    ..." -> "MobileSR"), with "(default)" / "(reference)" after it unless ``short``."""
    if name == _BICUBIC:
        return "Bicubic" if short else "Bicubic (reference)"
    head, colon, _ = upscaler_description(name).partition(":")
    label = head.strip() if colon and head.strip() else name
    return label if short or name != DEFAULT_UPSCALER else f"{label} (default)"



# ----------------------------------------------------------------------------------- images


def overlay_region_map(image: np.ndarray, region_map: np.ndarray, *, alpha: float = OVERLAY_ALPHA,
                       borders: bool = True, max_side: int | None = None, boxes=()) -> np.ndarray:
    """Tint each cell of ``image`` by its pixelated-probability: red = pixelated, green = clean;
    outline the pixelated ``boxes``.

    The image is divided into ``rows x cols`` cells exactly as
    :func:`deepclarity.detect.tile_grid` divides it (cell ``r`` spans rows
    ``[r*H/rows, (r+1)*H/rows)``), and each cell is blended with ``p*red + (1-p)*green`` at
    opacity ``alpha``. Thin light lines mark the cell borders.

    Args:
        image: ``HxWx3`` (or ``HxW``) ``uint8`` or ``uint16``.
        region_map: ``(rows, cols)`` probabilities in [0, 1] (``Detection.region_map``).
        alpha: tint opacity in [0, 1].
        borders: draw the cell borders.
        max_side: downscale first so the longest side is at most this (display only).
        boxes: pixelated boxes to outline (``(x, y, w, h)`` in the image's pixels, or anything
            with those attributes, e.g. :class:`deepclarity.detect.Region`), drawn in magenta.

    Returns:
        ``HxWx3`` ``uint8`` (smaller when ``max_side`` applied).
    """
    from ..io import to_uint8

    img = np.asarray(image)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] < 3 or img.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"overlay needs an HxWx3 uint8/uint16 image, got {img.shape} {img.dtype}")
    img = to_uint8(np.ascontiguousarray(img[..., :3]))
    probs = np.asarray(region_map, np.float32)
    if probs.ndim != 2 or probs.size == 0:
        raise ValueError(f"region_map must be a non-empty (rows, cols) array, got shape {probs.shape}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    h, w = img.shape[:2]
    full_w = w
    if max_side and max(h, w) > max_side:
        from PIL import Image

        f = max_side / max(h, w)
        size = (max(1, round(w * f)), max(1, round(h * f)))
        img = np.asarray(Image.fromarray(img).resize(size, Image.Resampling.BOX))
        h, w = img.shape[:2]
    rows, cols = probs.shape
    row_of = (np.arange(h) * rows) // h
    col_of = (np.arange(w) * cols) // w
    p = np.clip(np.nan_to_num(probs), 0.0, 1.0)[row_of[:, None], col_of[None, :]][..., None]
    tint = p * _RED + (1.0 - p) * _GREEN
    out = img.astype(np.float32) * (1.0 - alpha) + tint * alpha
    if borders and (rows > 1 or cols > 1):
        width = max(1, round(min(h, w) / 256))
        line = np.zeros((h, w), bool)
        for starts, axis in ((np.flatnonzero(np.diff(row_of)) + 1, 0), (np.flatnonzero(np.diff(col_of)) + 1, 1)):
            for s in starts:
                lo, hi = max(0, s - width // 2), min(h if axis == 0 else w, s - width // 2 + width)
                if axis == 0:
                    line[lo:hi, :] = True
                else:
                    line[:, lo:hi] = True
        out[line] = out[line] * 0.4 + 255.0 * 0.6
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    f = w / full_w  # display scale
    thick = max(2, round(min(h, w) / 200))
    for b in boxes:
        bx, by, bw, bh = (b.x, b.y, b.w, b.h) if hasattr(b, "x") else b
        x0, y0 = int(np.floor(bx * f)), int(np.floor(by * f))
        x1, y1 = int(np.ceil((bx + bw) * f)) - 1, int(np.ceil((by + bh) * f)) - 1
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w - 1, max(x0, x1)), min(h - 1, max(y0, y1))
        cv2.rectangle(out, (x0, y0), (x1, y1), BOX_COLOUR, thick)
    return out


def display_box(box: Box, from_size: tuple[int, int],
                to_size: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
    """``box`` ``(x0, y0, x1, y1)`` (end exclusive) of an image of ``from_size`` ``(width, height)``,
    on the same image shown at ``to_size``: the first and last pixel inside it, as
    ``cv2.rectangle`` takes them."""
    fx, fy = to_size[0] / from_size[0], to_size[1] / from_size[1]
    x0, y0, x1, y1 = box
    p0 = (round(x0 * fx), round(y0 * fy))
    return p0, (max(p0[0], round(x1 * fx) - 1), max(p0[1], round(y1 * fy) - 1))


def region_map_image(loaded: LoadedImage, res: Restored, *,
                     max_side: int | None = DISPLAY_MAX_SIDE) -> np.ndarray | None:
    """The detector's region map over the input (:func:`overlay_region_map`, downscaled to
    ``max_side``), with the restored mosaic (``res.output_region``, mapped from the result's size
    to the map's) outlined in :data:`REGION_BOX_RGB`. ``None`` when there is no detection."""
    import cv2

    from ..io import to_uint8

    if res.detection is None:
        return None
    overlay = np.ascontiguousarray(overlay_region_map(to_uint8(loaded.pixels), res.detection.region_map,
                                                      max_side=max_side))
    if res.output_region is not None:
        h, w = overlay.shape[:2]
        p0, p1 = display_box(res.output_region, (res.image.width, res.image.height), (w, h))
        cv2.rectangle(overlay, p0, p1, REGION_BOX_RGB, max(2, round(max(h, w) / 300)))
    return overlay


def _display_rgb(img: LoadedImage) -> np.ndarray:
    """``HxWx3`` (or ``HxWx4`` with alpha) ``uint8`` for the browser."""
    from ..io import to_uint8

    pixels = to_uint8(img.pixels)
    if img.alpha is not None:
        pixels = np.concatenate([pixels, to_uint8(img.alpha)[..., None]], axis=2)
    return np.ascontiguousarray(pixels)


def comparison_pair(original: LoadedImage, result: LoadedImage, *,
                    max_side: int | None = DISPLAY_MAX_SIDE) -> tuple[np.ndarray, np.ndarray]:
    """The before/after slider's two images, of equal size: the input enlarged with
    nearest-neighbour (its real pixels, no smoothing) next to the result.

    Both are the result's size, or smaller so the longest side is at most ``max_side`` (display
    only: the download is always full resolution). ``uint8``, ``HxWx3`` or ``HxWx4`` (alpha kept).
    """
    import cv2

    h, w = result.height, result.width
    if max_side and max(h, w) > max_side:
        f = max_side / max(h, w)
        h, w = max(1, round(h * f)), max(1, round(w * f))
    after = _display_rgb(result)
    if after.shape[:2] != (h, w):
        after = cv2.resize(after, (w, h), interpolation=cv2.INTER_AREA)
    before = cv2.resize(_display_rgb(original), (w, h), interpolation=cv2.INTER_NEAREST)
    return before, after
