"""Parameter groups, freezing, and CLIP4Clip's BertAdam against a hand-written reference."""

import math

import pytest
import torch
from torch import nn

from tests.train.fakes import tiny_model
from vitr.errors import ConfigError
from vitr.train.config import TrainConfig
from vitr.train.optim import BertAdamC4C, configure_trainable, param_groups


def _names(model, group):
    ids = {id(p) for p in group["params"]}
    return {n for n, p in model.named_parameters() if id(p) in ids}


def test_freeze_visual_keeps_text_tower_and_logit_scale():
    model = tiny_model()
    frozen = configure_trainable(model, "visual")
    assert frozen == ["backbone.visual.weight", "backbone.visual.bias"]
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert {
        "backbone.token_embedding.weight",
        "backbone.text_projection.weight",
        "backbone.logit_scale",
        "head.proj.weight",
    } <= trainable


def test_freeze_all_and_patterns():
    model = tiny_model()
    configure_trainable(model, "all")
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {
        "backbone.logit_scale",
        "head.proj.weight",
        "head.proj.bias",
    }
    configure_trainable(model, "none", ["*token_embedding*"])
    assert not model.backbone.token_embedding.weight.requires_grad
    assert model.backbone.visual.weight.requires_grad
    with pytest.raises(ConfigError, match="freeze"):
        configure_trainable(model, "text")


def test_param_groups_split_lr_and_decay():
    model = tiny_model()
    configure_trainable(model, "visual")
    cfg = TrainConfig(lr=1e-3, backbone_lr=1e-6, weight_decay=0.2)
    groups = {g["name"]: g for g in param_groups(model, cfg)}
    assert set(groups) == {"backbone/decay", "backbone/no_decay", "head/decay", "head/no_decay"}
    assert groups["head/decay"]["lr"] == 1e-3 and groups["backbone/decay"]["lr"] == 1e-6
    assert _names(model, groups["head/decay"]) == {"head.proj.weight"}
    assert "backbone.logit_scale" in _names(model, groups["backbone/no_decay"])
    assert "backbone.ln_final.weight" in _names(model, groups["backbone/no_decay"])
    assert all(g["weight_decay"] == 0.0 for n, g in groups.items() if n.endswith("no_decay"))
    # CLIP4Clip's rule decays everything but biases, LayerNorm gains and logit_scale included
    c4c = {g["name"]: g for g in param_groups(model, TrainConfig(decay_rule="c4c"))}
    decayed = _names(model, c4c["backbone/decay"])
    assert {"backbone.logit_scale", "backbone.ln_final.weight"} <= decayed
    assert not any("bias" in n for n in decayed)


def _reference_bertadam(params, grads_per_step, lr, wd, b1=0.9, b2=0.98, eps=1e-6, max_norm=1.0):
    """CLIP4Clip modules/optimization.py BertAdam.step, written out with Python floats."""
    params = [list(p) for p in params]
    m = [[0.0] * len(p) for p in params]
    v = [[0.0] * len(p) for p in params]
    for grads in grads_per_step:
        for k, (p, g) in enumerate(zip(params, grads, strict=True)):
            norm = math.sqrt(sum(x * x for x in g))
            coef = max_norm / (norm + 1e-6)
            g = [x * coef for x in g] if coef < 1 else list(g)
            for j in range(len(p)):
                m[k][j] = b1 * m[k][j] + (1 - b1) * g[j]
                v[k][j] = b2 * v[k][j] + (1 - b2) * g[j] ** 2
                update = m[k][j] / (math.sqrt(v[k][j]) + eps) + wd * p[j]
                p[j] -= lr * update
    return params


def test_bertadam_c4c_matches_reference_update():
    gen = torch.Generator().manual_seed(0)
    a = nn.Parameter(torch.randn(5, generator=gen, dtype=torch.float64))
    b = nn.Parameter(torch.randn(3, generator=gen, dtype=torch.float64))
    start = [a.detach().tolist(), b.detach().tolist()]
    # step 1 has a gradient above norm 1 (clipped), later ones below
    grads = [
        [
            (torch.randn(5, generator=gen, dtype=torch.float64) * s).tolist(),
            (torch.randn(3, generator=gen, dtype=torch.float64) * s).tolist(),
        ]
        for s in (5.0, 0.1, 0.3, 2.0)
    ]
    opt = BertAdamC4C([{"params": [a], "weight_decay": 0.2}, {"params": [b], "weight_decay": 0.0}], lr=0.01)
    for ga, gb in grads:
        a.grad, b.grad = torch.tensor(ga, dtype=torch.float64), torch.tensor(gb, dtype=torch.float64)
        opt.step()
    expected_a = _reference_bertadam([start[0]], [[g[0]] for g in grads], lr=0.01, wd=0.2)[0]
    expected_b = _reference_bertadam([start[1]], [[g[1]] for g in grads], lr=0.01, wd=0.0)[0]
    assert torch.allclose(a.detach(), torch.tensor(expected_a, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(b.detach(), torch.tensor(expected_b, dtype=torch.float64), atol=1e-12)
    # no bias correction: the first update is (1-b1)/sqrt(1-b2) = 0.707 lr per coordinate, not lr as in Adam
    c = nn.Parameter(torch.zeros(1, dtype=torch.float64))
    c.grad = torch.tensor([0.5], dtype=torch.float64)
    BertAdamC4C([c], lr=1.0).step()
    assert c.item() == pytest.approx(-0.05 / (math.sqrt(0.02 * 0.25) + 1e-6))
