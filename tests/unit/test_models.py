"""The model zoo: registry, architectures, parameter budgets, skip paths and weight files."""

from __future__ import annotations

import hashlib
import json
import pickle

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from deepclarity.errors import ModelError
from deepclarity.models import (
    Discriminator,
    MiniSRResNet,
    MobileSR,
    MobileSRSeed,
    count_params,
    ModelSpec,
    create_model,
    detector_methods,
    get_spec,
    list_models,
    load_weights,
    read_card,
    register,
    save_weights,
    sr_model_names,
    weights_dir,
)
from deepclarity.models import registry as registry_mod
from deepclarity.models.layers import InvertedResidual, PixelShuffleUp, ResidualBlock

ALL_NAMES = [s.name for s in list_models()]
NETWORK_NAMES = [s.name for s in list_models() if s.is_network]
SR_NAMES = [s.name for s in list_models("sr") if s.is_network]
DETECT_NAMES = [s.name for s in list_models("detect")]


@pytest.fixture
def empty_weights(tmp_path, monkeypatch):
    """Point the zoo at an empty weights folder, so no real trained file is ever picked up."""
    wdir = tmp_path / "weights"
    wdir.mkdir()
    monkeypatch.setenv("DEEPCLARITY_WEIGHTS", str(wdir))
    return wdir


def _build(name: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return create_model(name, pretrained=False)


def _prelus(model: nn.Module) -> list[nn.Module]:
    # remove_duplicate=False: a module shared by several parents is listed once per parent, which
    # is exactly what the prototype's ``act=nn.PReLU()`` default argument did.
    return [m for _, m in model.named_modules(remove_duplicate=False) if isinstance(m, nn.PReLU)]


def _assert_same_state(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert sa[k].dtype == sb[k].dtype, k
        assert torch.equal(sa[k], sb[k]), k


# --------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------

def test_registry_contents():
    assert set(ALL_NAMES) == {
        "detector-canny", "detector-rgb", "mobilesr", "mobilesr-rep", "mobilesr-seed", "minisrresnet",
            "minisrgan",
        "minisrresnet-seed", "mobilesr-pixel", "minisrresnet-pixel", "bicubic", "discriminator",
    }
    assert set(DETECT_NAMES) == {"detector-canny", "detector-rgb"}
    assert set(SR_NAMES) == {"mobilesr", "mobilesr-rep", "mobilesr-seed", "minisrresnet", "minisrgan", "minisrresnet-seed",
                             "mobilesr-pixel", "minisrresnet-pixel"}
    assert {s.name for s in list_models("sr")} == set(SR_NAMES) | {"bicubic"}
    assert [s.name for s in list_models("discriminator")] == ["discriminator"]
    assert list_models("no-such-task") == []
    for spec in list_models():
        assert get_spec(spec.name) is spec
        assert spec.scale == (4 if spec.task == "sr" else 1)
        assert spec.description


def test_bicubic_is_a_registered_function_entry(empty_weights):
    """The reference upscaler is an SR entry like the others, only without a network or weights."""
    import numpy as np

    from deepclarity.degrade import imresize

    spec = get_spec("bicubic")
    assert spec.task == "sr" and spec.scale == 4 and spec.kind == "function" and not spec.is_network
    assert spec.weights is None and spec.weights_path is None and not spec.has_weights and spec.card is None
    assert spec.num_params == 0 and spec.shipped and spec.degradation is None
    assert not spec.is_restoration_variant
    img = np.random.default_rng(0).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    np.testing.assert_array_equal(spec.function(img, 4), imresize(img, 4))
    with pytest.raises(ModelError, match="bicubic is not a network"):
        create_model("bicubic", pretrained=False)


def test_name_lists_derive_from_the_registry():
    assert sr_model_names() == ("mobilesr", "mobilesr-rep", "minisrresnet", "minisrgan", "bicubic")
    everything = sr_model_names(shipped_only=False, variants=True)
    assert set(everything) == {s.name for s in list_models("sr")}
    assert "mobilesr-seed" not in sr_model_names(variants=True)  # kept for comparison, not shipped
    assert {"mobilesr-pixel", "minisrresnet-pixel"} <= set(sr_model_names(variants=True))
    assert detector_methods() == {"canny": "detector-canny", "rgb": "detector-rgb"}
    for method, name in detector_methods().items():
        assert get_spec(name).method == method and get_spec(name).task == "detect"


@pytest.fixture
def scratch_registry(monkeypatch):
    """A copy of the registry that a test may add to; the real one is put back afterwards."""
    monkeypatch.setattr(registry_mod, "_REGISTRY", dict(registry_mod._REGISTRY))


def test_a_newly_registered_model_joins_the_name_lists(scratch_registry):
    register(ModelSpec("tinysr", "sr", MobileSR, 4, "tinysr.safetensors", "a test generator"))
    register(ModelSpec("detector-edge2", "detect", lambda: create_model("detector-canny", pretrained=False), 1,
                       "detector-edge2.safetensors", "a test detector", method="edge2"))
    assert "tinysr" in sr_model_names() and sr_model_names()[-1] == "bicubic"
    assert detector_methods()["edge2"] == "detector-edge2"


@pytest.mark.parametrize("spec, message", [
    (ModelSpec("mobilesr", "sr", MobileSR, 4), "already registered"),
    (ModelSpec("NewSR", "sr", MobileSR, 4), "lower case"),
    (ModelSpec("x", "colourise", MobileSR), "unknown task"),
    (ModelSpec("x", "sr", None, 4), "exactly one of builder"),
    (ModelSpec("x", "sr", MobileSR, 4, function=lambda img, s: img), "exactly one of builder"),
    (ModelSpec("x", "sr", None, 4, "x.safetensors", function=lambda img, s: img), "have no weights"),
    (ModelSpec("x", "detect", None, 1, function=lambda img, s: img), "only super-resolution"),
    (ModelSpec("x", "sr", MobileSR, 4, degradation="jpeg"), "unknown degradation"),
    (ModelSpec("x", "detect", MobileSR, 1), "needs a method"),
    (ModelSpec("x", "detect", MobileSR, 1, method="canny"), "already registered"),
])
def test_register_refuses_inconsistent_entries(scratch_registry, spec, message):
    with pytest.raises(ValueError, match=message):
        register(spec)


def test_get_spec_is_case_insensitive():
    assert get_spec("MobileSR") is get_spec("mobilesr")
    assert isinstance(create_model("MINISRRESNET", pretrained=False), MiniSRResNet)


def test_unknown_name_lists_known_models():
    with pytest.raises(ModelError) as info:
        create_model("esrgan-xl", pretrained=False)
    msg = str(info.value)
    assert "esrgan-xl" in msg
    for name in ALL_NAMES:
        assert name in msg
    with pytest.raises(ModelError):
        get_spec("nope")


@pytest.mark.parametrize("name", NETWORK_NAMES)
def test_every_model_builds_in_eval_mode(name):
    model = _build(name)
    assert isinstance(model, nn.Module)
    assert not model.training
    assert get_spec(name).num_params == count_params(model) > 0


@pytest.mark.parametrize("name", SR_NAMES)
def test_sr_models_upscale_by_spec_scale(name):
    scale = get_spec(name).scale
    model = _build(name)
    x = torch.rand(1, 3, 24, 32)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (1, 3, 24 * scale, 32 * scale)
    assert y.dtype == torch.float32
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", DETECT_NAMES)
def test_detectors_give_two_logits(name):
    model = _build(name)
    assert model.input_kind == name.split("-", 1)[1]
    with torch.no_grad():
        logits = model(torch.rand(2, 3, 64, 64))
    assert logits.shape == (2, 2)
    assert torch.isfinite(logits).all()


def test_discriminator_logits_and_features():
    model = _build("discriminator")
    assert isinstance(model, Discriminator)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        logits = model(x)
        logits2, feats = model(x, features=True)
    assert logits.shape == (2, 1)
    assert torch.equal(logits, logits2)
    assert isinstance(feats, list) and len(feats) == 8
    widths = [64, 64, 128, 128, 256, 256, 512, 512]
    sides = [64, 32, 32, 16, 16, 8, 8, 4]
    for f, c, s in zip(feats, widths, sides):
        assert f.shape == (2, c, s, s)


def test_discriminator_features_train_end_to_end():
    # In-place LeakyReLUs must not corrupt the stored features nor break backward (the GAN loss
    # uses both the logits and the features).
    model = Discriminator(channels=8).train()
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    logits, feats = model(x, features=True)
    before = [f.detach().clone() for f in feats]
    loss = logits.mean() + sum(f.abs().mean() for f in feats)
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.parameters())
    for f, b in zip(feats, before):
        assert torch.equal(f.detach(), b)


# --------------------------------------------------------------------------------------------
# parameter budgets
# --------------------------------------------------------------------------------------------

def test_param_counts():
    # The prototype's MobileSR: 121K.
    assert count_params(_build("mobilesr-seed")) == 121_222
    # The prototype's MiniSRResNet: 943K; +10 because each of the 11 PReLUs is now its own module
    # (the prototype trained a single shared one).
    assert count_params(_build("minisrresnet-seed")) == 942_734
    for name in DETECT_NAMES:
        n = count_params(_build(name))
        assert n == 1_519_906
        assert n == pytest.approx(1.52e6, rel=0.01)


def test_shipped_mobilesr_is_tiny():
    model = _build("mobilesr")
    n = count_params(model)
    assert n <= 125_000
    fp32_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    assert fp32_bytes <= 0.5e6


def test_minisrresnet_and_minisrgan_share_an_architecture():
    a, b = _build("minisrresnet"), _build("minisrgan")
    assert type(a) is type(b)
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    assert {k: tuple(v.shape) for k, v in sa.items()} == {k: tuple(v.shape) for k, v in sb.items()}


# --------------------------------------------------------------------------------------------
# the prototype's shared-PReLU bug must be gone
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("factory", [MiniSRResNet, MiniSRResNet.seed, MobileSRSeed],
                         ids=["MiniSRResNet", "MiniSRResNet.seed", "MobileSRSeed"])
def test_every_prelu_is_its_own_module(factory):
    model = factory()
    prelus = _prelus(model)
    assert len(prelus) > 1
    assert len({id(m) for m in prelus}) == len(prelus)
    # ... and so is every slope parameter
    assert len({p.data_ptr() for m in prelus for p in m.parameters()}) == len(prelus)


def test_minisrresnet_prelu_count():
    # head 1 + 8 residual blocks + 2 pixel-shuffle stages
    assert len(_prelus(MiniSRResNet())) == 11
    assert len(_prelus(MiniSRResNet.seed())) == 11


def test_building_blocks_do_not_share_activations():
    for make in (lambda: ResidualBlock(8, batch_norm=False), lambda: PixelShuffleUp(8),
                 lambda: InvertedResidual(8, act=nn.PReLU)):
        a, b = make(), make()
        ids_a = {id(m) for m in a.modules()}
        assert not ids_a & {id(m) for m in b.modules()}


@pytest.mark.parametrize("factory", [MiniSRResNet, MiniSRResNet.seed, MobileSR, MobileSRSeed, Discriminator],
                         ids=["MiniSRResNet", "MiniSRResNet.seed", "MobileSR", "MobileSRSeed", "Discriminator"])
def test_two_models_share_no_tensors(factory):
    a, b = factory(), factory()
    ptrs_a = {t.data_ptr() for t in list(a.parameters()) + list(a.buffers()) if t.numel()}
    ptrs_b = {t.data_ptr() for t in list(b.parameters()) + list(b.buffers()) if t.numel()}
    assert not ptrs_a & ptrs_b
    # changing one model leaves the other untouched
    before = {k: v.clone() for k, v in b.state_dict().items()}
    with torch.no_grad():
        for p in a.parameters():
            p.add_(1.0)
    for k, v in b.state_dict().items():
        assert torch.equal(v, before[k]), k


# --------------------------------------------------------------------------------------------
# skip paths
# --------------------------------------------------------------------------------------------

def test_minisrresnet_bicubic_skip():
    torch.manual_seed(0)
    model = MiniSRResNet().eval()
    assert model.bicubic_skip
    with torch.no_grad():
        model.tail.weight.zero_()
        model.tail.bias.zero_()
        x = torch.rand(1, 3, 24, 32)
        y = model(x)
        ref = F.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False)
    assert y.shape == ref.shape == (1, 3, 96, 128)
    torch.testing.assert_close(y, ref, rtol=0, atol=1e-6)


def test_minisrresnet_seed_has_no_skip():
    # The prototype had no skip: with a zero tail its output is the constant (tanh(0) + 1) / 2.
    model = MiniSRResNet.seed().eval()
    assert not model.bicubic_skip
    with torch.no_grad():
        model.tail.weight.zero_()
        model.tail.bias.zero_()
        y = model(torch.rand(1, 3, 24, 32))
    torch.testing.assert_close(y, torch.full_like(y, 0.5), rtol=0, atol=1e-7)


def test_mobilesr_bilinear_skip():
    torch.manual_seed(0)
    model = MobileSR().eval()
    with torch.no_grad():
        for p in model.tail.parameters():
            p.zero_()
        x = torch.rand(1, 3, 24, 32)
        y = model(x)
        ref = F.interpolate(x, scale_factor=4, mode="bilinear", align_corners=False)
    assert y.shape == ref.shape == (1, 3, 96, 128)
    torch.testing.assert_close(y, ref, rtol=0, atol=1e-6)


# --------------------------------------------------------------------------------------------
# missing weights
# --------------------------------------------------------------------------------------------

def test_weights_dir_follows_env(empty_weights):
    assert weights_dir() == empty_weights
    assert get_spec("mobilesr").weights_path == empty_weights / "mobilesr.safetensors"


@pytest.mark.parametrize("name", [s.name for s in list_models() if s.weights])
def test_pretrained_without_file_raises(name, empty_weights):
    spec = get_spec(name)
    assert not spec.has_weights
    assert spec.card is None
    with pytest.raises(ModelError) as info:
        create_model(name)
    msg = str(info.value)
    assert name in msg
    assert str(empty_weights / spec.weights) in msg


@pytest.mark.parametrize("name", [s.name for s in list_models() if s.weights is None and s.is_network])
def test_comparison_architectures_have_no_weights(name, empty_weights):
    spec = get_spec(name)
    assert spec.weights_path is None and not spec.has_weights and spec.card is None
    with pytest.raises(ModelError, match=name):
        create_model(name)
    # ... but they build for training/comparison
    assert isinstance(create_model(name, pretrained=False), nn.Module)


def test_explicit_missing_file_raises(tmp_path):
    missing = tmp_path / "nothing.safetensors"
    with pytest.raises(ModelError) as info:
        create_model("mobilesr", weights=missing)
    assert str(missing) in str(info.value)
    assert "MobileSR" in str(info.value)


# --------------------------------------------------------------------------------------------
# safetensors round trip and model cards
# --------------------------------------------------------------------------------------------

def test_round_trip_with_card(tmp_path):
    model = _build("mobilesr", seed=1)
    path = tmp_path / "mobilesr.safetensors"
    card_in = {"data": "div2k-mini", "steps": 1234, "metrics": {"psnr": 27.5}}
    written = save_weights(model, path, card_in)

    assert path.is_file()
    card_file = path.with_suffix(".json")
    assert card_file.is_file()
    card = json.loads(card_file.read_text())
    assert card == written == read_card(path)
    for k, v in card_in.items():
        assert card[k] == v
    assert card["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert card["params"] == count_params(model) == 43_760
    assert card["arch"] == "MobileSR"
    assert card["file"] == "mobilesr.safetensors"
    assert card["size_mb"] == pytest.approx(path.stat().st_size / 1e6, abs=1e-3)
    # no pickle inside, and no temporary files left behind
    assert set(load_file(str(path))) == set(model.state_dict())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mobilesr.json", "mobilesr.safetensors"]

    loaded = create_model("mobilesr", weights=path)
    assert not loaded.training
    _assert_same_state(model, loaded)

    fresh = _build("mobilesr", seed=2)
    assert load_weights(fresh, path) is fresh
    _assert_same_state(model, fresh)
    x = torch.rand(1, 3, 24, 32)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), fresh.eval()(x))


def test_round_trip_keeps_batchnorm_buffers(tmp_path):
    model = _build("minisrresnet-seed", seed=3)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
                m.num_batches_tracked.fill_(77)
    path = tmp_path / "seed.safetensors"
    card = save_weights(model, path, {"note": "bn"})
    assert card["params"] == 942_734
    assert card["arch"] == "MiniSRResNet"

    fresh = _build("minisrresnet-seed", seed=4)
    load_weights(fresh, path)
    _assert_same_state(model, fresh)
    bn = next(m for m in fresh.modules() if isinstance(m, nn.BatchNorm2d))
    assert bn.running_mean.abs().sum() > 0
    assert int(bn.num_batches_tracked) == 77


def test_create_model_finds_file_in_weights_dir(empty_weights):
    spec = get_spec("mobilesr")
    assert not spec.has_weights
    model = _build("mobilesr", seed=5)
    save_weights(model, empty_weights / spec.weights, {"data": "unit-test"})
    assert spec.has_weights
    assert spec.card["data"] == "unit-test"
    loaded = create_model("mobilesr")
    _assert_same_state(model, loaded)


def test_detector_round_trip(tmp_path):
    model = _build("detector-canny", seed=6)
    path = tmp_path / "det.safetensors"
    save_weights(model, path, {})
    loaded = create_model("detector-rgb", weights=path)  # same architecture, other input kind
    _assert_same_state(model, loaded)


# --------------------------------------------------------------------------------------------
# strict loading
# --------------------------------------------------------------------------------------------

def test_wrong_architecture_is_refused(tmp_path):
    path = tmp_path / "mobilesr.safetensors"
    save_weights(_build("mobilesr"), path, {})
    with pytest.raises(ModelError) as info:
        create_model("minisrresnet", weights=path)
    msg = str(info.value)
    assert str(path) in msg
    assert "MiniSRResNet" in msg
    assert "missing" in msg and "unexpected" in msg


def test_seed_weights_do_not_fit_shipped_design(tmp_path):
    path = tmp_path / "seed.safetensors"
    save_weights(_build("minisrresnet-seed"), path, {})
    with pytest.raises(ModelError, match="MiniSRResNet"):
        create_model("minisrresnet", weights=path)


def test_reshaped_tensor_is_refused(tmp_path):
    model = _build("mobilesr")
    state = {k: v.clone().contiguous() for k, v in model.state_dict().items()}
    w = state["head.weight"]  # (32, 3, 3, 3)
    state["head.weight"] = w.reshape(32, 27, 1, 1).contiguous()  # same numel, other shape
    path = tmp_path / "reshaped.safetensors"
    save_file(state, str(path))
    fresh = _build("mobilesr", seed=9)
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    with pytest.raises(ModelError) as info:
        load_weights(fresh, path)
    msg = str(info.value)
    assert "shape" in msg
    assert "head.weight" in msg
    assert str(path) in msg
    # nothing was half-loaded
    for k, v in fresh.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_missing_key_is_refused(tmp_path):
    state = dict(_build("mobilesr").state_dict())
    del state["tail.0.bias"]
    path = tmp_path / "partial.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    with pytest.raises(ModelError, match="missing"):
        create_model("mobilesr", weights=path)


def test_tampered_file_fails_checksum(tmp_path):
    model = _build("mobilesr")
    path = tmp_path / "mobilesr.safetensors"
    save_weights(model, path, {})
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # a weight byte: the file stays a valid safetensors file
    path.write_bytes(bytes(data))
    assert set(load_file(str(path))) == set(model.state_dict())  # still readable...
    with pytest.raises(ModelError, match="SHA-256") as info:
        create_model("mobilesr", weights=path)
    assert str(path) in str(info.value)
    # ... and verify=False is the explicit escape hatch
    load_weights(_build("mobilesr"), path, verify=False)


def test_unreadable_card_is_model_error(tmp_path):
    path = tmp_path / "mobilesr.safetensors"
    save_weights(_build("mobilesr"), path, {})
    path.with_suffix(".json").write_text("{not json")
    with pytest.raises(ModelError):
        create_model("mobilesr", weights=path)


def _torch_save(path, model):
    torch.save(model.state_dict(), path)


def _pickle(path, model):
    with open(path, "wb") as fh:
        pickle.dump({k: v.numpy() for k, v in model.state_dict().items()}, fh)


def _random_bytes(path, model):
    path.write_bytes(torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(0),
                                   dtype=torch.uint8).numpy().tobytes())


def _empty(path, model):
    path.write_bytes(b"")


def _tiny(path, model):
    path.write_bytes(b"abc")


def _bad_header(path, model):
    header = b"{this is not json}"
    path.write_bytes(len(header).to_bytes(8, "little") + header)


def _truncated(path, model):
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("writer", [_torch_save, _pickle, _random_bytes, _empty, _tiny, _bad_header, _truncated])
def test_non_safetensors_file_is_model_error(tmp_path, writer):
    model = _build("mobilesr")
    path = tmp_path / "mobilesr.safetensors"
    writer(path, model)
    with pytest.raises(ModelError) as info:
        create_model("mobilesr", weights=path)
    assert str(path) in str(info.value)


def test_directory_instead_of_file_is_model_error(tmp_path):
    with pytest.raises(ModelError):
        create_model("mobilesr", weights=tmp_path)
