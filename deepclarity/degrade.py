"""Image degradations: how low-resolution and pixelated inputs are made, in training and evaluation.

* :func:`imresize` — MATLAB-compatible antialiased bicubic resize (the SR benchmark protocol).
* :func:`pixelate` — nearest-neighbour down then up by a (possibly fractional) factor.
* :func:`mosaic` — censor-style blocks over a rectangle (cells aligned to its corner).
* :func:`censor` — a censor mosaic as tools make it: block average (GIMP Pixelize, Photoshop
  Mosaic) or one sample per block, on a grid of any phase; :func:`censor_regions` applies several
  and returns their :class:`CensorBox` truth (box, block size, phase, mode).
* :func:`jpeg` — a JPEG round trip at a given quality.

All functions take and return ``HxW`` or ``HxWxC`` NumPy arrays and keep the dtype
(``uint8``/``uint16`` results are rounded and clipped; float stays float, unclipped).
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass
from functools import lru_cache

import cv2
import numpy as np
from PIL import Image

from .errors import ImageError

__all__ = ["imresize", "resize", "RESIZE_METHODS", "pixelate", "nearest_downscale", "block_starts", "mosaic",
           "CENSOR_MODES", "CensorBox", "censor", "censor_regions", "jpeg"]


# ------------------------------------------------------------------------------ MATLAB imresize


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5, as in MATLAB's imresize."""
    ax = np.abs(x)
    ax2, ax3 = ax**2, ax**3
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return near + far


@lru_cache(maxsize=64)
def _resize_matrix(in_len: int, out_len: int, scale: float, antialias: bool) -> "scipy.sparse.csr_array":
    """The ``(out_len, in_len)`` matrix that resizes one axis, as MATLAB's ``contributions``;
    sparse (a few taps per row), so a 1 x 100000 image costs kilobytes, not gigabytes.

    Output pixel ``i`` (1-based) maps to input coordinate ``u = i/scale + 0.5(1 - 1/scale)``;
    when shrinking with antialiasing the kernel is stretched by ``1/scale``. Indices that fall
    outside the image are mirrored (MATLAB's symmetric padding).
    """
    kernel_width = 4.0
    if scale < 1 and antialias:
        def kernel(x):
            return scale * _cubic(scale * x)
        kernel_width = kernel_width / scale
    else:
        kernel = _cubic
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - kernel_width / 2.0)
    taps = int(math.ceil(kernel_width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]  # 1-based input indices
    weights = kernel(u[:, None] - idx)
    weights /= weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    idx0 = mirror[np.mod(idx.astype(np.int64) - 1, 2 * in_len)]
    from scipy import sparse

    rows = np.repeat(np.arange(out_len), taps)
    return sparse.csr_array((weights.ravel(), (rows, idx0.ravel())), shape=(out_len, in_len))  # sums duplicates


def imresize(
    img: np.ndarray,
    scale: float | None = None,
    *,
    size: tuple[int, int] | None = None,
    antialias: bool = True,
) -> np.ndarray:
    """Resize like MATLAB's ``imresize(img, scale, 'bicubic')`` (antialiased when shrinking).

    Args:
        img: ``HxW`` or ``HxWxC``; ``uint8``, ``uint16`` or float.
        scale: the factor for both axes (any positive float); output size is ``ceil(H*scale)``.
        size: ``(height, width)`` of the output instead of ``scale``.
        antialias: stretch the kernel when shrinking (MATLAB's default).

    Returns:
        The resized array, same dtype; integer results are rounded half away from zero and clipped
        as MATLAB does. The axis with the smaller factor is processed first, like MATLAB.
    """
    img = np.asarray(img)
    if img.ndim not in (2, 3) or img.shape[0] == 0 or img.shape[1] == 0:
        raise ImageError(f"imresize: expected a non-empty HxW or HxWxC array, got shape {img.shape}")
    h, w = img.shape[:2]
    if (scale is None) == (size is None):
        raise ValueError("imresize: give exactly one of scale or size")
    if size is not None:
        out_h, out_w = int(size[0]), int(size[1])
        if out_h <= 0 or out_w <= 0:
            raise ValueError(f"imresize: output size must be positive, got {size}")
        scales = (out_h / h, out_w / w)
    else:
        if not scale > 0:
            raise ValueError(f"imresize: scale must be positive, got {scale}")
        scales = (float(scale), float(scale))
        out_h, out_w = int(math.ceil(h * scale)), int(math.ceil(w * scale))
    dtype = img.dtype
    out = img.astype(np.float64)
    plan = [(0, out_h, scales[0]), (1, out_w, scales[1])]
    plan.sort(key=lambda step: step[2])  # stable: rows first on ties, as MATLAB
    for axis, length, s in plan:
        matrix = _resize_matrix(out.shape[axis], length, s, antialias)
        moved = np.moveaxis(out, axis, 0)
        out = np.moveaxis((matrix @ moved.reshape(moved.shape[0], -1)).reshape(length, *moved.shape[1:]), 0, axis)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        out = np.clip(np.sign(out) * np.floor(np.abs(out) + 0.5), info.min, info.max)
        return out.astype(dtype)
    return out.astype(dtype, copy=False)


#: OpenCV interpolations by name, for "resized again" degradations (any interpolation).
RESIZE_METHODS = {
    "nearest": cv2.INTER_NEAREST_EXACT,
    "bilinear": cv2.INTER_LINEAR,
    "bicubic": cv2.INTER_CUBIC,
    "area": cv2.INTER_AREA,
    "lanczos": cv2.INTER_LANCZOS4,
}


def resize(img: np.ndarray, scale: float, method: str = "bilinear") -> np.ndarray:
    """Resize by ``scale`` with an OpenCV interpolation from :data:`RESIZE_METHODS` (fast; not the
    MATLAB protocol — use :func:`imresize` for SR benchmarks). Output size ``round(H * scale)``."""
    img = np.asarray(img)
    if method not in RESIZE_METHODS:
        raise ValueError(f"resize: method must be one of {sorted(RESIZE_METHODS)}, got {method!r}")
    h, w = img.shape[:2]
    size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    out = cv2.resize(img, size, interpolation=RESIZE_METHODS[method])
    return out.reshape(size[1], size[0], *img.shape[2:])


# ----------------------------------------------------------------------------------- pixelation


def block_starts(length: int, factor: float) -> np.ndarray:
    """First pixel of each block along an axis of ``length`` pixels pixelated by ``factor``.

    The axis holds ``n = max(1, round(length / factor))`` blocks. Both resizes use pixel-centre
    nearest neighbour in exact integer arithmetic: output pixel ``y`` belongs to block
    ``floor((y + 0.5) * n / length)``. (Pillow's ``NEAREST`` agrees except at exact half-pixel
    ties, where its floating-point stepping rounds the other way.) Fractional factors give alternating widths (a
    factor of 2.5 gives blocks of 2 and 3 pixels).
    """
    cell = _cell_of_pixel(length, _block_count(length, factor))
    return np.flatnonzero(np.diff(np.concatenate([[-1], cell])))


def _block_count(length: int, factor: float) -> int:
    if not factor >= 1:
        raise ValueError(f"pixelation factor must be >= 1, got {factor}")
    return max(1, int(round(length / factor)))


def _cell_of_pixel(length: int, n: int) -> np.ndarray:
    y = np.arange(length, dtype=np.int64)
    return ((2 * y + 1) * n) // (2 * length)


def _nearest_axis(length: int, factor: float) -> np.ndarray:
    """Source index of every output pixel after the nearest-neighbour down-and-up round trip.

    Downscaling to ``n`` samples takes input pixel ``floor((k + 0.5) * length / n)`` for sample
    ``k``; upscaling gives output pixel ``y`` the sample of its block.
    """
    n = _block_count(length, factor)
    sample = ((2 * np.arange(n, dtype=np.int64) + 1) * length) // (2 * n)
    return sample[_cell_of_pixel(length, n)]


def pixelate(img: np.ndarray, factor: float | tuple[float, float]) -> np.ndarray:
    """Nearest-neighbour downscale by ``factor`` then back up to the original size.

    Args:
        img: ``HxW`` or ``HxWxC``, any dtype.
        factor: block size in pixels (``>= 1``, fractional allowed), or ``(fy, fx)``.

    Returns:
        Same shape and dtype; every pixel of a block holds the one input pixel sampled for it.
    """
    img = np.asarray(img)
    fy, fx = (factor, factor) if np.isscalar(factor) else factor
    rows = _nearest_axis(img.shape[0], float(fy))
    cols = _nearest_axis(img.shape[1], float(fx))
    return img[rows[:, None], cols[None, :]]


def nearest_downscale(img: np.ndarray, factor: float) -> np.ndarray:
    """The low-resolution image that :func:`pixelate` shows: one input pixel per block.

    ``pixelate(img, f)`` is this image enlarged back by nearest neighbour, so it is what
    :func:`deepclarity.pixelation.recover_lowres` gets back and what a restoration generator is fed.
    """
    img = np.asarray(img)
    rows, cols = (np.unique(_nearest_axis(n, float(factor))) for n in img.shape[:2])
    return img[rows[:, None], cols[None, :]]


def _clip_box(box, height: int, width: int) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` as integers clipped to a ``height x width`` image (may come out empty)."""
    x0, y0, x1, y1 = (int(v) for v in box)
    return (max(0, min(x0, width)), max(0, min(y0, height)), max(0, min(x1, width)), max(0, min(y1, height)))


def mosaic(img: np.ndarray, box: tuple[int, int, int, int], block: int) -> np.ndarray:
    """Censor-style mosaic: replace each ``block x block`` cell inside ``box`` by its mean.

    Args:
        img: ``HxW`` or ``HxWxC``.
        box: ``(x0, y0, x1, y1)`` in pixels, end exclusive; clipped to the image.
        block: cell size in pixels (``>= 1``); cells are aligned to the box's top-left corner and
            the last row/column of cells may be narrower.

    Returns:
        A copy of ``img`` with the box mosaicked (means rounded for integer dtypes).
    """
    img = np.asarray(img)
    if block < 1:
        raise ValueError(f"mosaic block must be >= 1, got {block}")
    x0, y0, x1, y1 = _clip_box(box, *img.shape[:2])
    out = img.copy()
    if x1 <= x0 or y1 <= y0:
        return out
    region = img[y0:y1, x0:x1].astype(np.float64)
    ys = np.arange(0, y1 - y0, block)
    xs = np.arange(0, x1 - x0, block)
    # Sum over cells with reduceat, then divide by each cell's pixel count.
    sums = np.add.reduceat(np.add.reduceat(region, ys, axis=0), xs, axis=1)
    counts = np.outer(np.diff(np.append(ys, y1 - y0)), np.diff(np.append(xs, x1 - x0)))
    means = sums / (counts[..., None] if region.ndim == 3 else counts)
    cell_y = np.arange(y1 - y0) // block
    cell_x = np.arange(x1 - x0) // block
    filled = means[cell_y[:, None], cell_x[None, :]]
    if np.issubdtype(img.dtype, np.integer):
        filled = np.clip(np.rint(filled), np.iinfo(img.dtype).min, np.iinfo(img.dtype).max)
    out[y0:y1, x0:x1] = filled.astype(img.dtype)
    return out


#: How a censor mosaic fills a block: its mean (box filter) or one sample (its centre pixel).
CENSOR_MODES = ("average", "nearest")


@dataclass(frozen=True)
class CensorBox:
    """The truth about one censor mosaic: the box ``(x, y, w, h)`` in pixels, the block side,
    the grid ``phase`` ``(px, py)`` (block boundaries at ``px + k * block``, ``0 <= p < block``)
    and the fill ``mode`` (:data:`CENSOR_MODES`)."""

    x: int
    y: int
    w: int
    h: int
    block: int
    phase: tuple[int, int]
    mode: str

    @property
    def xyxy(self) -> tuple[int, int, int, int]:
        return self.x, self.y, self.x + self.w, self.y + self.h

    def to_record(self) -> dict:
        rec = asdict(self)
        rec["phase"] = list(self.phase)
        return rec


def _cell_bounds(start: int, end: int, block: int, phase: int) -> np.ndarray:
    """Cell boundaries in ``[start, end]`` of a grid with lines at ``phase + k * block``."""
    first = start + (phase - start) % block
    inner = np.arange(first, end, block)
    return np.unique(np.concatenate([[start], inner[inner > start], [end]]))


def censor(img: np.ndarray, box: tuple[int, int, int, int], block: int, *, phase: tuple[int, int] = (0, 0),
           mode: str = "average") -> np.ndarray:
    """A censor mosaic over ``box`` ``(x0, y0, x1, y1)`` (end exclusive, clipped to the image).

    The grid's lines lie at ``phase[0] + k * block`` (x) and ``phase[1] + k * block`` (y) in image
    coordinates, so cells at the box's sides may be partial. ``mode="average"`` fills each cell
    (its part inside the box) with its mean, rounded for integer dtypes — a box filter, as GIMP
    Pixelize and Photoshop Mosaic do; ``"nearest"`` with its centre pixel (one sample per block).
    ``HxW`` or ``HxWxC``; returns a copy, same shape and dtype.
    """
    img = np.asarray(img)
    block = int(block)
    if block < 1:
        raise ValueError(f"censor block must be >= 1, got {block}")
    if mode not in CENSOR_MODES:
        raise ValueError(f"censor mode must be one of {CENSOR_MODES}, got {mode!r}")
    x0, y0, x1, y1 = _clip_box(box, *img.shape[:2])
    out = img.copy()
    if x1 <= x0 or y1 <= y0:
        return out
    xs = _cell_bounds(x0, x1, block, int(phase[0]) % block) - x0
    ys = _cell_bounds(y0, y1, block, int(phase[1]) % block) - y0
    region = img[y0:y1, x0:x1]
    if mode == "average":
        region64 = region.astype(np.float64)
        sums = np.add.reduceat(np.add.reduceat(region64, ys[:-1], axis=0), xs[:-1], axis=1)
        counts = np.outer(np.diff(ys), np.diff(xs))
        values = sums / (counts[..., None] if region.ndim == 3 else counts)
        if np.issubdtype(img.dtype, np.integer):
            values = np.clip(np.rint(values), np.iinfo(img.dtype).min, np.iinfo(img.dtype).max)
        values = values.astype(img.dtype)
    else:
        cy, cx = (ys[:-1] + ys[1:]) // 2, (xs[:-1] + xs[1:]) // 2
        values = region[cy[:, None], cx[None, :]]
    rows = np.searchsorted(ys, np.arange(y1 - y0), side="right") - 1
    cols = np.searchsorted(xs, np.arange(x1 - x0), side="right") - 1
    out[y0:y1, x0:x1] = values[rows[:, None], cols[None, :]]
    return out


def censor_regions(img: np.ndarray, boxes, block: int, rng: np.random.Generator | None = None, *,
                   mode: str = "average", phases=None) -> tuple[np.ndarray, list[CensorBox]]:
    """:func:`censor` over each ``(x0, y0, x1, y1)`` of ``boxes`` (clipped to the image; empty
    ones dropped), each on its own grid: phase ``phases[i]`` or drawn from ``rng`` (uniform in
    ``[0, block)`` per axis; ``(0, 0)`` without ``rng``). Returns the image and the truth."""
    out = np.asarray(img)
    h, w = out.shape[:2]
    truth = []
    for i, box in enumerate(boxes):
        x0, y0, x1, y1 = (int(v) for v in box)
        x0, x1, y0, y1 = max(0, x0), min(w, x1), max(0, y0), min(h, y1)
        if x1 <= x0 or y1 <= y0:
            continue
        if phases is not None:
            phase = (int(phases[i][0]) % block, int(phases[i][1]) % block)
        elif rng is not None:
            phase = (int(rng.integers(0, block)), int(rng.integers(0, block)))
        else:
            phase = (0, 0)
        out = censor(out, (x0, y0, x1, y1), block, phase=phase, mode=mode)
        truth.append(CensorBox(x0, y0, x1 - x0, y1 - y0, int(block), phase, mode))
    return out, truth


# ------------------------------------------------------------------------------------------ JPEG


def jpeg(img: np.ndarray, quality: int, *, subsampling: int = 2) -> np.ndarray:
    """Round-trip through a JPEG encoder (Pillow/libjpeg) at ``quality`` (1-100).

    Args:
        img: ``HxW``, ``HxWx1`` or ``HxWx3`` ``uint8``.
        quality: libjpeg quality.
        subsampling: chroma subsampling, 2 = 4:2:0 (the common default), 0 = 4:4:4.

    Returns:
        The decoded image, same shape and dtype.
    """
    img = np.asarray(img)
    if img.dtype != np.uint8:
        raise ImageError(f"jpeg: expected uint8, got {img.dtype}")
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"jpeg: quality must be in 1..100, got {quality}")
    squeeze = img.ndim == 3 and img.shape[2] == 1
    arr = img[..., 0] if squeeze else img
    if arr.ndim == 3 and arr.shape[2] != 3:
        raise ImageError(f"jpeg: expected 1 or 3 channels, got shape {img.shape}")
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=int(quality), subsampling=subsampling)
    out = np.asarray(Image.open(io.BytesIO(buf.getvalue())))
    return out[..., None] if squeeze else out
