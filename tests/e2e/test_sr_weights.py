"""The shipped generators: cards written by the training script, and they beat bicubic.

Measured on crops of scikit-image's bundled photos (never the benchmark sets, which are not in the
repository): LR by the protocol's MATLAB bicubic /4, PSNR-Y with 4 px shaved.
"""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data as skdata

from deepclarity.degrade import imresize
from deepclarity.enhance import Upscaler
from deepclarity.metrics import detail_ratio, psnr_y
from deepclarity.models import get_spec, sr_model_names
from deepclarity.models.weights import sha256_of

# Every generator the registry offers (bicubic, the reference, has no weights to check).
SHIPPED = tuple(n for n in sr_model_names() if get_spec(n).is_network)
# What each shipped model must gain over bicubic (dB) on the crops below.
MARGIN_DB = {"mobilesr": 0.5, "minisrresnet": 0.5, "mobilesr-rep": 0.5}


@pytest.fixture(scope="module")
def crops() -> list[np.ndarray]:
    photos = [skdata.astronaut()[0:192, 150:342], skdata.coffee()[100:292, 200:392],
              skdata.chelsea()[60:252, 150:342], skdata.rocket()[100:292, 100:292]]
    return [np.ascontiguousarray(p) for p in photos]


@pytest.fixture(scope="module")
def outputs(crops) -> dict[str, list[np.ndarray]]:
    out = {}
    for name in ("bicubic", *SHIPPED):
        up = Upscaler(name, device="cpu", tile=0)
        out[name] = [up.upscale_array(imresize(hr, 0.25)) for hr in crops]
    return out


def _mean(metric, images, crops) -> float:
    return float(np.mean([metric(sr, hr, 4) for sr, hr in zip(images, crops)]))


@pytest.mark.parametrize("name", SHIPPED)
def test_card_describes_the_file(name):
    spec = get_spec(name)
    card = spec.card
    assert card is not None, f"{spec.weights_path} has no model card"
    assert card["sha256"] == sha256_of(spec.weights_path)
    assert card["params"] == spec.num_params and card["scale"] == 4
    # the script, run as a file (older cards) or as the training package's module
    assert ("training/train_sr.py" in card["command"] or "training.train_sr" in card["command"]) and card["steps"] > 0
    assert card["val_psnr"] > card["val_psnr_bicubic"] or name == "minisrgan"


@pytest.mark.parametrize("name", ["mobilesr", "mobilesr-rep"])
def test_mobilesr_family_is_small(name):
    assert get_spec(name).num_params * 4 <= 500_000  # <= 0.5 MB in float32 (MobileSR-Rep: folded)


@pytest.mark.parametrize("name", sorted(n for n in MARGIN_DB if n in SHIPPED))
def test_beats_bicubic(name, outputs, crops):
    gain = _mean(psnr_y, outputs[name], crops) - _mean(psnr_y, outputs["bicubic"], crops)
    assert gain >= MARGIN_DB[name], f"{name} gains only {gain:.2f} dB over bicubic"


def test_minisrgan_is_sharper_than_minisrresnet(outputs, crops):
    gan = _mean(detail_ratio, outputs["minisrgan"], crops)
    l1 = _mean(detail_ratio, outputs["minisrresnet"], crops)
    bicubic = _mean(detail_ratio, outputs["bicubic"], crops)
    assert bicubic < l1 < gan, (bicubic, l1, gan)
    # ... and the GAN still reconstructs the image: far above a bicubic-level failure.
    assert _mean(psnr_y, outputs["minisrgan"], crops) > _mean(psnr_y, outputs["bicubic"], crops) - 1.0


@pytest.mark.parametrize("name", SHIPPED)
def test_tiling_changes_psnr_by_at_most_001_db(name, crops):
    """Tiled inference stays within 0.01 dB of whole-image inference with the shipped weights:
    16-px tiles, 16 px of context."""
    whole, tiled = Upscaler(name, device="cpu", tile=0), Upscaler(name, device="cpu", tile=16, tile_pad=16)
    for hr in crops[:2]:
        lr = imresize(hr, 0.25)
        assert tiled.tile_for(*lr.shape[:2]) == 16 and len(range(0, lr.shape[0], 16)) > 1
        a, b = psnr_y(whole.upscale_array(lr), hr, 4), psnr_y(tiled.upscale_array(lr), hr, 4)
        assert abs(a - b) <= 0.01, (name, a, b)
