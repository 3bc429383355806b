"""The TeachText lab table's own logic: wrong captions with a known truth, teachers fitted once and scored as students
are, and the filter's precision and recall against the injected captions."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import vitr.train.teachtext
from tests.train.fakes import write_labelled_csv
from vitr.data.readers import load_dataset
from vitr.data.types import Caption, RetrievalDataset, VideoItem
from vitr.errors import ConfigError
from vitr.lab.experiment import evaluate_lab, load_lab_test
from vitr.lab.synth import LabConfig, generate_lab
from vitr.lab.teachtext import evaluate_teachers, filter_quality, fit_recipe_teachers, inject_wrong_captions
from vitr.model.factory import ModelSpec, build_model
from vitr.teachers import ModelTeacher, TeacherBank
from vitr.train.config import CaptionFilterConfig, load_config
from vitr.train.pipeline import train
from vitr.train.teachtext import caption_ranks, filter_captions

pytestmark = pytest.mark.usefixtures("single_thread")  # tests/conftest.py


def _split(videos: int = 10, per_video: int = 4) -> RetrievalDataset:
    """Templated captions: the last caption of every video is the same text, as lab captions can be."""
    items = [VideoItem(f"v{i}", f"v{i}.mp4") for i in range(videos)]
    captions = [
        Caption(f"v{i}", "a shape moves" if j == per_video - 1 else f"video {i} caption {j}", frozenset({f"t{i}"}))
        for i in range(videos)
        for j in range(per_video)
    ]
    return RetrievalDataset("lab", "train", items, captions)


def test_a_known_share_of_captions_becomes_captions_of_other_videos_and_the_mask_says_which():
    clean = _split()
    noisy, truth = inject_wrong_captions(clean, 0.25, seed=3)
    assert truth.dtype == bool and truth.shape == (40,) and truth.sum() == 10
    assert noisy.videos == clean.videos and [c.video_id for c in noisy.captions] == [c.video_id for c in clean.captions]
    own = {v.video_id: {c.text for c in clean.captions if c.video_id == v.video_id} for v in clean.videos}
    donors = {c.text: c.tags for c in clean.captions}
    for before, after, wrong in zip(clean.captions, noisy.captions, truth, strict=True):
        if wrong:  # never a text its own video has, the shared template included; the donor's tags come along
            assert after.text not in own[after.video_id] and after.tags == donors[after.text]
        else:
            assert after == before


def test_injection_is_deterministic_from_its_seed():
    clean = _split()
    first, mask = inject_wrong_captions(clean, 0.3, seed=7)
    again, mask_again = inject_wrong_captions(clean, 0.3, seed=7)
    other, other_mask = inject_wrong_captions(clean, 0.3, seed=8)
    assert first.captions == again.captions and np.array_equal(mask, mask_again)
    assert first.captions != other.captions and other_mask.sum() == mask.sum() == 12
    assert inject_wrong_captions(clean, 0.0, seed=0)[1].sum() == 0


@pytest.mark.parametrize("share", [1.0, -0.1])
def test_a_share_outside_zero_to_one_is_refused(share):
    with pytest.raises(ConfigError, match="share of wrong captions"):
        inject_wrong_captions(_split(), share, seed=0)


def test_a_split_with_no_wrong_caption_to_give_is_refused():
    alone = RetrievalDataset("lab", "train", [VideoItem("v0", "v0.mp4")], [Caption("v0", "a"), Caption("v0", "b")])
    with pytest.raises(ConfigError, match="none is wrong"):
        inject_wrong_captions(alone, 0.5, seed=0)


def test_filter_quality_matches_injected_captions_by_id_when_a_video_was_left_out():
    """v0 failed to decode: the filter ranked v1..v3 only, and the truth still lands on the right captions."""
    videos = [VideoItem(f"v{i}", f"v{i}.mp4") for i in range(4)]
    captions = [Caption(f"v{i}", f"c{2 * i + j}") for i in range(4) for j in (0, 1)]
    noisy = RetrievalDataset("lab", "train", videos, captions)
    truth = np.zeros(8, dtype=bool)
    truth[[1, 4, 7]] = True  # c1 (of v0, gone), c4 (v2) and c7 (v3)
    ids = noisy.caption_ids()
    stamped = [replace(c, caption_id=i) for c, i in zip(captions, ids, strict=True)]  # as decodable_subset does
    source = RetrievalDataset("lab", "train", videos[1:], stamped[2:])
    eye = torch.eye(3)  # the videos v1, v2, v3
    good = eye[[0, 0, 0, 1, 2, 0]]  # c2..c7 point at their own video, but c4 and c7 at v1
    bad = eye[[2, 2, 2, 2, 2, 2]]  # every caption points at v3: c2..c5 are flagged
    bank = TeacherBank(["good", "bad"], [good, bad], [eye, eye], [1.0, 1.0], "", source.caption_ids(),
                       [v.video_id for v in source.videos])
    config = CaptionFilterConfig(rule="rank", max_rank=1, keep_one_per_video=False)
    result = filter_captions(source, caption_ranks(bank, source.caption_video_index()), config)

    quality = filter_quality(result, bank, noisy, truth)
    assert (quality["good"]["precision"], quality["good"]["recall"], quality["good"]["flagged"]) == (1.0, 1.0, 2)
    assert (quality["bad"]["precision"], quality["bad"]["recall"], quality["bad"]["flagged"]) == (0.25, 0.5, 4)
    assert quality["all"]["flagged"] == int((~result.keep).sum()) and quality["all"]["noisy"] == 2
    with pytest.raises(ValueError, match="other captions"):
        filter_quality(result, replace(bank, caption_ids=ids[:6]), noisy, truth)


# ------------------------------------------------------------------------------------- on videos and a recipe
@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lab")
    generate_lab(root, LabConfig(scale="tiny", n_pretrain=0, n_pool=0, workers=1), progress=False)
    return root


def test_a_student_scored_as_a_teacher_gets_the_numbers_evaluate_lab_gives_it(lab, tmp_path):
    model = build_model(ModelSpec(backbone="vitr-lab-tiny", random_init=True, head="seqTransf", num_frames=4))
    cache = tmp_path / "cache"
    as_student = evaluate_lab(model, lab, cache, num_frames=4, workers=0, progress=False).results
    as_teacher = evaluate_teachers([ModelTeacher(model, "it")], load_lab_test(lab), model.backbone, cache, 4, 0)
    assert set(as_teacher) == {"it"} and set(as_teacher["it"]) == set(as_student) == {"all", "temporal", "static"}
    for subset, result in as_student.items():
        assert as_teacher["it"][subset].to_dict() == result.to_dict()


@pytest.fixture
def labelled(tmp_path) -> Path:
    return write_labelled_csv(tmp_path, frames=4)


def test_the_recipes_runs_distil_from_the_very_teachers_the_lab_fitted_and_scores(tmp_path, labelled, monkeypatch):
    overrides = ["model.backbone=vitr-lab-tiny", "model.random_init=true", "model.num_frames=4", "epochs=1",
                 "batch_size=4", "progress=false", "tensorboard=false", f"output_dir={tmp_path / 'run'}",
                 f"teachtext.bank={tmp_path / 'bank.safetensors'}",
                 "teachtext.teachers=[{kind: bow, name: words, embed_dim: 8, epochs: 2}]"]
    config = load_config(Path(__file__).parents[2] / "configs" / "lab" / "teachtext.yaml", overrides)
    dataset = load_dataset("generic", labelled, "train")
    model = build_model(config.model)
    (teacher,) = fit_recipe_teachers(model, config, dataset, tmp_path / "cache", workers=0)

    bank = TeacherBank.load(tmp_path / "bank.safetensors")
    assert bank.names == ["words"] and bank.caption_ids == dataset.caption_ids()
    assert torch.allclose(bank.text[0], teacher.embed_texts([c.text for c in dataset.captions]))

    def refit(*_args, **_kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("the bank of the fitted teachers was not reused")

    monkeypatch.setattr(vitr.train.teachtext, "build_teachers", refit)
    trainer = train(model, config, dataset, tmp_path / "cache", workers=0)
    assert trainer.step == 2 and np.isfinite(trainer.history).all()
