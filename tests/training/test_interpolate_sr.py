"""training.interpolate_sr: network interpolation of a PSNR generator and its GAN fine-tune, alpha
chosen on validation. Runs on a tiny generated ``train/`` folder, never on the research data."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import write_train_folder

from deepclarity.models import create_model
from deepclarity.models.weights import save_weights
from training import interpolate_sr


def _weights(path, seed: int):
    torch.manual_seed(seed)
    model = create_model("minisrgan", pretrained=False)
    return save_weights(model, path, {"name": "minisrgan", "steps": seed}), model.state_dict()


def test_blend_is_linear_in_every_parameter():
    torch.manual_seed(0)
    a = create_model("minisrresnet", pretrained=False).state_dict()
    torch.manual_seed(1)
    b = create_model("minisrresnet", pretrained=False).state_dict()
    key = next(k for k, v in a.items() if v.is_floating_point() and not torch.equal(v, b[k]))
    assert torch.equal(interpolate_sr.blend(a, b, 0.0)[key], a[key])
    assert torch.equal(interpolate_sr.blend(a, b, 1.0)[key], b[key])
    assert torch.allclose(interpolate_sr.blend(a, b, 0.25)[key], 0.75 * a[key] + 0.25 * b[key], atol=1e-6)
    with pytest.raises(SystemExit, match="different layers"):
        interpolate_sr.blend(a, {k: v for k, v in b.items() if k != key}, 0.5)


def test_choose_alpha_keeps_the_most_detail_above_the_bar():
    curve = [{"alpha": 0.0, "val_psnr": 28.0}, {"alpha": 0.5, "val_psnr": 27.6}, {"alpha": 1.0, "val_psnr": 26.9}]
    assert interpolate_sr.choose_alpha(curve, 27.5)["alpha"] == 0.5
    assert interpolate_sr.choose_alpha(curve, 26.0)["alpha"] == 1.0
    assert interpolate_sr.choose_alpha(curve, 28.5) is None


@pytest.mark.slow
def test_writes_the_chosen_blend_with_its_curve_or_nothing(tmp_path):
    data = write_train_folder(tmp_path / "data", "crop", 120, 140, (5, 4))
    psnr_card, psnr_state = _weights(tmp_path / "psnr.safetensors", 0)
    gan_card, gan_state = _weights(tmp_path / "gan.safetensors", 1)
    common = ["--psnr", str(tmp_path / "psnr.safetensors"), "--gan", str(tmp_path / "gan.safetensors"),
              "--data", str(data), "--subsets", "mini", "--val-images", "0", "--val-crop", "64", "--threads", "1",
              "--alphas", "0", "0.5", "1"]
    out = tmp_path / "out.safetensors"
    with pytest.raises(SystemExit, match="nothing written"):
        interpolate_sr.main([*common, "--out", str(out), "--min-gain", "100"])
    assert not out.exists()
    assert interpolate_sr.main([*common, "--out", str(out), "--min-gain", "-100"]) == 0
    card = json.loads(out.with_suffix(".json").read_text())
    info = card["interpolation"]
    assert info["alpha"] == 1.0 and [c["alpha"] for c in info["curve"]] == [0.0, 0.5, 1.0]
    assert info["psnr_sha256"] == psnr_card["sha256"] and info["gan_sha256"] == gan_card["sha256"]
    assert card["val_psnr"] == info["curve"][-1]["val_psnr"] and card["steps"] == 1  # the GAN's card, updated
    blended = create_model("minisrgan", weights=out).state_dict()
    assert all(torch.equal(blended[k], gan_state[k]) for k in gan_state)  # alpha 1: the GAN itself
