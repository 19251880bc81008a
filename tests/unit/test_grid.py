"""Block-grid estimation (``deepclarity.pixelation.grid``): block size and phase of pixelated images.

Images are scikit-image's bundled samples (never the shared datasets). The true block size of an
axis of ``L`` pixels pixelated by ``f`` is ``L / round(L / f)`` (what :func:`degrade.pixelate`
produces), and the true block starts are :func:`degrade.block_starts`.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import noise
from skimage import data as skdata

from deepclarity.degrade import block_starts, jpeg, mosaic, pixelate
from deepclarity.pixelation import GridEstimate, boundary_profile, estimate_grid, estimate_period

SAMPLES = {"astronaut": skdata.astronaut, "chelsea": skdata.chelsea, "coffee": skdata.coffee}
FACTORS = (2, 3, 4, 6, 8, 1.5, 2.5, 3.3)

_CACHE: dict = {}


def sample(name: str) -> np.ndarray:
    if name not in _CACHE:
        _CACHE[name] = SAMPLES[name]() if name in SAMPLES else getattr(skdata, name)()
    return _CACHE[name]


def true_block(length: int, factor: float) -> float:
    return length / round(length / factor)


def estimate(name: str, factor, quality: int | None = None) -> GridEstimate:
    """Cached ``estimate_grid`` of sample ``name`` pixelated by ``factor`` (then JPEG'd)."""
    key = (name, factor, quality)
    if key not in _CACHE:
        img = pixelate(sample(name), factor)
        if quality is not None:
            img = jpeg(img, quality)
        _CACHE[key] = estimate_grid(img)
    return _CACHE[key]


def circular_distance(a: float, b: float, period: float) -> float:
    d = (a - b) % period
    return min(d, period - d)


def _cases() -> list:
    return [pytest.param(name, f, id=f"{name}-x{f}") for name in SAMPLES for f in FACTORS]


# --------------------------------------------------------------------------------- block size


@pytest.mark.parametrize("name, factor", _cases())
def test_block_size_within_5_percent(name, factor):
    h, w = sample(name).shape[:2]
    g = estimate(name, factor)
    assert g.found, f"no grid found (confidence {g.confidence:.3f})"
    bx, by = g.block_xy
    tx, ty = true_block(w, factor), true_block(h, factor)
    assert bx == pytest.approx(tx, rel=0.05), (g.block_xy, (tx, ty))
    assert by == pytest.approx(ty, rel=0.05), (g.block_xy, (tx, ty))
    assert g.block_size == pytest.approx((bx + by) / 2)
    assert 0.0 < g.confidence <= 1.0 + 1e-6


@pytest.mark.parametrize("name, factor", _cases())
def test_phase_matches_block_starts(name, factor):
    """The first block boundary (``block_starts[1]``), modulo the block size, within +-1 px."""
    h, w = sample(name).shape[:2]
    g = estimate(name, factor)
    assert g.found
    for length, phase in ((w, g.phase_xy[0]), (h, g.phase_xy[1])):
        starts = block_starts(length, factor)
        period = true_block(length, factor)
        assert circular_distance(phase, starts[1], period) <= 1.0 + 1e-6, (phase, starts[:3], period)


@pytest.mark.parametrize("name, factor", [("coffee", 4), ("coffee", 8), ("astronaut", 4), ("astronaut", 8)])
def test_phase_is_the_block_start_for_integer_factors(name, factor):
    """Integer factors dividing the image: blocks start exactly at multiples of the factor."""
    h, w = sample(name).shape[:2]
    assert h % factor == 0 and w % factor == 0
    g = estimate(name, factor)
    for phase in g.phase_xy:
        assert circular_distance(phase, 0.0, factor) <= 0.5, g.phase_xy


@pytest.mark.parametrize("name, factor", _cases())
def test_block_size_after_jpeg_within_10_percent(name, factor):
    h, w = sample(name).shape[:2]
    g = estimate(name, factor, quality=75)
    assert g.found, f"no grid found after JPEG (confidence {g.confidence:.3f})"
    assert g.block_xy[0] == pytest.approx(true_block(w, factor), rel=0.10), g.block_xy
    assert g.block_xy[1] == pytest.approx(true_block(h, factor), rel=0.10), g.block_xy


# ----------------------------------------------------------------------------- natural images


@pytest.mark.parametrize("name", ["astronaut", "chelsea", "coffee", "rocket", "camera"])
def test_natural_image_has_no_grid(name):
    g = estimate_grid(sample(name))
    assert not g.found, f"{name}: spurious grid {g.block_xy} (confidence {g.confidence:.3f})"
    assert g.block_xy is None and g.phase_xy is None
    assert 0.0 <= g.confidence <= 1.0


# ------------------------------------------------------------------------------------- mosaic


@pytest.mark.parametrize("name, box", [
    ("astronaut", (100, 100, 400, 400)),
    ("astronaut", (0, 0, 256, 512)),
    ("astronaut", (50, 200, 300, 450)),
    ("coffee", (300, 60, 580, 340)),
])
def test_mask_restricts_estimation_to_mosaic(name, box):
    img = sample(name)
    censored = mosaic(img, box, 12)
    x0, y0, x1, y1 = box
    mask = np.zeros(img.shape[:2], bool)
    mask[y0:y1, x0:x1] = True
    g = estimate_grid(censored, mask)
    assert g.found
    assert g.block_xy[0] == pytest.approx(12, rel=0.05) and g.block_xy[1] == pytest.approx(12, rel=0.05), g
    # Outside the mask, natural content dilutes the evidence: the mask must not make things worse.
    assert g.confidence >= estimate_grid(censored).confidence


def test_mask_ignores_a_differently_pixelated_region():
    """Left half pixelated by 4, right half by 7: the mask decides which grid is measured."""
    img = sample("coffee")  # 400 x 600
    mixed = np.concatenate([pixelate(img[:, :300], 4), pixelate(img[:, 300:], 7)], axis=1)
    left = np.zeros(img.shape[:2], bool)
    left[:, :300] = True
    g_left = estimate_grid(mixed, left)
    g_right = estimate_grid(mixed, ~left)
    assert g_left.block_xy[0] == pytest.approx(4, rel=0.05), g_left
    assert g_right.block_xy[0] == pytest.approx(true_block(300, 7), rel=0.05), g_right


# --------------------------------------------------------------------------------- non-square


@pytest.mark.parametrize("name, fy, fx", [
    ("coffee", 2, 4), ("coffee", 4, 2), ("coffee", 3, 6), ("coffee", 6, 3), ("coffee", 2.5, 5),
    ("astronaut", 2, 4), ("astronaut", 8, 2.5),
])
def test_non_square_blocks_give_separate_sizes(name, fy, fx):
    h, w = sample(name).shape[:2]
    g = estimate_grid(pixelate(sample(name), (fy, fx)))
    assert g.found
    bx, by = g.block_xy
    assert bx == pytest.approx(true_block(w, fx), rel=0.05), g.block_xy
    assert by == pytest.approx(true_block(h, fy), rel=0.05), g.block_xy
    assert g.block_size == pytest.approx((bx + by) / 2)


# ----------------------------------------------------------------------------- tiny / degenerate


@pytest.mark.parametrize("shape", [(10, 10, 3), (10, 10), (2, 2), (2, 2, 3), (4, 4, 3), (3, 50, 3),
                                   (50, 3, 3), (2, 50, 3), (5, 400, 3), (10, 10, 1), (10, 10, 4)])
def test_tiny_images_do_not_crash(shape):
    g = estimate_grid(noise(shape, seed=3))
    assert isinstance(g, GridEstimate)
    assert 0.0 <= g.confidence <= 1.0 + 1e-6
    assert g.found == (g.block_xy is not None) == (g.phase_xy is not None)


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 1), (1, 50, 3), (50, 1, 3)])
def test_one_pixel_axis_does_not_crash(shape):
    g = estimate_grid(noise(shape, seed=3))
    assert not g.found


@pytest.mark.parametrize("img", [
    pytest.param(noise((10, 10, 3), seed=0), id="noise-10x10"),
    pytest.param(noise((7, 7, 3), seed=0), id="noise-7x7"),
    pytest.param(skdata.astronaut()[200:210, 200:210], id="astronaut-crop-10x10"),
    pytest.param(np.full((10, 10, 3), 7, np.uint8), id="flat-10x10"),
    pytest.param(noise((4, 4, 3), seed=0), id="noise-4x4"),
    pytest.param(noise((5, 5, 3), seed=0), id="noise-5x5"),
    pytest.param(noise((2, 50, 3), seed=0), id="noise-2x50"),
])
def test_tiny_unpixelated_images_are_not_found(img):
    g = estimate_grid(img)
    assert not g.found, f"spurious grid {g.block_xy} (confidence {g.confidence:.3f})"


# ---------------------------------------------------------------------------------- internals


def test_boundary_profile_spikes_on_block_boundaries():
    img = pixelate(sample("coffee"), 4)
    prof = boundary_profile(img, 1)
    assert prof.shape == (img.shape[1] - 1,)
    assert np.all(prof >= 0)
    on = prof[3::4].sum()  # boundary between pixel 4k+3 and 4k+4
    assert on / prof.sum() > 0.99


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("axis", [0, 1])
def test_boundary_profile_8_bit_path_equals_float_path(axis, masked):
    gray = cv2.cvtColor(pixelate(sample("coffee"), 3.3), cv2.COLOR_RGB2GRAY)
    gray = np.concatenate([gray, gray], axis=1)  # wider than 512: the strided path too
    mask = None
    if masked:
        mask = np.zeros(gray.shape, bool)
        mask[40:300, 100:700] = True
    fast = boundary_profile(gray, axis, mask)
    exact = boundary_profile(gray.astype(np.float32), axis, mask)
    assert fast.shape == exact.shape
    assert np.array_equal(np.isnan(fast), np.isnan(exact))
    assert np.array_equal(fast[~np.isnan(fast)], exact[~np.isnan(exact)])
    assert masked == bool(np.isnan(fast).any())


def test_estimate_period_on_a_synthetic_comb():
    prof = np.zeros(300)
    prof[4::5] = 1.0
    period, phase, conf = estimate_period(prof)
    assert period == pytest.approx(5.0, abs=0.05)
    assert conf > 0.9
    assert circular_distance(phase + 1, 0.0, 5.0) <= 1.0


def test_estimate_period_flat_profile_is_none():
    assert estimate_period(np.zeros(100))[0] is None
    assert estimate_period(np.zeros(3))[0] is None


def test_grayscale_and_color_agree():
    img = pixelate(sample("coffee"), 4)
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    a, b = estimate_grid(img), estimate_grid(gray)
    assert a.block_xy == pytest.approx(b.block_xy, abs=0.02)
