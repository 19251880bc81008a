"""Threshold calibration (:mod:`deepclarity.eval.detect`): the chosen threshold and where the
Detector picks it up."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import run_module, write_random_weights

from deepclarity.eval.detect import choose_threshold, threshold_rates


def test_threshold_keeps_false_positives_within_budget():
    probs = np.array([0.1, 0.2, 0.97, 0.999, 0.6, 0.95, 0.99])
    labels = np.array([0, 0, 0, 1, 1, 1, 1])
    t = choose_threshold(probs, labels, max_fpr=0.0)
    assert 0.97 < t < 0.9701  # just above the highest negative: no false positive left
    assert threshold_rates(probs, labels, t)["fpr"] == 0.0
    # One false positive in three negatives is allowed: the 2nd-highest negative (0.2) bounds it,
    # but the threshold never goes below 0.5.
    assert choose_threshold(probs, labels, max_fpr=0.34) == 0.5


def test_rates_are_computed_from_labels():
    probs = np.array([0.9, 0.1, 0.8, 0.3])
    labels = np.array([1, 0, 0, 1])
    r = threshold_rates(probs, labels, 0.5)
    assert r == {"accuracy": 0.5, "recall": 0.5, "fpr": 0.5, "images": 4}


def test_detector_default_threshold_comes_from_the_model_card(tmp_path, monkeypatch):
    from deepclarity import detect
    from deepclarity.models import create_model, get_spec, save_weights

    monkeypatch.setenv("DEEPCLARITY_WEIGHTS", str(tmp_path))
    spec = get_spec("detector-canny")
    save_weights(create_model("detector-canny", pretrained=False), tmp_path / spec.weights, {}, half=True)
    assert detect.Detector("canny", device="cpu").threshold == 0.5  # no calibration yet
    card_file = (tmp_path / spec.weights).with_suffix(".json")
    card = json.loads(card_file.read_text())
    card["threshold"] = 0.987
    card_file.write_text(json.dumps(card))
    assert detect.Detector("canny", device="cpu").threshold == pytest.approx(0.987)
    assert detect.Detector("canny", device="cpu", threshold=0.3).threshold == 0.3
    # No small-image threshold in the card: every image is judged at the one threshold.
    assert detect.Detector("canny", device="cpu").threshold_for(40, 300) == pytest.approx(0.987)
    card["threshold_small"] = 0.9
    card_file.write_text(json.dumps(card))
    det = detect.Detector("canny", device="cpu")
    assert det.threshold_for(40, 300) == pytest.approx(0.9)  # short side under a crop
    assert det.threshold_for(159, 2000) == pytest.approx(0.9)
    assert det.threshold_for(160, 160) == pytest.approx(0.987)
    given = detect.Detector("canny", device="cpu", threshold=0.3)
    assert given.threshold_for(40, 300) == given.threshold_for(500, 500) == 0.3  # given: for every size


def test_small_images_are_called_at_their_own_threshold(stub_detector, monkeypatch):
    """A snippet scored between the two thresholds is pixelated; a large image with the same
    score is not, and an explicit threshold applies to both."""
    from deepclarity import detect

    stub_detector.threshold, stub_detector.small_threshold = 0.99, 0.9
    stub_detector.second_look = False  # the network's verdict alone on the large image
    monkeypatch.setattr(detect.Detector, "tile_probabilities", lambda self, crops: np.full(len(crops), 0.95))
    rng = np.random.default_rng(0)
    snippet = rng.integers(0, 256, (40, 200, 3), dtype=np.uint8)
    photo = rng.integers(0, 256, (320, 320, 3), dtype=np.uint8)
    assert stub_detector.detect(snippet, estimate_block=False).pixelated
    assert not stub_detector.detect(photo, estimate_block=False).pixelated
    assert not stub_detector.detect(snippet, threshold=0.99, estimate_block=False).pixelated


@pytest.mark.slow
def test_calibrate_writes_the_threshold_into_the_card(tmp_path, monkeypatch):
    from skimage import data as skdata

    from deepclarity.datasets import is_validation
    from deepclarity.io import write_image

    folder = tmp_path / "data" / "train" / "mini"
    folder.mkdir(parents=True)
    for i in range(30):  # crop27 is the one the hash puts in validation
        write_image(folder / f"crop{i:02d}.png", skdata.astronaut()[4 * i:4 * i + 96, 3 * i:3 * i + 96])
    assert sum(is_validation(p, tmp_path / "data") for p in folder.iterdir()) == 1
    weights = write_random_weights(tmp_path / "w", ("detector-canny",))
    monkeypatch.setenv("DEEPCLARITY_WEIGHTS", str(weights))
    done = run_module("evaluation.calibrate_detect", "--data", tmp_path / "data", "--methods", "canny", "--max-fpr", "0")
    assert done.returncode == 0, done.stderr
    card = json.loads((weights / "detector-canny.json").read_text())
    cal = card["calibration"]
    assert cal["command"] == f"python evaluation/calibrate_detect.py --data {tmp_path / 'data'} --methods canny --max-fpr 0"
    assert cal["photos"] == 1 and cal["screenshots"] == 0 and cal["at_0.5"]["images"] == 10
    assert cal["per_slice_at_threshold"]["clean"]["recall"] is None
    assert 0.5 <= card["threshold"] <= 1.0 and cal["at_threshold"]["fpr"] == 0.0
    # The 96 px crops are all small images: their own threshold, the main one chosen on them too.
    assert cal["small_images"] == 10 and card["threshold_small"] == card["threshold"]


def test_rates_of_a_one_label_slice_have_no_undefined_numbers():
    r = threshold_rates(np.array([0.9, 0.2]), np.array([0, 0]), 0.5)
    assert r == {"accuracy": 0.5, "recall": None, "fpr": 0.5, "images": 2}


def test_calibration_scores_screenshots_with_the_screenshot_slices():
    from skimage import data as skdata

    from deepclarity.eval.detect import CENSOR_SLICES, SLICES, calibration_scores

    class Fixed:  # a stand-in detector: the probability is the image's mean level
        method = "canny"

        def detect(self, img, estimate_block=False):
            return type("D", (), {"probability": float(np.asarray(img).mean()) / 255})()

    photo = np.ascontiguousarray(skdata.astronaut()[:96, :128])
    shot = np.full((120, 300, 3), 255, np.uint8)
    shot[20:100:12, 10:290] = 0  # lines of "text"
    probs, labels, names, sides = calibration_scores(Fixed(), [photo], 3, [shot])
    screen = [s.name for s in CENSOR_SLICES if s.source == "screens"]
    assert names.tolist() == [s.name for s in SLICES] + screen
    assert labels.tolist() == [s.label for s in SLICES] + [s.label for s in CENSOR_SLICES if s.source == "screens"]
    assert probs.shape == labels.shape == sides.shape and np.all((0 <= probs) & (probs <= 1))
    assert sides[names == "clean"].tolist() == [96]  # the photo's short side
    assert np.all(sides[np.char.startswith(names, "snippets")] < 96)  # crops of text lines
