"""Reading and writing images: the one place that knows about file formats.

Everything a user can hand us (a path, bytes, a file object, a PIL image, a NumPy array) comes
out of :func:`read_image` as a :class:`LoadedImage`: ``HxWx3`` RGB pixels (``uint8`` or
``uint16``), the alpha channel kept apart, and what is needed to write the result back in kind
(grayscale stays grayscale, 16-bit stays 16-bit). Every failure is an :class:`ImageError` whose
message names the input; a file is refused *before* decoding when its header claims more pixels
than the limit (decompression bombs).

:func:`write_image` is atomic (temporary file in the same folder, then rename) and refuses to
write over the file an image was read from.
"""

from __future__ import annotations

import io as _io
import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Union

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageError
from .files import atomic_write

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "list_images",
    "LoadedImage",
    "ImageSource",
    "max_pixels_limit",
    "read_image",
    "read_images",
    "map_ahead",
    "read_rgb",
    "to_uint8",
    "write_image",
    "WRITABLE_EXTENSIONS",
]

#: Default limit on width x height; override per call or with ``DEEPCLARITY_MAX_PIXELS``.
DEFAULT_MAX_PIXELS = 100_000_000

#: Pillow openers we use. (MPO files open through "JPEG".) Anything else Pillow recognises
#: (PDF, EPS, PSD, ICO, ...) is reported as an unsupported format.
READABLE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF", "PPM", "TGA", "AVIF")

# Pillow refuses images above 2 * Image.MAX_IMAGE_PIXELS inside Image.open. Our own limit is checked
# from the header first; when a caller sets it higher, Pillow's cap is lifted for that open only.
_pillow_cap_lock = threading.Lock()

#: File extensions treated as images when a folder is listed (a file named explicitly is always tried).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

#: Output extension -> Pillow format name.
WRITABLE_EXTENSIONS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}

ImageSource = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO, Image.Image, np.ndarray]


@dataclass
class LoadedImage:
    """A decoded image with everything needed to write a result back in kind.

    Attributes:
        pixels: ``(H, W, 3)`` RGB, ``uint8`` or ``uint16`` (grayscale is replicated to 3 channels).
        alpha: ``(H, W)`` of the same dtype, or ``None`` when the image has no transparency.
        grayscale: the source had no color (L, LA, I;16, 1-bit, float gray...).
        source: a short human-readable name of the input, used in every message.
        path: the file it came from, if any (used to refuse overwriting it).
        format: the decoder's format name ("PNG", "JPEG", ...) or "array"/"PIL".
        frames: number of frames in the source (only the first is decoded).
    """

    pixels: np.ndarray
    alpha: np.ndarray | None = None
    grayscale: bool = False
    source: str = "<image>"
    path: Path | None = None
    format: str = "array"
    frames: int = 1

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def bit_depth(self) -> int:
        return 16 if self.pixels.dtype == np.uint16 else 8

    def to_array(self) -> np.ndarray:
        """Pixels as they should be written: ``HxW`` (gray), ``HxWx2`` (gray+alpha),
        ``HxWx3`` (RGB) or ``HxWx4`` (RGBA)."""
        color = self.pixels[..., :1] if self.grayscale else self.pixels
        if self.alpha is not None:
            color = np.concatenate([color, self.alpha[..., None]], axis=2)
        return color[..., 0] if color.shape[2] == 1 else color


def list_images(folder: str | os.PathLike, *, recursive: bool = False) -> list[Path]:
    """The image files in ``folder`` (by :data:`IMAGE_EXTENSIONS`; sub-folders too when
    ``recursive``), sorted by path so every caller sees the same order."""
    folder = Path(folder)
    walker = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in walker if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """``uint16`` -> ``uint8`` by rounding (``x / 257``); ``uint8`` is returned unchanged."""
    if pixels.dtype == np.uint8:
        return pixels
    return ((pixels.astype(np.uint32) + 128) // 257).astype(np.uint8)


def max_pixels_limit(max_pixels: int | None = None) -> int:
    """The pixel limit in force: the argument, else ``$DEEPCLARITY_MAX_PIXELS``, else the default."""
    if max_pixels is not None:
        return int(max_pixels)
    env = os.environ.get("DEEPCLARITY_MAX_PIXELS")
    if env:
        try:
            return int(env)
        except ValueError:
            raise ImageError(f"DEEPCLARITY_MAX_PIXELS must be an integer, got {env!r}") from None
    return DEFAULT_MAX_PIXELS


def read_rgb(source: ImageSource, *, max_pixels: int | None = None) -> np.ndarray:
    """Shortcut: the ``(H, W, 3)`` RGB pixels of :func:`read_image` (alpha dropped)."""
    return read_image(source, max_pixels=max_pixels).pixels


def read_image(source: ImageSource, *, max_pixels: int | None = None) -> LoadedImage:
    """Decode ``source`` into a :class:`LoadedImage`.

    Accepts a path, ``bytes``, a binary file object, a ``PIL.Image.Image`` or a NumPy array
    (``HxW`` / ``HxWxC`` with C in 1-4; ``uint8``, ``uint16``, ``bool`` or float in [0, 1]).
    EXIF orientation is applied; animated images give their first frame.

    Raises:
        ImageError: empty, truncated, not an image, unsupported format or mode, or larger than
            ``max_pixels`` (checked from the header, before decoding).
    """
    limit = max_pixels_limit(max_pixels)
    if isinstance(source, np.ndarray):
        return _from_array(source, limit)
    if isinstance(source, Image.Image):
        return _from_pil(source, "<PIL image>", None, limit, fmt="PIL", frames=_frame_count(source))
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        name = str(path)
        data = _read_file_bytes(path)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        path, name, data = None, "<bytes>", bytes(source)
    elif hasattr(source, "read"):
        path = None
        name = str(getattr(source, "name", "<file object>"))
        try:
            data = source.read()
        except OSError as exc:
            raise ImageError(f"{name}: cannot read: {exc}") from None
        if not isinstance(data, (bytes, bytearray)):
            raise ImageError(f"{name}: file object must be opened in binary mode")
        data = bytes(data)
    else:
        raise ImageError(f"cannot read an image from an object of type {type(source).__name__}")
    if not data:
        raise ImageError(f"{name}: empty file (0 bytes)")
    return _decode(data, name, path, limit)


def read_images(paths, *, workers: int = 2, max_pixels: int | None = None):
    """Decode ``paths`` in order, ``workers`` files ahead on background threads (decoders release
    the GIL, so reading overlaps with whatever the caller does with the previous image).

    Yields ``(path, LoadedImage)`` or ``(path, ImageError)`` — a bad file never stops the rest.
    """
    def load(path):
        try:
            return read_image(path, max_pixels=max_pixels)
        except ImageError as exc:
            return exc

    yield from map_ahead(load, paths, workers)


def map_ahead(fn, items, workers: int):
    """Yield ``(item, fn(item))`` in input order, ``fn`` running on ``workers`` background threads
    at most ``workers`` items ahead of the consumer (so only that many results wait in memory)."""
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    workers = max(1, int(workers))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque = deque()
        for item in items:
            pending.append((item, pool.submit(fn, item)))
            if len(pending) > workers:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()


def _read_file_bytes(path: Path) -> bytes:
    if path.is_dir():
        raise ImageError(f"{path}: is a directory, not an image file")
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except PermissionError:
        raise ImageError(f"{path}: permission denied") from None
    except OSError as exc:
        raise ImageError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _decode(data: bytes, name: str, path: Path | None, limit: int) -> LoadedImage:
    try:
        im = _open_header(data, limit)
    except UnidentifiedImageError:
        raise ImageError(f"{name}: {_unsupported_reason(data)}") from None
    except Image.DecompressionBombError as exc:  # Pillow's own limit, when ours is set higher
        raise ImageError(f"{name}: refused as a decompression bomb ({_short(exc)})") from None
    except Exception as exc:  # header parsers raise a zoo of exception types
        raise ImageError(f"{name}: corrupt or unreadable image header ({_short(exc)})") from None
    _check_size(im.size, name, limit)
    fmt = im.format or "unknown"
    frames = _frame_count(im)
    if fmt == "PNG" and _png_is_16bit_color(data):
        orientation = _exif_orientation(im)
        loaded = _decode_png16_color(data, name, path, frames)
        loaded.pixels = _orient(loaded.pixels, orientation)
        if loaded.alpha is not None:
            loaded.alpha = _orient(loaded.alpha, orientation)
        return loaded
    return _from_pil(im, name, path, limit, fmt=fmt, frames=frames)


def _frame_count(im: Image.Image) -> int:
    """Frames in an animated image; counting walks the file, so a broken tail counts as one."""
    try:
        return max(1, int(getattr(im, "n_frames", 1) or 1))
    except Exception:
        return 1


def _open_header(data: bytes, limit: int) -> Image.Image:
    """``Image.open`` (header only), with Pillow's own bomb cap lifted when our limit is above it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pillow_cap = Image.MAX_IMAGE_PIXELS
        if pillow_cap is None or limit <= 2 * pillow_cap:
            return Image.open(_io.BytesIO(data), formats=READABLE_FORMATS)
        with _pillow_cap_lock:
            Image.MAX_IMAGE_PIXELS = None
            try:
                return Image.open(_io.BytesIO(data), formats=READABLE_FORMATS)
            finally:
                Image.MAX_IMAGE_PIXELS = pillow_cap


def _unsupported_reason(data: bytes) -> str:
    """Tell "a format we do not take" apart from "not an image at all"."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            other = Image.open(_io.BytesIO(data))
        return f"unsupported image format {other.format} (supported: PNG, JPEG, WebP, GIF, BMP, TIFF, ...)"
    except Exception:
        return "not a recognized image file"


def _png_is_16bit_color(data: bytes) -> bool:
    # IHDR: 8-byte signature, 4 length, 4 type, 4 width, 4 height, 1 bit depth, 1 color type.
    return len(data) > 25 and data[24] == 16 and data[25] in (2, 6)


def _decode_png16_color(data: bytes, name: str, path: Path | None, frames: int) -> LoadedImage:
    """Pillow reduces 16-bit RGB(A) PNGs to 8 bits; OpenCV keeps all 16."""
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None or arr.dtype != np.uint16 or arr.ndim != 3:
        raise ImageError(f"{name}: corrupt or truncated 16-bit PNG")
    if arr.shape[2] == 4:
        rgb, alpha = cv2.cvtColor(arr, cv2.COLOR_BGRA2RGBA)[..., :3], arr[..., 3].copy()
    else:
        rgb, alpha = cv2.cvtColor(arr, cv2.COLOR_BGR2RGB), None
    return LoadedImage(np.ascontiguousarray(rgb), alpha, False, name, path, "PNG", frames)


def _exif_orientation(im: Image.Image) -> int:
    try:
        return int(im.getexif().get(0x0112, 1) or 1)
    except Exception:
        return 1


def _orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) to an ``HxW[xC]`` array, as ``ImageOps.exif_transpose``."""
    def transpose(a: np.ndarray) -> np.ndarray:
        return np.swapaxes(a, 0, 1)

    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: transpose,
        6: lambda a: np.rot90(a, -1),
        7: lambda a: transpose(a[::-1, ::-1]),
        8: lambda a: np.rot90(a, 1),
    }
    op = ops.get(orientation)
    return np.ascontiguousarray(op(arr)) if op else arr


def _check_size(size: tuple[int, int], name: str, limit: int) -> None:
    w, h = size
    if w <= 0 or h <= 0:
        raise ImageError(f"{name}: image has no pixels ({w}x{h})")
    if w * h > limit:
        raise ImageError(
            f"{name}: image is {w}x{h} = {w * h:,} pixels, above the limit of {limit:,} "
            "(set max_pixels or DEEPCLARITY_MAX_PIXELS to allow it)"
        )


def _from_pil(im: Image.Image, name: str, path: Path | None, limit: int, *, fmt: str,
              frames: int = 1) -> LoadedImage:
    _check_size(im.size, name, limit)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            im.seek(0)
            im.load()
            if _exif_orientation(im) not in (0, 1):  # exif_transpose copies even when upright
                im = ImageOps.exif_transpose(im)
    except Exception as exc:
        raise ImageError(f"{name}: corrupt or truncated image data ({_short(exc)})") from None
    pixels, alpha, gray = _pil_to_arrays(im, name)
    return LoadedImage(pixels, alpha, gray, name, path, fmt, frames)


def _pil_to_arrays(im: Image.Image, name: str) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """Map every Pillow mode we accept onto (RGB pixels, alpha or None, grayscale flag)."""
    mode = im.mode
    if mode == "P" or mode == "PA":
        im = im.convert("RGBA" if (mode == "PA" or "transparency" in im.info) else "RGB")
        mode = im.mode
    if mode == "1":
        im, mode = im.convert("L"), "L"
    if mode in ("L", "LA", "La"):
        arr = np.asarray(im.convert("LA") if mode == "La" else im)
        gray = arr if arr.ndim == 2 else arr[..., 0]
        alpha = arr[..., 1].copy() if arr.ndim == 3 else None
        return np.repeat(gray[..., None], 3, axis=2), alpha, True
    if mode.startswith("I;16") or mode == "I":
        arr = np.asarray(im).astype(np.int64)
        return np.repeat(np.clip(arr, 0, 65535).astype(np.uint16)[..., None], 3, axis=2), None, True
    if mode == "F":
        arr = _float_to_uint16(np.asarray(im, dtype=np.float64), name)
        return np.repeat(arr[..., None], 3, axis=2), None, True
    if mode in ("RGBA", "RGBa"):
        arr = np.asarray(im.convert("RGBA") if mode == "RGBa" else im)
        return np.ascontiguousarray(arr[..., :3]), arr[..., 3].copy(), False
    if mode in ("RGB", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"):
        return np.array(im if mode == "RGB" else im.convert("RGB")), None, False
    raise ImageError(f"{name}: unsupported pixel mode {mode!r}")


def _float_to_uint16(arr: np.ndarray, name: str) -> np.ndarray:
    """Float images: [0, 1] is taken as the full range, anything larger as 0..255 or 0..65535."""
    if not np.isfinite(arr).all():
        raise ImageError(f"{name}: float image contains NaN or infinite values")
    top = float(arr.max()) if arr.size else 0.0
    scale = 65535.0 if top <= 1.0 else (257.0 if top <= 255.0 else 1.0)
    return np.clip(np.rint(arr * scale), 0, 65535).astype(np.uint16)


def _from_array(arr: np.ndarray, limit: int) -> LoadedImage:
    name = f"<array {arr.dtype} {arr.shape}>"
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4):
        raise ImageError(f"{name}: expected HxW or HxWxC with C in 1..4")
    _check_size((arr.shape[1], arr.shape[0]), name, limit)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    elif arr.dtype.kind == "f":
        arr = _float_to_uint16(arr.astype(np.float64), name)
    elif arr.dtype not in (np.uint8, np.uint16):
        raise ImageError(f"{name}: unsupported dtype {arr.dtype} (use uint8, uint16 or float in [0, 1])")
    channels = arr.shape[2]
    gray = channels in (1, 2)
    color = np.repeat(arr[..., :1], 3, axis=2) if gray else arr[..., :3]
    alpha = arr[..., -1].copy() if channels in (2, 4) else None
    return LoadedImage(np.array(color, order="C"), alpha, gray, name, None, "array", 1)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


# --------------------------------------------------------------------------------------- writing


def write_image(
    dest: str | os.PathLike,
    image: LoadedImage | np.ndarray,
    *,
    quality: int | None = None,
    source_path: str | os.PathLike | None = None,
) -> Path:
    """Write ``image`` to ``dest`` atomically; the format follows the extension.

    Args:
        dest: ``.png``, ``.jpg``/``.jpeg`` or ``.webp``.
        image: a :class:`LoadedImage` (written back in kind: gray stays gray, alpha kept) or an
            array ``HxW``, ``HxWx2`` (gray+alpha), ``HxWx3`` (RGB) or ``HxWx4`` (RGBA), ``uint8``
            or ``uint16``. PNG keeps 16 bits; JPEG and WebP store 8 bits.
        quality: JPEG/WebP quality 1-100. Default: JPEG 95, WebP lossless.
        source_path: a file that must not be overwritten (the input this result came from);
            ``image.path`` is protected too.

    Returns:
        The path written.

    Raises:
        ImageError: unknown extension, unsupported array, alpha requested in JPEG, or ``dest`` is
            the input file. Nothing is left behind on failure; an existing ``dest`` is intact.
    """
    dest = Path(dest)
    fmt = WRITABLE_EXTENSIONS.get(dest.suffix.lower())
    if fmt is None:
        raise ImageError(f"{dest}: unsupported output extension {dest.suffix!r} "
                         f"(use {', '.join(sorted(WRITABLE_EXTENSIONS))})")
    protected = [p for p in (source_path, getattr(image, "path", None)) if p is not None]
    for p in protected:
        if _same_file(dest, Path(p)):
            raise ImageError(f"{dest}: refusing to overwrite the input image it was read from")
    arr = image.to_array() if isinstance(image, LoadedImage) else np.asarray(image)
    payload = _encode(arr, fmt, quality, str(dest))
    _atomic_write(dest, payload)
    return dest


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _encode(arr: np.ndarray, fmt: str, quality: int | None, name: str) -> bytes:
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (2, 3, 4)):
        raise ImageError(f"{name}: cannot write an array of shape {arr.shape}")
    if arr.dtype not in (np.uint8, np.uint16):
        raise ImageError(f"{name}: cannot write dtype {arr.dtype} (use uint8 or uint16)")
    channels = 1 if arr.ndim == 2 else arr.shape[2]
    if fmt == "JPEG" and channels in (2, 4):
        raise ImageError(f"{name}: JPEG cannot store an alpha channel; write PNG or WebP instead")
    if quality is not None and not 1 <= int(quality) <= 100:
        raise ImageError(f"{name}: quality must be in 1..100, got {quality}")
    if arr.dtype == np.uint16:
        if fmt == "PNG":
            return _encode_png16(arr, channels, name)
        arr = to_uint8(arr)
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[channels]
    im = Image.fromarray(np.ascontiguousarray(arr), mode=mode)
    buf = _io.BytesIO()
    if fmt == "PNG":
        im.save(buf, "PNG", compress_level=6)
    elif fmt == "JPEG":
        im.save(buf, "JPEG", quality=95 if quality is None else int(quality), subsampling=0)
    else:
        if mode == "LA":  # WebP has no gray modes
            im = im.convert("RGBA")
        elif mode == "L":
            im = im.convert("RGB")
        if quality is None:
            im.save(buf, "WEBP", lossless=True, quality=100, method=4)
        else:
            im.save(buf, "WEBP", quality=int(quality), method=4)
    return buf.getvalue()


def _encode_png16(arr: np.ndarray, channels: int, name: str) -> bytes:
    if channels == 2:  # OpenCV cannot write gray+alpha; 16-bit RGBA keeps every value.
        arr = np.concatenate([np.repeat(arr[..., :1], 3, axis=2), arr[..., 1:]], axis=2)
        channels = 4
    if channels == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    elif channels == 4:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGBA2BGRA)
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(arr))
    if not ok:
        raise ImageError(f"{name}: could not encode 16-bit PNG")
    return buf.tobytes()


def _atomic_write(dest: Path, payload: bytes) -> None:
    parent = dest.parent if str(dest.parent) else Path(".")
    if not parent.is_dir():
        raise ImageError(f"{dest}: output folder {parent} does not exist")
    if dest.is_dir():
        raise ImageError(f"{dest}: is a directory")
    try:
        atomic_write(dest, payload)
    except OSError as exc:
        raise ImageError(f"{dest}: cannot write: {exc.strerror or exc}") from None
