"""training.train_sr: aligned pairs, reproducible samples, weights + card, resume, GAN fine-tuning.

Runs on a tiny generated ``train/`` folder (scikit-image samples), never on the research data.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import write_train_folder
from skimage import data as skdata

from deepclarity.degrade import imresize, pixelate
from deepclarity.models import create_model, get_spec, list_models, load_weights
from training import train_sr
from training.data import PatchDataset, dihedral, make_pairs
from training.losses import feature_matching, frequency_loss, relativistic_loss

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    # crop27 is the one the hash puts in validation
    return write_train_folder(tmp_path_factory.mktemp("data"), "crop", 120, 140, (5, 4))


def test_pairs_are_aligned_and_flipped_together():
    hr = skdata.astronaut()[:160, :200]
    pair = make_pairs([hr], min_lr=8)[0]
    assert pair.hr.shape == (160, 200, 3) and pair.lr.shape == (40, 50, 3)
    ds = PatchDataset([pair], patch=16, seed=3)
    for i in range(8):
        lr, hr_patch = ds[i]
        assert lr.shape == (3, 16, 16) and hr_patch.shape == (3, 64, 64)
        again = imresize(np.rint(hr_patch.permute(1, 2, 0).numpy() * 255).astype(np.uint8), 0.25)
        inner = np.abs(again[3:-3, 3:-3].astype(int) - np.rint(lr.permute(1, 2, 0).numpy()[3:-3, 3:-3] * 255))
        assert inner.mean() < 2.0  # same place, same flip: only the crop border differs
    a, b = ds[5], PatchDataset([pair], patch=16, seed=3)[5]
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(ds[5][0], PatchDataset([pair], patch=16, seed=4)[5][0])


def test_nearest_pairs_hold_one_pixel_per_block():
    hr = skdata.astronaut()[:160, :200]
    pair = make_pairs([hr], min_lr=8, degradation="nearest")[0]
    assert pair.lr.shape == (40, 50, 3)
    assert np.array_equal(pair.lr, hr[2::4, 2::4])  # the pixel pixelate() shows for each 4x4 block
    assert np.array_equal(pixelate(hr, 4), np.repeat(np.repeat(pair.lr, 4, axis=0), 4, axis=1))


def test_dihedral_gives_eight_distinct_views():
    x = np.arange(12).reshape(3, 4, 1)
    views = {dihedral(x, k).tobytes() + bytes(dihedral(x, k).shape) for k in range(8)}
    assert len(views) == 8


def _run(data: Path, tmp: Path, *extra: str) -> int:
    return train_sr.main(["--data", str(data), "--subsets", "mini", "--patch", "12", "--batch", "2",
                          "--val-every", "2", "--val-images", "0", "--val-crop", "64", "--threads", "1",
                          "--device", "cpu", "--checkpoints", str(tmp / "ckpt"), *extra])


@pytest.mark.slow
def test_train_writes_weights_card_and_resumes(data, tmp_path):
    out = tmp_path / "w" / "mobilesr.safetensors"
    assert _run(data, tmp_path, "--model", "mobilesr", "--steps", "4", "--out", str(out)) == 0
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["name"] == "mobilesr" and card["steps"] in (2, 4) and card["scale"] == 4
    assert np.isfinite(card["val_psnr"]) and card["val_psnr"] > 15
    assert card["command"].startswith("python -m training.train_sr ") and card["hardware"].startswith("CPU")
    load_weights(create_model("mobilesr", pretrained=False), out)  # strict load works
    # Resume: a longer schedule continues from the checkpoint at step 4, not from scratch.
    assert _run(data, tmp_path, "--model", "mobilesr", "--steps", "6", "--out", str(out)) == 0
    with open(tmp_path / "ckpt" / "mobilesr" / "log.csv") as fh:
        steps = [int(r["step"]) for r in csv.DictReader(fh)]
    assert steps == [2, 4, 6]
    assert torch.load(tmp_path / "ckpt" / "mobilesr" / "last.pt", weights_only=False)["step"] == 6


@pytest.mark.slow
def test_gan_fine_tunes_from_the_generator(data, tmp_path):
    gen = tmp_path / "w" / "minisrresnet.safetensors"
    assert _run(data, tmp_path, "--model", "minisrresnet", "--steps", "2", "--out", str(gen)) == 0
    gan = tmp_path / "w" / "minisrgan.safetensors"
    assert _run(data, tmp_path, "--model", "minisrgan", "--steps", "2", "--init", str(gen), "--out", str(gan)) == 0
    card = json.loads(gan.with_suffix(".json").read_text())
    assert card["started_from"].startswith("minisrresnet.safetensors") and "feature matching" in card["objective"]
    a = create_model("minisrgan", weights=gan).state_dict()
    b = create_model("minisrresnet", weights=gen).state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a)  # the GAN steps changed the generator


@pytest.mark.slow
def test_restoration_variant_fine_tunes_on_pixelated_pairs(data, tmp_path):
    base = tmp_path / "w" / "mobilesr.safetensors"
    assert _run(data, tmp_path, "--model", "mobilesr", "--steps", "2", "--out", str(base)) == 0
    out = tmp_path / "w" / "mobilesr-pixel.safetensors"
    assert _run(data, tmp_path, "--model", "mobilesr", "--degradation", "nearest", "--steps", "2",
                "--init", str(base), "--out", str(out)) == 0
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["name"] == "mobilesr-pixel" and card["degradation"] == "nearest"
    assert card["started_from"].startswith("mobilesr.safetensors") and "one pixel per 4x4 block" in card["data"]
    assert (tmp_path / "ckpt" / "mobilesr-pixel" / "last.pt").is_file()  # its own checkpoint folder
    a = create_model("mobilesr-pixel", weights=out).state_dict()
    b = create_model("mobilesr", weights=base).state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_gan_without_a_generator_is_refused(data, tmp_path):
    with pytest.raises(SystemExit, match="minisrgan starts from trained weights"):
        _run(data, tmp_path, "--model", "minisrgan", "--steps", "2", "--init", str(tmp_path / "none.safetensors"),
             "--out", str(tmp_path / "g.safetensors"))


def test_losses():
    x = torch.rand(2, 3, 16, 16)
    assert frequency_loss(x, x) == 0
    assert frequency_loss(x, torch.roll(x, 3, dims=3)) < 1e-5  # amplitude ignores shifts
    assert frequency_loss(x, torch.full_like(x, 0.5)) > 0.01
    pos, neg = torch.full((4, 1), 5.0), torch.full((4, 1), -5.0)
    assert relativistic_loss(pos, neg) < 0.01 < relativistic_loss(neg, pos)
    feats = [torch.rand(2, 4, 8, 8) for _ in range(3)]
    assert feature_matching(feats, feats) == 0


def _log(path: Path) -> list[dict]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
def test_an_interrupted_run_continues_with_the_same_samples(data, tmp_path):
    """Stopped by its time budget after each step and rerun, a run sees the same samples and ends
    with the same weights as one that ran straight through."""
    common = ("--model", "mobilesr", "--steps", "4", "--val-every", "1")
    assert _run(data, tmp_path / "straight", *common, "--out", str(tmp_path / "a.safetensors")) == 0
    for _ in range(2):  # a budget this small stops after one step
        assert _run(data, tmp_path / "cut", *common, "--minutes", "1e-9", "--out", str(tmp_path / "b.safetensors")) == 0
    assert _run(data, tmp_path / "cut", *common, "--out", str(tmp_path / "b.safetensors")) == 0
    straight = _log(tmp_path / "straight" / "ckpt" / "mobilesr" / "log.csv")
    cut = _log(tmp_path / "cut" / "ckpt" / "mobilesr" / "log.csv")
    assert [r["step"] for r in cut] == ["1", "2", "3", "4"]
    for key in ("loss", "lr", "val_psnr", "samples"):
        assert [r[key] for r in cut] == [r[key] for r in straight]
    a = torch.load(tmp_path / "straight" / "ckpt" / "mobilesr" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "cut" / "ckpt" / "mobilesr" / "last.pt", weights_only=False)
    assert a["step"] == b["step"] == 4 and a["samples"] == b["samples"] == 8
    assert all(torch.equal(a["ema"][k], b["ema"][k]) for k in a["ema"])


@pytest.mark.slow
def test_continuing_from_weights_records_the_run_before_and_can_restart_the_schedule(data, tmp_path):
    out = tmp_path / "w" / "mobilesr.safetensors"
    assert _run(data, tmp_path / "first", "--model", "mobilesr", "--steps", "2", "--out", str(out)) == 0
    first = json.loads(out.with_suffix(".json").read_text())
    assert first["schedule_start"] == 0 and "earlier_runs" not in first

    # Warm restart: a new checkpoint folder, so the run continues from the weights at step 2 and
    # its warm-up starts again there.
    assert _run(data, tmp_path / "again", "--model", "mobilesr", "--steps", "6", "--restart", "--warmup", "2",
                "--lr", "1e-3", "--val-every", "1", "--out", str(out)) == 0
    rows = _log(tmp_path / "again" / "ckpt" / "mobilesr" / "log.csv")
    assert [int(r["step"]) for r in rows] == [3, 4, 5, 6]
    assert [float(r["lr"]) for r in rows[:2]] == [5e-4, 1e-3]  # warm-up from step 2, then the peak
    assert float(rows[-1]["lr"]) < 1e-3  # cosine decay to --steps
    state = torch.load(tmp_path / "again" / "ckpt" / "mobilesr" / "last.pt", weights_only=False)
    summary = {k: first[k] for k in train_sr.RUN_FIELDS if k in first}
    assert state["schedule_start"] == 2 and state["earlier_runs"] == [summary]
    assert state["started_from"] == first["started_from"] and state["samples"] == first["samples"] + 4 * 2
    card = json.loads(out.with_suffix(".json").read_text())
    if card["sha256"] != first["sha256"]:  # a validation beat the first run: its card names that run
        assert card["earlier_runs"] == [summary] and card["schedule_start"] == 2


def test_model_choices_and_defaults_come_from_the_registry():
    names = {s.name for s in list_models("sr")}
    assert set(train_sr.DEFAULTS) <= names and set(train_sr.ADVERSARIAL) <= names
    assert {"mobilesr", "mobilesr-rep", "minisrresnet", "minisrgan"} <= set(train_sr.trainable_models())
    assert all(get_spec(n).degradation == "bicubic" and get_spec(n).is_network for n in train_sr.trainable_models())
    assert "mobilesr-seed" in train_sr.trainable_models()  # an architecture without a weight file: trained with --out
    assert train_sr.restoration_variant("mobilesr") == "mobilesr-pixel"


@pytest.mark.parametrize("module", ["training.train_sr", "training.train_detector"])
def test_help_runs_as_a_module_from_the_repository_root(module):
    proc = subprocess.run([sys.executable, "-m", module, "--help"], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"python -m {module}" in proc.stdout and "--from-weights" in proc.stdout
