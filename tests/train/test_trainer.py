"""The training loop on a learnable toy problem: learning, exact resume, lrs per group, best checkpoints."""

import math

import pytest
import torch

from tests.train.fakes import ProjectedMeanHead, tiny_model, toy_pairs
from vitr.errors import CheckpointError, ConfigError
from vitr.heads import create_head
from vitr.train.checkpoint import BEST, LATEST, resolve_checkpoint
from vitr.train.config import TrainConfig
from vitr.train.trainer import Trainer


def _config(tmp_path, **overrides):
    base = {
        "lr": 1e-2,
        "backbone_lr": 1e-2,
        "weight_decay": 0.0,
        "epochs": 2,
        "batch_size": 8,
        "output_dir": str(tmp_path / "run"),
        "progress": False,
        "tensorboard": False,
        "log_every": 1,
    }
    return TrainConfig(**{**base, **overrides})


def test_loss_decreases_on_a_learnable_problem(tmp_path):
    pairs = toy_pairs(tmp_path / "cache", num_videos=12, captions_per_video=2)  # 3 steps per epoch
    trainer = Trainer(
        tiny_model(), _config(tmp_path, epochs=10, lr=3e-2, backbone_lr=3e-2, warmup=0.0, tensorboard=True), pairs
    )
    scale_before = trainer.model.logit_scale.item()
    history = trainer.fit()
    assert len(history) == 30
    assert trainer.model.logit_scale.item() != scale_before  # the temperature is learned
    assert sum(history[-3:]) / 3 < 0.5 * sum(history[:3]) / 3
    assert list((tmp_path / "run" / "tensorboard").iterdir())
    assert (tmp_path / "run" / "config.yaml").is_file()


def test_logit_scale_is_clamped_at_ln_100(tmp_path):
    pairs = toy_pairs(tmp_path / "cache")
    model = tiny_model()
    with torch.no_grad():
        model.logit_scale.fill_(5.0)  # above ln 100 = 4.605; at backbone_lr 1e-6 only the clamp can bring it down
    Trainer(model, _config(tmp_path, epochs=1, backbone_lr=1e-6), pairs).fit()
    assert model.logit_scale.item() == pytest.approx(math.log(100.0))


@pytest.mark.parametrize("kill_after", [3, 4])
def test_resume_replays_the_uninterrupted_run_exactly(tmp_path, kill_after):
    pairs = toy_pairs(tmp_path / "cache", num_videos=12, captions_per_video=2)  # 24 pairs: 3 steps x 2 epochs
    settings = {"optimizer": "adamw", "grad_accum": 2, "weight_decay": 0.1}  # dropout in the head: RNG must resume
    whole_model = tiny_model(dropout=0.3)
    whole = Trainer(whole_model, _config(tmp_path / "a", **settings), pairs).fit()
    assert len(whole) == 6

    first = Trainer(tiny_model(dropout=0.3), _config(tmp_path / "b", **settings), pairs)
    assert first.fit(until_step=kill_after) == whole[:kill_after]
    resumed_model = tiny_model(seed=123, dropout=0.3)  # different init: the checkpoint must overwrite it
    resumed = Trainer(resumed_model, _config(tmp_path / "b", **settings), pairs)
    assert resumed.step == kill_after
    assert resumed.fit() == whole
    for (name, a), (_, b) in zip(whole_model.state_dict().items(), resumed_model.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_resume_refuses_a_changed_data_order(tmp_path):
    pairs = toy_pairs(tmp_path / "cache")
    Trainer(tiny_model(), _config(tmp_path), pairs).fit(until_step=2)
    with pytest.raises(CheckpointError, match="batch_size: 8 -> 4"):
        Trainer(tiny_model(), _config(tmp_path, batch_size=4), pairs)
    assert Trainer(tiny_model(), _config(tmp_path, batch_size=4, resume=False), pairs).step == 0


def test_each_group_moves_at_its_own_lr(tmp_path):
    pairs = toy_pairs(tmp_path / "cache")
    model = tiny_model()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    cfg = _config(tmp_path, lr=1e-2, backbone_lr=1e-5, schedule="constant", warmup=0.0, epochs=1, grad_clip=0.0)
    trainer = Trainer(model, cfg, pairs)
    trainer._train_step(next(trainer._epoch_batches(0)))  # one AdamW update: |delta| <= lr, ~lr where grads are big
    moved = {n: (p.detach() - before[n]).abs().max().item() for n, p in model.named_parameters()}
    assert moved["head.proj.weight"] == pytest.approx(1e-2, rel=1e-3)
    assert moved["backbone.text_projection.weight"] == pytest.approx(1e-5, rel=2e-2)
    assert moved["backbone.token_embedding.weight"] == pytest.approx(1e-5, rel=2e-2)
    assert moved["backbone.visual.weight"] == 0.0  # frozen: features come from the cache


def test_best_checkpoint_follows_the_named_metric(tmp_path):
    pairs = toy_pairs(tmp_path / "cache")  # 3 steps per epoch
    scores = iter([0.2, 0.9, 0.4, 0.5, 0.1, 0.3])
    cfg = _config(tmp_path, epochs=6, eval_every=3, best_metric="t2v/R@1")
    trainer = Trainer(tiny_model(), cfg, pairs, val_fn=lambda model: {"t2v/R@1": next(scores), "loss": 1.0})
    trainer.fit()
    root = tmp_path / "run" / "checkpoints"
    assert resolve_checkpoint(root, BEST).name == "step_00000006"
    assert resolve_checkpoint(root, LATEST).name == "step_00000018"
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == ["step_00000006", "step_00000018"]
    assert trainer.best_value == 0.9

    bad = Trainer(
        tiny_model(), _config(tmp_path / "other", best_metric="R@1"), pairs, val_fn=lambda model: {"t2v/R@1": 0.5}
    )
    with pytest.raises(ConfigError, match="best_metric 'R@1'"):
        bad.fit()


def test_registered_meanp_head_and_loss_weights(tmp_path):
    pairs = toy_pairs(tmp_path / "cache")
    model = tiny_model(head=create_head("meanP", 16))
    history = Trainer(model, _config(tmp_path, epochs=1, loss_weights={"global": 0.5}), pairs).fit()
    assert len(history) == 3 and all(h > 0 for h in history)
    wrong = Trainer(tiny_model(head=ProjectedMeanHead()), _config(tmp_path / "w", loss_weights={"tab": 1.0}), pairs)
    with pytest.raises(ConfigError, match="loss_weights names"):
        wrong.fit()


def test_too_little_data_for_one_batch(tmp_path):
    pairs = toy_pairs(tmp_path / "cache", num_videos=3, captions_per_video=2)
    with pytest.raises(ConfigError, match="do not fill one batch"):
        Trainer(tiny_model(), _config(tmp_path), pairs)


def test_extra_loss_sees_the_batch_samples_and_changes_training(tmp_path):
    """An extra loss term (TeachText's hook) gets each batch's sample and video indices and shapes the update."""
    pairs = toy_pairs(tmp_path / "cache", num_videos=12, captions_per_video=2)
    seen: list[tuple[list[int], list[int]]] = []

    def extra(out):
        seen.append((out.sample_index.tolist(), out.video_index.tolist()))
        return 10.0 * (out.text * out.video).sum(-1).mean()  # pushes pair scores down: a visible pull on the update

    plain, pulled = tiny_model(), tiny_model()
    Trainer(plain, _config(tmp_path / "a", epochs=1), pairs).fit()
    Trainer(pulled, _config(tmp_path / "b", epochs=1), pairs, extra_losses=[extra]).fit()
    assert len(seen) == 3 and all(len(s) == len(v) == 8 for s, v in seen)
    for samples, videos in seen:
        assert [pairs[i][3] for i in samples] == videos  # sample indices line up with the dataset's items
    assert sorted(i for s, _ in seen for i in s) == list(range(24))  # every caption once per epoch
    assert any(
        not torch.equal(a, b) for a, b in zip(plain.state_dict().values(), pulled.state_dict().values(), strict=True)
    )


def test_a_selection_weights_pairs_inside_the_loss(tmp_path):
    """A pair selection sees the per-pair losses of the batch; all-ones weights give the plain InfoNCE run."""
    pairs = toy_pairs(tmp_path / "cache", num_videos=12, captions_per_video=2)
    plain, ones = tiny_model(), tiny_model()
    history = Trainer(plain, _config(tmp_path / "a", epochs=1), pairs).fit()
    seen = []

    def keep_all(per_pair, out):
        seen.append(per_pair.shape)
        return torch.ones_like(per_pair)

    assert Trainer(ones, _config(tmp_path / "b", epochs=1), pairs, selection=keep_all).fit() == pytest.approx(history)
    assert seen == [torch.Size([8])] * 3


def test_precision_auto_is_no_autocast_on_a_cpu_and_trains_as_fp32(tmp_path):
    """A recipe may say `precision: auto` (AMP on a GPU); on a CPU it is the plain fp32 run, step for step."""
    pairs = toy_pairs(tmp_path / "cache", num_videos=8)
    auto = Trainer(tiny_model(), _config(tmp_path / "a", precision="auto"), pairs)
    fp32 = Trainer(tiny_model(), _config(tmp_path / "b", precision="fp32"), pairs)
    assert auto.autocast_precision == "fp32"
    assert auto.fit() == fp32.fit()
