"""Tests of deepclarity.metrics: rgb_to_y, psnr_y, ssim_y, lpips."""

from __future__ import annotations

import math

import numpy as np
import pytest

import deepclarity.metrics as metrics
from deepclarity.errors import ImageError, ModelError
from deepclarity.metrics import lpips, lpips_available, psnr_y, rgb_to_y, ssim_y


@pytest.fixture(scope="module")
def astronaut():
    import skimage.data

    return skimage.data.astronaut()[96:224, 160:288]  # 128x128, face and background


def _noisy(img: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(img.astype(np.float64) + rng.normal(0, sigma, img.shape), 0, 255).round().astype(np.uint8)


# ------------------------------------------------------------------------------------- rgb_to_y


def test_rgb_to_y_reference_colours():
    px = np.array([[[255, 255, 255], [0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255], [128, 128, 128]]],
                  dtype=np.uint8)
    y = rgb_to_y(px)
    assert y.dtype == np.float64 and y.shape == (1, 6)
    expected = [235.0, 16.0, 16 + 65.481, 16 + 128.553, 16 + 24.966, 16 + 219 * 128 / 255]
    np.testing.assert_allclose(y[0], expected, rtol=0, atol=1e-9)


def test_rgb_to_y_gray_equals_replicated_rgb():
    g = np.random.default_rng(0).integers(0, 256, (9, 7), dtype=np.uint8)
    rgb = np.repeat(g[..., None], 3, axis=2)
    np.testing.assert_allclose(rgb_to_y(g), rgb_to_y(rgb), rtol=0, atol=1e-12)
    np.testing.assert_allclose(rgb_to_y(g[..., None]), rgb_to_y(rgb), rtol=0, atol=1e-12)
    np.testing.assert_allclose(rgb_to_y(g), 16 + 219 * g.astype(np.float64) / 255.0, rtol=0, atol=1e-9)


@pytest.mark.parametrize("img", [np.zeros((4, 4, 3), np.float64), np.zeros((4, 4, 3), np.uint16)])
def test_rgb_to_y_rejects_non_uint8(img):
    with pytest.raises(ImageError):
        rgb_to_y(img)


def test_rgb_to_y_rejects_four_channels():
    with pytest.raises(ImageError):
        rgb_to_y(np.zeros((4, 4, 4), np.uint8))


# --------------------------------------------------------------------------------------- psnr_y


def test_psnr_identical_is_inf(astronaut):
    assert psnr_y(astronaut, astronaut.copy()) == float("inf")


@pytest.mark.parametrize("d", [1, 3, 10])
def test_psnr_known_offset(d):
    # Gray value g has Y = 16 + 219 g / 255, so a gray offset d is a Y offset of 219 d / 255 on
    # every pixel: MSE = (219 d / 255)^2.
    a = np.full((16, 16, 3), 100, np.uint8)
    b = np.full((16, 16, 3), 100 + d, np.uint8)
    mse = (219 * d / 255) ** 2
    assert psnr_y(a, b) == pytest.approx(10 * math.log10(255**2 / mse), abs=1e-9)
    assert psnr_y(b, a) == pytest.approx(psnr_y(a, b), abs=1e-12)


def test_psnr_known_mse_on_half_the_pixels():
    # Pure blue offset only changes Y by 24.966/255 per level; half the pixels off by 51 levels.
    a = np.zeros((10, 10, 3), np.uint8)
    b = a.copy()
    b[:5, :, 2] = 51
    mse = 0.5 * (24.966 * 51 / 255) ** 2
    assert psnr_y(a, b) == pytest.approx(10 * math.log10(255**2 / mse), abs=1e-9)


def test_psnr_crop_border_excludes_border(astronaut):
    b = astronaut.copy()
    b[:4] = 255 - b[:4]
    b[:, -4:] = 0
    assert math.isfinite(psnr_y(astronaut, b))
    assert psnr_y(astronaut, b, crop_border=4) == float("inf")
    # ... but only the border: an error one pixel inside it counts.
    b[4, 10] = 255 - b[4, 10]
    assert math.isfinite(psnr_y(astronaut, b, crop_border=4))
    assert psnr_y(astronaut, b, crop_border=5) == float("inf")


def test_psnr_crop_border_value_matches_manual_crop(astronaut):
    b = _noisy(astronaut, 8)
    c = 6
    assert psnr_y(astronaut, b, crop_border=c) == pytest.approx(
        psnr_y(astronaut[c:-c, c:-c], b[c:-c, c:-c]), abs=1e-12)
    assert psnr_y(astronaut, b, crop_border=c) != pytest.approx(psnr_y(astronaut, b), abs=1e-6)


def test_psnr_shape_mismatch_and_dtype():
    a = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ImageError):
        psnr_y(a, np.zeros((8, 9, 3), np.uint8))
    with pytest.raises(ImageError):
        psnr_y(a.astype(np.float32), a.astype(np.float32))
    with pytest.raises(ImageError):
        psnr_y(a, a, crop_border=4)  # nothing left


def test_psnr_gray_input_works():
    a = np.full((8, 8), 50, np.uint8)
    b = np.full((8, 8), 52, np.uint8)
    assert psnr_y(a, b) == pytest.approx(20 * math.log10(255 / (219 * 2 / 255)), abs=1e-9)


# --------------------------------------------------------------------------------------- ssim_y


def _skimage_ssim(a: np.ndarray, b: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    return float(structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False, data_range=255))


def test_ssim_identical_is_one(astronaut):
    assert ssim_y(astronaut, astronaut.copy()) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("sigma", [3, 15, 40])
def test_ssim_matches_skimage(astronaut, sigma):
    b = _noisy(astronaut, sigma, seed=sigma)
    ya, yb = rgb_to_y(astronaut), rgb_to_y(b)
    ours = ssim_y(astronaut, b)
    ref = _skimage_ssim(ya, yb)
    assert ours == pytest.approx(ref, abs=1e-6)
    assert ours < 0.999


def test_ssim_matches_skimage_with_crop_border(astronaut):
    b = _noisy(astronaut, 10)
    b[:3] = 0  # ruin the border: crop_border=3 ignores it
    c = 3
    ref = _skimage_ssim(rgb_to_y(astronaut)[c:-c, c:-c], rgb_to_y(b)[c:-c, c:-c])
    assert ssim_y(astronaut, b, crop_border=c) == pytest.approx(ref, abs=1e-6)
    assert ssim_y(astronaut, b) < ssim_y(astronaut, b, crop_border=c) - 1e-3


def test_ssim_decreases_with_noise(astronaut):
    values = [ssim_y(astronaut, _noisy(astronaut, s)) for s in (2, 10, 30, 60)]
    assert all(a > b for a, b in zip(values, values[1:])), values


def test_ssim_gray_equals_rgb_replicate(astronaut):
    g = astronaut.mean(axis=2).astype(np.uint8)
    gb = _noisy(g, 10)
    assert ssim_y(g, gb) == pytest.approx(
        ssim_y(np.repeat(g[..., None], 3, 2), np.repeat(gb[..., None], 3, 2)), abs=1e-12)


@pytest.mark.parametrize("shape, crop", [((10, 10, 3), 0), ((10, 40, 3), 0), ((20, 20, 3), 5)])
def test_ssim_too_small_raises(shape, crop):
    a = np.zeros(shape, np.uint8)
    with pytest.raises(ImageError):
        ssim_y(a, a, crop_border=crop)


def test_ssim_smallest_valid_size():
    a = np.random.default_rng(0).integers(0, 256, (11, 11, 3), dtype=np.uint8)
    b = _noisy(a, 20)
    ref = _skimage_ssim(rgb_to_y(a), rgb_to_y(b))  # single window
    assert ssim_y(a, b) == pytest.approx(ref, abs=1e-6)


def test_ssim_errors():
    a = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(ImageError):
        ssim_y(a, np.zeros((16, 17, 3), np.uint8))
    with pytest.raises(ImageError):
        ssim_y(a.astype(np.float64), a.astype(np.float64))


# ---------------------------------------------------------------------------------------- LPIPS


@pytest.fixture
def empty_torch_home(tmp_path, monkeypatch):
    import torch.hub

    home = tmp_path / "torch_home"
    home.mkdir()
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # in case something called set_dir
    monkeypatch.setattr(metrics, "_lpips_model", None)
    assert torch.hub.get_dir() == str(home / "hub")  # get_dir reads TORCH_HOME at call time
    return home


def test_lpips_unavailable_without_weights(empty_torch_home):
    pytest.importorskip("lpips")
    ok, why = lpips_available()
    assert ok is False
    assert "not available offline" in why
    assert metrics.LPIPS_BACKBONE_FILE in why
    a = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(ModelError, match="not available offline"):
        lpips(a, a)
    assert metrics._lpips_model is None


def test_lpips_shape_mismatch(empty_torch_home):
    with pytest.raises(ImageError):
        lpips(np.zeros((32, 32, 3), np.uint8), np.zeros((32, 31, 3), np.uint8))


@pytest.mark.filterwarnings("ignore:.*deprecated.*:UserWarning")  # lpips calls alexnet(pretrained=True)
def test_lpips_with_backbone_checkpoint_present(empty_torch_home, monkeypatch, request):
    pytest.importorskip("lpips")
    import socket

    import torch
    import torchvision

    torch.manual_seed(0)
    # A randomly initialised AlexNet in place of the real ImageNet checkpoint: enough to prove that
    # the file is found and loaded without any network access.
    state = torchvision.models.alexnet().state_dict()
    ckpt = empty_torch_home / "hub" / "checkpoints" / metrics.LPIPS_BACKBONE_FILE
    ckpt.parent.mkdir(parents=True)
    torch.save(state, ckpt)
    request.addfinalizer(lambda: ckpt.unlink(missing_ok=True))  # 244 MB: do not leave it behind

    def no_network(*args, **kwargs):
        raise AssertionError("LPIPS tried to open a network connection")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)

    assert lpips_available() == (True, "ok")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    y = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    same = lpips(x, x.copy())
    diff = lpips(x, y)
    assert isinstance(same, float) and isinstance(diff, float)
    assert abs(same) < 1e-6
    assert diff > 0
    # The backbone really carries the checkpoint's weights.
    model = metrics._lpips_model
    assert model is not None
    torch.testing.assert_close(model.net.slice1[0].weight, state["features.0.weight"])
    # Gray input and crop_border work and the model is cached.
    g = x[..., 0]
    assert lpips(g, g) < 1e-6
    assert lpips(x, y, crop_border=8) > 0
    assert metrics._lpips_model is model


def test_detail_ratio_orders_smooth_true_and_noisy():
    from deepclarity.degrade import imresize
    from deepclarity.metrics import detail_ratio

    from skimage import data as skdata

    hr = skdata.astronaut()[:128, :128]
    smooth = imresize(imresize(hr, 0.25), 4)
    rng = np.random.default_rng(0)
    noisy = np.clip(hr.astype(int) + rng.integers(-20, 21, hr.shape), 0, 255).astype(np.uint8)
    assert detail_ratio(hr, hr) == pytest.approx(1.0)
    assert detail_ratio(smooth, hr, 4) < 0.6 < 1.0 < detail_ratio(noisy, hr, 4)
    with pytest.raises(ImageError):
        detail_ratio(hr, hr[:64])
