"""Tests of deepclarity.degrade: imresize, pixelate, block_starts, mosaic, jpeg.

The imresize tests check against values computed independently of the library: numbers derived
by hand from the cubic kernel, Pillow's bicubic resampler (same kernel, same antialiasing,
different border rule) and a deliberately naive per-pixel transcription of MATLAB's
``contributions``.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from PIL import Image

from deepclarity.degrade import block_starts, imresize, jpeg, mosaic, pixelate
from deepclarity.errors import ImageError

# ------------------------------------------------------------------------------------- helpers


def _keys_cubic(x: float) -> float:
    """Keys' cubic convolution kernel, a = -0.5 (written out independently of the library)."""
    a = -0.5
    x = abs(x)
    if x <= 1:
        return (a + 2) * x**3 - (a + 3) * x**2 + 1
    if x < 2:
        return a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a
    return 0.0


def _mirror(j: int, n: int) -> int:
    """MATLAB's symmetric padding for a 1-based index j on an axis of n pixels: ..., 2, 1, | 1, 2, ..., n, | n, n-1, ..."""
    while j < 1 or j > n:
        if j < 1:
            j = 1 - j
        if j > n:
            j = 2 * n + 1 - j
    return j


def _naive_weights(in_len: int, out_len: int, scale: float) -> list[list[tuple[int, float]]]:
    """Per output pixel, a list of (0-based input index, weight); a slow transcription of MATLAB's
    ``contributions`` with antialiasing on."""
    if scale < 1:
        def h(x):
            return scale * _keys_cubic(scale * x)
        width = 4.0 / scale
    else:
        h = _keys_cubic
        width = 4.0
    rows = []
    for i in range(1, out_len + 1):
        u = i / scale + 0.5 * (1 - 1 / scale)
        taps = []
        for j in range(math.floor(u - width / 2) - 1, math.ceil(u + width / 2) + 2):
            w = h(u - j)
            if w != 0.0:
                taps.append((j, w))
        total = sum(w for _, w in taps)
        acc: dict[int, float] = {}
        for j, w in taps:
            k = _mirror(j, in_len) - 1
            acc[k] = acc.get(k, 0.0) + w / total
        rows.append(sorted(acc.items()))
    return rows


def _naive_imresize(img: np.ndarray, scale: float) -> np.ndarray:
    """Float 2-D resize by ``scale``, one output pixel at a time."""
    h, w = img.shape
    oh, ow = math.ceil(h * scale), math.ceil(w * scale)
    wr = _naive_weights(h, oh, scale)
    wc = _naive_weights(w, ow, scale)
    out = np.zeros((oh, ow))
    for i in range(oh):
        for j in range(ow):
            s = 0.0
            for p, a in wr[i]:
                for q, b in wc[j]:
                    s += a * b * float(img[p, q])
            out[i, j] = s
    return out


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# ------------------------------------------------------------------------------------- imresize


def test_imresize_matches_matlab_hand_values():
    # MATLAB: imresize([1 2 3 4], [1 8]) with bicubic, antialiasing, symmetric borders.
    # First output pixel, x = 1, scale = 2:
    #   u = x/scale + 0.5*(1 - 1/scale) = 0.5 + 0.25 = 0.75
    #   taps j = -1, 0, 1, 2 (distances u-j = 1.75, 0.75, -0.25, -1.25):
    #     cubic(1.75) = -0.5*1.75^3 + 2.5*1.75^2 - 4*1.75 + 2 = -0.0234375
    #     cubic(0.75) =  1.5*0.75^3 - 2.5*0.75^2 + 1          =  0.2265625
    #     cubic(0.25) =  1.5*0.25^3 - 2.5*0.25^2 + 1          =  0.8671875
    #     cubic(1.25) = -0.5*1.25^3 + 2.5*1.25^2 - 4*1.25 + 2 = -0.0703125   (sum = 1)
    #   symmetric padding: j = -1 -> x(2) = 2, j = 0 -> x(1) = 1
    #   value = -0.0234375*2 + 0.2265625*1 + 0.8671875*1 - 0.0703125*2 = 0.90625
    expected = [0.90625, 1.1796875, 1.7265625, 2.25, 2.75, 3.2734375, 3.8203125, 4.09375]
    out = imresize(np.array([[1.0, 2.0, 3.0, 4.0]]), size=(1, 8))
    assert out.shape == (1, 8)
    np.testing.assert_allclose(out[0], expected, rtol=0, atol=1e-12)
    # The same numbers column-wise (the row axis uses the same code path).
    out_t = imresize(np.array([[1.0], [2.0], [3.0], [4.0]]), size=(8, 1))
    np.testing.assert_allclose(out_t[:, 0], expected, rtol=0, atol=1e-12)


def test_imresize_uint8_rounds_not_truncates():
    # Same input as above as uint8: 0.90625 -> 1, 1.7265625 -> 2, 2.75 -> 3, 3.8203125 -> 4.
    out = imresize(np.array([[1, 2, 3, 4]], dtype=np.uint8), size=(1, 8))
    assert out.dtype == np.uint8
    assert out[0].tolist() == [1, 1, 2, 2, 3, 3, 4, 4]


def _interior(in_len: int, out_len: int) -> np.ndarray:
    """Output pixels whose kernel support lies entirely inside the input (no border rule used)."""
    s = out_len / in_len
    radius = 2.0 * max(1.0, 1.0 / s)
    c = (np.arange(out_len) + 0.5) / s - 0.5  # 0-based input coordinate of each output centre
    return (c - radius >= 0) & (c + radius <= in_len - 1)


@pytest.mark.parametrize("scale", [4, 3, 2, 0.5, 0.25])
def test_imresize_interior_matches_pillow_bicubic(rng, scale):
    h, w = 48, 40
    img = rng.random((h, w)).astype(np.float32)
    oh, ow = int(h * scale), int(w * scale)
    ours = imresize(img.astype(np.float64), size=(oh, ow))
    pil = np.asarray(Image.fromarray(img, mode="F").resize((ow, oh), Image.BICUBIC), dtype=np.float64)
    assert ours.shape == pil.shape == (oh, ow)
    rows, cols = _interior(h, oh), _interior(w, ow)
    assert rows.sum() >= oh // 2 and cols.sum() >= ow // 2  # the comparison covers a real area
    diff = np.abs(ours - pil)[rows][:, cols]
    assert diff.max() < 1e-4
    # Sanity: the data is not so smooth that any interpolator would pass.
    assert np.abs(pil - np.asarray(Image.fromarray(img, mode="F").resize((ow, oh), Image.BILINEAR))).max() > 1e-2


@pytest.mark.parametrize(
    "shape, scale",
    [((23, 18), 0.25), ((6, 5), 4), ((13, 11), 0.3), ((7, 5), 2.5), ((9, 10), 0.5)],
)
def test_imresize_matches_naive_matlab_contributions(rng, shape, scale):
    img = rng.random(shape) * 255
    expected = _naive_imresize(img, scale)
    ours = imresize(img, scale)
    assert ours.shape == expected.shape == (math.ceil(shape[0] * scale), math.ceil(shape[1] * scale))
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-9)


def test_imresize_uint8_step_edge_clips_without_wraparound():
    img = np.zeros((8, 8), dtype=np.uint8)
    img[:, 4:] = 255
    f = imresize(img.astype(np.float64), 4)
    # The cubic kernel overshoots on both sides of a step, and float output is left unclipped.
    assert f.dtype == np.float64
    assert f.min() < -1 and f.max() > 256
    u = imresize(img, 4)
    assert u.dtype == np.uint8 and u.shape == (32, 32)
    assert u.min() == 0 and u.max() == 255
    np.testing.assert_array_equal(u[f < 0], 0)        # wraparound would give ~250
    np.testing.assert_array_equal(u[f > 255], 255)    # wraparound would give ~3
    np.testing.assert_array_equal(u, np.clip(np.floor(f + 0.5), 0, 255).astype(np.uint8))


def test_imresize_uint8_equals_rounded_float_result(rng):
    img = rng.integers(0, 256, (20, 17, 3), dtype=np.uint8)
    for scale in (0.5, 0.3, 2.5):
        f = imresize(img.astype(np.float64), scale)
        u = imresize(img, scale)
        assert u.dtype == np.uint8
        np.testing.assert_array_equal(u, np.clip(np.floor(f + 0.5), 0, 255).astype(np.uint8))
        # Truncation would differ somewhere.
        assert (u != np.clip(np.floor(f), 0, 255)).any()


def test_imresize_uint16():
    img = np.zeros((6, 6), dtype=np.uint16)
    img[:, 3:] = 65535
    u = imresize(img, 3)
    assert u.dtype == np.uint16 and u.shape == (18, 18)
    assert u.min() == 0 and u.max() == 65535
    f = imresize(img.astype(np.float64), 3)
    np.testing.assert_array_equal(u, np.clip(np.floor(f + 0.5), 0, 65535).astype(np.uint16))
    # Mid-range values are kept with 16-bit precision (not squashed to 8 bits).
    ramp = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).astype(np.uint16)
    r = imresize(ramp, 0.5)
    assert r.dtype == np.uint16 and r.max() > 255


def test_imresize_float_dtype_kept():
    img = np.random.default_rng(0).random((10, 10)).astype(np.float32)
    out = imresize(img, 0.5)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, imresize(img.astype(np.float64), 0.5), atol=1e-6)


@pytest.mark.parametrize("shape, scale, expected", [
    ((13, 11), 2.5, (33, 28)),
    ((13, 11), 0.5, (7, 6)),
    ((100, 75), 0.25, (25, 19)),
    ((7, 9), 1 / 3, (3, 3)),
])
def test_imresize_output_size_is_ceil(shape, scale, expected):
    out = imresize(np.zeros(shape), scale)
    assert out.shape == expected
    assert expected == (math.ceil(shape[0] * scale), math.ceil(shape[1] * scale))


@pytest.mark.parametrize("scale", [0.3, 0.5, 2.5, 4])
def test_imresize_constant_stays_constant(scale):
    u = np.full((15, 12, 3), 77, dtype=np.uint8)
    out = imresize(u, scale)
    assert (out == 77).all()
    f = np.full((15, 12), 0.3)
    np.testing.assert_allclose(imresize(f, scale), 0.3, rtol=0, atol=1e-12)


def test_imresize_2d_and_3d_agree(rng):
    img = rng.integers(0, 256, (16, 12, 3), dtype=np.uint8)
    out = imresize(img, 0.5)
    assert out.shape == (8, 6, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], imresize(img[..., c], 0.5))
    out_size = imresize(img, size=(5, 20))
    assert out_size.shape == (5, 20, 3)


def test_imresize_of_a_thin_strip_needs_little_memory():
    # A 1 x 200000 image is within a 2 MP upload limit; a dense per-axis matrix would need
    # 800000 x 200000 floats (over a terabyte). Sparse, the whole resize stays under a gigabyte.
    import tracemalloc

    strip = np.tile(np.arange(256, dtype=np.uint8), 782)[None, :200000]
    tracemalloc.start()
    try:
        out = imresize(strip, 4)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert out.shape == (4, 800000)
    assert peak < 1e9, peak  # measured 0.34 GB
    np.testing.assert_array_equal(imresize(strip[:, 1000:1400], 4)[:, 40:-40], out[:, 4040:5560])  # local kernel


def test_imresize_size_and_scale_errors():
    img = np.zeros((8, 8))
    with pytest.raises(ValueError):
        imresize(img, 0.5, size=(4, 4))
    with pytest.raises(ValueError):
        imresize(img)
    with pytest.raises(ValueError):
        imresize(img, 0)
    with pytest.raises(ValueError):
        imresize(img, size=(0, 4))


@pytest.mark.parametrize("bad", [np.zeros((0, 5)), np.zeros((5, 0, 3)), np.zeros(5), np.zeros((2, 2, 2, 2))])
def test_imresize_bad_shape_is_image_error(bad):
    with pytest.raises(ImageError):
        imresize(bad, 2)


# ------------------------------------------------------------------------------------- pixelate


def test_pixelate_integer_factor_blocks(rng):
    img = rng.integers(0, 256, (32, 24, 3), dtype=np.uint8)
    out = pixelate(img, 4)
    assert out.shape == img.shape and out.dtype == img.dtype
    for by in range(0, 32, 4):
        for bx in range(0, 24, 4):
            block = out[by:by + 4, bx:bx + 4]
            assert (block == block[0, 0]).all()
            # Pixel-centre nearest neighbour samples the pixel at offset 2 of each block.
            np.testing.assert_array_equal(block[0, 0], img[by + 2, bx + 2])
    # Adjacent blocks differ (random data), so the grid really is aligned at 0 with period 4.
    assert (out[:, 3] != out[:, 4]).any() and (out[3] != out[4]).any()


def _exact_block_starts(length: int, factor: float) -> list[int]:
    n = max(1, round(length / factor))
    cells = [math.floor(Fraction(2 * y + 1, 2) * n / length) for y in range(length)]
    return [y for y in range(length) if y == 0 or cells[y] != cells[y - 1]]


def test_block_starts_fractional_factor_alternates():
    starts = block_starts(20, 2.5)
    assert starts.tolist() == [0, 2, 5, 7, 10, 12, 15, 17]
    widths = np.diff(np.append(starts, 20))
    assert widths.tolist() == [2, 3] * 4
    for length, factor in [(20, 2.5), (37, 3.7), (53, 1.5), (64, 8), (10, 1), (5, 40)]:
        assert block_starts(length, factor).tolist() == _exact_block_starts(length, factor)


def test_pixelate_fractional_blocks_follow_block_starts(rng):
    img = rng.integers(0, 256, (20, 20), dtype=np.uint8)
    out = pixelate(img, 2.5)
    starts = block_starts(20, 2.5)
    # Row/column changes happen exactly at the block starts.
    changes_x = np.flatnonzero((out[:, 1:] != out[:, :-1]).any(axis=0)) + 1
    changes_y = np.flatnonzero((out[1:] != out[:-1]).any(axis=1)) + 1
    assert changes_x.tolist() == starts[1:].tolist()
    assert changes_y.tolist() == starts[1:].tolist()


def _pil_pixelate(img: np.ndarray, factor: float) -> np.ndarray:
    h, w = img.shape[:2]
    nw, nh = max(1, round(w / factor)), max(1, round(h / factor))
    pil = Image.fromarray(img).resize((nw, nh), Image.NEAREST).resize((w, h), Image.NEAREST)
    return np.asarray(pil)


def _tie_free(length: int, factor: float) -> np.ndarray:
    """Output pixels whose pixel-centre nearest-neighbour choice involves no inexact .5 tie.

    At a tie (a pixel centre mapping exactly onto a cell boundary) the exact rule
    ``floor((y + 0.5) * n / L)`` and Pillow's floating-point accumulation may pick different
    neighbours unless the step ratio is a dyadic fraction (then Pillow's sums are exact too);
    everywhere else they must agree."""
    n = max(1, round(length / factor))

    def inexact(num: int, den: int) -> bool:
        d = Fraction(num, den).denominator
        return d & (d - 1) != 0  # not a power of two: not exact in binary floating point

    down_risky = inexact(length, n)
    up_risky = inexact(n, length)
    down_tie = [down_risky and ((2 * k + 1) * length) % (2 * n) == 0 for k in range(n)]
    ok = []
    for y in range(length):
        up_tie = up_risky and ((2 * y + 1) * n) % (2 * length) == 0
        cell = ((2 * y + 1) * n) // (2 * length)
        ok.append(not up_tie and not down_tie[cell] and not (up_risky and cell > 0 and down_tie[cell - 1]))
    return np.array(ok)


@pytest.mark.parametrize("shape", [(37, 53, 3), (48, 60, 3), (31, 64)])
@pytest.mark.parametrize("factor", [1.5, 2.5, 3.7, 4, 7])
def test_pixelate_matches_pillow_nearest_round_trip(rng, shape, factor):
    img = rng.integers(0, 256, shape, dtype=np.uint8)
    ours = pixelate(img, factor)
    ref = _pil_pixelate(img, factor)
    assert ours.shape == ref.shape
    rows, cols = _tie_free(shape[0], factor), _tie_free(shape[1], factor)
    assert rows.mean() > 0.3 and cols.mean() > 0.3  # the comparison is not vacuous
    np.testing.assert_array_equal(ours[rows][:, cols], ref[rows][:, cols])


@pytest.mark.parametrize("shape, factor", [((1, 7), 3.7), ((1, 6), 1.5)])
def test_pixelate_ties_follow_exact_arithmetic_not_pillows_float_stepping(shape, factor):
    """At exact half-pixel ties Pillow's float accumulation (xo = s/2; xo += s) lands just below
    the whole number; we use exact integer arithmetic, as documented. Pin the difference so a
    change of convention is a deliberate one."""
    img = np.arange(shape[-1], dtype=np.uint8).reshape(shape)  # distinct values: no coincidences
    ours, pil = pixelate(img, factor), _pil_pixelate(img, factor)
    assert not np.array_equal(ours, pil)
    length = shape[-1]
    n = round(length / factor)
    y = np.arange(length)
    cell = ((2 * y + 1) * n) // (2 * length)
    up_tie = ((2 * y + 1) * n) % (2 * length) == 0  # (y + 0.5) * n / L is a whole number
    down_tie = ((2 * np.arange(n) + 1) * length) % (2 * n) == 0  # (k + 0.5) * L / n is whole
    tie = up_tie | down_tie[cell]
    differs = (ours != pil).reshape(-1, shape[-1]).any(axis=0)
    assert differs.any() and not (differs & ~tie).any()


def test_pixelate_factor_one_is_identity(rng):
    img = rng.integers(0, 256, (17, 23, 3), dtype=np.uint8)
    np.testing.assert_array_equal(pixelate(img, 1), img)
    np.testing.assert_array_equal(pixelate(img, 1.0), img)


@pytest.mark.parametrize("factor", [0.5, 0, -2, (1, 0.9), (0.9, 2)])
def test_pixelate_factor_below_one_raises(factor):
    with pytest.raises(ValueError):
        pixelate(np.zeros((8, 8), dtype=np.uint8), factor)


def test_pixelate_tuple_factor(rng):
    img = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    out = pixelate(img, (2, 4))
    rows = np.arange(16) // 2 * 2 + 1  # block of 2 rows samples its 2nd row
    cols = np.arange(16) // 4 * 4 + 2  # block of 4 columns samples its 3rd column
    np.testing.assert_array_equal(out, img[rows][:, cols])
    # (fy, fx) order: swapping the factors gives a different result.
    assert not np.array_equal(out, pixelate(img, (4, 2)))
    np.testing.assert_array_equal(pixelate(img, (3, 3)), pixelate(img, 3))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("shape", [(19, 22), (19, 22, 3), (19, 22, 1), (19, 22, 4)])
def test_pixelate_preserves_dtype_shape_and_values(dtype, shape):
    rng = np.random.default_rng(7)
    img = (rng.random(shape) * 1000).astype(dtype)
    out = pixelate(img, 2.5)
    assert out.shape == img.shape and out.dtype == img.dtype
    # Every output pixel is a copy of one input pixel (no interpolation).
    pixels_in = {tuple(np.atleast_1d(p)) for p in img.reshape(-1, *shape[2:])}
    pixels_out = {tuple(np.atleast_1d(p)) for p in out.reshape(-1, *shape[2:])}
    assert pixels_out <= pixels_in
    assert len(pixels_out) < len(pixels_in)  # and it did pixelate


# --------------------------------------------------------------------------------------- mosaic


def _expected_mosaic(img, box, block):
    h, w = img.shape[:2]
    x0, y0, x1, y1 = box
    x0, x1 = max(0, min(x0, w)), max(0, min(x1, w))
    y0, y1 = max(0, min(y0, h)), max(0, min(y1, h))
    cells = []
    for cy in range(y0, y1, block):
        for cx in range(x0, x1, block):
            sl = (slice(cy, min(cy + block, y1)), slice(cx, min(cx + block, x1)))
            cells.append((sl, img[sl].astype(np.float64).mean(axis=(0, 1))))
    return (x0, y0, x1, y1), cells


def test_mosaic_cells_are_rounded_means_and_outside_unchanged(rng):
    img = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    before = img.copy()
    box, block = (7, 5, 30, 27), 6  # 23 x 22 px: the last column/row of cells is partial
    out = mosaic(img, box, block)
    np.testing.assert_array_equal(img, before)  # input untouched
    assert out.shape == img.shape and out.dtype == img.dtype
    (x0, y0, x1, y1), cells = _expected_mosaic(img, box, block)
    outside = np.ones(img.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    np.testing.assert_array_equal(out[outside], img[outside])
    fracs = []
    sizes = set()
    for sl, mean in cells:
        cell = out[sl]
        sizes.add(cell.shape[:2])
        assert (cell == cell[0, 0]).all()
        assert np.all(np.abs(cell[0, 0].astype(np.float64) - mean) <= 0.5)
        fracs.extend((mean - np.floor(mean)).tolist())
    assert {(6, 6), (6, 5), (4, 6), (4, 5)} <= sizes  # partial cells on the right and bottom
    # Some means have a fractional part > 0.5, so truncation instead of rounding would fail above.
    assert max(fracs) > 0.5


def test_mosaic_partial_cell_uses_only_its_pixels():
    img = np.zeros((10, 10), dtype=np.uint8)
    img[:, 8:] = 200  # columns 8, 9
    out = mosaic(img, (0, 0, 10, 10), 4)  # cells at x = 0..3, 4..7, 8..9 (partial, width 2)
    assert (out[:, 8:] == 200).all()
    assert (out[:, :8] == 0).all()


def test_mosaic_gray_and_float():
    img = np.arange(36, dtype=np.float64).reshape(6, 6)
    out = mosaic(img, (0, 0, 6, 6), 3)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out[:3, :3], img[:3, :3].mean())  # 7.0
    np.testing.assert_allclose(out[3:, 3:], img[3:, 3:].mean())  # 28.0
    img2 = np.array([[0, 1], [1, 1]], dtype=np.float64)
    assert mosaic(img2, (0, 0, 2, 2), 2)[0, 0] == 0.75  # float means are not rounded


def test_mosaic_box_clipped_to_image(rng):
    img = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    np.testing.assert_array_equal(mosaic(img, (-10, -7, 15, 12), 5), mosaic(img, (0, 0, 15, 12), 5))
    a = mosaic(img, (20, 10, 1000, 1000), 4)
    np.testing.assert_array_equal(a, mosaic(img, (20, 10, 30, 20), 4))
    assert not np.array_equal(a, img)


@pytest.mark.parametrize("box", [(10, 10, 10, 20), (20, 5, 10, 15), (5, 12, 15, 12), (100, 100, 200, 200), (-9, -9, -1, -1)])
def test_mosaic_empty_box_returns_unchanged_copy(rng, box):
    img = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    before = img.copy()
    out = mosaic(img, box, 4)
    np.testing.assert_array_equal(out, img)
    assert not np.shares_memory(out, img)
    out[...] = 0
    np.testing.assert_array_equal(img, before)


def test_mosaic_block_below_one_raises():
    with pytest.raises(ValueError):
        mosaic(np.zeros((8, 8), np.uint8), (0, 0, 8, 8), 0)


# ----------------------------------------------------------------------------------------- jpeg


@pytest.fixture(scope="module")
def astronaut():
    import skimage.data

    return skimage.data.astronaut()


@pytest.mark.parametrize("shape", [(64, 48, 3), (64, 48), (64, 48, 1)])
def test_jpeg_preserves_shape_and_dtype(astronaut, shape):
    img = astronaut[100:164, 200:248]
    if len(shape) == 2:
        img = img.mean(axis=2).astype(np.uint8)
    elif shape[2] == 1:
        img = img.mean(axis=2).astype(np.uint8)[..., None]
    out = jpeg(img, 50)
    assert out.shape == shape and out.dtype == np.uint8
    assert not np.array_equal(out, img)  # it really went through a lossy codec
    assert _psnr(out, img) > 25


def test_jpeg_lower_quality_more_error(astronaut):
    img = astronaut[:256, :256]
    psnrs = [_psnr(jpeg(img, q), img) for q in (95, 75, 50, 25, 10)]
    assert all(a > b for a, b in zip(psnrs, psnrs[1:])), psnrs
    assert psnrs[0] > 35 and psnrs[-1] < psnrs[0] - 5


def test_jpeg_blocking_at_low_quality(astronaut):
    def boundary_ratio(x):
        g = x.astype(np.float64).mean(axis=2)
        d = np.abs(np.diff(g, axis=1))  # d[:, c] = |g[:, c+1] - g[:, c]|
        c = np.arange(d.shape[1])
        return d[:, c % 8 == 7].mean() / d[:, c % 8 != 7].mean()

    assert boundary_ratio(astronaut) < 1.1  # no grid in the original
    assert boundary_ratio(jpeg(astronaut, 10)) > 1.5  # strong 8x8 blocking


@pytest.mark.parametrize("q", [0, -5, 101, 1000])
def test_jpeg_quality_out_of_range(q):
    with pytest.raises(ValueError):
        jpeg(np.zeros((16, 16, 3), np.uint8), q)


@pytest.mark.parametrize("img", [np.zeros((16, 16, 3), np.float32), np.zeros((16, 16), np.uint16),
                                 np.zeros((16, 16, 4), np.uint8)])
def test_jpeg_bad_input_is_image_error(img):
    with pytest.raises(ImageError):
        jpeg(img, 50)


@pytest.mark.parametrize("shape, factor", [((37, 53, 3), 1.5), ((37, 53, 3), 2.5), ((37, 53, 3), 4),
                                           ((37, 53, 3), 5), ((48, 60, 3), 4), ((64, 40), 8)])
def test_pixelate_equals_pillow_when_no_ties(shape, factor):
    # Sizes whose block counts give no inexact tie: the whole image must match Pillow.
    assert _tie_free(shape[0], factor).all() and _tie_free(shape[1], factor).all()
    img = np.random.default_rng(11).integers(0, 256, shape, dtype=np.uint8)
    np.testing.assert_array_equal(pixelate(img, factor), _pil_pixelate(img, factor))
