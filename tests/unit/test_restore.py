"""deepclarity.restore: detect -> recover the grid -> super-resolve, with the shipped weights."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data as skdata

from deepclarity.degrade import pixelate
from deepclarity.errors import DeepClarityError
from deepclarity.io import LoadedImage
from deepclarity.metrics import psnr_y
from deepclarity.restore import Restorer


@pytest.fixture(scope="module")
def restorer() -> Restorer:
    return Restorer("mobilesr", device="cpu")


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return np.ascontiguousarray(skdata.astronaut()[:256, 64:320])


@pytest.mark.parametrize("factor", [3, 4])
def test_pixelated_photo_is_restored_and_better_than_its_input(restorer, photo, factor):
    px = pixelate(photo, factor)
    res = restorer.restore(px)
    assert res.action == "restored" and res.pixelated
    assert res.block_size == pytest.approx(factor, rel=0.02)
    assert all(abs(n - 256 / factor) <= 1 for n in res.lowres_size)  # one value per block
    assert res.image.pixels.shape == photo.shape
    gain = psnr_y(res.image.pixels, photo, 4) - psnr_y(px, photo, 4)
    assert gain > 2.0, gain  # measured 2.6 (x3) and 2.8 dB (x4) with the shipped MobileSR


def test_clean_photo_is_kept_unchanged(restorer, photo):
    res = restorer.restore(photo)
    assert res.action == "kept" and not res.pixelated and res.block_size is None
    assert np.array_equal(res.image.pixels, photo)
    rec = res.to_record()
    assert rec["action"] == "kept" and rec["size"] == "256x256"
    assert 0 <= rec["probability"] < restorer.detector.threshold


def test_outscale_and_gray_and_alpha_are_kept(restorer, photo):
    gray = pixelate(photo[..., 1], 4)
    alpha = np.full(gray.shape, 200, np.uint8)
    loaded = LoadedImage(np.repeat(gray[..., None], 3, axis=2), alpha=alpha, grayscale=True)
    res = restorer.restore(loaded, force=True, outscale=1.5)
    assert res.image.pixels.shape == (384, 384, 3) and res.image.grayscale
    assert np.array_equal(res.image.pixels[..., 0], res.image.pixels[..., 2])
    assert res.image.alpha.shape == (384, 384) and int(res.image.alpha[100, 100]) == 200


def test_bad_arguments_are_clear(restorer, photo):
    with pytest.raises(DeepClarityError, match="outscale"):
        restorer.restore(photo, outscale=0)
    with pytest.raises(DeepClarityError, match="when_clean"):
        restorer.restore(photo, when_clean="shrug")


def test_cli_restore_reports_what_it_did_per_file(tmp_path, photo, capsys):
    import json

    from deepclarity.cli import main
    from deepclarity.io import write_image

    src = tmp_path / "in"
    src.mkdir()
    write_image(src / "blocky.png", pixelate(photo, 4))
    write_image(src / "clean.png", photo)
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    code = main(["restore", "-i", str(src), "-o", str(tmp_path / "out"), "-m", "bicubic", "--format", "json", "-q"])
    out, err = capsys.readouterr()
    records = {r["input"].rsplit("/", 1)[-1]: r for r in json.loads(out)}
    assert code == 1 and "1 of 3 inputs failed" in err and "Traceback" not in err
    assert records["blocky.png"]["action"] == "restored" and abs(records["blocky.png"]["block_size"] - 4) < 0.1
    assert records["blocky.png"]["output"].endswith("blocky_restored.png")
    assert records["clean.png"]["action"] == "kept"
    assert records["broken.png"]["status"] == "error" and "broken.png" in records["broken.png"]["error"]
    assert (tmp_path / "out" / "blocky_restored.png").is_file() and not (tmp_path / "out" / "broken_restored.png").exists()
    main(["restore", "-i", str(src / "clean.png"), "-o", str(tmp_path / "forced"), "--force", "-q", "--format", "json"])
    forced = json.loads(capsys.readouterr().out)[0]
    assert forced["pixelated"] is True and forced["action"] in ("restored", "restored-region", "no-grid")


def test_partial_mosaic_is_restored_in_place_and_better_than_the_mosaic(restorer):
    from deepclarity.degrade import mosaic

    photo = np.ascontiguousarray(skdata.astronaut()[:384, :384])
    box = (100, 80, 260, 240)  # 160 px: 13 cells of 12 and a narrower last one
    censored = mosaic(photo, box, 12)
    res = restorer.restore(censored, force=True)
    assert res.action == "restored-region" and res.region == box
    assert abs(res.block_size - 12) < 0.3
    out = res.image.pixels
    x0, y0, x1, y1 = box
    outside = np.ones(photo.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(out[outside], censored[outside])  # only the mosaic is touched
    inside = (slice(y0, y1), slice(x0, x1))
    gain = psnr_y(out[inside], photo[inside]) - psnr_y(censored[inside], photo[inside])
    assert gain > 0.8, gain


def test_sample_positions_follow_the_pixelation_rule():
    from deepclarity.pixelation import GridEstimate
    from deepclarity.restore import sample_positions

    grid = GridEstimate(4.0, (4.0, 4.0), (0.0, 0.0), 1.0)
    rows, cols = sample_positions(12, 8, grid, point_sampled=True)
    # pixelate() keeps, per 4-px block, the pixel at floor(centre) = 4k + 2, whose centre is 4k + 2.5
    assert np.array_equal(rows, [2.5, 6.5, 10.5]) and np.array_equal(cols, [2.5, 6.5])
    rows, _ = sample_positions(12, 8, grid, point_sampled=False)  # a mosaic's means: the cell centres
    assert np.array_equal(rows, [2.0, 6.0, 10.0])
    odd = GridEstimate(3.0, (3.0, 3.0), (0.0, 0.0), 1.0)
    assert np.array_equal(sample_positions(9, 9, odd, point_sampled=True)[0], [1.5, 4.5, 7.5])


class _PerfectGenerator:
    """Stands in for a generator that inverts the degradation exactly: it returns the truth. It
    takes a registered model's ``name``, whose registry ``degradation`` says how the restorer reads
    its output."""

    def __init__(self, truth: np.ndarray, name: str) -> None:
        self.truth, self.name, self.seen = truth, name, []

    def upscale_array(self, low: np.ndarray) -> np.ndarray:
        self.seen.append(low.copy())
        return self.truth


@pytest.mark.parametrize("factor", [4, 2])
def test_point_trained_generator_output_is_drawn_pixel_exact(restorer, photo, monkeypatch, factor):
    # A generator trained on one pixel per 4x4 block (degradation "nearest") puts low-res pixel u at
    # output pixel 4u + 2; drawn there, a perfect generator gives the truth back exactly. (The
    # centre-aligned rule for bicubic-trained generators, 4u + 1.5, would be half a pixel off.)
    h, w = photo.shape[:2]
    truth = photo if factor == 4 else np.ascontiguousarray(photo[::-1][: h * 4 // factor])  # any 4x image
    fake = _PerfectGenerator(truth if factor == 4 else np.repeat(np.repeat(photo, 2, 0), 2, 1), "mobilesr-pixel")
    monkeypatch.setattr(restorer, "grid_upscaler", fake)
    res = restorer.restore(pixelate(photo, factor), force=True)
    assert res.model == "mobilesr-pixel" and res.action == "restored"
    assert np.array_equal(fake.seen[0], pixelate(photo, factor)[factor // 2::factor, factor // 2::factor])  # no blur
    if factor == 4:
        assert np.array_equal(res.image.pixels, photo)
    fake.name = "mobilesr"  # registered with degradation "bicubic"
    blurred = restorer.restore(pixelate(photo, 4), force=True)
    assert not np.array_equal(fake.seen[-1], photo[2::4, 2::4])  # antialiased first
    assert psnr_y(blurred.image.pixels, photo) < 60


def test_restoration_variant_is_used_for_grids_when_shipped(tmp_path, monkeypatch, photo):
    from helpers import clear_model_caches, write_random_weights

    from deepclarity.enhance import Upscaler
    from deepclarity.models import weights_dir
    from deepclarity.restore import restoration_model

    folder = tmp_path / "w"
    for name in ("detector-canny.safetensors", "detector-canny.json"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes((weights_dir() / name).read_bytes())
    write_random_weights(folder, ("mobilesr",))
    monkeypatch.setenv("DEEPCLARITY_WEIGHTS", str(folder))
    clear_model_caches()
    try:
        assert restoration_model("mobilesr") == "mobilesr" and Upscaler("mobilesr").trained_on == "bicubic"
        assert Upscaler("bicubic").trained_on is None
        write_random_weights(folder, ("mobilesr-pixel",), card={"degradation": "nearest"})
        assert restoration_model("mobilesr") == "mobilesr-pixel" and restoration_model("MobileSR") == "mobilesr-pixel"
        assert restoration_model("bicubic") == "bicubic"
        r = Restorer("mobilesr", device="cpu")
        assert r.grid_upscaler.trained_on == "nearest" and r.upscaler.name == "mobilesr"
        assert r.restore(pixelate(photo, 4)).model == "mobilesr-pixel"
        assert r.restore(photo, when_clean="enhance").model == "mobilesr"  # clean images: the plain one
        from deepclarity.degrade import mosaic

        censored = mosaic(photo, (40, 40, 200, 200), 12)  # cell means are antialiased: the plain one
        assert r.restore(censored, force=True).model == "mobilesr"
    finally:
        clear_model_caches()


def test_a_grid_that_does_not_explain_the_image_keeps_it(restorer, photo, monkeypatch):
    # A mosaic over part of the image that the region search misses: the whole-image grid does
    # not explain the image, so it is kept as it is, never "restored" with a wrong grid.
    from deepclarity import restore as restore_mod
    from deepclarity.degrade import jpeg, mosaic

    import deepclarity.detect as detect_mod

    censored = mosaic(photo, (64, 64, 192, 192), 12)
    monkeypatch.setattr(restore_mod, "find_mosaic_region", lambda *a, **k: None)
    # The detector's boxes find it (all four tiles of this small image fired, and its grid is not
    # the image's own, so a part is looked for): that box alone is rebuilt.
    res = restorer.restore(censored, force=True)
    assert res.action == "restored-region" and len(res.boxes) == 1 and res.boxes[0].status == "restored"
    x0, y0, x1, y1 = res.boxes[0].box
    inside = np.zeros(photo.shape[:2], bool)
    inside[y0:y1, x0:x1] = True
    assert np.array_equal(res.image.pixels[~inside], censored[~inside])  # nothing changed outside it
    overlap = (min(x1, 192) - max(x0, 64)) * (min(y1, 192) - max(y0, 64))
    assert overlap / ((x1 - x0) * (y1 - y0) + 128 * 128 - overlap) >= 0.7  # the mosaic's box
    # Where the detector's box is the whole image, its grid is never applied to all of it.
    monkeypatch.setattr(detect_mod, "FULL_CHECK_TILES", 0)
    res = restorer.restore(censored, force=True)
    assert res.action == "no-grid" and np.array_equal(res.image.pixels, censored)
    # Whole-image pixelation, even after JPEG, is explained by its grid and restored.
    grid_of = restore_mod.estimate_grid
    for img in (pixelate(photo, 3), jpeg(pixelate(photo, 3), 75)):
        g = restore_mod.refine_grid(img, grid_of(img))
        low = restore_mod.recover_lowres(img, g, refine=False)
        assert restore_mod.grid_fit(img, low, g) > restore_mod.MIN_GRID_FIT_DB
        assert restorer.restore(img, force=True).action == "restored"
    g = restore_mod.refine_grid(censored, grid_of(censored))
    fit = restore_mod.grid_fit(censored, restore_mod.recover_lowres(censored, g, refine=False), g)
    assert fit < restore_mod.MIN_GRID_FIT_DB


# ----------------------------------------------------------------- what restore() says it did


def test_actions_serialise_to_the_same_strings_as_before(restorer, photo):
    import json

    from deepclarity.restore import Action

    assert [a.value for a in Action] == ["restored", "restored-region", "enhanced", "kept", "no-grid"]
    for action in Action:
        assert action == action.value and str(action) == f"{action}" == action.value
        assert json.dumps({"action": action}) == json.dumps({"action": action.value})
    rec = restorer.restore(photo).to_record()
    assert type(rec["action"]) is str and rec["action"] == "kept"


def test_sharpen_amount_is_the_unsharp_mask_of_what_was_restored(restorer, photo):
    from deepclarity.enhance import sharpen
    from deepclarity.restore import Action

    px = pixelate(photo, 4)
    plain, sharp = restorer.restore(px), restorer.restore(px, sharpen_amount=1.5)
    assert plain.action == sharp.action == Action.RESTORED and (plain.sharpened, sharp.sharpened) == (0, 1.5)
    assert not np.array_equal(plain.image.pixels, sharp.image.pixels)
    assert np.array_equal(sharp.image.pixels, sharpen(plain.image.pixels, 1.5))
    # An image left as it is is not sharpened; a clean one enhanced anyway is.
    kept = restorer.restore(photo, sharpen_amount=1.5)
    assert kept.action == Action.KEPT and kept.sharpened == 0 and np.array_equal(kept.image.pixels, photo)
    enhanced = [restorer.restore(photo, when_clean="enhance", sharpen_amount=a) for a in (0, 1.5)]
    assert enhanced[1].action == Action.ENHANCED
    assert np.array_equal(enhanced[1].image.pixels, sharpen(enhanced[0].image.pixels, 1.5))
    # The restorer's own default amount; an explicit 0 turns it off.
    default = Restorer("bicubic", device="cpu", sharpen=1.5)
    unsharpened = default.restore(px, sharpen_amount=0)
    assert np.array_equal(default.restore(px).image.pixels, sharpen(unsharpened.image.pixels, 1.5))
    for bad in (-1, float("nan")):
        with pytest.raises(DeepClarityError, match="sharpening"):
            restorer.restore(px, sharpen_amount=bad)


def test_output_region_is_where_the_mosaic_was_restored_and_sharpened(restorer):
    from deepclarity.degrade import mosaic
    from deepclarity.enhance import resize_to, sharpen

    censored = mosaic(np.ascontiguousarray(skdata.astronaut()[:256, :320]), (100, 80, 196, 176), 12)
    res = restorer.restore(censored, force=True, outscale=2)
    assert res.action == "restored-region" and res.region == (100, 80, 196, 176)
    assert res.output_region == (200, 160, 392, 352)
    x0, y0, x1, y1 = res.output_region
    out, base = res.image.pixels, resize_to(censored, 512, 640)
    outside = np.ones(out.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(out[outside], base[outside]) and not np.array_equal(out[y0:y1, x0:x1], base[y0:y1, x0:x1])
    sharp = restorer.restore(censored, force=True, outscale=2, sharpen_amount=1.0)
    expected = out.copy()
    expected[y0:y1, x0:x1] = sharpen(out[y0:y1, x0:x1], 1.0)
    assert sharp.output_region == res.output_region and np.array_equal(sharp.image.pixels, expected)
    assert restorer.restore(pixelate(censored, 4), force=True).output_region is None  # whole image


@pytest.mark.parametrize("mode", ["average", "nearest"])
def test_a_jpegd_censor_box_is_restored_on_its_own_grid_and_nothing_else_changes(restorer, mode):
    # A face-sized mosaic that was JPEG'd afterwards: no exact mosaic and no image-wide grid, so
    # the detector's box is rebuilt on its own grid; every pixel outside it is the input's.
    from deepclarity.degrade import censor_regions, jpeg

    photo = np.ascontiguousarray(skdata.astronaut())
    box = (150, 60, 330, 260)
    censored, _ = censor_regions(photo, [box], 10, phases=[(3, 6)], mode=mode)
    bad = jpeg(censored, 85)
    res = restorer.restore(bad)
    assert res.action == "restored-region", (res.action, res.boxes)
    assert [b.status for b in res.boxes].count("restored") >= 1 and res.block_size == pytest.approx(10, rel=0.05)
    rx0, ry0, rx1, ry1 = res.region
    assert rx0 >= box[0] - 10 and ry0 >= box[1] - 10 and rx1 <= box[2] + 10 and ry1 <= box[3] + 10
    out = res.image.pixels
    outside = np.ones(photo.shape[:2], bool)
    for b in res.boxes:
        if b.status == "restored":
            outside[b.box[1]:b.box[3], b.box[0]:b.box[2]] = False
    assert np.array_equal(out[outside], bad[outside])
    inside = (slice(box[1], box[3]), slice(box[0], box[2]))
    gain = psnr_y(out[inside], photo[inside]) - psnr_y(bad[inside], photo[inside])
    assert gain > 0.5, gain
    assert res.to_record()["boxes"][0]["status"] in {"restored", "kept", "no-grid", "too-coarse"}


def test_blocks_too_coarse_to_restore_are_reported_and_the_image_kept(restorer):
    from deepclarity.degrade import censor_regions, jpeg

    photo = np.ascontiguousarray(skdata.astronaut())
    censored, _ = censor_regions(photo, [(120, 40, 400, 320)], 28, phases=[(5, 9)], mode="average")
    bad = jpeg(censored, 85)
    res = restorer.restore(bad)
    assert res.action == "no-grid" and np.array_equal(res.image.pixels, bad)
    assert res.too_coarse and all(b.block_size >= 24 for b in res.too_coarse)
    from deepclarity.apps.render import verdict_markdown

    line = verdict_markdown(res, "MobileSR")  # what the correction app shows
    assert "too coarse to restore" in line and "no block grid" not in line


def test_jpeg_blocking_in_flat_areas_is_not_taken_for_an_exact_mosaic():
    # A compressed image's flat areas are exactly constant 8x8 cells stepping on JPEG's grid:
    # find_mosaic_region sees a "mosaic" there, and the restorer must not rewrite it as one.
    import cv2

    from deepclarity.degrade import jpeg
    from deepclarity.pixelation import GridEstimate, estimate_grid, find_mosaic_region
    from deepclarity.restore import _on_jpeg_grid

    smooth = cv2.GaussianBlur(np.ascontiguousarray(skdata.astronaut()), (0, 0), 6)
    bad = jpeg(smooth, 50)
    grid = estimate_grid(bad)
    assert find_mosaic_region(bad, grid if grid.found else None) is not None  # what the guard is for
    res = Restorer("bicubic", device="cpu").restore(bad, force=True)
    assert res.action != "restored-region" and res.region is None
    assert _on_jpeg_grid(GridEstimate(8.0, (8.0, 8.0), (3.0, 5.0), 1.0), 85, 91)
    assert not _on_jpeg_grid(GridEstimate(8.0, (8.0, 8.0), (3.0, 5.0), 1.0), 84, 91)
    assert not _on_jpeg_grid(GridEstimate(10.0, (10.0, 10.0), (0.0, 0.0), 1.0), 0, 0)
