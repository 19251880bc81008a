"""Restoring real censor mosaics box by box (deepclarity.pixelation.restore_regions) and the trimmed
block recovery it uses (recover_lowres(method="trimmed"))."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data as skdata

from deepclarity.degrade import censor_regions, jpeg
from deepclarity.pixelation import GridEstimate, grid_edges, recover_lowres, restore_regions


def _psnr(a, b) -> float:
    return float(10 * np.log10(255.0 ** 2 / np.mean((a.astype(float) - b.astype(float)) ** 2)))


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return np.ascontiguousarray(skdata.astronaut())  # 512x512


@pytest.mark.parametrize("quality", [60, 80])
def test_trimmed_block_recovery_is_robust_to_jpeg(photo, quality):
    block, phase = 8, (3, 5)
    out, _ = censor_regions(photo, [(0, 0, 512, 512)], block, phases=[phase], mode="average")
    grid = GridEstimate(8.0, (8.0, 8.0), (3.0, 5.0), 1.0)
    truth = recover_lowres(out, grid, method="center", refine=False).astype(float)  # the exact block values
    noisy = jpeg(out, quality)
    err = {m: np.abs(recover_lowres(noisy, grid, method=m, refine=False).astype(float) - truth).mean()
           for m in ("trimmed", "center")}
    assert err["trimmed"] < 2.0, err
    assert err["trimmed"] < err["center"], err


def test_trimmed_is_exact_on_lossless_blocks(photo):
    out, _ = censor_regions(photo, [(0, 0, 512, 512)], 6, phases=[(2, 4)], mode="average")
    grid = GridEstimate(6.0, (6.0, 6.0), (2.0, 4.0), 1.0)
    np.testing.assert_array_equal(recover_lowres(out, grid, method="trimmed", refine=False),
                                  recover_lowres(out, grid, method="center", refine=False))


@pytest.mark.parametrize("mode", ["average", "nearest"])
@pytest.mark.parametrize("quality", [None, 75])
def test_restored_box_is_better_and_outside_is_bit_exact(photo, mode, quality):
    box = (150, 100, 350, 300)
    out, _ = censor_regions(photo, [box], 8, phases=[(3, 5)], mode=mode)
    if quality:
        out = jpeg(out, quality)
    region = {"x": 150, "y": 100, "w": 200, "h": 200, "block_size": 8.0, "phase": (3.0, 5.0)}
    res, (report,) = restore_regions(out, [region])
    assert report.status == "restored"
    outside = np.ones(photo.shape[:2], bool)
    outside[100:300, 150:350] = False
    np.testing.assert_array_equal(res[outside], out[outside])
    inside = (slice(100, 300), slice(150, 350))
    assert _psnr(res[inside], photo[inside]) > _psnr(out[inside], photo[inside]) + 1.0


def test_each_box_on_its_own_grid(photo):
    boxes = [(40, 40, 200, 160), (260, 300, 480, 470)]
    a, _ = censor_regions(photo, boxes[:1], 6, phases=[(1, 2)], mode="average")
    b, _ = censor_regions(a, boxes[1:], 10, phases=[(7, 3)], mode="nearest")
    regions = [{"x": 40, "y": 40, "w": 160, "h": 120, "block_size": 6.0, "phase": (1, 2)},
               {"x": 260, "y": 300, "w": 220, "h": 170, "block_size": 10.0, "phase": (7, 3)}]
    res, report = restore_regions(b, regions)
    assert [r.status for r in report] == ["restored", "restored"]
    for x0, y0, x1, y1 in boxes:
        assert _psnr(res[y0:y1, x0:x1], photo[y0:y1, x0:x1]) > _psnr(b[y0:y1, x0:x1], photo[y0:y1, x0:x1])


def test_no_seam_at_the_box_border(photo):
    out, _ = censor_regions(photo, [(150, 100, 350, 300)], 8, phases=[(3, 5)], mode="average")
    res, _ = restore_regions(out, [{"x": 150, "y": 100, "w": 200, "h": 200, "block_size": 8.0, "phase": (3, 5)}])
    # Across the left side, the step is no larger than the input's own step there.
    step_in = np.abs(out[110:290, 150].astype(float) - out[110:290, 149]).mean()
    step_out = np.abs(res[110:290, 150].astype(float) - res[110:290, 149]).mean()
    assert step_out <= step_in + 1.0


def test_coarse_blocks_and_non_mosaics_are_left_alone(photo):
    out, _ = censor_regions(photo, [(100, 100, 400, 400)], 28, phases=[(0, 0)], mode="average")
    res, (r,) = restore_regions(out, [{"x": 100, "y": 100, "w": 300, "h": 300, "block_size": 28.0, "phase": (0, 0)}])
    assert r.status == "too-coarse"
    np.testing.assert_array_equal(res, out)
    # A wrong box (no mosaic there): kept, never made worse.
    res, (r,) = restore_regions(photo, [{"x": 100, "y": 100, "w": 200, "h": 200, "block_size": 8.0, "phase": (0, 0)}])
    assert r.status == "kept"
    np.testing.assert_array_equal(res, photo)
    res, (r,) = restore_regions(photo, [{"x": 0, "y": 0, "w": 50, "h": 50, "block_size": None, "phase": None}])
    assert r.status == "no-grid"


def test_upscaler_output_lands_on_the_grid(photo):
    out, _ = censor_regions(photo, [(150, 100, 350, 300)], 8, phases=[(3, 5)], mode="average")
    region = {"x": 150, "y": 100, "w": 200, "h": 200, "block_size": 8.0, "phase": (3, 5)}
    plain, _ = restore_regions(out, [region])
    x4, (r,) = restore_regions(out, [region], upscale=lambda low: np.repeat(np.repeat(low, 4, 0), 4, 1))
    assert r.status == "restored"
    # A x4 nearest enlargement carries the same block values: close to the plain result.
    assert _psnr(x4[100:300, 150:350], plain[100:300, 150:350]) > 25
    ys, xs = grid_edges(200, 200, GridEstimate(8.0, (8.0, 8.0), ((3 - 150) % 8, (5 - 100) % 8), 1.0))
    assert ys[0] == 0 and xs[-1] == 200
