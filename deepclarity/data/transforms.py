"""The transforms the manifest records between an upstream file and the staged one, and the pixel
checksum that verifies them.

``pixels_sha256`` is the SHA-256 of ``Image.open(f).convert("RGB").tobytes()``: the decoded pixels,
as 8-bit RGB, row by row, without the EXIF orientation applied. Two encodings of the same pixels
(a PNG written by another Pillow or zlib version) have the same pixel checksum.

The transform strings, matched exactly:

* ``copy`` -- the upstream bytes as they are.
* ``decode <fmt>, save PNG (pixels unchanged)`` -- decode (``fmt`` is the upstream format: bmp,
  png, tif), keep the image mode, write PNG with ``optimize=True`` and no metadata.
* ``rgb, downscale 1/<n> with PIL <FILTER> (reducing_gap=None), PNG`` -- convert to RGB, resize
  to the recorded size (the upstream size divided by ``n``) with Pillow's resampling filter
  ``FILTER`` and no reducing gap, write PNG as above.
"""

from __future__ import annotations

import hashlib
import io
import re
from typing import Callable

from PIL import Image

from ..errors import DeepClarityError
from .manifest import Entry

__all__ = ["TransformError", "apply_transform", "pixels_sha256", "pixels_sha256_of_bytes", "parse_transform"]

_DECODE = re.compile(r"decode (\w+), save PNG \(pixels unchanged\)")
_DOWNSCALE = re.compile(r"rgb, downscale 1/(\d+) with PIL (\w+) \(reducing_gap=None\), PNG")
#: Upstream format names in the transform strings -> what Pillow reports.
_FORMATS = {"bmp": "BMP", "png": "PNG", "tif": "TIFF", "tiff": "TIFF", "jpg": "JPEG", "jpeg": "JPEG"}


class TransformError(DeepClarityError):
    """A transform cannot be applied, or its result is not the recorded one."""


def pixels_sha256(im: Image.Image) -> str:
    """SHA-256 of the image's pixels as 8-bit RGB (see the module docstring)."""
    rgb = im if im.mode == "RGB" else im.convert("RGB")
    return hashlib.sha256(rgb.tobytes()).hexdigest()


def pixels_sha256_of_bytes(data: bytes) -> str:
    """:func:`pixels_sha256` of an encoded image.

    Raises:
        OSError, ValueError: the bytes are not a decodable image.
    """
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return pixels_sha256(im)


def _png(im: Image.Image) -> bytes:
    clean = im.copy()
    clean.info = {k: v for k, v in im.info.items() if k == "transparency"}
    buf = io.BytesIO()
    clean.save(buf, "PNG", optimize=True)
    return buf.getvalue()


def _decode(data: bytes, entry: Entry, fmt: str) -> Image.Image:
    try:
        im = Image.open(io.BytesIO(data))
        im.load()
    except Exception as exc:  # Pillow raises many types for a bad file
        raise TransformError(f"{entry.path}: upstream file does not decode: {exc}") from None
    want = _FORMATS.get(fmt.lower(), fmt.upper())
    if im.format != want:
        raise TransformError(f"{entry.path}: upstream file is {im.format}, the manifest says {fmt}")
    return im


def _check_size(im: Image.Image, entry: Entry) -> None:
    if entry.size and tuple(im.size) != tuple(entry.size):
        raise TransformError(f"{entry.path}: result is {im.size[0]}x{im.size[1]}, the manifest says "
                             f"{entry.size[0]}x{entry.size[1]}")


def parse_transform(transform: str) -> Callable[[bytes, Entry], bytes]:
    """The function ``(upstream bytes, entry) -> staged bytes`` for a transform string.

    Raises:
        TransformError: the string is not one this version knows (a newer manifest).
    """
    if transform == "copy":
        return lambda data, entry: data
    if m := _DECODE.fullmatch(transform):
        fmt = m.group(1)

        def reencode(data: bytes, entry: Entry) -> bytes:
            im = _decode(data, entry, fmt)
            if entry.mode and im.mode != entry.mode:
                im = im.convert(entry.mode)
            _check_size(im, entry)
            return _png(im)

        return reencode
    if m := _DOWNSCALE.fullmatch(transform):
        factor, name = int(m.group(1)), m.group(2)
        resample = getattr(Image.Resampling, name, None)
        if resample is None or factor < 1:
            raise TransformError(f"unknown transform {transform!r}: no Pillow filter {name}")

        def downscale(data: bytes, entry: Entry) -> bytes:
            try:
                im = Image.open(io.BytesIO(data))
                im.load()
            except Exception as exc:
                raise TransformError(f"{entry.path}: upstream file does not decode: {exc}") from None
            im = im.convert("RGB")
            target = tuple(entry.size) if entry.size else (im.width // factor, im.height // factor)
            if (im.width // factor, im.height // factor) != target:
                raise TransformError(f"{entry.path}: upstream is {im.width}x{im.height}; 1/{factor} of it is "
                                     f"not the recorded {target[0]}x{target[1]}")
            return _png(im.resize(target, resample, reducing_gap=None))

        return downscale
    raise TransformError(f"unknown transform {transform!r} (a newer manifest? upgrade deepclarity)")


def apply_transform(data: bytes, entry: Entry) -> bytes:
    """The staged file made from the verified upstream bytes, checked against the manifest.

    A result whose bytes differ from ``sha256`` is accepted when its pixels match
    ``pixels_sha256`` (another Pillow or zlib version encodes the same pixels differently).

    Raises:
        TransformError: the transform is unknown, fails, or its pixels are not the recorded ones.
    """
    out = parse_transform(entry.transform)(data, entry)
    if hashlib.sha256(out).hexdigest() == entry.sha256:
        return out
    try:
        got = pixels_sha256_of_bytes(out)
    except Exception as exc:
        raise TransformError(f"{entry.path}: transform {entry.transform!r} gave an unreadable image: {exc}") from None
    if got != entry.pixels_sha256:
        raise TransformError(f"{entry.path}: transform {entry.transform!r} gave other pixels than recorded "
                             f"(pixels sha256 {got[:12]}..., expected {entry.pixels_sha256[:12]}...; "
                             f"Pillow {Image.__version__})")
    return out
