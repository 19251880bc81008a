"""MobileSR-Rep (:mod:`deepclarity.models.repsr`): multi-branch convolutions fold exactly into one
3x3 convolution, the shipped file holds the folded form (small), and training can continue from it."""

from __future__ import annotations

import copy

import pytest
import torch

from deepclarity.models import MobileSRRep, RepConv, create_model, get_spec, load_weights, save_weights
from deepclarity.runtime import prepare_model


def perturbed(model: torch.nn.Module) -> torch.nn.Module:
    """Every parameter moved off its initialisation, so every branch contributes."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model.eval()


@pytest.mark.parametrize("cin, cout", [(8, 8), (3, 8), (8, 48)])
def test_repconv_folds_into_one_convolution_with_the_same_output(cin, cout):
    conv = perturbed(RepConv(cin, cout))
    x = torch.rand(2, cin, 13, 17)  # odd sizes: the border (bias padding) is checked too
    with torch.no_grad():
        before = conv(x)
        conv.fold()
        after = conv(x)
    assert conv.folded is not None and not hasattr(conv, "conv1")
    assert torch.allclose(before, after, atol=1e-5)


def test_whole_network_folds_exactly_and_prepare_model_folds_it():
    model = perturbed(MobileSRRep(channels=16, blocks=3))
    x = torch.rand(1, 3, 20, 24)
    with torch.no_grad():
        ref = model(x)
        prepared = prepare_model(copy.deepcopy(model), torch.device("cpu"))
        out = prepared(x)
    assert prepared.is_folded and out.shape == (1, 3, 80, 96)
    assert torch.allclose(ref, out, atol=1e-5)


def test_shipped_file_is_the_folded_form_and_loads_into_both_forms(tmp_path):
    model = perturbed(MobileSRRep())
    path = tmp_path / "rep.safetensors"
    card = save_weights(model, path, {"name": "mobilesr-rep"})
    folded_params = sum(v.numel() for v in model.inference_state_dict().values())
    assert card["params"] == folded_params < sum(p.numel() for p in model.parameters())
    assert card["size_mb"] <= 0.5  # the family's size budget
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        ref = model(x)
        trainable = load_weights(MobileSRRep().eval(), path)  # unfolded: the 3x3 branch holds it all
        folded = load_weights(MobileSRRep().fold().eval(), path)
        assert torch.allclose(trainable(x), ref, atol=1e-4, rtol=1e-4)
        assert torch.allclose(folded(x), ref, atol=1e-4, rtol=1e-4)
    assert not trainable.is_folded and any(p.requires_grad for p in trainable.parameters())


def test_a_file_of_another_architecture_is_refused_with_its_name(tmp_path):
    from deepclarity.errors import ModelError

    path = tmp_path / "small.safetensors"
    save_weights(MobileSRRep(channels=16), path, {})
    with pytest.raises(ModelError, match="does not fit architecture MobileSRRep"):
        load_weights(MobileSRRep(channels=32), path)


def test_registered_with_the_inference_parameter_count():
    spec = get_spec("mobilesr-rep")
    assert spec.task == "sr" and spec.scale == 4 and spec.is_network
    assert spec.num_params == sum(v.numel() for v in create_model("mobilesr-rep", pretrained=False)
                                  .inference_state_dict().values())
