"""The correction app's Enhance mode (plain super-resolution): the event function, the
before/after pair, the models offered, the command line, and the API through ``gradio_client``
against ``correct_app.py`` launched as a subprocess (marked slow).

SR weights are randomly initialised ones written to a temporary folder (``$DEEPCLARITY_WEIGHTS``),
so these tests check plumbing, not quality, and never touch ``weights/`` (which a training run may
be rewriting).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

gr = pytest.importorskip("gradio")

import deepclarity.apps as apps_pkg  # noqa: E402
from deepclarity import enhance as enhance_mod  # noqa: E402
from deepclarity.apps import uploads as uploads_mod  # noqa: E402
from deepclarity.apps.correct_app import CORRECT_MAX_OUTPUT_PIXELS, build_correct_app, enhance_image  # noqa: E402
from deepclarity.apps.render import (  # noqa: E402
    DISPLAY_MAX_SIDE, comparison_pair, download_name, upscaler_label, upscaler_names,
)
from deepclarity.apps.server import (  # noqa: E402
    DEFAULT_HOST, EXAMPLES_DIR, example_files, launch_kwargs, parse_app_args, queue_kwargs,
)
from deepclarity.degrade import imresize  # noqa: E402
from deepclarity.io import LoadedImage, read_image  # noqa: E402
from helpers import start_app, stop_app, wait_for_http  # noqa: E402
from deepclarity.models import get_spec  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SR_MODELS = ("mobilesr", "mobilesr-rep", "minisrresnet", "minisrgan")


# ------------------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def fresh_upscalers(monkeypatch, random_sr_weights, tmp_path_factory):
    """Random generator weights (conftest), models loaded afresh; results go to pytest's
    temporary folder instead of the system's."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path_factory.mktemp("results")))


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Path]:
    """Small uploads: an RGB photo (30x40) and an RGBA image whose alpha is 0 left, 255 right."""
    folder = tmp_path_factory.mktemp("uploads")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(folder / "photo.png")
    rgba = rng.integers(0, 256, (24, 32, 4), dtype=np.uint8)
    rgba[:, :16, 3], rgba[:, 16:, 3] = 0, 255
    Image.fromarray(rgba, "RGBA").save(folder / "sticker.png")
    return {p.name: p for p in folder.iterdir()}


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ---------------------------------------------------------------------------- the event function


@pytest.mark.parametrize("outscale, size, tag", [(4, (160, 120), "x4"), (2.5, (100, 75), "x2.5")])
def test_output_size_follows_the_scale(images, outscale, size, tag):
    (before, after), path, info = enhance_image(str(images["photo.png"]), "mobilesr", outscale, 0,
                                                device="cpu")
    path = Path(path)
    assert path.name == f"photo_mobilesr_{tag}.png"
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == size and im.mode == "RGB"
    w, h = size
    assert before.shape == after.shape == (h, w, 3) and before.dtype == after.dtype == np.uint8
    assert np.array_equal(after, np.asarray(Image.open(path)))  # small: the slider shows the download
    assert "photo.png" in info and f"{w}×{h}" in info and "MobileSR" in info


def test_before_is_the_input_enlarged_with_nearest_neighbour(images):
    (before, _), _, _ = enhance_image(str(images["photo.png"]), "mobilesr", 4, 0, device="cpu")
    src = np.asarray(Image.open(images["photo.png"]))
    assert np.array_equal(before, np.repeat(np.repeat(src, 4, axis=0), 4, axis=1))


def test_every_model_runs_and_loads_once(images):
    for model in SR_MODELS:
        (_, after), path, _ = enhance_image(str(images["photo.png"]), model, 2, 0, device="cpu")
        assert after.shape == (60, 80, 3) and Path(path).name == f"photo_{model}_x2.png"
    first = enhance_mod._UPSCALERS.copy()
    enhance_image(str(images["photo.png"]), "mobilesr", 3, 0.5, device="cpu")
    assert len(first) == len(SR_MODELS) == 4 and enhance_mod._UPSCALERS == first  # nothing reloaded


def test_bicubic_works_without_weights_and_matches_matlab_bicubic(images, tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPCLARITY_WEIGHTS", str(tmp_path))  # an empty folder
    _, path, info = enhance_image(str(images["photo.png"]), "bicubic", 4, 0, device="cpu")
    src = np.asarray(Image.open(images["photo.png"]))
    assert np.array_equal(np.asarray(Image.open(path)), imresize(src, 4))
    assert "Bicubic" in info


def test_sharpening_changes_the_result(images):
    _, plain, _ = enhance_image(str(images["photo.png"]), "bicubic", 4, 0, device="cpu")
    _, sharp, info = enhance_image(str(images["photo.png"]), "bicubic", 4, 1.5, device="cpu")
    a, b = np.asarray(Image.open(plain)).astype(int), np.asarray(Image.open(sharp)).astype(int)
    assert a.shape == b.shape and np.abs(a - b).mean() > 1.0
    assert "sharpened 1.5" in info


def test_rgba_upload_keeps_alpha_in_the_download(images):
    (before, after), path, info = enhance_image(str(images["sticker.png"]), "mobilesr", 4, 0, device="cpu")
    with Image.open(path) as im:
        assert im.mode == "RGBA" and im.size == (128, 96)
        alpha = np.asarray(im)[..., 3]
    assert alpha[:, :56].max() <= 5 and alpha[:, 72:].min() >= 250  # 0 left, 255 right, as uploaded
    assert before.shape == after.shape == (96, 128, 4)
    assert np.array_equal(after[..., 3], alpha)
    assert "RGBA" in info


def test_16_bit_and_gray_stay_in_kind(bad_inputs):
    _, path, info = enhance_image(str(bad_inputs["rgb16.png"]), "mobilesr", 4, 0, device="cpu")
    out = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint16 and out.shape == (96, 128, 3)
    assert (out % 257 != 0).any()  # real 16-bit values, not 8-bit ones scaled up
    assert "16-bit" in info
    _, path, _ = enhance_image(str(bad_inputs["rgba16.png"]), "minisrgan", 2, 0, device="cpu")
    out = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint16 and out.shape == (48, 64, 4)
    _, path, _ = enhance_image(str(bad_inputs["gray.png"]), "mobilesr", 2, 0, device="cpu")
    with Image.open(path) as im:
        assert im.mode == "L" and im.size == (64, 48)


def test_missing_weight_file_is_a_clear_error(images, tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPCLARITY_WEIGHTS", str(tmp_path))  # an empty folder
    with pytest.raises(gr.Error) as exc:
        enhance_image(str(images["photo.png"]), "minisrgan", 4, 0, device="cpu")
    message = exc.value.message
    assert message.startswith("MiniSRGAN is unavailable: no trained weights for minisrgan")
    assert "minisrgan.safetensors" in message and "\n" not in message and "Traceback" not in message
    assert exc.value.print_exception is False
    app = build_correct_app(device="cpu", examples=False)  # the app still starts, and says why
    banner = [b for b in app.blocks.values() if getattr(b, "elem_id", None) == "model-status"]
    assert banner and banner[0].visible
    for label in ("MobileSR", "MiniSRResNet", "MiniSRGAN"):
        assert f"**{label}" in banner[0].value
    assert "Bicubic" not in banner[0].value


@pytest.mark.parametrize("name", ["empty.png", "text.png", "truncated.png", "bomb.png"])
def test_bad_upload_is_a_one_line_error_naming_the_problem(bad_inputs, name):
    with pytest.raises(gr.Error) as exc:
        enhance_image(str(bad_inputs[name]), "mobilesr", 4, 0, device="cpu")
    message = exc.value.message
    assert message.startswith(f"{name}: ")
    assert any(fragment in message.lower() for fragment in bad_inputs.entries[name].error), message
    assert "\n" not in message and "Traceback" not in message
    assert str(bad_inputs.root) not in message  # the server-side path is not shown
    assert exc.value.print_exception is False


def test_limits_and_bad_parameters_are_clear_errors(images):
    photo = str(images["photo.png"])
    with pytest.raises(gr.Error, match=r"160x120 image \(0\.0 MP\), over the limit of 0\.0 MP"):
        enhance_image(photo, "mobilesr", 4, 0, device="cpu", max_output_pixels=10_000)
    with pytest.raises(gr.Error, match=r"photo\.png: image is 40x30 = 1,200 pixels, above the limit"):
        enhance_image(photo, "mobilesr", 4, 0, device="cpu", max_input_pixels=1_000)
    with pytest.raises(gr.Error, match="Unknown model 'esrgan'"):
        enhance_image(photo, "esrgan", 4, 0, device="cpu")
    with pytest.raises(gr.Error, match="output scale"):
        enhance_image(photo, "mobilesr", 9, 0, device="cpu")
    with pytest.raises(gr.Error, match="output scale"):
        enhance_image(photo, "mobilesr", float("nan"), 0, device="cpu")
    with pytest.raises(gr.Error, match="sharpening"):
        enhance_image(photo, "mobilesr", 4, -1, device="cpu")
    with pytest.raises(gr.Error, match="Upload an image"):
        enhance_image(None, "mobilesr", 4, 0, device="cpu")


def test_download_is_never_written_over_the_upload(tmp_path):
    # An upload whose name is exactly what the result would be called.
    upload = tmp_path / "cat_mobilesr_x4.png"
    Image.fromarray(np.full((20, 30, 3), 90, np.uint8)).save(upload)
    digest = _sha(upload)
    paths = [Path(enhance_image(str(upload), "mobilesr", 4, 0, device="cpu")[1]) for _ in range(2)]
    assert _sha(upload) == digest and Image.open(upload).size == (30, 20)
    for path in paths:
        assert path.name == "cat_mobilesr_x4_mobilesr_x4.png" and path.parent != upload.parent
        assert Image.open(path).size == (120, 80)
    assert paths[0].parent != paths[1].parent  # a fresh folder per request


def test_old_result_folders_are_removed(images, monkeypatch):
    first = Path(enhance_image(str(images["photo.png"]), "bicubic", 2, 0, device="cpu")[1])
    assert first.is_file() and first.parent.parent == Path(tempfile.gettempdir())
    assert first.parent.name.startswith("deepclarity-app-")
    monkeypatch.setattr(uploads_mod, "OUTPUT_TTL_S", 0.0)
    time.sleep(0.01)
    second = Path(enhance_image(str(images["photo.png"]), "bicubic", 2, 0, device="cpu")[1])
    assert not first.parent.exists() and second.is_file()


def test_display_is_capped_but_the_download_is_full_resolution(images):
    (before, after), path, info = enhance_image(str(images["photo.png"]), "bicubic", 8, 0, device="cpu",
                                                display_max_side=100)
    assert Image.open(path).size == (320, 240)
    assert before.shape == after.shape == (75, 100, 3)
    assert "preview" in info
    res = LoadedImage(np.zeros((3000, 1000, 3), np.uint16), alpha=np.zeros((3000, 1000), np.uint16))
    src = LoadedImage(np.full((750, 250, 3), 65535, np.uint16), alpha=np.full((750, 250), 65535, np.uint16))
    b, a = comparison_pair(src, res)
    assert b.shape == a.shape == (DISPLAY_MAX_SIDE, round(1000 * DISPLAY_MAX_SIDE / 3000), 4)
    assert b.dtype == a.dtype == np.uint8 and (b == 255).all() and (a == 0).all()


def test_download_name():
    assert download_name("holiday photo.JPG", "minisrgan", 2.5) == "holiday photo_minisrgan_x2.5.png"
    assert download_name("a.png", "bicubic", 4.0) == "a_bicubic_x4.png"
    assert len(download_name("n" * 300 + ".png", "mobilesr", 8)) < 255


def test_models_offered_come_from_the_registry_and_need_their_weights(tmp_path, monkeypatch):
    from deepclarity.models import get_spec, list_models

    # Every registered plain x4 SR network with a weight file is offered, then bicubic; restoration
    # variants (picked by the restorer) and architectures without weights are not.
    expected = [s.name for s in list_models("sr") if s.has_weights and s.degradation == "bicubic"]
    assert list(upscaler_names()) == [*expected, "bicubic"] == [*SR_MODELS, "bicubic"] == [
        "mobilesr", "mobilesr-rep", "minisrresnet", "minisrgan", "bicubic"]
    assert upscaler_label("minisrgan") == get_spec("minisrgan").description.split(":")[0] == "MiniSRGAN"
    only = tmp_path / "only-mobilesr"
    only.mkdir()
    for f in (get_spec("mobilesr").weights_path, get_spec("mobilesr").weights_path.with_suffix(".json")):
        if f.is_file():
            (only / f.name).write_bytes(f.read_bytes())
    monkeypatch.setenv("DEEPCLARITY_WEIGHTS", str(only))
    assert upscaler_names() == ("mobilesr", "bicubic")
    assert upscaler_names(available=False) == ("mobilesr", "mobilesr-rep", "minisrresnet", "minisrgan", "bicubic")
    app = build_correct_app(device="cpu", examples=False)
    (dep,) = [d for d in app.fns.values() if d.api_name == "enhance"]
    assert [c[1] for c in dep.inputs[1].choices] == ["mobilesr", "bicubic"]


def test_app_exposes_the_enhance_endpoint_png_outputs_limits_and_examples():
    app = build_correct_app(device="cpu", max_file_size="20mb")
    assert len(enhance_mod._UPSCALERS) == len(SR_MODELS) == 4  # preloaded, once each
    (dep,) = [d for d in app.fns.values() if d.api_name == "enhance"]
    assert [type(c).__name__ for c in dep.inputs] == ["File", "Radio", "Slider", "Slider"]
    assert [type(c).__name__ for c in dep.outputs] == ["ImageSlider", "File", "Markdown"]
    slider = dep.outputs[0]
    assert slider.format == "png" and "download" not in slider.buttons
    radio, scale, sharpen = dep.inputs[1:]
    assert radio.value == "mobilesr-rep"
    assert radio.choices == [("MobileSR", "mobilesr"), ("MobileSR-Rep (default)", "mobilesr-rep"),
                             ("MiniSRResNet", "minisrresnet"), ("MiniSRGAN", "minisrgan"),
                             ("Bicubic (reference)", "bicubic")]
    # The slider is shared with /correct, whose default mode (Restore) works at the input's size;
    # switching to Enhance sets it to 4 (tests/apps/test_correct_app_restore.py).
    assert (scale.minimum, scale.maximum, scale.step, scale.value) == (1, 8, 0.5, 1)
    assert (sharpen.minimum, sharpen.maximum, sharpen.value) == (0, 2, 0)
    (limits,) = [b for b in app.blocks.values() if getattr(b, "elem_id", None) == "models-and-limits"]
    assert "uploads up to 20mb" in limits.value and "inputs up to 2 MP" in limits.value
    assert CORRECT_MAX_OUTPUT_PIXELS == 32_000_000 and "results up to 32 MP" in limits.value
    assert "MATLAB-style bicubic, for reference" in limits.value
    for name in SR_MODELS:
        assert get_spec(name).description.split(",")[0] in limits.value
    shipped = example_files(EXAMPLES_DIR / "correct")
    assert len(shipped) == 3 and all(p.stat().st_size < 150_000 for p in shipped)
    for p in shipped:
        img = read_image(p)
        assert 96 <= img.width <= 160 and 96 <= img.height <= 128


# ------------------------------------------------------------------------------ command line


def test_defaults_bind_localhost(monkeypatch):
    monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)
    monkeypatch.delenv("GRADIO_SERVER_PORT", raising=False)
    args = parse_app_args([], prog="correct_app.py")
    kw = launch_kwargs(args)
    assert kw["server_name"] == DEFAULT_HOST == "127.0.0.1" and kw["server_port"] == 7860
    assert kw["share"] is False and kw["max_file_size"] == "50mb"
    q = queue_kwargs(args)
    assert q["default_concurrency_limit"] == 1 and q["max_size"] >= 1 and q["api_open"] is False


def test_correct_app_main_builds_and_launches_on_loopback(monkeypatch):
    monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)
    monkeypatch.delenv("GRADIO_SERVER_PORT", raising=False)
    monkeypatch.syspath_prepend(str(REPO))
    import correct_app

    launched = []
    monkeypatch.setattr(apps_pkg, "launch_app", lambda app, args, **kw: launched.append((app, args, kw)))
    assert correct_app.main(["--max-file-size", "5mb", "--device", "cpu"]) == 0
    ((app, args, kw),) = launched
    assert kw == {} and launch_kwargs(args)["server_name"] == "127.0.0.1"
    assert {"enhance", "correct"} <= {d.api_name for d in app.fns.values()}
    (limits,) = [b for b in app.blocks.values() if getattr(b, "elem_id", None) == "models-and-limits"]
    assert "uploads up to 5mb" in limits.value


def test_correct_app_help():
    res = subprocess.run([sys.executable, "correct_app.py", "--help"], cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "correct_app.py" in res.stdout and "127.0.0.1" in res.stdout
    for flag in ("--host", "--port", "--share", "--max-file-size", "--concurrency", "--device"):
        assert flag in res.stdout


# ------------------------------------------------------------------------------ through the API


@pytest.mark.slow
def test_gradio_client_against_launched_app(images, bad_inputs, sr_weights_dir, tmp_path):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    proc, url, log = start_app("correct_app.py", tmp_path, weights=sr_weights_dir)
    try:
        wait_for_http(url, proc, log)
        client = Client(url, verbose=False, download_files=str(tmp_path / "dl"), analytics_enabled=False)
        try:
            assert "/enhance" in client.view_api(print_info=False, return_format="dict")["named_endpoints"]

            pair, png, info = client.predict(handle_file(str(images["photo.png"])), "mobilesr", 4, 0,
                                             api_name="/enhance")
            assert Path(png).name == "photo_mobilesr_x4.png"
            with Image.open(png) as im:
                assert im.format == "PNG" and im.size == (160, 120)
            assert len(pair) == 2
            for side in pair:  # before / after, as files the client downloaded
                with Image.open(side) as im:
                    assert im.format == "PNG" and im.size == (160, 120)
            assert "photo.png" in info

            with pytest.raises(AppError, match="not a recognized image"):
                client.predict(handle_file(str(bad_inputs["text.png"])), "mobilesr", 4, 0, api_name="/enhance")

            _, png, _ = client.predict(handle_file(str(images["sticker.png"])), "minisrresnet", 2, 0.5,
                                       api_name="/enhance")
            with Image.open(png) as im:
                assert im.mode == "RGBA" and im.size == (64, 48)
        finally:
            client.close()
        assert proc.poll() is None  # still serving after the bad request
    finally:
        stop_app(proc)
    text = log.read_text()
    assert url.rstrip("/") in text and "Traceback" not in text  # served on loopback
