"""Threshold calibration: the chosen threshold and where the Detector picks it up."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def calibrate():
    sys.path.insert(0, str(ROOT / "evaluation"))
    try:
        import calibrate_detect
    finally:
        sys.path.remove(str(ROOT / "evaluation"))
    return calibrate_detect


def test_threshold_keeps_false_positives_within_budget(calibrate):
    probs = np.array([0.1, 0.2, 0.97, 0.999, 0.6, 0.95, 0.99])
    labels = np.array([0, 0, 0, 1, 1, 1, 1])
    t = calibrate.choose_threshold(probs, labels, max_fpr=0.0)
    assert 0.97 < t < 0.9701  # just above the highest negative: no false positive left
    assert calibrate.rates(probs, labels, t)["fpr"] == 0.0
    # One false positive in three negatives is allowed: the 2nd-highest negative (0.2) bounds it,
    # but the threshold never goes below 0.5.
    assert calibrate.choose_threshold(probs, labels, max_fpr=0.34) == 0.5


def test_rates_are_computed_from_labels(calibrate):
    probs = np.array([0.9, 0.1, 0.8, 0.3])
    labels = np.array([1, 0, 0, 1])
    r = calibrate.rates(probs, labels, 0.5)
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
