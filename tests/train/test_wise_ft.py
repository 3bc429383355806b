"""WiSE-FT: the trained weights averaged with the starting ones, and its use as PS-SCL's drift guard."""

import dataclasses

import pytest
import torch
from torch import nn

from tests.train.test_ps_scl import _config, _model, _pseudo_pool
from vitr.errors import ConfigError
from vitr.train.config import TrainConfig
from vitr.train.ps_scl import train_ps_scl
from vitr.train.wise_ft import snapshot_trainable, weight_space_ensemble


def _net() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    net[1].requires_grad_(False)  # frozen: not in the snapshot, never mixed
    return net


@pytest.mark.parametrize("alpha", [0.0, 0.25, 1.0])
def test_weights_become_the_interpolation_of_start_and_trained(alpha: float) -> None:
    net = _net()
    start = snapshot_trainable(net)
    assert set(start) == {"0.weight", "0.bias"}
    with torch.no_grad():
        trained = {"0.weight": net[0].weight + 1.0, "0.bias": net[0].bias - 2.0}
        net[0].weight.copy_(trained["0.weight"])
        net[0].bias.copy_(trained["0.bias"])
    frozen = net[1].weight.clone()
    mixed = weight_space_ensemble(net, start, alpha)
    assert sorted(mixed) == ["0.bias", "0.weight"]
    for name, param in net.named_parameters():
        if name in start:
            torch.testing.assert_close(param, (1 - alpha) * start[name] + alpha * trained[name])
    assert torch.equal(net[1].weight, frozen)


def test_bad_alpha_or_mismatched_snapshot_is_a_config_error() -> None:
    net = _net()
    start = snapshot_trainable(net)
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        weight_space_ensemble(net, start, 1.5)
    with pytest.raises(ConfigError, match="no parameters named"):
        weight_space_ensemble(net, {"2.weight": torch.zeros(1)}, 0.5)
    with pytest.raises(ConfigError, match="at the start"):
        weight_space_ensemble(net, {"0.weight": torch.zeros(2, 2)}, 0.5)
    with pytest.raises(ConfigError, match="wise_alpha"):
        TrainConfig(wise_alpha=-0.1)


def test_ps_scl_with_alpha_zero_returns_to_the_zero_shot_weights_and_half_lies_between(tmp_path) -> None:
    runs = {}
    for alpha in (None, 0.0, 0.5):
        model = _model()
        before = model.embed_texts(["a red circle"]).detach().clone()
        config = dataclasses.replace(_config(tmp_path / str(alpha), rule="none"), wise_alpha=alpha)
        train_ps_scl(model, _pseudo_pool(model), config)
        runs[alpha] = model.embed_texts(["a red circle"]).detach()
    assert not torch.allclose(runs[None], before)  # training moved the text tower
    torch.testing.assert_close(runs[0.0], before)  # alpha 0: back to where it started
    assert not torch.allclose(runs[0.5], before) and not torch.allclose(runs[0.5], runs[None])
