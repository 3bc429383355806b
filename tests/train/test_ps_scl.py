import copy
import functools

import pytest
import torch

from vitr.backbones.registry import load_backbone
from vitr.data.types import Caption, RetrievalDataset, VideoItem
from vitr.errors import ConfigError, DatasetFormatError
from vitr.heads.base import create_head
from vitr.heads.meanp import masked_mean_pool
from vitr.losses.selection import SelectionConfig
from vitr.model.retrieval import VideoTextModel
from vitr.pseudo.label import PseudoLabel
from vitr.pseudo.texts import FORMS
from vitr.train.config import TrainConfig
from vitr.train.ps_scl import (
    PairPool,
    PsSclConfig,
    _anchor_term,  # the loop's dispatch, to measure what each anchor kind holds
    draw_texts,
    pool_from_dataset,
    pool_from_pseudo_labels,
    relation_anchor,
    reverse_frames,
    train_ps_scl,
    zero_shot_anchor,
)

WORDS = ["red", "blue", "green", "yellow", "purple", "orange", "black", "white"]


@functools.cache
def _backbone():
    torch.manual_seed(0)
    return load_backbone("vitr-lab-tiny", random_init=True)


def _model(head: str = "meanP") -> VideoTextModel:
    backbone = copy.deepcopy(_backbone())
    torch.manual_seed(0)
    return VideoTextModel(backbone, create_head(head, backbone.embed_dim, num_frames=4))


def _labels(n: int) -> list[PseudoLabel]:
    return [
        PseudoLabel(
            f"v{i}.mp4",
            texts=[
                {"text": f"a {WORDS[i % 8]} circle", "form": "single", "score": 0.3},
                {"text": f"objects: {WORDS[i % 8]} square.", "form": "list", "score": 0.1},
            ],
        )
        for i in range(n)
    ]


def _pseudo_pool(model: VideoTextModel, n: int = 16) -> PairPool:
    g = torch.Generator().manual_seed(1)
    frames = torch.randn(n, 4, model.backbone.embed_dim, generator=g)
    return pool_from_pseudo_labels(_labels(n), frames, torch.ones(n, 4), model.tokenize)


def _config(tmp_path, **selection) -> TrainConfig:
    return TrainConfig(
        batch_size=8,
        epochs=3,
        lr=1e-3,
        backbone_lr=1e-3,
        warmup=0.0,
        output_dir=str(tmp_path),
        freeze_patterns=["*token_embedding*"],
        progress=False,
        tensorboard=False,
        ps_scl=PsSclConfig(selection=SelectionConfig(**selection)),
    )


def test_pool_from_pseudo_labels_keeps_forms_and_scores():
    model = _model()
    frames = torch.zeros(3, 4, model.backbone.embed_dim)
    pool = pool_from_pseudo_labels(_labels(3), frames, torch.ones(3, 4), model.tokenize, forms=["single"])
    assert pool.text_video.tolist() == [0, 1, 2]
    assert pool.teacher.tolist() == pytest.approx([0.3] * 3)
    assert pool.pseudo.all()
    assert pool.form.tolist() == [FORMS.index("single")] * 3  # what stratified selection groups by
    both = pool_from_pseudo_labels(_labels(3), frames, torch.ones(3, 4), model.tokenize)
    assert pool.concat(both).form.tolist() == [FORMS.index("single")] * 3 + [
        FORMS.index(f) for f in ["single", "list"] * 3
    ]
    with pytest.raises(DatasetFormatError, match="no text"):
        pool_from_pseudo_labels(_labels(3), frames, torch.ones(3, 4), model.tokenize, forms=["sentence"])


def test_draw_texts_picks_one_own_text_per_video_and_teacher_sampling_prefers_high_scores():
    model = _model()
    pool = _pseudo_pool(model, 6)
    chosen = draw_texts(pool, torch.Generator().manual_seed(0))
    assert (pool.text_video[chosen] == torch.arange(6)).all()
    teacher = draw_texts(pool, torch.Generator().manual_seed(0), "teacher", temperature=0.001)
    assert pool.teacher[teacher] == pytest.approx(0.3)  # the better-scored text of every video
    draws = torch.stack([draw_texts(pool, torch.Generator().manual_seed(s)) for s in range(40)])
    assert 0 < (pool.teacher[draws] > 0.2).float().mean() < 1  # uniform: both texts get drawn


def test_training_on_pseudo_pairs_alone_with_topk_selection(tmp_path):
    model = _model()
    visual_before = {k: v.clone() for k, v in model.backbone.state_dict().items() if ".visual." in k}
    text_before = model.embed_texts(["a red circle"]).detach().clone()
    config = _config(tmp_path, rule="topk", tau=0.5, t_k=1.0)
    history = train_ps_scl(model, _pseudo_pool(model), config)
    assert len(history.loss) == 2 * 3 and all(torch.isfinite(torch.tensor(history.loss)))
    assert history.kept[0] == 1.0 and history.kept[-1] == pytest.approx(0.5)  # ceil(0.5 * 8) of 8 pseudo pairs
    visual_after = {k: v for k, v in model.backbone.state_dict().items() if ".visual." in k}
    assert visual_before and all(torch.equal(visual_after[k], v) for k, v in visual_before.items())  # cached side
    assert not torch.allclose(model.embed_texts(["a red circle"]), text_before)
    assert (tmp_path / "checkpoints" / "latest").is_file()


def test_training_combined_with_labelled_pairs_exempts_them(tmp_path):
    model = _model()
    n = 8
    dataset = RetrievalDataset(
        "toy",
        "train",
        [VideoItem(f"l{i}", f"l{i}.mp4") for i in range(n)],
        [Caption(f"l{i}", f"a {WORDS[i]} cross on a white background") for i in range(n)],
    )
    labelled = pool_from_dataset(dataset, torch.randn(n, 4, model.backbone.embed_dim), torch.ones(n, 4), model.tokenize)
    assert not labelled.pseudo.any()
    pool = _pseudo_pool(model).concat(labelled)
    assert len(pool) == 24 and pool.pseudo.sum() == 16
    assert pool.text_video.max() == 23
    history = train_ps_scl(model, pool, _config(tmp_path, rule="topk", tau=0.5, t_k=1.0))
    assert 0.5 <= history.kept[-1] < 1.0  # ceil(0.5 k) of the k pseudo pairs of the batch; labelled not counted


@pytest.mark.parametrize("rule", ["gmm", "soft", "soft_topk", "none"])
def test_every_rule_trains_with_a_two_term_head(tmp_path, rule):
    model = _model("clip2video")
    config = _config(tmp_path, rule=rule, warmup_epochs=1)
    config.epochs = 2
    history = train_ps_scl(model, _pseudo_pool(model), config)
    assert all(torch.isfinite(torch.tensor(history.loss)))
    if rule == "none":
        assert history.kept == [1.0] * len(history.kept)


def test_validation_runs_each_epoch_and_bad_configs_are_rejected(tmp_path):
    model = _model()
    calls = []
    history = train_ps_scl(
        model,
        _pseudo_pool(model),
        _config(tmp_path, rule="none"),
        val_fn=lambda m: calls.append(1) or {"t2v/R@1": 1.0},
    )
    assert len(history.metrics) == 3 and len(calls) == 3
    with pytest.raises(ConfigError, match="cached frame features"):
        TrainConfig(freeze="none", ps_scl=PsSclConfig())
    big = TrainConfig(batch_size=64, progress=False, tensorboard=False, ps_scl=PsSclConfig(), output_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="do not fill one batch of 64; lower batch_size"):
        train_ps_scl(model, _pseudo_pool(model), big)


def test_the_zero_shot_anchor_keeps_a_temporal_head_near_the_zero_shot_video_embedding(tmp_path):
    assert _anchored_drift(tmp_path, "feature", 10.0) < _anchored_drift(tmp_path, "feature", 0.0)
    with pytest.raises(ConfigError, match="anchor_weight"):
        PsSclConfig(anchor_weight=-1.0)
    with pytest.raises(ConfigError, match="CLIP's frame space"):
        zero_shot_anchor(torch.randn(2, 8), torch.randn(2, 3, 4), torch.ones(2, 3))


def test_the_relation_anchor_keeps_how_videos_rank_each_other_not_where_they_lie(tmp_path):
    frames, mask = torch.randn(6, 4, 8), torch.ones(6, 4)
    mask[0, 2:] = 0
    target = masked_mean_pool(frames, mask)
    rotation, _ = torch.linalg.qr(torch.randn(8, 8))
    rotated = target @ rotation  # every embedding moved, every pairwise cosine kept
    assert float(zero_shot_anchor(rotated, frames, mask)) > 0.1
    assert float(relation_anchor(rotated, frames, mask)) < 1e-5
    swapped = target[[1, 0, 2, 3, 4, 5]]  # two videos trade places: the batch's ranking changes
    assert float(relation_anchor(swapped, frames, mask)) > 0.1

    assert _anchored_drift(tmp_path, "relation", 10.0) < _anchored_drift(tmp_path, "relation", 0.0)
    with pytest.raises(ConfigError, match="anchor must be one of"):
        PsSclConfig(anchor="distance")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="at least 3 videos"):
        relation_anchor(torch.randn(2, 8), torch.randn(2, 3, 8), torch.ones(2, 3))


def _anchored_drift(tmp_path, kind: str, weight: float) -> float:
    """Train a TDB head on pseudo pairs with the `kind` anchor at `weight`; return that anchor's term afterwards."""
    model = _model("tdb")
    pool = _pseudo_pool(model)
    config = _config(tmp_path / f"{kind}{weight}", rule="none")
    config.ps_scl.anchor, config.ps_scl.anchor_weight = kind, weight
    config.lr = 1e-2
    train_ps_scl(model, pool, config)
    with torch.no_grad():
        emb = model.embed_video_features(pool.frames, pool.mask)
        return float(_anchor_term(config.ps_scl, model, emb, pool.frames, pool.mask, pool.still()))


def test_reverse_frames_reverses_each_videos_valid_frames_and_leaves_padding():
    frames = torch.arange(2 * 4 * 1, dtype=torch.float32).view(2, 4, 1)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]], dtype=torch.float32)
    out = reverse_frames(frames, mask)
    assert out[..., 0].tolist() == [[3, 2, 1, 0], [5, 4, 6, 7]]
    assert torch.equal(reverse_frames(out, mask), frames)


def test_the_symmetric_anchor_holds_an_order_free_head_like_the_feature_anchor_and_lets_order_move(tmp_path):
    model = _model("meanP")  # meanP cannot see order: its reversed embedding is its own, so both anchors agree
    frames, mask = torch.randn(4, 3, model.backbone.embed_dim), torch.ones(4, 3)
    emb = model.embed_video_features(frames, mask)
    config = PsSclConfig(anchor="symmetric", anchor_weight=1.0)
    assert float(_anchor_term(config, model, emb, frames, mask)) == pytest.approx(
        float(zero_shot_anchor(emb, frames, mask)), abs=1e-6
    )
    assert _anchored_drift(tmp_path, "symmetric", 10.0) < _anchored_drift(tmp_path, "symmetric", 0.0)


def test_the_still_anchor_holds_only_videos_without_a_temporal_pseudo_text(tmp_path):
    model = _model("tdb")
    labels = _labels(16)
    for label in labels[::2]:  # every other video: the tagger saw it change
        label.texts.append({"text": "a red circle on the left, then on the right", "form": "temporal", "score": 0.2})
    frames = torch.randn(16, 4, model.backbone.embed_dim, generator=torch.Generator().manual_seed(1))
    pool = pool_from_pseudo_labels(labels, frames, torch.ones(16, 4), model.tokenize)
    assert pool.still().tolist() == [False, True] * 8
    dataset = RetrievalDataset("toy", "train", [VideoItem("l0", "l0.mp4")], [Caption("l0", "a blue cross")])
    labelled = pool_from_dataset(dataset, torch.randn(1, 4, model.backbone.embed_dim), torch.ones(1, 4), model.tokenize)
    assert not pool.concat(labelled).still()[16]  # a labelled video is no pseudo video: never held

    config = PsSclConfig(anchor="still", anchor_weight=1.0)
    with torch.no_grad():
        emb = model.embed_video_features(pool.frames, pool.mask)
    still = pool.still()
    held = _anchor_term(config, model, emb, pool.frames, pool.mask, still)
    assert float(held) == pytest.approx(float(zero_shot_anchor(emb[still], frames[still], pool.mask[still])))
    assert float(_anchor_term(config, model, emb, pool.frames, pool.mask, torch.zeros(16, dtype=torch.bool))) == 0.0

    def drift(weight: float) -> tuple[float, float]:
        """(anchor term of the still videos, of the moving ones) after training with the still anchor."""
        trained = _model("tdb")
        cfg = _config(tmp_path / f"still{weight}", rule="none")
        cfg.ps_scl.anchor, cfg.ps_scl.anchor_weight, cfg.lr = "still", weight, 1e-2
        train_ps_scl(trained, pool, cfg)
        with torch.no_grad():
            out = trained.embed_video_features(pool.frames, pool.mask)
        return tuple(float(zero_shot_anchor(out[rows], frames[rows], pool.mask[rows])) for rows in (still, ~still))

    free, held_hard = drift(0.0), drift(10.0)
    assert held_hard[0] < free[0]  # still videos are held
    assert held_hard[1] > held_hard[0]  # moving ones are left to move
