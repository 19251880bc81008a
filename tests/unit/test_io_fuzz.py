"""Property tests: whatever bytes or image a user hands read_image, only ImageError may escape."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from deepclarity.errors import ImageError
from deepclarity.io import read_image, write_image

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

MODES = ["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F", "YCbCr"]
FORMATS = {"PNG": {"1", "L", "LA", "P", "RGB", "RGBA", "I;16"}, "JPEG": {"L", "RGB", "CMYK"},
           "WEBP": {"RGB", "RGBA"}, "TIFF": {"1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F"},
           "GIF": {"L", "P"}, "BMP": {"1", "L", "P", "RGB"}}


def _read_or_image_error(data):
    try:
        return read_image(data)
    except ImageError:
        return None


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes_only_raise_image_error(data):
    _read_or_image_error(data)


@FUZZ
@given(st.sampled_from([b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"RIFF\x00\x00\x00\x00WEBP",
                        b"II*\x00", b"BM"]), st.binary(max_size=2048))
def test_image_magic_followed_by_junk_only_raises_image_error(magic, tail):
    _read_or_image_error(magic + tail)


@st.composite
def encoded_images(draw):
    fmt = draw(st.sampled_from(sorted(FORMATS)))
    mode = draw(st.sampled_from(sorted(FORMATS[fmt])))
    w, h = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    seed = draw(st.integers(0, 2**16))
    rgb = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    if mode in ("I;16", "I", "F"):
        im = Image.fromarray(rgb[..., 0].astype(np.uint16) * 257)  # Pillow infers I;16
        im = im if mode == "I;16" else im.convert(mode)
    else:
        im = Image.fromarray(rgb).convert(mode)
    buf = io.BytesIO()
    try:
        im.save(buf, fmt)
    except (OSError, ValueError, KeyError):  # Pillow cannot write this pair: not our concern
        return None
    data = buf.getvalue()
    cut = draw(st.one_of(st.none(), st.integers(0, max(0, len(data) - 1))))
    return (data if cut is None else data[:cut]), (w, h), cut is None


@FUZZ
@given(encoded_images())
def test_valid_and_truncated_images_decode_or_raise_image_error(case):
    if case is None:
        return
    data, (w, h), whole = case
    result = _read_or_image_error(data)
    if whole:
        assert result is not None, "a complete image of a supported format must decode"
        assert (result.width, result.height) == (w, h)
        assert result.pixels.shape == (h, w, 3) and result.pixels.dtype in (np.uint8, np.uint16)
        if result.alpha is not None:
            assert result.alpha.shape == (h, w)


@FUZZ
@given(st.integers(1, 30), st.integers(1, 30), st.sampled_from([1, 2, 3, 4]),
       st.sampled_from([np.uint8, np.uint16]), st.sampled_from([".png", ".webp", ".jpg"]), st.integers(0, 2**16))
def test_arrays_round_trip_through_write_image(tmp_path_factory, w, h, channels, dtype, ext, seed):
    arr = np.random.default_rng(seed).integers(0, np.iinfo(dtype).max, (h, w, channels), endpoint=True, dtype=dtype)
    arr = arr[..., 0] if channels == 1 else arr
    path = tmp_path_factory.mktemp("fuzz") / f"out{ext}"
    if ext == ".jpg" and channels in (2, 4):
        with pytest.raises(ImageError):
            write_image(path, arr)
        return
    write_image(path, arr)
    back = read_image(path)
    assert (back.width, back.height) == (w, h)
    if ext != ".png":
        return
    # PNG is lossless and keeps 16 bits. 16-bit gray+alpha is stored as RGBA (OpenCV has no 16-bit
    # LA), so it comes back as colour with every value intact.
    if channels == 2 and dtype == np.uint16:
        np.testing.assert_array_equal(back.pixels[..., 0], arr[..., 0])
        np.testing.assert_array_equal(back.alpha, arr[..., 1])
    else:
        np.testing.assert_array_equal(back.to_array(), arr)
