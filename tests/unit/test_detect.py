"""Pixelation detection (``deepclarity.detect``): features, tiling, aggregation and the Detector.

Most tests run a randomly initialised detector saved to a temporary weights folder (its
probabilities carry no meaning; the tests check shapes, ranges and the decision logic). One slow
test checks that the shipped weights get clear cases right.
"""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import noise
from skimage import data as skdata

import deepclarity.detect as detect_mod
import deepclarity.pixelation as grid_mod  # Detector.detect looks estimate_grid up here on each call
from deepclarity.degrade import pixelate
from deepclarity.detect import (CROP_SIZE, Detection, Detector, aggregate, crop_features, load_detector,
                                SECOND_LOOK_GRID, SECOND_LOOK_P, tile_grid, to_uint8)
from deepclarity.edges import canny_edges
from deepclarity.errors import ImageError, ModelError
from deepclarity.io import read_image, write_image
from deepclarity.models import create_model, get_spec, save_weights

REPO = Path(__file__).resolve().parents[2]
RECORD_KEYS = {"pixelated", "probability", "block_size", "phase", "method", "basis", "regions"}


# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture
def clear_detectors():
    detect_mod._DETECTORS.clear()
    yield
    detect_mod._DETECTORS.clear()


@pytest.fixture
def random_weights(tmp_path, monkeypatch, clear_detectors) -> Path:
    """``$DEEPCLARITY_WEIGHTS`` -> a folder with randomly initialised canny and rgb detectors."""
    import torch

    folder = tmp_path / "weights"
    monkeypatch.setenv("DEEPCLARITY_WEIGHTS", str(folder))
    torch.manual_seed(0)
    for name in ("detector-canny", "detector-rgb"):
        save_weights(create_model(name, pretrained=False), folder / get_spec(name).weights, {}, half=True)
    return folder


@pytest.fixture
def detector(random_weights) -> Detector:
    return Detector("canny", device="cpu")


# ------------------------------------------------------------------------------- crop_features


def test_canny_features_are_binary_in_all_channels():
    crop = skdata.astronaut()[100:260, 150:310]
    feat = crop_features(crop, "canny")
    assert feat.shape == (3, CROP_SIZE, CROP_SIZE) and feat.dtype == np.float32
    assert set(np.unique(feat)) <= {0.0, 1.0}
    assert feat.max() == 1.0  # a photo has edges
    assert np.array_equal(feat[0], feat[1]) and np.array_equal(feat[1], feat[2])
    assert np.array_equal(feat, canny_edges(crop).transpose(2, 0, 1) / np.float32(255))


def test_rgb_features_are_pixels_over_255():
    crop = noise((CROP_SIZE, CROP_SIZE, 3), seed=11)
    feat = crop_features(crop, "rgb")
    assert feat.shape == (3, CROP_SIZE, CROP_SIZE) and feat.dtype == np.float32
    np.testing.assert_allclose(feat, crop.transpose(2, 0, 1) / 255.0, rtol=0, atol=1e-7)
    assert feat.min() >= 0.0 and feat.max() <= 1.0


@pytest.mark.parametrize("kind", ["canny", "rgb"])
@pytest.mark.parametrize("h, w", [(50, 70), (1, 1), (CROP_SIZE, 30), (7, CROP_SIZE)])
def test_small_crops_are_zero_padded_never_upscaled(kind, h, w):
    crop = skdata.astronaut()[180:180 + h, 200:200 + w]
    if kind == "rgb":
        crop = np.maximum(crop, 1)  # no zero pixels: padding must be the only zeros
    feat = crop_features(crop, kind)
    assert feat.shape == (3, CROP_SIZE, CROP_SIZE)
    src = canny_edges(crop) if kind == "canny" else crop
    # The crop sits at the top-left at native resolution ...
    np.testing.assert_allclose(feat[:, :h, :w], src.transpose(2, 0, 1) / 255.0, rtol=0, atol=1e-7)
    # ... and everything to the right and below is exactly zero.
    assert not feat[:, h:, :].any()
    assert not feat[:, :, w:].any()
    if kind == "rgb":
        assert feat[:, :h, :w].min() > 0


@pytest.mark.parametrize("crop", [
    np.zeros((20, 20, 3), np.uint16),
    np.zeros((20, 20, 3), np.float32),
    np.zeros((20, 20), np.uint8),
    np.zeros((20, 20, 4), np.uint8),
    np.zeros((20, 20, 1), np.uint8),
], ids=["uint16", "float32", "gray2d", "rgba", "one-channel"])
def test_wrong_crop_type_is_an_image_error(crop):
    for kind in ("canny", "rgb"):
        with pytest.raises(ImageError, match="HxWx3 uint8"):
            crop_features(crop, kind)


@pytest.mark.parametrize("shape", [(CROP_SIZE + 1, 10, 3), (10, CROP_SIZE + 1, 3), (400, 400, 3)])
def test_crop_larger_than_input_is_a_value_error(shape):
    with pytest.raises(ValueError, match="larger than the detector input"):
        crop_features(np.zeros(shape, np.uint8), "canny")


def test_custom_size():
    feat = crop_features(np.full((10, 12, 3), 255, np.uint8), "rgb", size=16)
    assert feat.shape == (3, 16, 16)
    assert feat[:, :10, :12].min() == 1.0 and not feat[:, 10:].any() and not feat[:, :, 12:].any()


def test_unknown_kind_is_a_value_error():
    with pytest.raises(ValueError, match="unknown detector input kind"):
        crop_features(np.zeros((8, 8, 3), np.uint8), "sobel")


# ----------------------------------------------------------------------------------- tile_grid


TILE_SIZES = [(1080, 1920), (512, 768), (100, 100), (160, 5000), (3000, 200), (160, 160), (161, 161),
              (300, 451), (1, 1), (100, 5000)]


# (3000, 200) with few tiles is in test_tile_grid_never_exceeds_max_tiles_on_tall_images.
@pytest.mark.parametrize("h, w, max_tiles", [(h, w, t) for t in (24, 100, 6) for h, w in TILE_SIZES
                                             if (h, w, t) != (3000, 200, 6)])
def test_tile_grid_boxes(h, w, max_tiles):
    rows, cols, boxes = tile_grid(h, w, max_tiles)
    assert len(boxes) == rows * cols
    if h <= CROP_SIZE and w <= CROP_SIZE:
        assert (rows, cols, boxes) == (1, 1, [(0, h, 0, w)])
        return
    assert 1 <= rows * cols <= max_tiles
    for y0, y1, x0, x1 in boxes:
        assert 0 <= y0 < y1 <= h and 0 <= x0 < x1 <= w
        assert y1 - y0 == min(CROP_SIZE, h) and x1 - x0 == min(CROP_SIZE, w)
    # Row-major, evenly spread: box (r, c) holds the centre of cell (r, c).
    for r in range(rows):
        for c in range(cols):
            y0, y1, x0, x1 = boxes[r * cols + c]
            cy, cx = (r + 0.5) * h / rows, (c + 0.5) * w / cols
            assert y0 <= cy <= y1 and x0 <= cx <= x1, ((r, c), boxes[r * cols + c], (cy, cx))
    # The first box is near the top-left corner, the last near the bottom-right one.
    cell_h, cell_w = h / rows, w / cols
    y0, _, x0, _ = boxes[0]
    _, y1, _, x1 = boxes[-1]
    assert y0 <= cell_h / 2 and x0 <= cell_w / 2
    assert h - y1 <= cell_h / 2 and w - x1 <= cell_w / 2
    # Never more cells than crops fit side by side (no pointless overlap).
    assert rows <= math.ceil(h / CROP_SIZE) and cols <= math.ceil(w / CROP_SIZE)


def test_tile_grid_default_1080p_is_4_by_6():
    rows, cols, boxes = tile_grid(1080, 1920, 24)
    assert (rows, cols) == (4, 6)
    # Even spacing: equal steps between neighbouring crops.
    xs = sorted({b[2] for b in boxes})
    ys = sorted({b[0] for b in boxes})
    assert max(np.diff(xs)) - min(np.diff(xs)) <= 1
    assert max(np.diff(ys)) - min(np.diff(ys)) <= 1


@pytest.mark.parametrize("h, w, max_tiles", [(3000, 200, 6), (3000, 200, 4), (3000, 200, 1), (5000, 100, 24),
                                             (10000, 1, 24)])
def test_tile_grid_never_exceeds_max_tiles_on_tall_images(h, w, max_tiles):
    rows, cols, boxes = tile_grid(h, w, max_tiles)
    assert len(boxes) <= max_tiles, (rows, cols)


def test_tile_grid_one_tile():
    rows, cols, boxes = tile_grid(1080, 1920, 1)
    assert (rows, cols) == (1, 1)
    y0, y1, x0, x1 = boxes[0]
    assert (y0 + y1) / 2 == pytest.approx(540, abs=1) and (x0 + x1) / 2 == pytest.approx(960, abs=1)


# ------------------------------------------------------------------------ aggregate / to_uint8


def test_aggregate_is_the_most_confident_tile():
    assert aggregate(np.array([0.1, 0.93, 0.2], np.float32)) == pytest.approx(0.93)
    assert aggregate(np.array([0.0])) == 0.0
    assert aggregate(np.zeros(0, np.float32)) == 0.0
    out = aggregate(np.array([[0.25, 0.5], [0.75, 0.0]], np.float32))
    assert isinstance(out, float) and out == 0.75


def test_to_uint8_rounds_uint16():
    x = np.arange(65536, dtype=np.uint16)
    out = to_uint8(x)
    assert out.dtype == np.uint8
    assert np.array_equal(out, np.round(x / 257.0).astype(np.uint8))  # no exact ties: 257 is odd
    assert out[0] == 0 and out[65535] == 255
    assert out[128] == 0 and out[129] == 1  # 128/257 = 0.498, 129/257 = 0.502
    k = np.arange(256, dtype=np.uint16)
    assert np.array_equal(to_uint8(k * 257), k)  # exact multiples come back exactly


def test_to_uint8_keeps_uint8_as_is():
    arr = noise((5, 6, 3), seed=12)
    assert to_uint8(arr) is arr


def test_to_uint8_keeps_shape():
    arr = noise((5, 6, 3), np.uint16, seed=13)
    assert to_uint8(arr).shape == (5, 6, 3)


# ---------------------------------------------------------------------- Detector (random init)


@pytest.mark.parametrize("h, w", [(512, 512), (300, 451), (100, 100), (170, 900)])
def test_region_map_matches_tile_grid(detector, h, w):
    img = noise((h, w, 3), seed=14)
    res = detector.detect(img, estimate_block=False)
    rows, cols, boxes = tile_grid(h, w, detector.max_tiles)
    assert isinstance(res, Detection)
    assert res.region_map.shape == (rows, cols) and res.region_map.dtype == np.float32
    assert res.tiles == boxes
    assert np.all((res.region_map >= 0) & (res.region_map <= 1))
    assert 0.0 <= res.probability <= 1.0
    assert res.probability == pytest.approx(float(res.region_map.max()))
    assert res.method == "canny"


def test_max_tiles_option(random_weights):
    det = Detector("canny", device="cpu", max_tiles=4)
    res = det.detect(noise((512, 768, 3), seed=15), estimate_block=False)
    assert res.region_map.size <= 4


@pytest.mark.parametrize("method", ["canny", "rgb"])
def test_threshold_logic(random_weights, method):
    img = pixelate(skdata.astronaut()[:256, :256], 4)
    always = Detector(method, device="cpu", threshold=0.0).detect(img)
    # The network alone: its second look would find this image's own block grid (see below).
    never = Detector(method, device="cpu", threshold=1.0, second_look=False).detect(img)
    assert always.pixelated is True and never.pixelated is False
    looked = Detector(method, device="cpu", threshold=1.0).detect(img)
    if looked.probability >= SECOND_LOOK_P:
        assert looked.pixelated and looked.basis == SECOND_LOOK_GRID
    assert always.probability == pytest.approx(never.probability)
    assert always.method == method == never.method
    assert never.block_size is None and never.phase is None and never.grid_confidence == 0.0
    # Pixelated by 4: the grid is estimated when the image is called pixelated.
    assert always.block_size == pytest.approx(4, rel=0.05)
    assert always.phase is not None and always.grid_confidence > 0


def test_bad_options(random_weights):
    with pytest.raises(ValueError, match="unknown detection method"):
        Detector("sobel", device="cpu")
    for t in (-0.1, 1.5):
        with pytest.raises(ValueError, match="threshold"):
            Detector("canny", device="cpu", threshold=t)


def test_uint16_input_matches_uint8(detector):
    img8 = pixelate(skdata.coffee()[:200, :300], 3)
    img16 = img8.astype(np.uint16) * 257
    a, b = detector.detect(img8), detector.detect(img16)
    assert read_image(img16).pixels.dtype == np.uint16
    assert np.array_equal(a.region_map, b.region_map)
    assert a.to_record() == b.to_record()


def test_uint16_file_works(detector, bad_inputs):
    res = detector.detect(bad_inputs["rgb16.png"])
    assert 0.0 <= res.probability <= 1.0 and res.region_map.shape == (1, 1)


def test_path_and_loaded_image_agree(detector, tmp_path):
    path = tmp_path / "chelsea.png"
    write_image(path, pixelate(skdata.chelsea(), 2.5))
    a = detector.detect(path)
    b = detector.detect(read_image(path))
    c = detector.detect(str(path))
    for other in (b, c):
        assert np.array_equal(a.region_map, other.region_map)
        assert a.tiles == other.tiles
        assert a.to_record() == other.to_record()
        assert a.grid_confidence == other.grid_confidence


def test_detect_files_matches_detect_in_order_and_reports_bad_files(detector, bad_inputs, tmp_path):
    import torch

    paths = []
    for i, name in enumerate(("astronaut", "chelsea", "coffee", "rocket", "camera")):
        img = getattr(skdata, name)()
        path = tmp_path / f"{i}-{name}.png"
        write_image(path, pixelate(img, 2.0 + 0.5 * i) if i % 2 else img)
        paths.append(path)
    paths.insert(2, bad_inputs["truncated.png"])
    paths.insert(4, tmp_path / "missing.png")
    threads = torch.get_num_threads()
    results = list(detector.detect_files(paths, workers=2))
    assert torch.get_num_threads() == threads  # shared out while working, restored after
    assert [p for p, _ in results] == paths
    for path, found in results:
        if path in (bad_inputs["truncated.png"], tmp_path / "missing.png"):
            assert isinstance(found, ImageError) and path.name in str(found)
            continue
        alone = detector.detect(path)
        assert found.to_record() == alone.to_record()
        assert np.array_equal(found.region_map, alone.region_map)


def test_detect_files_stopped_early_restores_threads(detector, tmp_path):
    import torch

    paths = []
    for i in range(6):
        paths.append(tmp_path / f"{i}.png")
        write_image(paths[-1], skdata.chelsea())
    threads = torch.get_num_threads()
    results = detector.detect_files(paths, workers=2)
    next(results)
    results.close()
    assert torch.get_num_threads() == threads


def test_detect_refuses_bad_files(detector, bad_inputs):
    for name in ("empty.png", "text.png", "truncated.png", "bomb.png"):
        with pytest.raises(ImageError):
            detector.detect(bad_inputs[name])


def test_load_detector_is_shared(random_weights):
    a = load_detector("canny", device="cpu")
    b = load_detector("canny", device="cpu")
    assert a is b
    c = load_detector("canny", device="cpu", threshold=0.9)
    assert c is not a and c.threshold == 0.9
    assert load_detector("canny", device="cpu", threshold=0.9) is c
    assert load_detector("rgb", device="cpu") is not a


def test_load_detector_keys_on_the_resolved_device(random_weights):
    from deepclarity.runtime import select_device

    a = load_detector("canny", device="auto")
    assert load_detector("canny", device=str(select_device("auto"))) is a
    assert load_detector("canny", device=select_device("auto")) is a
    assert len(detect_mod._DETECTORS) == 1


def test_load_detector_reloads_when_the_weights_or_card_change(random_weights):
    import torch

    from deepclarity.models.weights import read_card, write_card

    a = load_detector("canny", device="cpu")
    torch.manual_seed(5)
    path = random_weights / get_spec("detector-canny").weights
    save_weights(create_model("detector-canny", pretrained=False), path, {}, half=True)
    b = load_detector("canny", device="cpu")
    assert b is not a and load_detector("canny", device="cpu") is b
    write_card(path, {**read_card(path), "threshold": 0.77})  # a calibration rewrote the card
    c = load_detector("canny", device="cpu")
    assert c is not b and c.threshold == 0.77
    assert len(detect_mod._DETECTORS) == 1  # replaced, not piled up


def test_methods_come_from_the_registry(monkeypatch):
    from deepclarity.models import ModelSpec, detector_methods, register
    from deepclarity.models import registry as registry_mod

    assert detect_mod.METHODS == detector_methods() == {"canny": "detector-canny", "rgb": "detector-rgb"}
    monkeypatch.setattr(registry_mod, "_REGISTRY", dict(registry_mod._REGISTRY))
    register(ModelSpec("detector-edge2", "detect", lambda: create_model("detector-canny", pretrained=False), 1,
                       "detector-edge2.safetensors", "a test detector", method="edge2"))
    assert detect_mod.METHODS["edge2"] == "detector-edge2"
    with pytest.raises(ValueError, match="unknown detection method 'sobel'.*edge2"):
        Detector("sobel", device="cpu")


def test_missing_weights_is_a_model_error(tmp_path, monkeypatch, clear_detectors):
    monkeypatch.setenv("DEEPCLARITY_WEIGHTS", str(tmp_path / "nothing-here"))
    with pytest.raises(ModelError, match="no trained weights"):
        Detector("canny", device="cpu")
    with pytest.raises(ModelError):
        load_detector("rgb", device="cpu")
    assert not detect_mod._DETECTORS


def test_explicit_missing_weights_file_is_a_model_error(tmp_path, clear_detectors):
    with pytest.raises(ModelError, match="not found"):
        Detector("canny", device="cpu", weights=str(tmp_path / "none.safetensors"))


def test_an_explicit_weights_file_brings_its_own_calibration(random_weights, tmp_path):
    import json

    from deepclarity.models.weights import card_path

    src = random_weights / get_spec("detector-canny").weights
    mine = tmp_path / "mine.safetensors"
    shutil.copyfile(src, mine)
    card = json.loads(card_path(src).read_text())
    card_path(mine).write_text(json.dumps({**card, "threshold": 0.8, "threshold_small": 0.6}))
    det = Detector("canny", device="cpu", weights=str(mine))
    assert (det.threshold, det.small_threshold) == (0.8, 0.6)
    assert det.threshold_for(100, 400) == 0.6 and det.threshold_for(400, 400) == 0.8
    # A card without a calibration: 0.5, for every image.
    card_path(mine).write_text(json.dumps(card))
    det = Detector("canny", device="cpu", weights=str(mine))
    assert det.threshold == 0.5 and det.threshold_for(100, 400) == 0.5


def test_to_record(detector):
    res = detector.detect(pixelate(skdata.astronaut()[:200, :200], 4))
    rec = res.to_record()
    assert set(rec) == RECORD_KEYS
    assert isinstance(rec["pixelated"], bool) and isinstance(rec["probability"], float)
    assert rec["method"] == "canny"
    if rec["block_size"] is not None:
        assert isinstance(rec["block_size"], float) and len(rec["phase"]) == 2
    import json

    json.dumps(rec)  # JSON-able
    empty = Detection(False, 0.1234567891, None, None, np.zeros((1, 1), np.float32)).to_record()
    assert empty == {"pixelated": False, "probability": 0.123457, "block_size": None, "phase": None,
                     "method": "canny", "basis": "network", "regions": []}


# ------------------------------------------------------------- block size from the tiles above threshold


def _fake_tiles(monkeypatch, probs_for_box):
    """Make ``Detector.tile_probabilities`` return ``probs_for_box((y0, y1, x0, x1))`` for each tile."""
    seen = {}
    real_tile_grid = detect_mod.tile_grid

    def spy(h, w, max_tiles, size=CROP_SIZE):
        out = real_tile_grid(h, w, max_tiles, size)
        seen["boxes"] = out[2]
        return out

    def fake(self, crops):
        boxes = seen["boxes"]
        assert len(crops) == len(boxes)
        for crop, (y0, y1, x0, x1) in zip(crops, boxes):
            assert crop.shape == (y1 - y0, x1 - x0, 3) and crop.dtype == np.uint8
        return np.array([probs_for_box(b) for b in boxes], np.float32)

    monkeypatch.setattr(detect_mod, "tile_grid", spy)
    monkeypatch.setattr(Detector, "tile_probabilities", fake)


@pytest.fixture
def half_pixelated():
    """Astronaut (512x512): left half pixelated by 4, right half by 7 (256 / 37 = 6.92 px)."""
    img = skdata.astronaut()
    return np.concatenate([pixelate(img[:, :256], 4), pixelate(img[:, 256:], 7)], axis=1)


def test_block_size_from_left_tiles_only(detector, monkeypatch, half_pixelated):
    _fake_tiles(monkeypatch, lambda b: 1.0 if (b[2] + b[3]) / 2 < 256 else 0.0)
    res = detector.detect(half_pixelated)
    assert res.pixelated and res.probability == 1.0
    assert res.block_size == pytest.approx(4, rel=0.05)
    assert np.array_equal(res.region_map[:, :2], np.ones((4, 2))) and not res.region_map[:, 2:].any()


def test_block_size_from_right_tiles_only(detector, monkeypatch, half_pixelated):
    _fake_tiles(monkeypatch, lambda b: 0.9 if (b[2] + b[3]) / 2 > 256 else 0.1)
    res = detector.detect(half_pixelated)
    assert res.pixelated and res.probability == pytest.approx(0.9)
    assert res.block_size == pytest.approx(256 / 37, rel=0.05)


def test_left_half_pixelated_right_half_clean(detector, monkeypatch):
    img = skdata.astronaut().copy()
    img[:, :256] = pixelate(img[:, :256], 4)
    _fake_tiles(monkeypatch, lambda b: 1.0 if (b[2] + b[3]) / 2 < 256 else 0.0)
    res = detector.detect(img)
    assert res.block_size == pytest.approx(4, rel=0.05)


def test_no_grid_estimate_when_not_pixelated(detector, monkeypatch, half_pixelated):
    # Under SECOND_LOOK_P (0.6): over it, this half-pixelated image's mosaic is found by its cells.
    _fake_tiles(monkeypatch, lambda b: 0.2)

    def boom(*a, **k):
        raise AssertionError("estimate_grid must not run for a clean image")

    monkeypatch.setattr(grid_mod, "estimate_grid", boom)
    res = detector.detect(half_pixelated)
    assert not res.pixelated and res.probability == pytest.approx(0.2)
    assert res.block_size is None and res.phase is None and res.grid_confidence == 0.0


def test_estimate_block_false_skips_grid(detector, monkeypatch, half_pixelated):
    _fake_tiles(monkeypatch, lambda b: 1.0)
    monkeypatch.setattr(grid_mod, "estimate_grid", lambda *a, **k: pytest.fail("estimate_grid called"))
    res = detector.detect(half_pixelated, estimate_block=False)
    assert res.pixelated and res.block_size is None and res.phase is None


def test_mask_is_only_the_tiles_above_threshold(detector, monkeypatch, half_pixelated):
    detector.threshold = 0.6
    top_left = (0, 160, 0, 160)
    rows, cols, boxes = tile_grid(512, 512, detector.max_tiles)
    assert boxes[0] == top_left
    _fake_tiles(monkeypatch, lambda b: 0.7 if b == top_left else 0.59)
    seen = {}
    real = grid_mod.estimate_grid

    def spy(img, mask=None, **kw):
        seen["mask"] = mask
        return real(img, mask, **kw)

    monkeypatch.setattr(grid_mod, "estimate_grid", spy)
    res = detector.detect(half_pixelated)
    mask = seen["mask"]
    assert mask is not None and mask.shape == (512, 512)
    assert mask[:160, :160].all() and mask.sum() == 160 * 160
    assert res.block_size == pytest.approx(4, rel=0.05)


def test_clean_image_with_fake_pixelated_tiles_has_no_block(detector, monkeypatch):
    img = skdata.astronaut()
    _fake_tiles(monkeypatch, lambda b: 1.0)
    res = detector.detect(img)
    assert res.pixelated  # the (fake) model says so ...
    assert res.block_size is None and res.phase is None, (res.block_size, res.grid_confidence)


@pytest.mark.parametrize("name", ["tiny.png", "tall.png"])
def test_one_pixel_wide_image_judged_pixelated(random_weights, bad_inputs, name):
    det = Detector("canny", device="cpu", threshold=0.0)
    res = det.detect(bad_inputs[name])
    assert res.pixelated and res.block_size is None


@pytest.mark.parametrize("name", ["tiny.png", "tall.png"])
def test_one_pixel_wide_image_judged_clean(random_weights, bad_inputs, name):
    det = Detector("canny", device="cpu", threshold=1.0)
    res = det.detect(bad_inputs[name])
    assert not res.pixelated
    rows, cols, _ = tile_grid(*read_image(bad_inputs[name]).pixels.shape[:2], det.max_tiles)
    assert res.region_map.shape == (rows, cols)


# ------------------------------------------------------------------------------ shipped weights


def _copy_shipped(tmp_path: Path) -> Path | None:
    """A consistent copy of the shipped canny weights and card (the training run may be replacing them)."""
    src = REPO / "weights" / "detector-canny.safetensors"
    if not src.is_file():
        return None
    from deepclarity.models.weights import card_path

    card = card_path(src)
    for _ in range(5):
        dst = tmp_path / src.name
        try:
            shutil.copyfile(src, dst)
            shutil.copyfile(card, card_path(dst))
            create_model("detector-canny", weights=dst)  # verifies the SHA-256 against the card
            return dst
        except (ModelError, OSError):
            time.sleep(2)
    return None


@pytest.mark.slow
def test_shipped_weights_get_clear_cases_right(tmp_path, clear_detectors):
    weights = _copy_shipped(tmp_path)
    if weights is None:
        pytest.skip("weights/detector-canny.safetensors is missing (or kept changing while copied)")
    det = Detector("canny", device="cpu", weights=str(weights))
    shipped = Detector("canny", device="cpu")
    assert (det.threshold, det.small_threshold) == (shipped.threshold, shipped.small_threshold)  # its card's
    astronaut = skdata.astronaut()
    px = det.detect(pixelate(astronaut, 4))
    assert px.pixelated and px.probability > 0.9, px.to_record()
    assert px.block_size == pytest.approx(4, rel=0.10), px.to_record()
    for name, img in (("astronaut", astronaut), ("chelsea", skdata.chelsea())):
        res = det.detect(img)
        assert not res.pixelated, (name, res.to_record(), res.region_map.round(2).tolist())
