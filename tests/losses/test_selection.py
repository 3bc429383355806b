import math

import pytest
import torch

from vitr.backbones.base import TextFeatures
from vitr.errors import ConfigError
from vitr.heads.base import create_head
from vitr.losses.infonce import per_pair_infonce, retrieval_loss
from vitr.losses.selection import (
    SelectionConfig,
    clean_probability,
    fit_gmm_1d,
    keep_ratio,
    pair_weights,
    per_pair_retrieval_loss,
    select_top,
    selection_score,
    selective_loss,
    soft_weights,
    split_clean,
)


def test_keep_ratio_schedule_values():
    assert keep_ratio(0, tau=0.3) == 1.0
    assert keep_ratio(5, tau=0.3, t_k=10) == pytest.approx(0.85)
    assert keep_ratio(10, tau=0.3, t_k=10) == pytest.approx(0.7)
    assert keep_ratio(25, tau=0.3, t_k=10) == pytest.approx(0.7)  # flat after T_k
    assert keep_ratio(5, tau=0.5, t_k=10, exponent=2) == pytest.approx(1 - 0.5 * 0.25)


def test_topk_keeps_the_ceil_of_rho_b_lowest_losses():
    losses = torch.tensor([0.5, 3.0, 0.1, 2.0, 0.7, 9.0, 0.2])
    keep = select_top(selection_score(losses), 0.5)  # ceil(3.5) = 4
    assert keep.tolist() == [True, False, True, False, True, False, True]
    assert select_top(selection_score(losses), 0.01).sum() == 1


def test_teacher_and_mix_scores():
    losses = torch.tensor([1.0, 1.0, 5.0, 5.0])
    teacher = torch.tensor([0.1, 0.9, 0.2, 0.8])
    assert select_top(selection_score(losses, teacher, "teacher"), 0.5).tolist() == [False, True, False, True]
    assert select_top(selection_score(losses, teacher, "mix"), 0.25).tolist() == [False, True, False, False]
    with pytest.raises(ConfigError, match="teacher"):
        selection_score(losses, None, "teacher")


def test_pair_weights_topk_exempts_labelled_pairs():
    config = SelectionConfig(rule="topk", tau=0.5, t_k=1)
    losses = torch.tensor([4.0, 3.0, 2.0, 1.0, 9.0, 9.0])
    exempt = torch.tensor([False, False, False, False, True, True])
    w = pair_weights(config, epoch=1, losses=losses, exempt=exempt)
    assert w.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0, 1.0]  # half of the 4 pseudo pairs; labelled always kept
    assert pair_weights(SelectionConfig(rule="none"), 5, losses).tolist() == [1.0] * 6
    assert pair_weights(config, epoch=0, losses=losses).tolist() == [1.0] * 6  # rho_0 = 1


def test_stratified_topk_keeps_the_best_share_of_every_group():
    losses = torch.tensor([0.1, 0.2, 0.3, 0.4, 5.0, 6.0, 7.0, 8.0])
    groups = torch.tensor([0, 0, 0, 0, 3, 3, 3, 3])  # e.g. sentence texts learnt fast, temporal ones slowly
    plain = pair_weights(SelectionConfig(rule="topk", tau=0.5, t_k=1), 1, losses, groups=groups)
    assert plain.tolist() == [1.0] * 4 + [0.0] * 4  # over the batch, the hard group is dropped whole
    config = SelectionConfig(rule="topk", tau=0.5, t_k=1, stratify=True)
    assert pair_weights(config, 1, losses, groups=groups).tolist() == [1, 1, 0, 0, 1, 1, 0, 0]
    exempt = torch.tensor([False] * 7 + [True])
    assert pair_weights(config, 1, losses, exempt=exempt, groups=groups).tolist() == [1, 1, 0, 0, 1, 1, 0, 1]
    with pytest.raises(ConfigError, match="group"):
        pair_weights(config, 1, losses)


def test_unselected_pairs_stay_negatives():
    torch.manual_seed(0)
    logits = torch.randn(4, 4, requires_grad=True)
    loss = selective_loss(per_pair_infonce(logits), torch.tensor([1.0, 1.0, 0.0, 0.0]))
    loss.backward()
    grad = logits.grad
    assert grad[2, 2] == 0 and grad[3, 3] == 0  # their positive terms dropped
    assert grad[0, 2] != 0 and grad[2, 0] != 0  # still negatives of the kept pairs
    assert selective_loss(per_pair_infonce(logits), torch.ones(4)).item() == pytest.approx(
        per_pair_infonce(logits).mean().item()
    )


def test_gmm_picks_the_low_loss_cluster_on_a_bimodal_toy():
    g = torch.Generator().manual_seed(0)
    clean = 0.5 + 0.2 * torch.randn(300, generator=g)
    noisy = 4.0 + 0.3 * torch.randn(100, generator=g)
    losses = torch.cat([clean, noisy])[torch.randperm(400, generator=g)]
    prob = clean_probability(losses)
    selected = split_clean(prob)
    assert (selected == (losses < 2.0)).float().mean() > 0.99
    gmm = fit_gmm_1d(losses)
    assert sorted(gmm.means.tolist())[0] == pytest.approx(0.5, abs=0.1)
    assert sorted(gmm.weights.tolist()) == pytest.approx([0.25, 0.75], abs=0.03)


def test_split_clean_falls_back_to_the_lowest_one_percent():
    prob = torch.linspace(0.6, 1.0, 200)
    selected = split_clean(prob)
    assert (~selected).sum() == 3  # values at or below the 2nd (= 200 // 100) sorted value
    assert not selected[:2].any()


def test_soft_weights_forms():
    p = torch.tensor([0.0, 0.5, 1.0])
    assert torch.allclose(soft_weights(p, "linear", 2.0), torch.tensor([0.0, 1.0, 2.0]))
    assert torch.allclose(soft_weights(p, "exponential"), torch.tensor([0.0, (math.sqrt(10) - 1) / 9, 1.0]))
    assert torch.allclose(soft_weights(p, "sine"), torch.tensor([0.0, 0.5, 1.0]))


def test_gmm_and_soft_rules_use_the_clean_posterior():
    losses = torch.tensor([1.0, 2.0, 3.0])
    p = torch.tensor([0.9, 0.6, 0.1])
    assert pair_weights(SelectionConfig(rule="gmm"), 3, losses, clean_prob=p).tolist() == [1.0, 1.0, 0.0]
    assert pair_weights(SelectionConfig(rule="gmm"), 0, losses).tolist() == [1.0] * 3  # no fit yet
    soft = pair_weights(SelectionConfig(rule="soft", soft_form="linear"), 3, losses, clean_prob=p)
    assert torch.allclose(soft, p)
    both = pair_weights(SelectionConfig(rule="soft_topk", soft_form="linear", tau=0.5, t_k=1), 3, losses, clean_prob=p)
    assert torch.allclose(both, torch.tensor([0.9, 0.6, 0.0]))


@pytest.mark.parametrize("head", ["meanP", "seqTransf", "tdb", "tab", "clip2video"])
def test_per_pair_loss_works_with_every_head(head):
    torch.manual_seed(0)
    model = create_head(head, 16, num_frames=4)
    frames, mask = torch.randn(3, 4, 16), torch.ones(3, 4)
    text = TextFeatures(torch.randn(3, 16), torch.randn(3, 5, 16), torch.ones(3, 5))
    t, v = model.embed_text(text), model.embed_video(frames, mask)
    scale = torch.tensor(math.log(20.0))
    per_pair = per_pair_retrieval_loss(model, t, v, scale)
    assert per_pair.shape == (3,)
    assert per_pair.mean().item() == pytest.approx(retrieval_loss(model, t, v, scale).item(), rel=1e-5)


def test_config_validation():
    with pytest.raises(ConfigError):
        SelectionConfig(tau=1.0)
    with pytest.raises(ConfigError):
        SelectionConfig(t_k=0)
