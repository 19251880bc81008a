"""Tests of deepclarity.io: reading anything into a LoadedImage, refusing bad input with a clear
ImageError, and writing results atomically without ever clobbering the input."""

from __future__ import annotations

import io
import math
import os
import stat
import time
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFile

import deepclarity.io as dio
from deepclarity.errors import DeepClarityError, ImageError
from deepclarity.io import LoadedImage, read_image, read_rgb, write_image

from conftest import encode_pil, encode_png, noise, png_chunk, png_header_only, tmp_leftovers

IS_ROOT = os.geteuid() == 0

READABLE = [
    "tiny.png", "tall.png", "rgb.png", "rgb16.png", "rgba16.png", "gray16.png", "gray.png",
    "rgba.png", "la.png", "palette_trns.png", "cmyk.jpg", "exif_rot6.jpg", "float.tif",
    "animated.gif", "lossless.webp",
] + (["unreadable.png"] if IS_ROOT else [])
REFUSED = [
    "empty.png", "truncated.png", "truncated.jpg", "truncated16.png", "text.png", "page.jpg",
    "bomb.png", "bomb_12000.png", "icon.ico", "folder.png", "missing.png",
] + ([] if IS_ROOT else ["unreadable.png"])
def _refusal(source, **kw) -> ImageError:
    """Run read_image expecting exactly ImageError (not a subclass, not Pillow's OSError)."""
    with pytest.raises(Exception) as info:
        read_image(source, **kw)
    assert type(info.value) is ImageError, f"{type(info.value).__name__}: {info.value}"
    return info.value


def _png_bytes(arr: np.ndarray) -> bytes:
    return encode_pil(Image.fromarray(arr), "PNG")


# ----------------------------------------------------------------------------------- the corpus


def test_corpus_lists_match_fixture(bad_inputs):
    assert sorted(READABLE) == bad_inputs.readable
    assert sorted(REFUSED) == bad_inputs.refused
    for name in bad_inputs:
        if name != "missing.png":
            assert bad_inputs[name].exists() or bad_inputs[name].is_dir(), name
    assert not bad_inputs["missing.png"].exists()
    assert bad_inputs["empty.png"].stat().st_size == 0
    assert bad_inputs["folder.png"].is_dir()
    assert stat.S_IMODE(bad_inputs["unreadable.png"].stat().st_mode) == 0


@pytest.mark.parametrize("name", REFUSED)
def test_refused_input_raises_image_error_naming_the_file(bad_inputs, name):
    exc = _refusal(bad_inputs[name])
    assert isinstance(exc, DeepClarityError) and isinstance(exc, ValueError)
    assert str(bad_inputs[name]) in str(exc)
    assert exc.__cause__ is None  # no Pillow traceback chained onto the one-line message


@pytest.mark.parametrize("name", REFUSED)
def test_refused_input_message_says_why(bad_inputs, name):
    message = str(_refusal(bad_inputs[name])).lower()
    fragments = bad_inputs.entries[name].error
    assert any(f in message for f in fragments), f"{message!r} lacks any of {fragments}"


@pytest.mark.parametrize("name", READABLE)
def test_readable_input_decodes_as_expected(bad_inputs, name):
    expect = bad_inputs.entries[name].expect
    im = read_image(bad_inputs[name])
    w, h = expect["size"]
    assert im.pixels.shape == (h, w, 3)
    assert (im.width, im.height) == (w, h)
    assert im.pixels.dtype == np.dtype(expect["dtype"])
    assert im.bit_depth == (16 if expect["dtype"] == "uint16" else 8)
    assert im.grayscale is expect["grayscale"]
    assert (im.alpha is not None) is expect["alpha"]
    if im.alpha is not None:
        assert im.alpha.shape == (h, w) and im.alpha.dtype == im.pixels.dtype
    assert im.frames == expect["frames"]
    if "format" in expect:
        assert im.format == expect["format"]
    assert im.source == str(bad_inputs[name])
    assert im.path == bad_inputs[name]


@pytest.mark.parametrize("name", ["tiny.png", "tall.png", "rgb.png", "rgb16.png", "gray.png",
                                  "rgba.png", "cmyk.jpg", "exif_rot6.jpg"])
def test_bytes_and_path_decode_identically(bad_inputs, name):
    from_path = read_image(bad_inputs[name])
    from_bytes = read_image(bad_inputs[name].read_bytes())
    np.testing.assert_array_equal(from_bytes.pixels, from_path.pixels)
    assert from_bytes.source == "<bytes>" and from_bytes.path is None
    assert from_bytes.grayscale == from_path.grayscale


@pytest.mark.skipif(IS_ROOT, reason="root reads chmod-000 files; permission checks cannot bite")
def test_unreadable_file_is_refused_with_permission_denied(bad_inputs):
    exc = _refusal(bad_inputs["unreadable.png"])
    assert "permission denied" in str(exc)


def test_empty_bytes_and_empty_file_object():
    assert "empty" in str(_refusal(b""))
    assert "<bytes>" in str(_refusal(b""))
    assert "empty" in str(_refusal(io.BytesIO(b"")))


def test_truncated_messages_name_the_problem(bad_inputs):
    for name in ("truncated.png", "truncated.jpg", "truncated16.png"):
        message = str(_refusal(bad_inputs[name]))
        assert "truncated" in message or "corrupt" in message


# ----------------------------------------------------------------------------- pixel limits / bombs


def test_header_bomb_is_refused_fast_and_without_allocating(bad_inputs):
    tracemalloc.start()
    try:
        start = time.perf_counter()
        exc = _refusal(bad_inputs["bomb.png"])
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "limit" in str(exc)
    assert "bomb.png" in str(exc)
    assert elapsed < 0.5
    assert peak < 5 * 2**20  # decoding would need 7.5 GB


def test_our_limit_is_checked_before_any_decoding(bad_inputs, monkeypatch):
    def no_decoding(*a, **k):
        raise AssertionError("decoder called for an image above the pixel limit")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    monkeypatch.setattr(dio.cv2, "imdecode", no_decoding)
    exc = _refusal(bad_inputs["bomb_12000.png"])
    assert "12000x12000" in str(exc) and "limit" in str(exc)
    # A 16-bit color header goes through OpenCV: the limit must come first there too.
    exc = _refusal(png_header_only(12_000, 12_000, bit_depth=16, color_type=2))
    assert "limit" in str(exc) and "<bytes>" in str(exc)


def test_max_pixels_argument_refuses_or_accepts_a_normal_image(tmp_path):
    path = tmp_path / "hundred.png"
    path.write_bytes(_png_bytes(noise((100, 100, 3))))
    exc = _refusal(path, max_pixels=9_999)
    assert "100x100" in str(exc) and "limit" in str(exc) and "hundred.png" in str(exc)
    assert read_image(path, max_pixels=10_000).pixels.shape == (100, 100, 3)  # limit inclusive
    assert read_image(path).pixels.shape == (100, 100, 3)


def test_env_var_sets_the_limit_and_argument_overrides_it(tmp_path, monkeypatch):
    path = tmp_path / "hundred.png"
    path.write_bytes(_png_bytes(noise((100, 100, 3))))
    monkeypatch.setenv("DEEPCLARITY_MAX_PIXELS", "9999")
    assert dio.max_pixels_limit() == 9_999
    assert "limit" in str(_refusal(path))
    assert read_image(path, max_pixels=10_000).width == 100  # argument beats the environment
    monkeypatch.setenv("DEEPCLARITY_MAX_PIXELS", "10000")
    assert read_image(path).width == 100
    monkeypatch.delenv("DEEPCLARITY_MAX_PIXELS")
    assert dio.max_pixels_limit() == dio.DEFAULT_MAX_PIXELS


def test_invalid_env_limit_is_an_image_error(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPCLARITY_MAX_PIXELS", "lots")
    exc = _refusal(_png_bytes(noise((4, 4, 3))))
    assert "DEEPCLARITY_MAX_PIXELS" in str(exc) and "lots" in str(exc)


def test_limit_applies_to_arrays_and_pil_images():
    arr = noise((100, 100, 3))
    assert "limit" in str(_refusal(arr, max_pixels=9_999))
    assert "limit" in str(_refusal(Image.fromarray(arr), max_pixels=9_999))
    assert "<PIL image>" in str(_refusal(Image.fromarray(arr), max_pixels=9_999))
    assert read_image(arr, max_pixels=10_000).width == 100


def test_max_pixels_above_pillows_own_cap_is_honoured():
    side = math.isqrt(2 * Image.MAX_IMAGE_PIXELS) + 100  # just above Pillow's hard cap
    data = png_header_only(side, side, color_type=0)  # 8-bit gray, tiny IDAT
    exc = _refusal(data, max_pixels=side * side + 1)
    # Allowed by our limit, so the only thing wrong with the file is its missing pixel data.
    assert "bomb" not in str(exc) and "limit" not in str(exc)
    assert "truncated" in str(exc) or "corrupt" in str(exc)


# ------------------------------------------------------------------------------- decoded content


def test_16bit_rgb_png_keeps_exact_values(bad_inputs):
    im = read_image(bad_inputs["rgb16.png"])
    assert im.pixels.dtype == np.uint16 and not im.grayscale and im.alpha is None
    np.testing.assert_array_equal(im.pixels, bad_inputs.arrays["rgb16.png"])
    assert im.pixels.max() > 255  # really 16-bit, not 8 bits scaled


def test_16bit_rgba_png_keeps_exact_values_and_alpha(bad_inputs):
    im = read_image(bad_inputs["rgba16.png"])
    ref = bad_inputs.arrays["rgba16.png"]
    np.testing.assert_array_equal(im.pixels, ref[..., :3])
    np.testing.assert_array_equal(im.alpha, ref[..., 3])


def test_16bit_gray_png_is_grayscale_uint16(bad_inputs):
    im = read_image(bad_inputs["gray16.png"])
    assert im.grayscale and im.pixels.dtype == np.uint16
    ref = bad_inputs.arrays["gray16.png"]
    for c in range(3):
        np.testing.assert_array_equal(im.pixels[..., c], ref)


def test_8bit_gray_png(bad_inputs):
    im = read_image(bad_inputs["gray.png"])
    assert im.grayscale and im.pixels.dtype == np.uint8 and im.alpha is None
    np.testing.assert_array_equal(im.pixels, np.repeat(bad_inputs.arrays["gray.png"][..., None], 3, 2))


@pytest.mark.parametrize("name", ["tiny.png", "tall.png", "rgb.png"])
def test_8bit_rgb_png_exact(bad_inputs, name):
    np.testing.assert_array_equal(read_image(bad_inputs[name]).pixels, bad_inputs.arrays[name])


def test_rgba_png_alpha_kept_apart(bad_inputs):
    im = read_image(bad_inputs["rgba.png"])
    ref = bad_inputs.arrays["rgba.png"]
    np.testing.assert_array_equal(im.pixels, ref[..., :3])
    np.testing.assert_array_equal(im.alpha, ref[..., 3])
    assert not im.grayscale


def test_la_png_is_grayscale_with_alpha(bad_inputs):
    im = read_image(bad_inputs["la.png"])
    ref = bad_inputs.arrays["la.png"]
    assert im.grayscale
    np.testing.assert_array_equal(im.pixels, np.repeat(ref[..., :1], 3, axis=2))
    np.testing.assert_array_equal(im.alpha, ref[..., 1])


def test_palette_png_transparency_becomes_alpha(bad_inputs):
    im = read_image(bad_inputs["palette_trns.png"])
    idx = bad_inputs.arrays["palette_trns.png"]
    assert im.alpha is not None and not im.grayscale
    np.testing.assert_array_equal(im.alpha, np.where(idx == 0, 0, 255))
    palette = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)
    np.testing.assert_array_equal(im.pixels, palette[idx])


def test_cmyk_jpeg_becomes_rgb(bad_inputs):
    im = read_image(bad_inputs["cmyk.jpg"])
    assert im.pixels.shape == (16, 24, 3) and im.pixels.dtype == np.uint8
    left = im.pixels[:, :10].reshape(-1, 3).mean(axis=0)
    right = im.pixels[:, 14:].reshape(-1, 3).mean(axis=0)
    np.testing.assert_allclose(left, [0, 255, 255], atol=8)  # cyan
    np.testing.assert_allclose(right, [255, 255, 255], atol=8)  # white


def test_exif_orientation_6_is_applied(bad_inputs):
    stored = bad_inputs.arrays["exif_rot6.jpg"]  # 20 tall x 40 wide, red 6x6 top-left
    im = read_image(bad_inputs["exif_rot6.jpg"])
    assert stored.shape[:2] == (20, 40)
    assert im.pixels.shape == (40, 20, 3)  # width and height swapped
    red = np.array([255, 0, 0])
    white = np.array([255, 255, 255])
    # Orientation 6 means "rotate 90 degrees clockwise to display": top-left -> top-right.
    np.testing.assert_allclose(im.pixels[:4, -4:].reshape(-1, 3).mean(0), red, atol=12)
    for corner in (im.pixels[:4, :4], im.pixels[-4:, :4], im.pixels[-4:, -4:]):
        np.testing.assert_allclose(corner.reshape(-1, 3).mean(0), white, atol=12)
    got = im.pixels.astype(float)
    clockwise = np.abs(got - np.rot90(stored, k=-1)).mean()
    counter_clockwise = np.abs(got - np.rot90(stored, k=1)).mean()
    assert clockwise < 5 < counter_clockwise


def test_animated_gif_gives_first_frame_and_frame_count(bad_inputs):
    im = read_image(bad_inputs["animated.gif"])
    assert im.frames == 3
    assert (im.pixels == bad_inputs.arrays["animated.gif"][0]).all()  # red, not green/blue


def test_float_tiff_maps_0_1_to_full_uint16(bad_inputs):
    im = read_image(bad_inputs["float.tif"])
    ref = bad_inputs.arrays["float.tif"]
    assert im.pixels.dtype == np.uint16 and im.grayscale
    assert im.pixels[0, 0, 0] == 0 and im.pixels[-1, -1, 0] == 65535
    np.testing.assert_array_equal(im.pixels[..., 0], np.rint(ref.astype(np.float64) * 65535))


def test_lossless_webp_exact(bad_inputs):
    im = read_image(bad_inputs["lossless.webp"])
    np.testing.assert_array_equal(im.pixels, bad_inputs.arrays["lossless.webp"])


def test_read_rgb_is_the_pixels_without_alpha(bad_inputs):
    rgb = read_rgb(bad_inputs["rgba.png"])
    np.testing.assert_array_equal(rgb, bad_inputs.arrays["rgba.png"][..., :3])
    assert "limit" in str(pytest.raises(ImageError, read_rgb, bad_inputs["rgb.png"],
                                        max_pixels=10).value)


# ------------------------------------------------------------------------------ kinds of source


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview], ids=["bytes", "bytearray", "memoryview"])
def test_read_from_bytes_like(bad_inputs, wrap):
    im = read_image(wrap(bad_inputs["rgb.png"].read_bytes()))
    np.testing.assert_array_equal(im.pixels, bad_inputs.arrays["rgb.png"])
    assert im.source == "<bytes>" and im.path is None and im.format == "PNG"


def test_read_from_binary_file_objects(bad_inputs):
    with open(bad_inputs["rgb.png"], "rb") as fh:
        im = read_image(fh)
    np.testing.assert_array_equal(im.pixels, bad_inputs.arrays["rgb.png"])
    assert im.source == str(bad_inputs["rgb.png"])
    assert im.path is None  # a file object is not a path to protect
    im = read_image(io.BytesIO(bad_inputs["rgb16.png"].read_bytes()))
    np.testing.assert_array_equal(im.pixels, bad_inputs.arrays["rgb16.png"])
    assert im.source == "<file object>"


def test_text_mode_file_object_is_refused(bad_inputs):
    with open(bad_inputs["text.png"], "r") as fh:
        exc = _refusal(fh)
    assert "binary" in str(exc) and "text.png" in str(exc)
    assert "binary" in str(_refusal(io.StringIO("not bytes")))


def test_file_object_read_error_is_an_image_error():
    class Broken:
        name = "broken-stream"

        def read(self):
            raise OSError("device gone")

    exc = _refusal(Broken())
    assert "broken-stream" in str(exc) and "device gone" in str(exc)


@pytest.mark.parametrize("obj", [42, 3.5, None, ["a.png"], {"path": "a.png"}])
def test_unsupported_source_types(obj):
    exc = _refusal(obj)
    assert type(obj).__name__ in str(exc)


def test_read_from_string_and_pathlike(bad_inputs):
    a = read_image(str(bad_inputs["tiny.png"]))
    b = read_image(bad_inputs["tiny.png"])
    assert a.path == b.path == bad_inputs["tiny.png"]
    np.testing.assert_array_equal(a.pixels, b.pixels)


def test_read_from_pil_images():
    rgb = noise((6, 5, 3), seed=20)
    im = read_image(Image.fromarray(rgb))
    np.testing.assert_array_equal(im.pixels, rgb)
    assert im.format == "PIL" and im.source == "<PIL image>" and im.path is None

    rgba = noise((6, 5, 4), seed=21)
    im = read_image(Image.fromarray(rgba, "RGBA"))
    np.testing.assert_array_equal(im.pixels, rgba[..., :3])
    np.testing.assert_array_equal(im.alpha, rgba[..., 3])

    gray = noise((6, 5), seed=22)
    im = read_image(Image.fromarray(gray, "L"))
    assert im.grayscale and im.alpha is None
    np.testing.assert_array_equal(im.pixels[..., 2], gray)

    la = noise((6, 5, 2), seed=23)
    im = read_image(Image.fromarray(la, "LA"))
    assert im.grayscale
    np.testing.assert_array_equal(im.alpha, la[..., 1])

    g16 = noise((6, 5), np.uint16, seed=24)
    im = read_image(Image.fromarray(g16))  # mode "I;16"
    assert im.grayscale and im.pixels.dtype == np.uint16
    np.testing.assert_array_equal(im.pixels[..., 0], g16)

    f = np.array([[0.0, 0.25], [0.5, 1.0]], np.float32)
    im = read_image(Image.fromarray(f, "F"))
    assert im.grayscale and im.pixels.dtype == np.uint16
    assert im.pixels[0, 0, 0] == 0 and im.pixels[1, 1, 0] == 65535

    bits = Image.fromarray(np.array([[True, False]]))  # mode "1"
    im = read_image(bits)
    assert im.grayscale and im.pixels.dtype == np.uint8
    np.testing.assert_array_equal(im.pixels[..., 0], [[255, 0]])

    pal = Image.new("P", (3, 2), 1)
    pal.putpalette([10, 20, 30, 40, 50, 60] + [0] * 762)
    im = read_image(pal)
    assert im.alpha is None and (im.pixels == [40, 50, 60]).all()

    cmyk = read_image(Image.new("CMYK", (3, 2), (0, 0, 0, 0)))
    assert cmyk.pixels.shape == (2, 3, 3) and (cmyk.pixels == 255).all()


def test_pil_image_with_exif_orientation_is_transposed(bad_inputs):
    with Image.open(bad_inputs["exif_rot6.jpg"]) as pil:
        im = read_image(pil)
    assert (im.width, im.height) == (20, 40)


U8 = noise((5, 7), seed=30)
U16 = noise((5, 7, 4), np.uint16, seed=31)


@pytest.mark.parametrize(
    "arr, gray, has_alpha, dtype",
    [
        (U8, True, False, np.uint8),
        (U8[..., None], True, False, np.uint8),
        (np.stack([U8, U8[::-1]], axis=2), True, True, np.uint8),
        (noise((5, 7, 3), seed=32), False, False, np.uint8),
        (noise((5, 7, 4), seed=33), False, True, np.uint8),
        (U16[..., 0], True, False, np.uint16),
        (U16[..., :3], False, False, np.uint16),
        (U16, False, True, np.uint16),
        (U8 > 128, True, False, np.uint8),
        (np.linspace(0, 1, 35, dtype=np.float32).reshape(5, 7), True, False, np.uint16),
        (np.linspace(0, 1, 105).reshape(5, 7, 3), False, False, np.uint16),
    ],
    ids=["HxW-u8", "HxWx1-u8", "HxWx2-u8", "HxWx3-u8", "HxWx4-u8", "HxW-u16", "HxWx3-u16",
         "HxWx4-u16", "HxW-bool", "HxW-f32", "HxWx3-f64"],
)
def test_read_from_arrays(arr, gray, has_alpha, dtype):
    im = read_image(arr)
    assert im.pixels.shape == (5, 7, 3)
    assert im.pixels.dtype == dtype
    assert im.grayscale is gray
    assert (im.alpha is not None) is has_alpha
    assert im.format == "array" and im.path is None and im.frames == 1
    assert str(arr.dtype) in im.source
    if arr.dtype == np.bool_:
        np.testing.assert_array_equal(im.pixels[..., 0], np.where(arr, 255, 0))
    elif arr.dtype.kind == "f":
        assert im.pixels.min() == 0 and im.pixels.max() == 65535
    else:
        color = arr if arr.ndim == 2 else (arr[..., 0] if gray else arr[..., :3])
        np.testing.assert_array_equal(im.pixels if not gray else im.pixels[..., 0], color)
        if has_alpha:
            np.testing.assert_array_equal(im.alpha, arr[..., -1])


def test_float_array_above_one_is_taken_as_0_255():
    im = read_image(np.array([[0.0, 128.0, 255.0]], np.float32))
    np.testing.assert_array_equal(im.pixels[0, :, 0], [0, 128 * 257, 65535])


@pytest.mark.parametrize(
    "arr, fragment",
    [
        (np.zeros((4, 4), np.int32), "int32"),
        (np.zeros((4, 4, 3), np.int64), "int64"),
        (np.zeros((4, 4, 5), np.uint8), "1..4"),
        (np.zeros((2, 4, 4, 3), np.uint8), "1..4"),
        (np.zeros(16, np.uint8), "1..4"),
        (np.zeros((0, 4, 3), np.uint8), "no pixels"),
        (np.array([[0.5, np.nan]], np.float32), "nan"),
        (np.array([[0.5, np.inf]]), "nan"),
    ],
    ids=["int32", "int64", "5-channel", "4-D", "1-D", "empty", "nan", "inf"],
)
def test_bad_arrays_are_refused(arr, fragment):
    exc = _refusal(arr)
    assert fragment in str(exc).lower()
    assert "<array" in str(exc)


def test_loaded_image_to_array_shapes():
    px = noise((3, 4, 3), seed=40)
    a = noise((3, 4), seed=41)
    gray = np.repeat(px[..., :1], 3, axis=2)
    assert LoadedImage(px).to_array().shape == (3, 4, 3)
    assert LoadedImage(px, alpha=a).to_array().shape == (3, 4, 4)
    np.testing.assert_array_equal(LoadedImage(gray, grayscale=True).to_array(), px[..., 0])
    np.testing.assert_array_equal(LoadedImage(gray, alpha=a, grayscale=True).to_array()[..., 1], a)


# ------------------------------------------------------------------------------------- writing


def test_write_png_uint8_rgb_exact(tmp_path):
    arr = noise((9, 11, 3), seed=50)
    out = write_image(tmp_path / "out.png", arr)
    assert out == tmp_path / "out.png"
    np.testing.assert_array_equal(np.asarray(Image.open(out)), arr)
    np.testing.assert_array_equal(read_image(out).pixels, arr)
    assert tmp_leftovers(tmp_path) == []


def test_write_png_uint16_rgb_exact(tmp_path):
    arr = noise((9, 11, 3), np.uint16, seed=51)
    out = write_image(tmp_path / "out.png", arr)
    im = read_image(out)
    assert im.pixels.dtype == np.uint16
    np.testing.assert_array_equal(im.pixels, arr)
    raw = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)  # independent decoder, BGR
    np.testing.assert_array_equal(raw[..., ::-1], arr)


def test_write_png_uint16_rgba_exact(tmp_path):
    arr = noise((9, 11, 4), np.uint16, seed=52)
    im = read_image(write_image(tmp_path / "out.png", arr))
    np.testing.assert_array_equal(im.pixels, arr[..., :3])
    np.testing.assert_array_equal(im.alpha, arr[..., 3])


def test_16bit_loaded_image_round_trip(bad_inputs, tmp_path):
    src = read_image(bad_inputs["rgb16.png"])
    back = read_image(write_image(tmp_path / "copy.png", src))
    np.testing.assert_array_equal(back.pixels, src.pixels)
    assert back.pixels.dtype == np.uint16


@pytest.mark.parametrize("name", ["gray.png", "gray16.png"])
def test_gray_loaded_image_is_written_gray(bad_inputs, tmp_path, name):
    src = read_image(bad_inputs[name])
    out = write_image(tmp_path / "gray_out.png", src)
    with Image.open(out) as pil:
        assert pil.mode in ("L", "I;16", "I;16B", "I")  # one channel on disk
    back = read_image(out)
    assert back.grayscale
    assert back.pixels.dtype == src.pixels.dtype
    np.testing.assert_array_equal(back.pixels, src.pixels)


def test_rgba_loaded_image_keeps_alpha(bad_inputs, tmp_path):
    src = read_image(bad_inputs["rgba.png"])
    out = write_image(tmp_path / "rgba_out.png", src)
    with Image.open(out) as pil:
        assert pil.mode == "RGBA"
    back = read_image(out)
    np.testing.assert_array_equal(back.pixels, src.pixels)
    np.testing.assert_array_equal(back.alpha, src.alpha)


def test_la_loaded_image_keeps_gray_and_alpha(bad_inputs, tmp_path):
    src = read_image(bad_inputs["la.png"])
    out = write_image(tmp_path / "la_out.png", src)
    with Image.open(out) as pil:
        assert pil.mode == "LA"
    back = read_image(out)
    assert back.grayscale
    np.testing.assert_array_equal(back.alpha, src.alpha)
    np.testing.assert_array_equal(back.pixels, src.pixels)


def test_16bit_gray_alpha_array_keeps_values(tmp_path):
    arr = noise((5, 6, 2), np.uint16, seed=53)
    back = read_image(write_image(tmp_path / "ga16.png", arr))
    assert back.pixels.dtype == np.uint16
    for c in range(3):
        np.testing.assert_array_equal(back.pixels[..., c], arr[..., 0])
    np.testing.assert_array_equal(back.alpha, arr[..., 1])


def test_webp_default_is_lossless(tmp_path):
    arr = noise((16, 20, 3), seed=54)
    out = write_image(tmp_path / "out.webp", arr)
    with Image.open(out) as pil:
        assert pil.format == "WEBP"
        np.testing.assert_array_equal(np.asarray(pil.convert("RGB")), arr)
    rgba = noise((16, 20, 4), seed=55)
    rgba[..., 3] = np.where(rgba[..., 3] > 100, 255, rgba[..., 3])
    with Image.open(write_image(tmp_path / "a.webp", rgba)) as pil:
        got = np.asarray(pil.convert("RGBA"))
    opaque = rgba[..., 3] > 0  # WebP may drop color under fully transparent pixels
    np.testing.assert_array_equal(got[..., 3], rgba[..., 3])
    np.testing.assert_array_equal(got[opaque], rgba[opaque])


def test_webp_with_quality_is_lossy_and_gray_is_written_as_rgb(tmp_path):
    arr = noise((16, 20, 3), seed=56)
    with Image.open(write_image(tmp_path / "lossy.webp", arr, quality=30)) as pil:
        assert not np.array_equal(np.asarray(pil.convert("RGB")), arr)
    gray = noise((16, 20), seed=57)
    with Image.open(write_image(tmp_path / "g.webp", gray)) as pil:
        got = np.asarray(pil.convert("RGB"))
    np.testing.assert_array_equal(got, np.repeat(gray[..., None], 3, axis=2))


def test_jpeg_quality_controls_size(tmp_path):
    arr = noise((64, 64, 3), seed=58)
    low = write_image(tmp_path / "low.jpg", arr, quality=20).stat().st_size
    high = write_image(tmp_path / "high.jpeg", arr, quality=95).stat().st_size
    default = write_image(tmp_path / "default.jpg", arr)
    assert low < high
    assert default.read_bytes() == (tmp_path / "high.jpeg").read_bytes()  # default is 95
    with Image.open(default) as pil:
        assert pil.format == "JPEG" and pil.size == (64, 64)


def test_jpeg_from_uint16_is_scaled_to_8_bits(tmp_path):
    arr = np.zeros((16, 16, 3), np.uint16)
    arr[:, 8:] = 65535
    arr[:8, :8] = 257 * 100
    with Image.open(write_image(tmp_path / "u16.jpg", arr)) as pil:
        got = np.asarray(pil).astype(int)
    assert abs(got[12, 2].mean() - 0) <= 3
    assert abs(got[4, 2].mean() - 100) <= 3
    assert abs(got[4, 12].mean() - 255) <= 3


def test_jpeg_with_alpha_is_refused(bad_inputs, tmp_path):
    src = read_image(bad_inputs["rgba.png"])
    for dest, image in ((tmp_path / "a.jpg", src), (tmp_path / "b.jpeg", noise((4, 4, 4))),
                        (tmp_path / "c.jpg", noise((4, 4, 2)))):
        with pytest.raises(ImageError, match="alpha") as info:
            write_image(dest, image)
        assert str(dest) in str(info.value)
        assert not dest.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["out.gif", "out.txt", "out", "out.tiff", "out.png.bak"])
def test_unknown_output_extension_is_refused(tmp_path, name):
    with pytest.raises(ImageError, match="extension") as info:
        write_image(tmp_path / name, noise((4, 4, 3)))
    assert name in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_extension_is_case_insensitive(tmp_path):
    out = write_image(tmp_path / "UPPER.PNG", noise((4, 4, 3)))
    with Image.open(out) as pil:
        assert pil.format == "PNG"


@pytest.mark.parametrize("quality", [0, 101, -5])
def test_quality_out_of_range_is_refused(tmp_path, quality):
    with pytest.raises(ImageError, match="quality"):
        write_image(tmp_path / "q.jpg", noise((4, 4, 3)), quality=quality)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "arr",
    [np.zeros((4, 4, 3), np.int32), np.zeros((4, 4, 3), np.float32), np.zeros((4, 4, 5), np.uint8),
     np.zeros(16, np.uint8), np.zeros((2, 4, 4, 3), np.uint8)],
    ids=["int32", "float32", "5-channel", "1-D", "4-D"],
)
def test_unwritable_arrays_are_refused(tmp_path, arr):
    with pytest.raises(ImageError):
        write_image(tmp_path / "bad.png", arr)
    assert list(tmp_path.iterdir()) == []


def _private_copy(bad_inputs, tmp_path, name="rgb.png") -> Path:
    path = tmp_path / name
    path.write_bytes(bad_inputs[name].read_bytes())
    return path


def test_refuses_to_overwrite_the_file_the_image_was_read_from(bad_inputs, tmp_path):
    path = _private_copy(bad_inputs, tmp_path)
    before = path.read_bytes()
    image = read_image(path)
    image.pixels = 255 - image.pixels  # a "result" that differs from the input
    (tmp_path / "sub").mkdir()
    aliases = [path, str(path), tmp_path / "sub" / ".." / "rgb.png"]
    link = tmp_path / "link.png"
    link.symlink_to(path)
    aliases.append(link)
    for dest in aliases:
        with pytest.raises(ImageError, match="input") as info:
            write_image(dest, image)
        assert str(dest) in str(info.value)
    assert path.read_bytes() == before
    assert tmp_leftovers(tmp_path) == []
    # Elsewhere is fine.
    out = write_image(tmp_path / "result.png", image)
    np.testing.assert_array_equal(read_image(out).pixels, image.pixels)


def test_source_path_argument_protects_the_input(bad_inputs, tmp_path):
    path = _private_copy(bad_inputs, tmp_path)
    before = path.read_bytes()
    arr = 255 - read_image(path).pixels
    for dest in (path, os.path.relpath(path)):
        with pytest.raises(ImageError, match="input"):
            write_image(dest, arr, source_path=path)
    with pytest.raises(ImageError, match="input"):
        write_image(path, arr, source_path=str(path))
    assert path.read_bytes() == before
    write_image(tmp_path / "other.png", arr, source_path=path)
    # Without the protection the same call is allowed: the refusal really came from source_path.
    write_image(path, arr)
    assert path.read_bytes() != before


def test_missing_output_folder_is_an_image_error(tmp_path):
    dest = tmp_path / "nope" / "deeper" / "out.png"
    with pytest.raises(ImageError, match="does not exist") as info:
        write_image(dest, noise((4, 4, 3)))
    assert str(dest) in str(info.value)
    assert not (tmp_path / "nope").exists()


def test_destination_that_is_a_directory_is_refused(tmp_path):
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(ImageError, match="directory"):
        write_image(tmp_path / "dir.png", noise((4, 4, 3)))
    assert (tmp_path / "dir.png").is_dir()
    assert tmp_leftovers(tmp_path) == []


def test_existing_destination_is_replaced_keeping_its_permissions(tmp_path):
    dest = tmp_path / "out.png"
    dest.write_bytes(b"old contents")
    dest.chmod(0o640)
    arr = noise((4, 5, 3), seed=60)
    write_image(dest, arr)
    np.testing.assert_array_equal(read_image(dest).pixels, arr)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o640  # kept, not mkstemp's 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_new_destination_gets_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        write_image(tmp_path / "new.png", noise((4, 5, 3), seed=61))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.png").stat().st_mode) == 0o644  # not mkstemp's 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.png"]


def test_relative_destination_in_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = write_image("plain.png", noise((3, 3, 3)))
    assert (tmp_path / "plain.png").is_file() and out == Path("plain.png")


# ------------------------------------------------------------------------------------- atomicity
# The writer (deepclarity.io, via deepclarity.files) calls os.fsync / os.replace through the os
# module, so patching them on ``os`` reaches it wherever the helper lives.


def test_temp_file_is_hidden_beside_the_destination(tmp_path, monkeypatch):
    seen = []
    real_replace = os.replace

    def spy(src, dst):
        seen.append((Path(src), Path(dst), Path(src).read_bytes()))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    dest = tmp_path / "out.png"
    write_image(dest, noise((4, 4, 3)))
    [(src, dst, payload)] = seen
    assert dst == dest
    assert src.parent == tmp_path
    assert src.name.startswith(".out.png.") and src.name.endswith(".tmp")
    assert payload == dest.read_bytes()
    assert tmp_leftovers(tmp_path) == []


def test_failed_rename_leaves_no_temp_and_keeps_the_old_file(tmp_path, monkeypatch):
    dest = tmp_path / "out.png"
    dest.write_bytes(b"previous result")

    def failing_replace(src, dst):
        assert Path(src).is_file()  # the temp file existed until now
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(ImageError, match="No space left") as info:
        write_image(dest, noise((8, 8, 3)))
    assert str(dest) in str(info.value)
    assert dest.read_bytes() == b"previous result"
    assert tmp_leftovers(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_failure_while_writing_leaves_no_temp(tmp_path, monkeypatch):
    def failing_fsync(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(ImageError, match="cannot write"):
        write_image(tmp_path / "new.png", noise((8, 8, 3)))
    assert list(tmp_path.iterdir()) == []


def test_interrupt_midway_leaves_no_temp_and_propagates(tmp_path, monkeypatch):
    dest = tmp_path / "out.webp"
    dest.write_bytes(b"keep me")

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_image(dest, noise((8, 8, 3)))
    assert dest.read_bytes() == b"keep me"
    assert tmp_leftovers(tmp_path) == []


def test_encoder_failure_leaves_destination_intact(tmp_path, monkeypatch):
    dest = tmp_path / "out.png"
    dest.write_bytes(b"keep me")
    monkeypatch.setattr(dio.cv2, "imencode", lambda *a, **k: (False, None))
    with pytest.raises(ImageError, match="16-bit"):
        write_image(dest, noise((8, 8, 3), np.uint16))
    assert dest.read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


# ------------------------------------------------------------- orientation, frames and ownership


def _png16_with_orientation(arr: np.ndarray, orientation: int) -> bytes:
    """A 16-bit RGB PNG (OpenCV) with an eXIf chunk carrying ``orientation`` after IHDR."""
    data = encode_png(np.ascontiguousarray(arr[..., ::-1]))  # OpenCV wants BGR
    exif = Image.Exif()
    exif[0x0112] = orientation
    payload = exif.tobytes()
    payload = payload[6:] if payload.startswith(b"Exif\x00\x00") else payload
    ihdr_end = 8 + 4 + 4 + 13 + 4
    return data[:ihdr_end] + png_chunk(b"eXIf", payload) + data[ihdr_end:]


@pytest.mark.parametrize("orientation", [1, 2, 3, 4, 5, 6, 7, 8])
def test_16bit_png_exif_orientation_matches_pillow_on_8bit(orientation):
    """The OpenCV path for 16-bit colour applies EXIF orientation exactly as Pillow's exif_transpose."""
    arr16 = noise((6, 9, 3), dtype=np.uint16, seed=orientation)
    im16 = read_image(_png16_with_orientation(arr16, orientation))
    # Reference: the same layout as an 8-bit image rotated by Pillow.
    arr8 = (arr16 >> 8).astype(np.uint8)
    ref = Image.fromarray(arr8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    ref.save(buf, "PNG", exif=exif)
    expected = read_image(buf.getvalue()).pixels
    np.testing.assert_array_equal((im16.pixels >> 8).astype(np.uint8), expected)
    assert im16.pixels.dtype == np.uint16


def test_animated_pil_image_reports_its_frames():
    frames = [Image.new("RGB", (8, 8), c) for c in ("red", "green", "blue")]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    im = Image.open(io.BytesIO(buf.getvalue()))
    loaded = read_image(im)
    assert loaded.frames == 3
    assert tuple(loaded.pixels[0, 0]) == (255, 0, 0)


def test_array_input_is_copied_not_shared():
    arr = noise((5, 6, 3), seed=70)
    loaded = read_image(arr)
    loaded.pixels[0, 0] = 0
    arr_before = arr.copy()
    assert not np.shares_memory(loaded.pixels, arr)
    np.testing.assert_array_equal(arr, arr_before)
