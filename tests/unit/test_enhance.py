"""The super-resolution plumbing in :mod:`deepclarity.enhance`: :class:`Upscaler`, tiling,
outscale, alpha / 16-bit / grayscale handling, ``sharpen``, ``resize_to``, ``output_path`` and the
shared-model cache.

The SR networks are randomly initialised and saved to a temporary ``$DEEPCLARITY_WEIGHTS`` folder
(never ``weights/``, which a training run may be rewriting). Untrained, MobileSR is about its
bilinear path and MiniSRResNet about its bicubic skip plus a small random perturbation: enough to
check shapes, dtypes, channels and tiling, not quality.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

import deepclarity.enhance as enhance_mod
import deepclarity.runtime as runtime_mod
from deepclarity.degrade import imresize
from deepclarity.enhance import (
    AUTO_TILE, MAX_OUTPUT_PIXELS, MAX_OUTSCALE, Enhanced, Upscaler, load_upscaler, output_path, resize_to,
    sharpen,
)
from deepclarity.errors import DeepClarityError, ImageError, ModelError
from deepclarity.io import LoadedImage, read_image, write_image
from deepclarity.metrics import psnr_y
from deepclarity.models import create_model, get_spec, save_weights

# ------------------------------------------------------------------------------------- fixtures

pytestmark = pytest.mark.usefixtures("random_sr_weights")


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A 40x48 crop of the astronaut: real texture and colour, small enough to be quick."""
    return np.ascontiguousarray(skdata.astronaut()[120:280:4, 160:352:4])


def half_split_alpha(h: int, w: int, dtype=np.uint8) -> np.ndarray:
    """Opaque left half, transparent right half."""
    alpha = np.zeros((h, w), dtype)
    alpha[:, : w // 2] = np.iinfo(dtype).max
    return alpha


def high_freq_energy(img: np.ndarray) -> float:
    """Mean squared Laplacian: grows when edges get sharper."""
    return float(np.mean(cv2.Laplacian(img.astype(np.float64), cv2.CV_64F) ** 2))


# ------------------------------------------------------------------------- upscale_array contract


@pytest.mark.parametrize("model", ["mobilesr", "minisrresnet", "bicubic"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_upscale_array_shape_and_dtype(model, dtype, photo):
    img = photo[:13, :17].astype(dtype) * (257 if dtype == np.uint16 else 1)
    out = Upscaler(model, device="cpu").upscale_array(img)
    assert out.shape == (52, 68, 3)
    assert out.dtype == dtype


def test_upscale_array_keeps_16bit_precision():
    """A smooth 16-bit ramp comes back with values between the 8-bit steps (not via uint8)."""
    ramp = np.linspace(1000, 60000, 24 * 20).reshape(20, 24).astype(np.uint16)
    img = np.repeat(ramp[..., None], 3, axis=2)
    out = Upscaler("mobilesr", device="cpu").upscale_array(img)
    assert out.dtype == np.uint16
    assert np.count_nonzero(out % 257) > 0.5 * out.size
    assert abs(float(out.mean()) / float(img.mean()) - 1) < 0.05  # scaled to 0..65535, not 0..255


def test_upscale_array_keeps_channel_order(photo):
    """Untrained MobileSR is about bilinear: each colour's mean stays on its channel (no BGR swap)."""
    img = np.zeros((16, 16, 3), np.uint8)
    img[..., 0] = 220  # red
    img[..., 2] = 30
    out = Upscaler("mobilesr", device="cpu").upscale_array(img)
    means = out.reshape(-1, 3).mean(axis=0)
    assert means[0] > 180 and means[1] < 40 and means[2] < 70
    # and on a photo the result is close to bicubic (the plumbing did not scramble it)
    assert psnr_y(Upscaler("mobilesr", device="cpu").upscale_array(photo), imresize(photo, 4)) > 28


@pytest.mark.parametrize("bad", [
    np.zeros((8, 8), np.uint8),
    np.zeros((8, 8, 4), np.uint8),
    np.zeros((8, 8, 1), np.uint8),
    np.zeros((8, 8, 3), np.float32),
    np.zeros((8, 8, 3), np.int32),
])
def test_upscale_array_refuses_other_arrays(bad):
    with pytest.raises(ImageError, match="expected HxWx3"):
        Upscaler("bicubic").upscale_array(bad)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_bicubic_mode_is_matlab_imresize(dtype, photo):
    img = photo[:20, :24].astype(dtype) * (257 if dtype == np.uint16 else 1)
    up = Upscaler("bicubic")
    assert up.model is None
    np.testing.assert_array_equal(up.upscale_array(img), imresize(img, 4))


# ---------------------------------------------------------------------------------------- tiling


@pytest.mark.parametrize("model", ["mobilesr", "minisrresnet"])
def test_tiled_inference_matches_whole_image(model, monkeypatch):
    """Tiling changes PSNR against the ground truth by at most 0.01 dB."""
    gt = np.ascontiguousarray(skdata.astronaut()[80:464, 120:440])  # 384x320 HR
    lr = imresize(gt, 0.25)
    assert lr.shape == (96, 80, 3)

    seen = []
    real_run_model = runtime_mod.run_model

    def spy(*args, **kwargs):
        seen.append((kwargs["tile"], kwargs["tile_pad"]))
        return real_run_model(*args, **kwargs)

    monkeypatch.setattr(runtime_mod, "run_model", spy)
    whole = Upscaler(model, device="cpu", tile=0).upscale_array(lr)
    tiled_upscaler = Upscaler(model, device="cpu", tile=32, tile_pad=16)
    tiled = tiled_upscaler.upscale_array(lr)
    assert seen == [(0, 16), (32, 16)]  # the tile really reached run_model
    assert tiled_upscaler.tile_for(96, 80) == 32

    assert whole.shape == tiled.shape == gt.shape
    p_whole, p_tiled = psnr_y(whole, gt), psnr_y(tiled, gt)
    assert abs(p_tiled - p_whole) <= 0.01, (p_whole, p_tiled)
    assert psnr_y(tiled, whole) > 60  # seams would show up here long before the 0.01 dB bound


def test_tile_for_is_automatic_above_auto_tile_squared():
    auto = Upscaler("mobilesr", device="cpu")
    assert auto.tile_for(AUTO_TILE, AUTO_TILE) == 0
    assert auto.tile_for(1, AUTO_TILE * AUTO_TILE) == 0
    assert auto.tile_for(AUTO_TILE + 1, AUTO_TILE) == AUTO_TILE
    assert auto.tile_for(4000, 3000) == AUTO_TILE
    assert Upscaler("mobilesr", device="cpu", tile=0).tile_for(4000, 3000) == 0
    assert Upscaler("mobilesr", device="cpu", tile=64).tile_for(10, 10) == 64
    assert Upscaler("bicubic", tile=64).tile_for(4000, 3000) == 0  # bicubic never tiles


def test_enhance_reports_the_tile_used(photo):
    assert Upscaler("mobilesr", device="cpu").enhance(photo).tile == 0
    assert Upscaler("mobilesr", device="cpu", tile=16).enhance(photo).tile == 16


@pytest.mark.parametrize("kwargs", [{"tile": -1}, {"tile_pad": -1}])
def test_negative_tile_settings_are_refused(kwargs):
    with pytest.raises(DeepClarityError, match="must be >= 0"):
        Upscaler("bicubic", **kwargs)


# ------------------------------------------------------------------------------ enhance: outscale


@pytest.mark.parametrize("outscale", [4, 4.0, 2, 1, 0.5, 3.7, 1.3, 2.25, MAX_OUTSCALE])
def test_outscale_gives_rounded_size(outscale):
    rgba = np.dstack([np.full((13, 17, 3), 128, np.uint8), half_split_alpha(13, 17)])
    result = Upscaler("mobilesr", device="cpu").enhance(rgba, outscale=outscale)
    want = (round(13 * outscale), round(17 * outscale))
    assert isinstance(result, Enhanced)
    assert result.image.pixels.shape == want + (3,)
    assert result.image.alpha.shape == want
    assert (result.image.height, result.image.width) == want
    assert result.outscale == outscale and result.model == "mobilesr" and result.seconds >= 0


def test_outscale_never_gives_an_empty_image():
    result = Upscaler("bicubic").enhance(np.zeros((3, 5, 3), np.uint8), outscale=0.01)
    assert result.image.pixels.shape == (1, 1, 3)


@pytest.mark.parametrize("outscale", [0, -1, -0.5, math.nan, math.inf, MAX_OUTSCALE + 0.01, 100])
def test_bad_outscale_is_refused(outscale):
    with pytest.raises(DeepClarityError, match="outscale"):
        Upscaler("bicubic").enhance(np.zeros((4, 4, 3), np.uint8), outscale=outscale)


def test_max_output_pixels_refuses_with_the_size():
    up = Upscaler("bicubic")
    img = np.zeros((10, 12, 3), np.uint8)
    with pytest.raises(ImageError, match="48x40"):
        up.enhance(img, outscale=4, max_output_pixels=48 * 40 - 1)
    assert up.enhance(img, outscale=4, max_output_pixels=48 * 40).image.pixels.shape == (40, 48, 3)
    assert up.enhance(img, outscale=4, max_output_pixels=None).image.pixels.shape == (40, 48, 3)


def test_default_output_limit_refuses_before_upscaling(monkeypatch):
    """1000x1000 at x16 would be 256 MP (> MAX_OUTPUT_PIXELS): refused before any work is done."""
    assert 16_000 * 16_000 > MAX_OUTPUT_PIXELS

    def never(self, img):
        raise AssertionError("upscaled an image that was over the output limit")

    monkeypatch.setattr(Upscaler, "upscale_array", never)
    with pytest.raises(ImageError, match="16000x16000"):
        Upscaler("minisrresnet", device="cpu").enhance(np.zeros((1000, 1000, 3), np.uint8), outscale=16)


# ------------------------------------------------------------------- enhance: alpha, depth, gray


def test_alpha_is_upscaled_separately_and_kept(photo):
    h, w = photo.shape[:2]
    rgba = np.dstack([photo, half_split_alpha(h, w)])
    result = Upscaler("mobilesr", device="cpu").enhance(rgba, outscale=4)
    alpha = result.image.alpha
    assert alpha is not None and alpha.shape == (4 * h, 4 * w) and alpha.dtype == np.uint8
    edge = 2 * w  # the split, in output pixels
    assert np.all(alpha[:, : edge - 4] == 255)
    assert np.all(alpha[:, edge + 4:] == 0)
    # colour is upscaled from the RGB alone: the same as without alpha
    np.testing.assert_array_equal(result.image.pixels, Upscaler("mobilesr", device="cpu").enhance(photo).image.pixels)
    assert result.image.to_array().shape == (4 * h, 4 * w, 4)


def test_alpha_16bit_is_kept_16bit():
    rgb = np.full((12, 16, 3), 30000, np.uint16)
    rgba = np.dstack([rgb, half_split_alpha(12, 16, np.uint16)])
    result = Upscaler("mobilesr", device="cpu").enhance(rgba, outscale=2)
    assert result.image.pixels.dtype == np.uint16 and result.image.alpha.dtype == np.uint16
    assert result.image.alpha[:, :10].min() == 65535 and result.image.alpha[:, 22:].max() == 0


def test_16bit_stays_16bit_through_a_png(tmp_path):
    ramp = np.linspace(2000, 62000, 16 * 20, dtype=np.float64).reshape(16, 20)
    img = np.stack([ramp, ramp[::-1], np.full_like(ramp, 30000)], axis=2).astype(np.uint16)
    result = Upscaler("minisrresnet", device="cpu").enhance(img, outscale=2)
    assert result.image.pixels.dtype == np.uint16 and result.image.bit_depth == 16
    write_image(tmp_path / "out.png", result.image)
    back = read_image(tmp_path / "out.png")
    assert back.pixels.dtype == np.uint16
    np.testing.assert_array_equal(back.pixels, result.image.pixels)


@pytest.mark.parametrize("model", ["minisrresnet", "mobilesr", "bicubic"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_grayscale_stays_grayscale(model, dtype, photo, tmp_path):
    """The random networks mix channels differently; the Upscaler must still give exact gray."""
    gray = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY).astype(dtype) * (257 if dtype == np.uint16 else 1)
    loaded = read_image(gray)
    assert loaded.grayscale
    result = Upscaler(model, device="cpu").enhance(loaded, outscale=2)
    px = result.image.pixels
    assert result.image.grayscale and px.dtype == dtype and px.shape == (80, 96, 3)
    np.testing.assert_array_equal(px[..., 0], px[..., 1])
    np.testing.assert_array_equal(px[..., 0], px[..., 2])
    assert result.image.to_array().ndim == 2
    write_image(tmp_path / "gray.png", result.image)
    with Image.open(tmp_path / "gray.png") as im:
        assert im.mode in (("L",) if dtype == np.uint8 else ("I;16", "I"))


def test_gray_with_alpha_keeps_both(photo):
    gray = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    la = read_image(np.dstack([gray, half_split_alpha(*gray.shape)]))
    assert la.grayscale and la.alpha is not None
    result = Upscaler("minisrresnet", device="cpu").enhance(la, outscale=2)
    assert result.image.grayscale and result.image.alpha.shape == (80, 96)
    assert result.image.to_array().shape == (80, 96, 2)


def test_exif_orientation_is_applied_when_reading_a_path(tmp_path):
    stored = np.full((20, 40, 3), 200, np.uint8)  # 40 wide, 20 tall as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display: 20 wide, 40 tall
    Image.fromarray(stored).save(tmp_path / "rot.jpg", quality=95, exif=exif.tobytes())
    result = Upscaler("mobilesr", device="cpu").enhance(tmp_path / "rot.jpg", outscale=4)
    assert result.image.pixels.shape == (160, 80, 3)
    assert result.image.path is None  # the result is not the input file


def test_enhance_leaves_its_input_alone(photo):
    rgba = np.dstack([photo, half_split_alpha(*photo.shape[:2])])
    loaded = read_image(rgba)
    before = (loaded.pixels.copy(), loaded.alpha.copy())
    Upscaler("mobilesr", device="cpu").enhance(loaded, outscale=2, sharpen_amount=1.0)
    np.testing.assert_array_equal(loaded.pixels, before[0])
    np.testing.assert_array_equal(loaded.alpha, before[1])


def test_enhance_sharpen_amount_is_applied(photo):
    up = Upscaler("bicubic")
    plain = up.enhance(photo, outscale=2).image.pixels
    sharp = up.enhance(photo, outscale=2, sharpen_amount=1.0).image.pixels
    assert high_freq_energy(sharp) > 1.2 * high_freq_energy(plain)


# ------------------------------------------------------------------------ models and the cache


def test_unknown_or_wrong_models_are_refused():
    with pytest.raises(ModelError, match="unknown model"):
        Upscaler("esrgan-giant")
    with pytest.raises(DeepClarityError, match="not a x4 super-resolution model"):
        Upscaler("detector-canny")


def test_missing_weights_name_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPCLARITY_WEIGHTS", str(tmp_path))
    with pytest.raises(ModelError, match="no trained weights for mobilesr"):
        Upscaler("mobilesr", device="cpu")


def test_explicit_weight_file_is_used(sr_weights_dir, tmp_path, monkeypatch, photo):
    monkeypatch.setenv("DEEPCLARITY_WEIGHTS", str(tmp_path))  # nothing shipped here
    up = Upscaler("minisrgan", device="cpu", weights=sr_weights_dir / "minisrgan.safetensors")
    assert up.upscale_array(photo[:8, :8]).shape == (32, 32, 3)


def test_load_upscaler_shares_one_object_per_setting():
    a = load_upscaler("mobilesr", device="cpu")
    assert load_upscaler("mobilesr", device="cpu") is a
    assert load_upscaler("MobileSR", device="cpu") is a
    assert load_upscaler("mobilesr", device="cpu", tile=64) is not a
    assert load_upscaler("minisrresnet", device="cpu") is not a
    assert load_upscaler("bicubic") is load_upscaler("bicubic")
    assert isinstance(a, Upscaler) and a.name == "mobilesr"

    from deepclarity.runtime import select_device

    resolved = load_upscaler("mobilesr", device=str(select_device("auto")))
    assert load_upscaler("mobilesr", device="auto") is resolved  # one entry for "auto" and what it picks
    assert load_upscaler("bicubic", device="auto") is load_upscaler("bicubic", device=select_device("auto"))


def test_load_upscaler_reloads_when_the_weight_file_is_replaced(tmp_path, monkeypatch):
    import shutil

    import torch

    folder = tmp_path / "w"
    shutil.copytree(os.environ["DEEPCLARITY_WEIGHTS"], folder)
    monkeypatch.setenv("DEEPCLARITY_WEIGHTS", str(folder))
    first = load_upscaler("mobilesr", device="cpu")
    torch.manual_seed(123)
    save_weights(create_model("mobilesr", pretrained=False), folder / get_spec("mobilesr").weights, {})
    second = load_upscaler("mobilesr", device="cpu")
    assert second is not first  # a training run replaced the file: the new weights are used
    assert load_upscaler("mobilesr", device="cpu") is second
    assert enhance_mod._UPSCALERS.objects() == [second]  # the stale one is dropped, not kept


def test_the_x4_intermediate_counts_against_the_pixel_limit(photo):
    h, w = photo.shape[:2]
    # outscale 1 gives an h x w result, but the model makes a 4h x 4w image first.
    with pytest.raises(ImageError, match=f"needs a {4 * w}x{4 * h} image"):
        Upscaler("bicubic").enhance(photo, outscale=1, max_output_pixels=16 * h * w - 1)
    assert Upscaler("bicubic").enhance(photo, outscale=1, max_output_pixels=16 * h * w).image.width == w


# --------------------------------------------------------------------------------------- sharpen


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("gray", [False, True])
def test_sharpen_zero_is_identity_and_positive_adds_high_frequencies(dtype, gray, photo):
    img = photo.astype(dtype) * (257 if dtype == np.uint16 else 1)
    if gray:
        img = np.ascontiguousarray(img[..., 1])
    assert sharpen(img, 0) is img
    assert sharpen(img, -1.0) is img
    out = sharpen(img, 1.5)
    assert out.shape == img.shape and out.dtype == img.dtype
    assert high_freq_energy(out) > 1.2 * high_freq_energy(img)
    assert high_freq_energy(sharpen(img, 3.0)) > high_freq_energy(out)


def test_sharpen_keeps_flat_areas_and_clips():
    flat = np.full((16, 16, 3), 77, np.uint8)
    np.testing.assert_array_equal(sharpen(flat, 2.0), flat)
    step = np.zeros((16, 16), np.uint8)
    step[:, 8:] = 255
    out = sharpen(step, 5.0)
    assert out.dtype == np.uint8 and out.min() == 0 and out.max() == 255  # clipped, not wrapped
    assert np.array_equal(out[:, :6], step[:, :6]) and np.array_equal(out[:, 10:], step[:, 10:])


# ------------------------------------------------------------------------------------- resize_to


@pytest.mark.parametrize("shape", [(20, 30), (20, 30, 1), (20, 30, 3), (20, 30, 4)])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("size", [(40, 60), (10, 15), (7, 91), (33, 29)])
def test_resize_to_gives_exact_size(shape, dtype, size):
    img = np.random.default_rng(0).integers(0, 200, shape).astype(dtype)
    out = resize_to(img, *size)
    assert out.shape == size + shape[2:]
    assert out.dtype == dtype


def test_resize_to_same_size_is_a_no_op_and_keeps_flat_values():
    img = np.full((9, 11, 3), 123, np.uint8)
    assert resize_to(img, 9, 11) is img
    assert np.all(resize_to(img, 27, 33) == 123) and np.all(resize_to(img, 3, 4) == 123)


def test_resize_to_averages_when_shrinking_and_interpolates_when_enlarging():
    checker = (np.indices((16, 16)).sum(axis=0) % 2 * 255).astype(np.uint8)
    small = resize_to(checker, 8, 8)
    assert np.all(np.abs(small.astype(int) - 128) <= 1)  # area averaging, not picking pixels
    step = np.zeros((4, 4), np.uint8)
    step[:, 2:] = 200
    big = resize_to(step, 16, 16)
    assert len(np.unique(big[8])) > 4  # a smooth (Lanczos) edge, not nearest-neighbour blocks


# ----------------------------------------------------------------------------------- output_path


@pytest.mark.parametrize("src, kwargs, want", [
    ("a.png", {"suffix": "out"}, "a_out.png"),
    ("a.jpg", {"suffix": "out"}, "a_out.jpg"),
    ("a.JPG", {"suffix": "out"}, "a_out.jpg"),
    ("a.jpeg", {"suffix": "x4"}, "a_x4.jpeg"),
    ("a.webp", {"suffix": "out"}, "a_out.webp"),
    ("a.bmp", {"suffix": "out"}, "a_out.png"),
    ("a.tif", {"suffix": "out"}, "a_out.png"),
    ("a.TIFF", {"suffix": "out"}, "a_out.png"),
    ("a.gif", {"suffix": "out"}, "a_out.png"),
    ("a", {"suffix": "out"}, "a_out.png"),
    ("a.jpg", {"suffix": "out", "has_alpha": True}, "a_out.png"),
    ("a.jpeg", {"suffix": "out", "has_alpha": True}, "a_out.png"),
    ("a.webp", {"suffix": "out", "has_alpha": True}, "a_out.webp"),
    ("a.png", {"suffix": "out", "has_alpha": True}, "a_out.png"),
    ("a.jpg", {"suffix": ""}, "a.jpg"),
    ("a.jpg", {"suffix": "", "ext": "png"}, "a.png"),
    ("a.png", {"suffix": "out", "ext": "jpg"}, "a_out.jpg"),
    ("a.png", {"suffix": "out", "ext": "webp"}, "a_out.webp"),
    ("my.photo.v2.png", {"suffix": "out"}, "my.photo.v2_out.png"),
])
def test_output_path_naming(src, kwargs, want, tmp_path):
    outdir = tmp_path / "results"
    assert output_path(Path("in") / src, outdir, **kwargs) == outdir / want


def test_output_path_keeps_relative_folders(tmp_path):
    rel = Path("sub") / "deeper" / "c.png"
    assert output_path(rel, tmp_path / "out" / rel.parent, suffix="out") == tmp_path / "out/sub/deeper/c_out.png"


def test_enhanced_result_writes_back_in_kind(tmp_path, photo):
    """RGBA in -> an RGBA PNG whose alpha survived; the result never claims the input's path."""
    src = tmp_path / "in.png"
    Image.fromarray(np.dstack([photo, half_split_alpha(*photo.shape[:2])]), "RGBA").save(src)
    result = Upscaler("mobilesr", device="cpu").enhance(src, outscale=2)
    assert isinstance(result.image, LoadedImage) and result.image.path is None
    dest = output_path(src, tmp_path / "out", suffix="out", has_alpha=result.image.alpha is not None)
    dest.parent.mkdir()
    write_image(dest, result.image, source_path=src)
    with Image.open(dest) as im:
        assert im.mode == "RGBA" and im.size == (96, 80)
        alpha = np.asarray(im)[..., 3]
    assert alpha[:, :40].min() == 255 and alpha[:, 56:].max() == 0


# ------------------------------------------------------------------ one forward path, the registry


@pytest.mark.parametrize("model", ["mobilesr", "minisrresnet", "bicubic"])
def test_eval_sr_and_enhance_give_identical_pixels(model):
    """``eval sr`` scores exactly the pixels ``enhance`` writes for the same LR input."""
    from deepclarity.eval.sr import make_upscaler

    hr = np.ascontiguousarray(skdata.coffee()[100:260:2, 140:340:2])
    lr = imresize(hr, 0.25)
    evaluated = make_upscaler(model, 4, device="cpu")(lr)
    enhanced = Upscaler(model, device="cpu").enhance(lr).image.pixels
    np.testing.assert_array_equal(evaluated, enhanced)
    np.testing.assert_array_equal(load_upscaler(model, device="cpu").upscale_array(lr), enhanced)


def test_from_module_runs_the_same_path_as_the_registry_model(photo):
    """Training validation (``from_module``) and ``enhance`` (the registry model) agree exactly."""
    module = create_model("mobilesr", weights=Path(os.environ["DEEPCLARITY_WEIGHTS"]) / "mobilesr.safetensors")
    via_module = Upscaler.from_module(module, device="cpu").upscale_array(photo)
    np.testing.assert_array_equal(via_module, Upscaler("mobilesr", device="cpu").upscale_array(photo))
    up = Upscaler.from_module(module)  # device: where the parameters are
    assert up.name == "module" and up.device.type == "cpu" and up.spec is None and up.trained_on == "bicubic"
    assert up.tile_for(4000, 3000) == 0 and not up.fp16


def test_from_module_leaves_a_training_module_as_it_was(photo):
    """A module in training mode is run in eval mode and given back in training mode, unfused and
    still trainable (BatchNorm running statistics untouched)."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    module = create_model("minisrresnet-seed", pretrained=False).train()
    bn = [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)]
    before = [m.running_mean.clone() for m in bn]
    out = Upscaler.from_module(module, name="seed", device="cpu").upscale_array(photo[:12, :12])
    assert module.training and all(p.requires_grad for p in module.parameters())
    assert [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)] == bn
    assert all(torch.equal(a, m.running_mean) for a, m in zip(before, bn))
    module.eval()
    with torch.no_grad():
        ref = module(torch.from_numpy(photo[:12, :12]).permute(2, 0, 1)[None].float() / 255)
    np.testing.assert_array_equal(out, runtime_mod.tensor_to_image(ref))


def test_trained_on_comes_from_the_registry_not_the_card(tmp_path, monkeypatch, photo):
    """The card's free-form ``degradation`` is a record, not a switch: behaviour follows the spec."""
    monkeypatch.setenv("DEEPCLARITY_WEIGHTS", str(tmp_path))
    save_weights(create_model("mobilesr", pretrained=False), tmp_path / "mobilesr.safetensors",
                 {"degradation": "nearest"})
    assert Upscaler("mobilesr", device="cpu").trained_on == "bicubic"
    save_weights(create_model("mobilesr", pretrained=False), tmp_path / "mobilesr-pixel.safetensors", {})
    assert Upscaler("mobilesr-pixel", device="cpu").trained_on == "nearest"
    bicubic = Upscaler("bicubic")
    assert bicubic.trained_on is None and bicubic.model is None and bicubic.spec is get_spec("bicubic")
    with pytest.raises(DeepClarityError, match="takes no weight file"):
        Upscaler("bicubic", weights=tmp_path / "mobilesr.safetensors")


def test_upscalers_are_read_from_the_registry(monkeypatch):
    from deepclarity.models import ModelSpec, MobileSR, register, sr_model_names
    from deepclarity.models import registry as registry_mod

    assert enhance_mod.UPSCALERS == sr_model_names() == ("mobilesr", "mobilesr-rep", "minisrresnet", "minisrgan",
                                                          "bicubic")
    monkeypatch.setattr(registry_mod, "_REGISTRY", dict(registry_mod._REGISTRY))
    register(ModelSpec("tinysr", "sr", MobileSR, 4, "tinysr.safetensors", "a test generator"))
    assert enhance_mod.UPSCALERS == ("mobilesr", "mobilesr-rep", "minisrresnet", "minisrgan", "tinysr", "bicubic")
    from deepclarity.enhance import UPSCALERS

    assert "tinysr" in UPSCALERS
