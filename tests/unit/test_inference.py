"""Inference precision and backend: the choice ``auto`` makes (:mod:`deepclarity.inference`), bf16
autocast in :class:`~deepclarity.enhance.Upscaler`, ONNX export and the onnxruntime backend
(:mod:`deepclarity.export`), and the measurement that writes the model card's ``inference`` record
(:mod:`deepclarity.eval.inference`). Generators are randomly initialised (``random_sr_weights``)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from skimage import data as skdata

import deepclarity.inference as inference_mod
from deepclarity.cli import main
from deepclarity.enhance import Upscaler, load_upscaler
from deepclarity.errors import DeepClarityError
from deepclarity.export import OnnxModule, check_onnx, export_onnx, onnx_available
from deepclarity.inference import choose_inference
from deepclarity.io import write_image
from deepclarity.models import create_model, get_spec, read_card
from deepclarity.models.weights import write_card

pytestmark = pytest.mark.usefixtures("random_sr_weights")
CPU = torch.device("cpu")
needs_onnx = pytest.mark.skipif(not onnx_available(), reason="needs the onnx extra")


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return np.ascontiguousarray(skdata.astronaut()[120:280:4, 160:352:4])


def card_with(ranking: list[str], sha: str = "abc") -> dict:
    return {"sha256": sha, "inference": {"weights_sha256": "abc", "cpu_ranking": ranking}}


# ------------------------------------------------------------------------------ choose_inference


def test_auto_without_a_measurement_is_fp32_torch_on_the_cpu_and_fp16_on_cuda():
    assert choose_inference({"sha256": "abc"}, CPU, "auto", "auto").label == "torch-fp32"
    assert choose_inference(None, torch.device("cuda"), "auto", "auto").label == "torch-fp16"


def test_auto_follows_the_measured_ranking_for_these_weights_only(monkeypatch):
    monkeypatch.setattr("deepclarity.runtime.cpu_has_native_bf16", lambda: True)
    monkeypatch.setattr(inference_mod, "_onnx_ready", lambda: True)
    assert choose_inference(card_with(["torch-bf16", "torch-fp32"]), CPU).label == "torch-bf16"
    assert choose_inference(card_with(["onnx-fp32", "torch-bf16"]), CPU).label == "onnx-fp32"
    # measured on other weights: ignored
    assert choose_inference(card_with(["torch-bf16"], sha="other"), CPU).label == "torch-fp32"
    # a backend asked for restricts the ranking to it
    assert choose_inference(card_with(["onnx-fp32", "torch-bf16"]), CPU, "auto", "torch").label == "torch-bf16"


def test_the_measured_memory_layout_goes_with_the_chosen_option(monkeypatch):
    monkeypatch.setattr("deepclarity.runtime.cpu_has_native_bf16", lambda: True)
    card = card_with(["torch-bf16", "torch-fp32"])
    card["inference"]["cpu_channels_last"] = {"torch-bf16": True, "torch-fp32": False}
    assert choose_inference(card, CPU).channels_last is True
    assert choose_inference(card, CPU, "fp32").channels_last is False
    assert choose_inference(card, CPU, "bf16").channels_last is True
    # not measured: the device default (contiguous on the CPU)
    assert not choose_inference(card_with(["torch-bf16"]), CPU).channels_last


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_channels_last_gives_the_same_picture(photo, precision, monkeypatch):
    from deepclarity.runtime import model_channels_last

    monkeypatch.setattr("deepclarity.runtime.cpu_has_native_bf16", lambda: True)
    plain = Upscaler("minisrresnet", device="cpu", tile=0, precision=precision, channels_last=False)
    last = Upscaler("minisrresnet", device="cpu", tile=0, precision=precision, channels_last=True)
    assert not model_channels_last(plain.model) and model_channels_last(last.model)
    a, b = plain.upscale_array(photo), last.upscale_array(photo)
    assert np.abs(a.astype(int) - b).max() <= 1
    # tiled runs give their tiles in the model's layout too
    tiled = Upscaler("minisrresnet", device="cpu", tile=24, precision=precision, channels_last=True)
    assert np.abs(tiled.upscale_array(photo).astype(int) - a).max() <= 1


def test_auto_skips_what_this_machine_cannot_run(monkeypatch):
    monkeypatch.setattr("deepclarity.runtime.cpu_has_native_bf16", lambda: False)
    monkeypatch.setattr(inference_mod, "_onnx_ready", lambda: False)
    assert choose_inference(card_with(["onnx-fp32", "torch-bf16", "torch-fp32"]), CPU).label == "torch-fp32"


@pytest.mark.parametrize("precision, backend, message", [
    ("fp16", "auto", "fp16 runs on CUDA only"),
    ("bf16", "onnx", "onnx backend runs in fp32"),
    ("int8", "auto", "unknown precision"),
    ("auto", "tensorrt", "unknown backend"),
])
def test_impossible_choices_are_refused_in_one_line(precision, backend, message):
    with pytest.raises(DeepClarityError, match=message):
        choose_inference({"sha256": "abc"}, CPU, precision, backend)


def test_functions_always_run_as_they_are():
    assert choose_inference(None, CPU, "bf16", "onnx", is_network=False).label == "torch-fp32"


def test_process_defaults_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("DEEPCLARITY_PRECISION", "bf16")
    assert load_upscaler("minisrresnet", device="cpu").precision == "bf16"
    monkeypatch.setenv("DEEPCLARITY_PRECISION", "fp32")
    assert load_upscaler("minisrresnet", device="cpu").precision == "fp32"


# -------------------------------------------------------------------------------- bf16 autocast


def test_bf16_runs_the_convolutions_in_bf16_and_stays_within_a_few_levels(photo):
    fp32 = Upscaler("minisrresnet", device="cpu", precision="fp32")
    bf16 = Upscaler("minisrresnet", device="cpu", precision="bf16")
    seen = []
    hook = bf16.model.head[0].register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    try:
        out = bf16.upscale_array(photo)
    finally:
        hook.remove()
    assert seen == [torch.bfloat16]
    ref = fp32.upscale_array(photo)
    assert out.dtype == np.uint8 and out.shape == ref.shape
    assert np.abs(out.astype(int) - ref).max() <= 4


# ------------------------------------------------------------------------------------ ONNX


@needs_onnx
def test_export_has_dynamic_size_and_matches_pytorch(tmp_path):
    module = create_model("mobilesr-seed", pretrained=False).eval()
    path = export_onnx(module, tmp_path / "seed.onnx")
    assert check_onnx(module, path) <= 1
    out = OnnxModule(path)(torch.rand(1, 3, 21, 30))
    assert tuple(out.shape) == (1, 3, 84, 120)


@needs_onnx
def test_onnx_backend_gives_the_pytorch_picture(photo, tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPCLARITY_CACHE", str(tmp_path / "cache"))
    ref = Upscaler("minisrresnet", device="cpu", precision="fp32").upscale_array(photo)
    onnx = Upscaler("minisrresnet", device="cpu", backend="onnx")
    assert onnx.inference.label == "onnx-fp32" and isinstance(onnx.model, OnnxModule)
    assert np.abs(onnx.upscale_array(photo).astype(int) - ref).max() <= 1
    assert len(list((tmp_path / "cache" / "onnx").glob("minisrresnet-*.onnx"))) == 1  # exported once, kept


@needs_onnx
def test_cli_export_writes_a_checked_file_and_never_overwrites(tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", "mobilesr", "-o", str(out)]) == 0
    assert out.stat().st_size > 0 and "difference from PyTorch" in capsys.readouterr().out
    before = out.read_bytes()
    assert main(["export", "mobilesr", "-o", str(out)]) == 2
    assert "exists" in capsys.readouterr().err and out.read_bytes() == before


# ------------------------------------------------------------------------ the inference record


@pytest.mark.slow
def test_measure_inference_ranks_only_options_that_keep_the_picture(tmp_path, random_sr_weights, monkeypatch):
    from deepclarity.eval.inference import measure_inference

    folder = tmp_path / "Tiny"
    folder.mkdir()
    for i, crop in enumerate([skdata.astronaut()[:96, :128], skdata.coffee()[:96, :128]]):
        write_image(folder / f"{i}.png", crop)
    weights = tmp_path / "weights"
    shutil.copytree(random_sr_weights, weights)
    monkeypatch.setenv("DEEPCLARITY_WEIGHTS", str(weights))
    record = measure_inference("mobilesr", [("Tiny", sorted(folder.iterdir()))], repeats=1, progress=False)
    assert record["weights_sha256"] == get_spec("mobilesr").card["sha256"]
    seconds = record["cpu_seconds_per_frame"]
    ranking = record["cpu_ranking"]
    assert ranking == sorted(ranking, key=seconds.get)
    assert set(ranking) == {o for o, keeps in record["keeps_picture"].items() if keeps}
    if "bf16_psnr_delta_db" in record:
        assert record["keeps_picture"]["torch-bf16"] == (abs(record["bf16_psnr_delta_db"]["Tiny"]) <= 0.02)
    card = read_card(get_spec("mobilesr").weights_path)
    card["inference"] = record
    write_card(get_spec("mobilesr").weights_path, card)
    json.dumps(card)  # the card stays JSON
    assert Upscaler("mobilesr", device="cpu").inference.label in ranking
    # each PyTorch option was timed in both layouts and the faster one recorded
    assert set(record["cpu_channels_last"]) == {o for o in seconds if o.startswith("torch-")}
