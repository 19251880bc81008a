"""training.train_detector: synthesised samples, weights + card, resume, and continued runs.

Runs on a tiny generated ``train/`` folder (scikit-image samples), never on the research data.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import write_train_folder
from skimage import data as skdata

from deepclarity.detect import CROP_SIZE
from deepclarity.models import create_model, load_weights
from training import train_detector
from training.synth import synthesize


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_train_folder(tmp_path_factory.mktemp("data"), "photo", 200, 220, (4, 3))


def test_samples_are_reproducible_crops_with_the_asked_label():
    img = skdata.astronaut()
    recipes = set()
    for i in range(40):
        a = synthesize(img, np.random.default_rng([0, i]), label=i % 2)
        b = synthesize(img, np.random.default_rng([0, i]), label=i % 2)
        assert a.label == i % 2 and a.crop.dtype == np.uint8
        assert a.crop.shape[0] <= CROP_SIZE and a.crop.shape[1] <= CROP_SIZE and a.crop.shape[2] == 3
        assert np.array_equal(a.crop, b.crop) and a.recipe == b.recipe
        recipes.add(a.recipe.split(" ")[0])
    assert {"pixelate", "clean"} <= recipes  # both kinds of sample are drawn


def test_small_photos_are_padded_not_upscaled():
    small = skdata.astronaut()[:90, :70]
    sample = synthesize(small, np.random.default_rng(3), label=0)
    assert sample.crop.shape[0] <= 90 and sample.crop.shape[1] <= 70


def _run(data: Path, ckpt: Path, out: Path, *extra: str) -> int:
    return train_detector.main(["--data", str(data), "--method", "canny", "--batch", "4", "--val-every", "2",
                                "--val-per-image", "2", "--workers", "0", "--threads", "1", "--lr", "1e-3",
                                "--warmup", "1", "--checkpoints", str(ckpt), "--out", str(out), *extra])


@pytest.mark.slow
def test_train_writes_weights_card_resumes_and_continues(data, tmp_path):
    out = tmp_path / "w" / "detector-canny.safetensors"
    out.parent.mkdir()
    assert _run(data, tmp_path / "ckpt", out, "--steps", "2") == 0
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["name"] == "detector-canny" and card["input"] == "canny" and card["steps"] == 2
    assert card["crop_size"] == CROP_SIZE and card["command"].startswith("python -m training.train_detector ")
    assert "earlier_runs" not in card
    load_weights(create_model("detector-canny", pretrained=False), out)  # strict load works

    # Resume: a longer schedule continues from the checkpoint, not from scratch; when it ships,
    # its card names the command that ran before it.
    assert _run(data, tmp_path / "ckpt", out, "--steps", "4") == 0
    with open(tmp_path / "ckpt" / "detector-canny" / "log.csv") as fh:
        assert [int(r["step"]) for r in csv.DictReader(fh)] == [2, 4]
    assert torch.load(tmp_path / "ckpt" / "detector-canny" / "last.pt", weights_only=False)["step"] == 4
    first = json.loads(out.with_suffix(".json").read_text())
    if first["sha256"] != card["sha256"]:
        assert first["earlier_runs"] == [{k: card[k] for k in ("command", "steps", "sha256")}]

    # Without a checkpoint, a run starts from the weights file and its card names the runs before.
    history = first.get("earlier_runs", []) + [{k: first[k] for k in ("command", "steps", "sha256")}]
    assert _run(data, tmp_path / "continue", out, "--steps", "6", "--val-every", "1") == 0
    with open(tmp_path / "continue" / "detector-canny" / "log.csv") as fh:
        assert [int(r["step"]) for r in csv.DictReader(fh)][0] == first["steps"] + 1
    card = json.loads(out.with_suffix(".json").read_text())
    if card["sha256"] != first["sha256"]:  # a better validation step was written
        assert card["earlier_runs"] == history
    state = torch.load(tmp_path / "continue" / "detector-canny" / "last.pt", weights_only=False)
    assert state["step"] == 6
    assert state["earlier_runs"] == history


@pytest.mark.slow
def test_weights_validated_on_another_synthesis_revision_set_no_bar(data, tmp_path):
    from training.synth_v2 import REVISION

    out = tmp_path / "w" / "detector-canny.safetensors"
    out.parent.mkdir()
    assert _run(data, tmp_path / "a", out, "--steps", "2", "--synthesis", "mix") == 0
    card_path = out.with_suffix(".json")
    card = json.loads(card_path.read_text())
    assert card["synthesis"] == "mix" and card["synthesis_revision"] == REVISION

    def continued(revision: int, name: str) -> bool:
        """Whether a mix run from weights whose card claims an unbeatable score on ``revision``'s
        samples ships new weights."""
        card_path.write_text(json.dumps({**card, "synthesis_revision": revision, "val_acc": 2.0}))
        assert _run(data, tmp_path / name, out, "--steps", "4", "--synthesis", "mix", "--val-every", "1") == 0
        return json.loads(card_path.read_text()).get("val_acc") != 2.0

    assert not continued(REVISION, "same")  # the same samples: their score is the bar
    assert continued(REVISION - 1, "older")  # other samples: no bar, the run's best ships
