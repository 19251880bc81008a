"""The correction app's Restore mode (detect + de-pixelate + super-resolve): :func:`correct_image` /
:func:`restore_image`,
the verdict line and region map shown beside the result, the mode switch, and the ``/correct``
endpoint through ``gradio_client`` against ``correct_app.py`` launched as a subprocess (slow).

Weights are randomly initialised ones in a temporary ``$DEEPCLARITY_WEIGHTS``, so a test that
needs a particular verdict chooses it: :meth:`deepclarity.detect.Detector.detect` is monkeypatched
in-process, and the subprocess gets a detector card whose threshold is 0 (every image is called
pixelated). One test copies the shipped detector (``weights/detector-canny.*``) for a real verdict.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

gr = pytest.importorskip("gradio")

from deepclarity import detect as detect_mod  # noqa: E402
from deepclarity import restore as restore_mod  # noqa: E402
from deepclarity.apps.correct_app import (  # noqa: E402
    AUTO_OUTSCALE, DEFAULT_OUTSCALE, MODE_LABELS, build_correct_app, correct_image, mode_settings,
)
from deepclarity.apps.render import REGION_BOX_RGB, display_box, restored_download_name  # noqa: E402
from deepclarity.degrade import mosaic, pixelate  # noqa: E402
from deepclarity.detect import Detection  # noqa: E402
from helpers import clear_model_caches, start_app, stop_app, wait_for_http, write_random_weights  # noqa: E402
from deepclarity.models import get_spec  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DETECTORS = ("detector-canny", "detector-rgb")


# ------------------------------------------------------------------------------------- fixtures


def _write_weights(folder: Path, *, threshold: float) -> Path:
    return write_random_weights(folder, ("mobilesr", *DETECTORS), {"threshold": threshold})


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory) -> Path:
    """Random MobileSR and detectors (threshold 0.5: tests choose verdicts by monkeypatching)."""
    return _write_weights(tmp_path_factory.mktemp("weights"), threshold=0.5)


@pytest.fixture(autouse=True)
def fresh_models(monkeypatch, weights_dir, tmp_path_factory):
    """Point the registry at the temporary weights, forget every cached model (upscalers,
    detectors and restorers), and send results to pytest's temporary folder."""
    monkeypatch.setenv("DEEPCLARITY_WEIGHTS", str(weights_dir))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path_factory.mktemp("results")))
    clear_model_caches()
    yield
    clear_model_caches()


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict[str, Path]:
    """Uploads from the astronaut: a 288x192 crop clean and pixelated by 4 (a 72x48 block grid),
    a 320x256 crop with a 12-px censor mosaic over (100, 80)-(196, 176), and a small noise image."""
    folder = tmp_path_factory.mktemp("uploads")
    crop = np.ascontiguousarray(skdata.astronaut()[:192, 32:320])
    Image.fromarray(crop).save(folder / "clean.png")
    Image.fromarray(pixelate(crop, 4)).save(folder / "blocky.png")
    big = np.ascontiguousarray(skdata.astronaut()[:256, :320])
    Image.fromarray(mosaic(big, (100, 80, 196, 176), 12)).save(folder / "censored.png")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(folder / "small.png")
    return {p.stem: p for p in folder.iterdir()}


@pytest.fixture
def verdict(monkeypatch):
    """``verdict(pixelated, probability, region_map)`` makes every detector answer that."""
    calls = []

    def choose(pixelated: bool, probability: float, region_map=((0.5,),)):
        def detect(self, image, *, threshold=None, estimate_block=True):
            calls.append(image)
            return Detection(pixelated, probability, None, None, np.asarray(region_map, np.float32), [],
                             self.method)

        monkeypatch.setattr(detect_mod.Detector, "detect", detect)
        return calls

    return choose


def _pixels(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


# ---------------------------------------------------------------------------- the event function


def test_pixelated_photo_is_restored_at_its_own_size(photos, verdict):
    calls = verdict(True, 0.97, [[0.9, 0.8, 0.95], [0.7, 0.99, 0.6]])
    (before, after), png, info, region = correct_image(str(photos["blocky"]), "auto", "mobilesr", None, 0,
                                                       "keep", device="cpu")
    assert len(calls) == 1  # the detector ran (once)
    assert Path(png).name == "blocky_restored_mobilesr.png"
    out, src = _pixels(png), _pixels(photos["blocky"])
    assert out.shape == src.shape == (192, 288, 3)
    assert not np.array_equal(out, src)  # something was done
    assert before.shape == after.shape == (192, 288, 3) and np.array_equal(before, src)
    assert np.array_equal(after, out)
    first = info.splitlines()[0]
    assert "PIXELATED" in first and "probability 0.970" in first
    assert "blocks 4.0 px" in first  # the grid was found at 4 px
    assert "restored the whole image from its 72x48 block grid" in first
    assert region.shape == (192, 288, 3) and region.dtype == np.uint8


def test_region_map_shows_the_detection_with_the_input_aspect_ratio(photos, verdict):
    verdict(True, 0.9, [[1.0, 0.0]])  # left half pixelated, right half clean
    *_, region = correct_image(str(photos["blocky"]), "auto", "mobilesr", 1, 0, "keep", device="cpu",
                               display_max_side=144)
    assert region.shape == (96, 144, 3)  # 288x192 shown at 144 px: same aspect ratio
    left, right = region[48, 30].astype(int), region[48, 110].astype(int)
    assert left[0] > left[1] + 40 and right[1] > right[0] + 40  # red tint left, green right


def test_censor_mosaic_is_restored_in_place_and_boxed_on_the_map(photos, verdict):
    verdict(True, 0.8, [[0.2, 0.9], [0.1, 0.3]])
    _, png, info, region = correct_image(str(photos["censored"]), "auto", "mobilesr", 1, 1.0, "keep", device="cpu")
    out, src = _pixels(png), _pixels(photos["censored"])
    outside = np.ones(src.shape[:2], bool)
    outside[80:176, 100:196] = False
    assert np.array_equal(out[outside], src[outside]) and not np.array_equal(out, src)  # sharpened inside only
    assert "sharpened 1" in info
    first = info.splitlines()[0]
    assert "restored a mosaic at (100,80)-(196,176)" in first and "blocks 12.0 px" in first
    assert region.shape == (256, 320, 3)
    box = np.array(REGION_BOX_RGB, np.uint8)
    assert (region[80, 100:196] == box).all() and (region[80:176, 100] == box).all()  # top and left sides
    assert (region[175, 100:196] == box).all() and (region[80:176, 195] == box).all()  # bottom and right
    assert not (region[40] == box).all(axis=1).any()  # nowhere else


def test_the_box_on_the_map_is_the_restorers_output_region(photos, verdict, monkeypatch):
    # The app draws the mosaic's box from what Restorer.restore reports (Restored.output_region),
    # mapped from the result's size to the map's; at scale 2 the result is twice the map's size.
    verdict(True, 0.8, [[0.2, 0.9], [0.1, 0.3]])
    results = []
    real = restore_mod.Restorer.restore
    monkeypatch.setattr(restore_mod.Restorer, "restore", lambda self, *a, **k: results.append(real(self, *a, **k))
                        or results[-1])
    _, png, _, region = correct_image(str(photos["censored"]), "auto", "mobilesr", 2, 1.0, "keep", device="cpu")
    (res,) = results
    assert res.output_region == (200, 160, 392, 352) and res.sharpened == 1.0
    assert np.array_equal(_pixels(png), res.image.pixels)  # the download is the library's result, as is
    assert region.shape == (256, 320, 3)
    (x0, y0), (x1, y1) = display_box(res.output_region, (640, 512), (320, 256))
    assert (x0, y0, x1, y1) == (100, 80, 195, 175)
    expected = np.zeros(region.shape[:2], np.uint8)
    cv2.rectangle(expected, (x0, y0), (x1, y1), 1, 2)
    assert np.array_equal((region == np.array(REGION_BOX_RGB, np.uint8)).all(axis=2), expected.astype(bool))


def test_clean_photo_is_kept_pixel_for_pixel(photos, verdict):
    verdict(False, 0.08)
    _, png, info, region = correct_image(str(photos["clean"]), "auto", "mobilesr", 1, 1.5, "keep", device="cpu")
    assert Path(png).name == "clean_restored_mobilesr.png"
    assert np.array_equal(_pixels(png), _pixels(photos["clean"]))  # not even sharpened
    first = info.splitlines()[0]
    assert "not pixelated" in first and "kept as is" in first and "probability 0.080" in first
    assert "PIXELATED" not in first and "blocks" not in first
    assert region.shape == (192, 288, 3)


def test_pixelated_verdict_without_a_block_grid_changes_nothing(photos, verdict):
    verdict(True, 0.66)  # a clean photo called pixelated: there is no grid to recover
    _, png, info, _ = correct_image(str(photos["clean"]), "auto", "mobilesr", 1, 1.0, "keep", device="cpu")
    assert np.array_equal(_pixels(png), _pixels(photos["clean"]))
    first = info.splitlines()[0]
    assert "PIXELATED" in first and "no block grid was found, so nothing was restored" in first
    assert "blocks" not in first


def test_clean_photo_enhanced_anyway_and_other_scales(photos, verdict):
    verdict(False, 0.08)
    _, png, info, _ = correct_image(str(photos["clean"]), "auto", "mobilesr", 1, 0, "Enhance anyway", device="cpu")
    out = _pixels(png)
    assert out.shape == (192, 288, 3) and not np.array_equal(out, _pixels(photos["clean"]))
    assert "enhanced anyway with MobileSR" in info.splitlines()[0]
    _, png, _, region = correct_image(str(photos["small"]), "auto", "mobilesr", 2.5, 0, "keep", device="cpu")
    assert Path(png).name == "small_restored_mobilesr_x2.5.png" and _pixels(png).shape == (75, 100, 3)
    assert region.shape == (30, 40, 3)  # the map is drawn on the input
    assert restored_download_name("a b.JPG", "bicubic", 1.0) == "a b_restored_bicubic.png"


def test_enhance_mode_is_enhance_image_and_has_no_map(photos, verdict):
    calls = verdict(True, 1.0)
    (before, after), png, info, region = correct_image(str(photos["small"]), "upscale", "bicubic", None, 0,
                                                       "keep", device="cpu")
    assert region is None and calls == []  # no detection at all
    assert Path(png).name == "small_bicubic_x4.png" and _pixels(png).shape == (120, 160, 3)
    assert "PIXELATED" not in info and "Bicubic" in info


def test_mode_switch_sets_the_scale_and_the_endpoints(weights_dir):
    app = build_correct_app(device="cpu", examples=True)
    (correct,) = [d for d in app.fns.values() if d.api_name == "correct"]
    assert [type(c).__name__ for c in correct.inputs] == ["File", "Radio", "Radio", "Slider", "Slider", "Radio"]
    assert [type(c).__name__ for c in correct.outputs] == ["ImageSlider", "File", "Markdown", "Image"]
    file, mode, model, scale, sharpen, when_clean = correct.inputs
    assert mode.value == "auto" and [c[1] for c in mode.choices] == ["auto", "upscale"]
    assert [c[0] for c in mode.choices] == ["Restore (detect, de-pixelate, super-resolve)",
                                             "Enhance (super-resolve only)"]
    assert when_clean.value == "keep" and [c for c in when_clean.choices] == [("Keep as is", "keep"),
                                                                               ("Enhance anyway", "enhance")]
    assert (scale.minimum, scale.maximum, scale.value) == (1, 8, AUTO_OUTSCALE) == (1, 8, 1)
    assert correct.outputs[3].format == "png"
    assert any(d.api_name == "enhance" for d in app.fns.values())  # kept for older clients
    (switch,) = [d for d in app.fns.values() if d.fn is mode_settings]
    assert (mode._id, "change") in [(t[0], t[1]) for t in switch.targets]
    assert switch.api_visibility == "private" and switch.outputs[0] is scale
    assert switch.outputs[1] is when_clean
    value, clean_choice, button, _ = switch.fn("upscale")
    assert value == DEFAULT_OUTSCALE == 4 and clean_choice["visible"] is False and button["value"] == "Enhance"
    value, clean_choice, button, _ = switch.fn("auto")
    assert value == 1 and clean_choice["visible"] is True and button["value"] == "Restore"
    banner = [b for b in app.blocks.values() if getattr(b, "elem_id", None) == "model-status"][0]
    assert "Restore" not in (banner.value or "")  # the detector is there and loaded
    assert detect_mod._DETECTORS  # preloaded


@pytest.mark.parametrize("name", ["empty.png", "text.png", "truncated.png", "bomb.png"])
def test_bad_upload_is_a_one_line_error(bad_inputs, name):
    with pytest.raises(gr.Error) as exc:
        correct_image(str(bad_inputs[name]), "auto", "mobilesr", 1, 0, "keep", device="cpu")
    message = exc.value.message
    assert message.startswith(f"{name}: ")
    assert any(fragment in message.lower() for fragment in bad_inputs.entries[name].error), message
    assert "\n" not in message and str(bad_inputs.root) not in message
    assert exc.value.print_exception is False


def test_bad_parameters_and_missing_detector_are_clear_errors(photos, tmp_path, monkeypatch):
    small = str(photos["small"])
    with pytest.raises(gr.Error, match="Unknown mode 'magic'"):
        correct_image(small, "magic", "mobilesr", 1, 0, "keep", device="cpu")
    with pytest.raises(gr.Error, match="Unknown choice for clean images 'shrug'"):
        correct_image(small, "auto", "mobilesr", 1, 0, "shrug", device="cpu")
    with pytest.raises(gr.Error, match="output scale"):
        correct_image(small, "auto", "mobilesr", 9, 0, "keep", device="cpu")
    with pytest.raises(gr.Error, match="Upload an image"):
        correct_image(None, "auto", "mobilesr", 1, 0, "keep", device="cpu")
    with pytest.raises(gr.Error, match=r"small\.png: the result would be 320x240"):
        correct_image(small, "auto", "bicubic", 8, 0, "keep", device="cpu", max_output_pixels=10_000)
    only_sr = tmp_path / "only-sr"
    only_sr.mkdir()
    shutil.copy(get_spec("mobilesr").weights_path, only_sr)
    monkeypatch.setenv("DEEPCLARITY_WEIGHTS", str(only_sr))
    detect_mod._DETECTORS.clear()  # detectors (and restorers) are cached per process, whatever the folder
    restore_mod._RESTORERS.clear()
    with pytest.raises(gr.Error) as exc:
        correct_image(small, "auto", "mobilesr", 1, 0, "keep", device="cpu")
    assert exc.value.message.startswith("Restore mode is unavailable") and "detector-canny" in exc.value.message
    assert "\n" not in exc.value.message
    app = build_correct_app(device="cpu", examples=False)  # still starts, says why, upscaling works
    (banner,) = [b for b in app.blocks.values() if getattr(b, "elem_id", None) == "model-status"]
    assert banner.visible and f"**{MODE_LABELS['auto']}** is unavailable" in banner.value
    assert correct_image(small, "upscale", "bicubic", 2, 0, "keep", device="cpu")[3] is None


def test_shipped_detector_gives_real_verdicts(photos, tmp_path, monkeypatch):
    shipped = REPO / "weights"
    if not (shipped / "detector-canny.safetensors").is_file():
        pytest.skip("no shipped detector weights")
    for f in ("detector-canny.safetensors", "detector-canny.json"):
        shutil.copy(shipped / f, tmp_path / f)
    monkeypatch.setenv("DEEPCLARITY_WEIGHTS", str(tmp_path))
    _, png, info, _ = correct_image(str(photos["blocky"]), "auto", "bicubic", 1, 0, "keep", device="cpu")
    assert "PIXELATED" in info.splitlines()[0] and "blocks 4.0 px" in info
    assert _pixels(png).shape == (192, 288, 3)
    _, png, info, _ = correct_image(str(photos["clean"]), "auto", "bicubic", 1, 0, "keep", device="cpu")
    assert "kept as is" in info.splitlines()[0]
    assert np.array_equal(_pixels(png), _pixels(photos["clean"]))


# ------------------------------------------------------------------------------ through the API


@pytest.mark.slow
def test_correct_endpoint_through_gradio_client(photos, bad_inputs, tmp_path):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    weights = _write_weights(tmp_path / "weights", threshold=0.0)  # every image is "pixelated"
    proc, url, log = start_app("correct_app.py", tmp_path, weights=weights)
    try:
        wait_for_http(url, proc, log)
        client = Client(url, verbose=False, download_files=str(tmp_path / "dl"), analytics_enabled=False)
        try:
            api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
            assert "/correct" in api and "/enhance" in api
            assert not any("mode_settings" in name for name in api)  # the mode switch stays private
            pair, png, info, region = client.predict(handle_file(str(photos["blocky"])), "auto", "mobilesr", 1,
                                                     0, "keep", api_name="/correct")
            assert Path(png).name == "blocky_restored_mobilesr.png"
            with Image.open(png) as im:
                assert im.format == "PNG" and im.size == (288, 192)
            with Image.open(region) as im:
                assert im.format == "PNG" and im.size == (288, 192)
            assert len(pair) == 2
            assert "PIXELATED" in info and "blocks 4.0 px" in info and "72x48 block grid" in info

            _, png, info, region = client.predict(handle_file(str(photos["small"])), "upscale", "bicubic", 4,
                                                  0, "keep", api_name="/correct")
            assert Path(png).name == "small_bicubic_x4.png" and region is None
            with pytest.raises(AppError, match="not a recognized image"):
                client.predict(handle_file(str(bad_inputs["text.png"])), "auto", "mobilesr", 1, 0, "keep",
                               api_name="/correct")
        finally:
            client.close()
        assert proc.poll() is None
    finally:
        stop_app(proc)
    assert "Traceback" not in log.read_text()
