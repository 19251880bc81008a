"""The detection app: the event function, the region-map overlay, the command line, and the API
through ``gradio_client`` against a launched server (marked slow).

Detector weights are randomly initialised ones written to a temporary folder
(``$DEEPCLARITY_WEIGHTS``), so these tests check plumbing, not accuracy, and never touch
``weights/`` (which a training run may be rewriting).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

gr = pytest.importorskip("gradio")

from deepclarity import detect as detect_mod  # noqa: E402
from deepclarity.apps import (  # noqa: E402
    DEFAULT_HOST, EXAMPLES_DIR, build_detect_app, detect_images, example_files, launch_kwargs,
    overlay_region_map, parse_app_args, queue_kwargs,
)
from helpers import free_port  # noqa: E402
from deepclarity.models import create_model, get_spec, save_weights  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory) -> Path:
    """Randomly initialised detector weights (both methods), written once for the module."""
    folder = tmp_path_factory.mktemp("weights")
    for name in ("detector-canny", "detector-rgb"):
        save_weights(create_model(name, pretrained=False), folder / get_spec(name).weights, {}, half=True)
    return folder


@pytest.fixture(autouse=True)
def fresh_detectors(monkeypatch, weights_dir):
    """Point the registry at the temporary weights and forget detectors cached by other tests."""
    monkeypatch.setenv("DEEPCLARITY_WEIGHTS", str(weights_dir))
    detect_mod._DETECTORS.clear()
    yield
    detect_mod._DETECTORS.clear()


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Path]:
    """A few small files: two good images, a text file and a zero-byte file named .png."""
    folder = tmp_path_factory.mktemp("uploads")
    rng = np.random.default_rng(0)
    good = rng.integers(0, 256, (200, 300, 3), dtype=np.uint8)
    Image.fromarray(good).save(folder / "photo.png")
    blocky = np.kron(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8), np.ones((4, 4, 1), np.uint8))
    Image.fromarray(blocky).save(folder / "blocky.jpg", quality=95)
    (folder / "notes.png").write_text("this is not an image\n")
    (folder / "empty.png").write_bytes(b"")
    return {p.name: p for p in folder.iterdir()}


# ---------------------------------------------------------------------------- the event function


def test_good_image_gives_overlay_of_same_size_and_summary(images):
    gallery, summary, records = detect_images([str(images["photo.png"])], "canny", 0.5, device="cpu")
    assert len(gallery) == 1
    overlay, caption = gallery[0]
    assert overlay.shape == (200, 300, 3) and overlay.dtype == np.uint8
    assert caption.startswith("photo.png: ") and "p = " in caption
    assert "photo.png" in summary and "Probability" in summary
    assert ("PIXELATED" in summary) or ("clean" in summary)
    (rec,) = records
    assert rec["file"] == "photo.png" and rec["error"] is None and rec["method"] == "canny"
    assert 0.0 <= rec["probability"] <= 1.0 and rec["verdict"] in ("PIXELATED", "clean")
    assert (rec["width"], rec["height"]) == (300, 200)
    assert np.asarray(rec["region_map"]).ndim == 2


def test_batch_with_broken_files_keeps_the_good_ones(images):
    files = [images["photo.png"], images["notes.png"], images["blocky.jpg"], images["empty.png"]]
    gallery, summary, records = detect_images([str(p) for p in files], "canny", 0.5, device="cpu")
    assert [c.split(":")[0] for _, c in gallery] == ["photo.png", "blocky.jpg"]
    assert [r["file"] for r in records] == ["photo.png", "notes.png", "blocky.jpg", "empty.png"]
    errors = {r["file"]: r["error"] for r in records if r["error"]}
    assert set(errors) == {"notes.png", "empty.png"}
    assert "not a recognized image" in errors["notes.png"]
    assert "empty" in errors["empty.png"] or "0 bytes" in errors["empty.png"]
    assert "Could not process" in summary
    for name in ("notes.png", "empty.png"):
        assert any(name in line and errors[name] in line for line in summary.splitlines())
    assert str(images["notes.png"].parent) not in summary  # server-side paths are not shown


def test_all_bad_files_raise_gr_error_with_the_reasons(images):
    with pytest.raises(gr.Error) as exc:
        detect_images([str(images["notes.png"]), str(images["empty.png"])], "canny", 0.5, device="cpu")
    message = exc.value.message
    assert "No image could be processed" in message
    assert "notes.png" in message and "not a recognized image" in message and "empty.png" in message
    assert "\n" not in message


@pytest.mark.parametrize("files", [None, []])
def test_no_upload_is_a_clear_error(files):
    with pytest.raises(gr.Error, match="Upload one or more images"):
        detect_images(files, "canny", 0.5, device="cpu")


def test_bad_method_and_threshold_are_clear_errors(images):
    with pytest.raises(gr.Error, match="Unknown method"):
        detect_images([str(images["photo.png"])], "sobel", 0.5, device="cpu")
    with pytest.raises(gr.Error, match="threshold"):
        detect_images([str(images["photo.png"])], "canny", 1.5, device="cpu")


def test_rgb_method_works(images):
    gallery, summary, records = detect_images(str(images["blocky.jpg"]), "rgb", 0.5, device="cpu")
    assert len(gallery) == 1 and gallery[0][0].shape == (120, 160, 3)
    assert records[0]["method"] == "rgb" and "Method 1" in summary


def test_threshold_changes_the_verdict_without_reloading_the_model(images):
    path = [str(images["photo.png"])]
    _, _, low = detect_images(path, "canny", 0.0, device="cpu")
    _, _, high = detect_images(path, "canny", 1.0, device="cpu")
    assert low[0]["verdict"] == "PIXELATED"  # every probability is >= 0
    assert low[0]["probability"] == high[0]["probability"]
    if high[0]["probability"] < 1.0:
        assert high[0]["verdict"] == "clean"
    assert len(detect_mod._DETECTORS) == 1  # one model loaded, whatever the threshold


def test_the_slider_start_judges_small_images_at_their_calibrated_threshold(tmp_path, monkeypatch):
    """At the slider's start (the calibrated value, rounded) a snippet is judged at the card's
    small-image threshold, as the CLI judges it; a value moved off the start applies to all."""
    monkeypatch.setattr(detect_mod, "default_threshold",
                        lambda method, small=False, weights=None: 0.9 if small else 0.99)
    monkeypatch.setattr(detect_mod.Detector, "tile_probabilities",
                        lambda self, crops: np.full(len(crops), 0.95))
    snippet = tmp_path / "snippet.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (40, 200, 3), dtype=np.uint8)).save(snippet)
    _, _, start = detect_images([str(snippet)], "canny", 0.99, device="cpu")
    _, _, moved = detect_images([str(snippet)], "canny", 0.98, device="cpu")
    assert start[0]["verdict"] == "PIXELATED" and moved[0]["verdict"] == "clean"


def test_missing_weights_app_still_builds_and_requests_say_why(tmp_path, monkeypatch, images):
    monkeypatch.setenv("DEEPCLARITY_WEIGHTS", str(tmp_path))  # an empty folder
    app = build_detect_app(device="cpu", examples=False)
    banner = [b for b in app.blocks.values() if getattr(b, "elem_id", None) == "model-status"]
    assert banner and banner[0].visible and "no trained weights" in banner[0].value
    with pytest.raises(gr.Error, match="no trained weights"):
        detect_images([str(images["photo.png"])], "canny", 0.5, device="cpu")


def test_app_exposes_the_detect_endpoint_and_examples():
    app = build_detect_app(device="cpu")
    names = [dep.api_name for dep in app.fns.values()]
    assert "detect" in names
    shipped = example_files(EXAMPLES_DIR / "detect")
    assert 1 <= len(shipped) <= 4
    assert all(p.stat().st_size < 150_000 for p in shipped)


# -------------------------------------------------------------------------------------- overlay


def test_overlay_tints_pixelated_tiles_red_and_clean_tiles_green():
    img = np.full((100, 200, 3), 128, np.uint8)
    out = overlay_region_map(img, np.array([[1.0, 0.0]], np.float32), alpha=0.35)
    assert out.shape == img.shape and out.dtype == np.uint8
    left, right = out[50, 50].astype(int), out[50, 150].astype(int)
    assert left[0] > 160 and left[1] < 100 and left[2] < 100    # red: 0.65*128 + 0.35*255 = 172
    assert right[1] > 160 and right[0] < 100 and right[2] < 100  # green
    assert tuple(left) == (172, 83, 83) and tuple(right) == (83, 172, 83)
    assert out[50, 100].min() > 150  # the cell border is drawn light


def test_overlay_accepts_gray_and_16_bit_and_downscales_for_display():
    gray16 = np.full((60, 40), 65535, np.uint16)
    out = overlay_region_map(gray16, np.array([[0.5]]), alpha=0.0)
    assert out.shape == (60, 40, 3) and (out == 255).all()
    big = np.zeros((1000, 3000, 3), np.uint8)
    small = overlay_region_map(big, np.zeros((2, 6)), max_side=600)
    assert small.shape == (200, 600, 3)
    with pytest.raises(ValueError):
        overlay_region_map(big, np.zeros((0, 0)))


# ------------------------------------------------------------------------------ command line


def test_defaults_bind_localhost(monkeypatch):
    monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)
    monkeypatch.delenv("GRADIO_SERVER_PORT", raising=False)
    args = parse_app_args([])
    kw = launch_kwargs(args)
    assert kw["server_name"] == DEFAULT_HOST == "127.0.0.1" and kw["server_port"] == 7860
    assert kw["share"] is False and kw["max_file_size"]
    q = queue_kwargs(args)
    assert q["default_concurrency_limit"] >= 1 and q["max_size"] >= 1 and q["api_open"] is False


def test_host_and_port_from_environment_and_flags(monkeypatch):
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    monkeypatch.setenv("GRADIO_SERVER_PORT", "7999")
    assert (parse_app_args([]).host, parse_app_args([]).port) == ("0.0.0.0", 7999)
    args = parse_app_args(["--host", "127.0.0.2", "--port", "8123", "--share", "--max-file-size", "5mb"])
    kw = launch_kwargs(args)
    assert (kw["server_name"], kw["server_port"], kw["share"], kw["max_file_size"]) == \
        ("127.0.0.2", 8123, True, "5mb")
    with pytest.raises(SystemExit):
        parse_app_args(["--port", "0"])


def test_detect_app_help():
    res = subprocess.run([sys.executable, "detect_app.py", "--help"], cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    for flag in ("--host", "--port", "--share", "--max-file-size", "--concurrency"):
        assert flag in res.stdout


# ------------------------------------------------------------------------------ through the API


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:::gradio.queueing")  # Gradio's own event stats vs pandas 3
def test_gradio_client_against_launched_app(images, tmp_path):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    from deepclarity.apps import launch_app

    args = parse_app_args(["--host", "127.0.0.1", "--port", str(free_port()), "--device", "cpu"])
    app = build_detect_app(device="cpu")
    try:
        _, url, _ = launch_app(app, args, prevent_thread_lock=True, quiet=True)
        client = Client(url, verbose=False, download_files=str(tmp_path), analytics_enabled=False)
        try:
            assert "/detect" in client.view_api(print_info=False, return_format="dict")["named_endpoints"]

            gallery, summary, records = client.predict(
                [handle_file(str(images["photo.png"]))], "canny", 0.5, api_name="/detect")
            assert len(gallery) == 1 and "photo.png" in summary
            overlay = Path(gallery[0]["image"])
            assert overlay.suffix == ".png"
            assert Image.open(overlay).size == (300, 200)
            assert records[0]["file"] == "photo.png" and records[0]["error"] is None

            with pytest.raises(AppError, match="not a recognized image"):
                client.predict([handle_file(str(images["notes.png"]))], "canny", 0.5, api_name="/detect")

            _, summary, records = client.predict(
                [handle_file(str(images["blocky.jpg"]))], "rgb", 0.5, api_name="/detect")
            assert records[0]["file"] == "blocky.jpg" and records[0]["method"] == "rgb"
        finally:
            client.close()
    finally:
        app.close()
