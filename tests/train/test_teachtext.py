import csv
import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch

import vitr.train.teachtext
from tests.teachers.synthetic import inject_wrong_captions, make_problem
from vitr.data.cache import CachedFeatures, FeatureCache
from vitr.errors import ConfigError, DatasetFormatError
from vitr.losses.distill import distillation_loss
from vitr.model.factory import ModelSpec, build_model
from vitr.teachers import BagOfWordsText, ModelTeacher, ProjectionTeacher, TeacherBank, TeacherFitConfig, fit_teacher
from vitr.train.checkpoint import save_checkpoint
from vitr.train.config import TeacherSpec
from vitr.train.datasets import CachedPairDataset
from vitr.train.distributed import DistContext
from vitr.train.sources import PairBatch, StepOutputs
from vitr.train.teachtext import (
    CaptionFilterConfig,
    TeachTextConfig,
    TeachTextTargets,
    caption_ranks,
    filter_captions,
    filter_precision_recall,
    recipe_teacher_bank,
    teacher_bank_for_dataset,
    write_filter_report,
)

pytestmark = pytest.mark.usefixtures("single_thread")  # tests/conftest.py


def random_bank(captions: int = 6, videos: int = 4, teachers: int = 2, seed: int = 0) -> TeacherBank:
    g = torch.Generator().manual_seed(seed)
    unit = lambda n: torch.nn.functional.normalize(torch.randn(n, 5, generator=g), dim=1)  # noqa: E731
    return TeacherBank(
        [f"t{i}" for i in range(teachers)],
        [unit(captions) for _ in range(teachers)],
        [unit(videos) for _ in range(teachers)],
        [10.0 * (i + 1) for i in range(teachers)],
    )


def test_targets_give_the_mean_teacher_matrix_for_the_batch_rows_and_columns():
    bank = random_bank()
    targets = TeachTextTargets(bank)
    captions, videos = torch.tensor([4, 1, 0]), torch.tensor([3, 3, 2])  # a video may repeat in a batch
    target = targets(captions, videos)
    assert target.shape == (3, 3)
    for i, c in enumerate(captions):
        for j, v in enumerate(videos):
            expected = sum(float(bank.text[n][c] @ bank.video[n][v]) for n in range(2)) / 2
            assert target[i, j].item() == pytest.approx(expected, abs=1e-6)


def test_targets_loss_is_weighted_huber_on_cosines_or_on_logits():
    bank = random_bank()
    captions, videos = torch.tensor([0, 1, 2]), torch.tensor([0, 1, 2])
    student = torch.zeros(3, 3, requires_grad=True)
    plain = TeachTextTargets(bank).loss(student, captions, videos)
    assert plain.item() == pytest.approx(distillation_loss(student, bank.matrices(captions, videos)).item())
    heavier = TeachTextTargets(bank, TeachTextConfig(weight=2.0)).loss(student, captions, videos)
    assert heavier.item() == pytest.approx(2 * plain.item())
    on_logits = TeachTextTargets(bank, TeachTextConfig(scores="logits"))
    scale = torch.tensor(np.log(5.0), dtype=torch.float32)
    expected = distillation_loss(
        5.0 * student, [m * s for m, s in zip(bank.matrices(captions, videos), bank.scales, strict=True)]
    )
    assert on_logits.loss(student, captions, videos, scale).item() == pytest.approx(expected.item(), rel=1e-5)
    with pytest.raises(ConfigError, match="logit_scale"):
        on_logits.loss(student, captions, videos)
    with pytest.raises(ConfigError, match="teacher_weights"):
        TeachTextConfig(aggregation="weighted")


def test_caption_ranks_count_better_videos_and_half_the_ties():
    text = [torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])]
    video = [torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [1.0, 0.0]])]
    bank = TeacherBank(["t"], text, video, [1.0])
    ranks = caption_ranks(bank, [0, 2, 1], chunk=2)
    # caption 0 -> video 0: tied with video 3 -> 0.5; caption 1 -> video 2: best -> 0;
    # caption 2 -> video 1: videos 0 and 3 score higher -> 2
    assert ranks.tolist() == [0.5, 0.0, 2.0]


def test_filter_rules_and_report(tmp_path):
    dataset, *_ = make_problem(num_videos=4)  # 12 captions, 3 per video
    ranks = np.array([0, 5, 150, 1, 120, 130, 2, 3, 4, 200, 300, 400], dtype=float)
    by_rank = filter_captions(dataset, ranks, CaptionFilterConfig(rule="rank", max_rank=100))
    # video3's captions 9, 10, 11 all rank >= 100: its best one (9) stays so the video keeps a caption
    assert by_rank.removed.tolist() == [2, 4, 5, 10, 11]
    assert len(by_rank.dataset.captions) == 7 and len(by_rank.dataset.videos) == 4
    strict = filter_captions(dataset, ranks, CaptionFilterConfig(max_rank=100, keep_one_per_video=False))
    assert strict.removed.tolist() == [2, 4, 5, 9, 10, 11]
    worst = filter_captions(dataset, ranks, CaptionFilterConfig(rule="fraction", fraction=0.25))
    assert worst.removed.tolist() == [10, 11]  # the 3 worst are 11, 10, 9; 9 is video3's best so it stays
    soft = filter_captions(dataset, ranks, CaptionFilterConfig(rule="weight", max_rank=100))
    assert soft.removed.size == 0
    assert soft.weights[0] == 1.0 and soft.weights[2] == pytest.approx(100 / 151)

    csv_path, json_path = write_filter_report(by_rank, tmp_path)
    rows = list(csv.DictReader(csv_path.open()))
    assert [int(r["caption_index"]) for r in rows] == [2, 4, 5, 10, 11]
    assert rows[0]["caption"] == dataset.captions[2].text and rows[0]["video_id"] == "video0"
    summary = json.loads(json_path.read_text())
    assert summary["removed"] == 5 and summary["filter"]["rule"] == "rank"


def test_teachers_flag_injected_wrong_captions_far_above_chance():
    clean, frames, mask, _ = make_problem(num_videos=48)
    noisy, truth = inject_wrong_captions(clean, share=0.2, seed=1)
    texts = [c.text for c in noisy.captions]
    video_of_caption = torch.as_tensor(noisy.caption_video_index())
    team = []
    for seed, dim in ((0, 32), (1, 24)):
        teacher = ProjectionTeacher(f"bow{seed}", BagOfWordsText.from_corpus(texts, dim), frame_dim=16, embed_dim=dim)
        fit_teacher(
            teacher,
            teacher.featurize(texts),
            video_of_caption,
            frames,
            mask,
            TeacherFitConfig(epochs=60, batch_size=48, lr=5e-3, seed=seed),
        )
        team.append(teacher)
    from vitr.teachers import build_teacher_bank

    bank = build_teacher_bank(team, texts, frames, mask, [v.video_id for v in noisy.videos])
    ranks = caption_ranks(bank, video_of_caption)
    result = filter_captions(noisy, ranks, CaptionFilterConfig(rule="fraction", fraction=0.2))
    scores = filter_precision_recall(~result.keep, truth)
    assert scores["chance_precision"] == pytest.approx(0.2, abs=0.01)
    assert scores["precision"] > 0.6 and scores["recall"] > 0.5


def test_bank_for_dataset_reads_the_cache_and_reuses_its_file(tmp_path):
    dataset, frames, mask, _ = make_problem(num_videos=5)
    cache = FeatureCache(tmp_path / "cache", "ns")
    keys = {v.video_id: f"key{i}" for i, v in enumerate(dataset.videos)}
    with cache.writer() as writer:
        for i, v in enumerate(dataset.videos):
            writer.add(keys[v.video_id], CachedFeatures(frames[i], mask[i], torch.arange(4.0)))
    bow = BagOfWordsText.from_corpus([c.text for c in dataset.captions], 8)
    teacher = ProjectionTeacher("bow", bow, frame_dim=16, embed_dim=8).eval()
    path = tmp_path / "bank.safetensors"
    bank = teacher_bank_for_dataset([teacher], dataset, cache, keys, path)
    assert (bank.num_captions, bank.num_videos) == (15, 5) and path.is_file()
    assert torch.allclose(bank.video[0], teacher.embed_videos(frames, mask), atol=1e-6)
    with torch.no_grad():
        teacher.text.proj.weight.add_(1.0)  # a changed teacher is not noticed: the cached bank is reused
    again = teacher_bank_for_dataset([teacher], dataset, cache, keys, path)
    assert torch.equal(again.text[0], bank.text[0])
    with pytest.raises(DatasetFormatError, match="no cached features"):
        teacher_bank_for_dataset([teacher], dataset, cache, {**keys, "video0": "absent"})


def test_extra_loss_scores_the_student_batch_by_dot_product():
    bank = random_bank()
    targets = TeachTextTargets(bank)
    text, video = torch.randn(3, 5), torch.randn(3, 5)
    captions, videos = torch.tensor([2, 0, 5]), torch.tensor([1, 0, 3])
    expected = targets.loss(text @ video.T, captions, videos)
    out = StepOutputs(text, video, torch.tensor(0.0), _batch(captions, videos), 0.0, DistContext())
    assert targets.extra_loss(out).item() == pytest.approx(expected.item())


def _batch(samples: torch.Tensor, videos: torch.Tensor) -> PairBatch:
    n = len(samples)
    return PairBatch(torch.zeros(n, 1, 1), torch.ones(n, 1), torch.zeros(n, 2, dtype=torch.long), videos, samples)


def test_teacher_rows_follow_caption_ids_when_a_video_is_left_out(tmp_path):
    """A training video without features takes its captions with it; every other caption meets its own row."""
    dataset, frames, mask, _ = make_problem(num_videos=5)  # 3 captions per video
    cache = FeatureCache(tmp_path / "cache", "ns")
    keys = {v.video_id: f"key{i}" for i, v in enumerate(dataset.videos)}
    with cache.writer() as writer:
        for i, v in enumerate(dataset.videos):
            writer.add(keys[v.video_id], CachedFeatures(frames[i], mask[i], torch.arange(4.0)))
    bank = random_bank(captions=15, videos=5)
    bank.caption_ids, bank.video_ids = dataset.caption_ids(), [v.video_id for v in dataset.videos]
    lost = dict(keys)
    del lost["video1"]  # failed to decode: no features
    pairs = CachedPairDataset(dataset, cache, lost, lambda texts: torch.zeros(len(texts), 2, dtype=torch.long),
                              skip_missing=True)
    assert len(pairs) == 12 and "video1#0" not in pairs.caption_ids
    targets = TeachTextTargets.for_pairs(bank, pairs, dataset)
    samples = torch.tensor([0, 3, 11])  # positions among the kept captions: 3 is video2's first caption
    videos = torch.tensor([pairs[int(i)][3] for i in samples])
    assert videos.tolist() == [0, 2, 4]
    rows = torch.tensor([dataset.caption_ids().index(pairs.caption_ids[int(i)]) for i in samples])
    assert rows.tolist() == [0, 6, 14]  # by position, sample 3 would have read video1's caption row 3
    text, video = torch.randn(3, 5), torch.randn(3, 5)
    out = StepOutputs(text, video, torch.tensor(0.0), _batch(samples, videos), 0.0, DistContext())
    assert targets.extra_loss(out).item() == pytest.approx(targets.loss(text @ video.T, rows, videos).item())


def test_a_recipes_teacher_bank_is_built_once_and_reused(tmp_path):
    dataset, frames, mask, _ = make_problem(num_videos=6)
    config = TeachTextConfig(teachers=[TeacherSpec(kind="bow", embed_dim=8, epochs=2)])
    path = tmp_path / "bank.safetensors"
    bank = recipe_teacher_bank(config, dataset, frames, mask, path)
    assert bank.names == ["bow"] and bank.caption_ids == dataset.caption_ids()
    assert bank.video_ids == [v.video_id for v in dataset.videos]
    written = path.stat().st_mtime_ns
    again = recipe_teacher_bank(config, dataset, frames, mask, path)  # no teacher fitted again
    assert path.stat().st_mtime_ns == written and torch.equal(again.text[0], bank.text[0])
    renamed = TeachTextConfig(teachers=[TeacherSpec(kind="bow", name="words", embed_dim=8, epochs=2)])
    assert recipe_teacher_bank(renamed, dataset, frames, mask, path).names == ["words"]  # other teachers: rebuilt
    written = path.stat().st_mtime_ns
    longer = TeachTextConfig(teachers=[TeacherSpec(kind="bow", name="words", embed_dim=8, epochs=3)])
    refitted = recipe_teacher_bank(longer, dataset, frames, mask, path)  # same name, another teacher: rebuilt
    assert path.stat().st_mtime_ns != written and not torch.equal(refitted.text[0], bank.text[0])


def test_a_recipes_teacher_bank_is_rebuilt_for_other_frame_features(tmp_path):
    """The teachers are fitted on the student's frame features: another backbone's features need another bank."""
    dataset, frames, mask, _ = make_problem(num_videos=6)
    config = TeachTextConfig(teachers=[TeacherSpec(kind="bow", embed_dim=8, epochs=2)])
    path = tmp_path / "bank.safetensors"
    bank = recipe_teacher_bank(config, dataset, frames, mask, path)
    written = path.stat().st_mtime_ns
    other = recipe_teacher_bank(config, dataset, frames + 1.0, mask, path)
    assert path.stat().st_mtime_ns != written and not torch.equal(other.video[0], bank.video[0])


def test_a_model_teachers_bank_follows_its_weights_not_its_path(tmp_path, monkeypatch):
    """A teacher retrained into the same run (the same step, so the same checkpoint path) gets a new bank; the
    same weights, untouched or copied elsewhere, reuse the bank without building the teacher."""
    dataset, _, _, _ = make_problem(num_videos=4)
    spec = ModelSpec(backbone="vitr-lab-tiny", random_init=True, num_frames=4)
    model = build_model(spec)
    run = tmp_path / "teacher"
    save_checkpoint(run / "checkpoints", 1, model, {}, {})
    frames, mask = torch.randn(4, 4, model.backbone.embed_dim), torch.ones(4, 4)
    teacher = TeacherSpec(kind="model", name="clip", model=replace(spec, checkpoint=str(run)))  # the run: latest
    config = TeachTextConfig(teachers=[teacher])
    path = tmp_path / "bank.safetensors"
    texts = [c.text for c in dataset.captions]
    bank = recipe_teacher_bank(config, dataset, frames, mask, path)
    torch.testing.assert_close(bank.text[0], ModelTeacher(model).embed_texts(texts))

    def no_build(*_args, **_kwargs):
        raise AssertionError("the teacher was built although its bank could be reused")

    with monkeypatch.context() as patched:
        patched.setattr(vitr.train.teachtext, "build_model", no_build)
        written = path.stat().st_mtime_ns
        assert torch.equal(recipe_teacher_bank(config, dataset, frames, mask, path).text[0], bank.text[0])
        shutil.copytree(run, tmp_path / "copied")
        copied = TeachTextConfig(teachers=[replace(teacher, model=replace(spec, checkpoint=str(tmp_path / "copied")))])
        assert torch.equal(recipe_teacher_bank(copied, dataset, frames, mask, path).text[0], bank.text[0])
        assert path.stat().st_mtime_ns == written

    with torch.no_grad():
        model.backbone.model.text_projection.mul_(-1.0)  # "retrained": other weights
    shutil.rmtree(run)
    save_checkpoint(run / "checkpoints", 1, model, {}, {})  # the same step directory, the same file name
    rebuilt = recipe_teacher_bank(config, dataset, frames, mask, path)
    torch.testing.assert_close(rebuilt.text[0], ModelTeacher(model).embed_texts(texts))
    assert not torch.allclose(rebuilt.text[0], bank.text[0])

