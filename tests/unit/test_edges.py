"""Tests of deepclarity.edges.canny_edges."""

from __future__ import annotations

import numpy as np
import pytest

from deepclarity.degrade import pixelate
from deepclarity.edges import CANNY_HIGH, CANNY_LOW, canny_edges
from deepclarity.errors import ImageError


@pytest.fixture(scope="module")
def natural():
    import skimage.data

    return skimage.data.astronaut()  # 512x512x3 uint8


def _edge_mask(out: np.ndarray) -> np.ndarray:
    assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3
    assert set(np.unique(out).tolist()) <= {0, 255}
    np.testing.assert_array_equal(out[..., 0], out[..., 1])
    np.testing.assert_array_equal(out[..., 0], out[..., 2])
    return out[..., 0] == 255


def test_output_format(natural):
    out = canny_edges(natural)
    assert out.shape == natural.shape
    mask = _edge_mask(out)
    assert 0.01 < mask.mean() < 0.5  # a natural image has some, not all, edge pixels
    assert (CANNY_LOW, CANNY_HIGH) == (50, 150)


def test_flat_image_has_no_edges():
    for value in (0, 128, 255):
        out = canny_edges(np.full((40, 50, 3), value, np.uint8))
        assert out.shape == (40, 50, 3) and out.dtype == np.uint8
        assert not out.any()


def test_vertical_step_edge():
    img = np.zeros((32, 40, 3), np.uint8)
    img[:, 20:] = 200
    mask = _edge_mask(canny_edges(img))
    ys, xs = np.nonzero(mask)
    assert xs.size > 0
    assert set(xs.tolist()) <= {19, 20}  # on the step, nowhere else
    assert len(set(ys.tolist())) >= 30  # along (nearly) the whole height
    # A weak step below the low threshold gives nothing.
    weak = np.zeros((32, 40, 3), np.uint8)
    weak[:, 20:] = 5
    assert not canny_edges(weak).any()


def test_thresholds_are_used(natural):
    many = _edge_mask(canny_edges(natural, 10, 30)).sum()
    default = _edge_mask(canny_edges(natural)).sum()
    few = _edge_mask(canny_edges(natural, 200, 400)).sum()
    assert many > default > few


def test_pixelated_edges_lie_on_block_grid(natural):
    assert natural.shape[0] % 8 == 0 and natural.shape[1] % 8 == 0
    mask = _edge_mask(canny_edges(pixelate(natural, 8)))
    ys, xs = np.nonzero(mask)
    assert xs.size > 1000

    def near_grid(v):
        r = v % 8
        return np.minimum(r, 8 - r) <= 1

    on_grid = near_grid(xs) | near_grid(ys)
    assert on_grid.mean() > 0.9
    # The original image's edges are not concentrated that way (grid pixels are ~5/8 of all).
    ys0, xs0 = np.nonzero(_edge_mask(canny_edges(natural)))
    assert (near_grid(xs0) | near_grid(ys0)).mean() < 0.75


def test_gray_input_matches_rgb_replicate(natural):
    import cv2

    gray = cv2.cvtColor(natural, cv2.COLOR_RGB2GRAY)
    out = canny_edges(gray)
    assert out.shape == gray.shape + (3,)
    _edge_mask(out)
    np.testing.assert_array_equal(out, canny_edges(natural))
    np.testing.assert_array_equal(canny_edges(gray[..., None]), out)
    np.testing.assert_array_equal(canny_edges(np.repeat(gray[..., None], 3, axis=2)), out)


def test_rgb_channel_order_uses_luma_weights():
    # Green weighs most in luma: a green step is an edge, an equally strong blue step may not be.
    g = np.zeros((32, 32, 3), np.uint8)
    g[:, 16:, 1] = 255  # luma step ~150
    b = np.zeros((32, 32, 3), np.uint8)
    b[:, 16:, 2] = 255  # luma step ~29, below CANNY_LOW
    assert canny_edges(g).any()
    assert not canny_edges(b).any()


@pytest.mark.parametrize("img", [np.zeros((16, 16, 3), np.float32), np.zeros((16, 16), np.uint16),
                                 np.zeros((16, 16, 3), np.int32)])
def test_non_uint8_rejected(img):
    with pytest.raises(ImageError):
        canny_edges(img)


@pytest.mark.parametrize("shape", [(16, 16, 4), (16, 16, 2), (16,), (2, 16, 16, 3)])
def test_bad_shape_rejected(shape):
    with pytest.raises(ImageError):
        canny_edges(np.zeros(shape, np.uint8))
