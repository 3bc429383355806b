"""What the lab's TeachText table measures beyond training: wrong captions injected with a known truth, the recipe's
teachers scored on the test split, and how well the caption filter finds the injected captions.

Every model of the table is trained by `vitr.train.pipeline.train` from a recipe (configs/lab/teachtext.yaml,
benchmarks/lab_teachtext.py); this module holds only what the lab knows and a real dataset does not: which
captions are wrong, and a tagged test split to score teachers on exactly as students are scored
(`vitr.lab.experiment`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

from vitr.backbones.base import Backbone
from vitr.data.types import RetrievalDataset
from vitr.errors import ConfigError
from vitr.eval.retrieval import RetrievalResult
from vitr.inference.evaluate import DatasetEmbeddings, evaluate_embeddings
from vitr.inference.extract import extract_features, frame_spec_for, open_cache
from vitr.lab.experiment import SUBSETS
from vitr.model.retrieval import VideoTextModel
from vitr.teachers.bank import TeacherBank, build_teacher_bank
from vitr.teachers.base import Teacher
from vitr.train.config import TrainConfig
from vitr.train.pipeline import decodable_subset, teacher_bank_path, training_pairs
from vitr.train.teachtext import (
    CaptionFilterResult,
    build_teachers,
    caption_ranks,
    filter_captions,
    filter_precision_recall,
    recipe_teacher_bank,
)
from vitr.train.video_distill import own_frames_reader


def inject_wrong_captions(dataset: RetrievalDataset, share: float, seed: int) -> tuple[RetrievalDataset, np.ndarray]:
    """Replace round(share * C) of the C captions by captions of other videos -> (noisy split, (C,) bool: replaced).

    A replacement is drawn from the captions of the other videos and is never a text its own video already has
    (lab captions are templated: another video may share one), so every marked caption is really wrong. The same
    seed draws the same captions and replacements; videos and caption order are kept.
    """
    if not 0 <= share < 1:
        raise ConfigError(f"the share of wrong captions must lie in [0, 1), got {share}")
    own_texts: dict[str, set[str]] = defaultdict(set)
    for c in dataset.captions:
        own_texts[c.video_id].add(c.text)
    all_texts = {c.text for c in dataset.captions}
    rng = np.random.default_rng(seed)
    captions = list(dataset.captions)
    truth = np.zeros(len(captions), dtype=bool)
    for i in rng.choice(len(captions), size=int(round(share * len(captions))), replace=False):
        own = own_texts[captions[i].video_id]
        if len(all_texts) == len(own):
            raise ConfigError(f"video {captions[i].video_id!r} has every caption text of the split: none is wrong")
        while (donor := dataset.captions[int(rng.integers(len(captions)))]).text in own:
            pass
        captions[i] = replace(captions[i], text=donor.text, tags=donor.tags)
        truth[i] = True
    return RetrievalDataset(dataset.name, dataset.split, list(dataset.videos), captions, dataset.paragraph), truth


def fit_recipe_teachers(
    model: VideoTextModel, config: TrainConfig, dataset: RetrievalDataset, cache_root: str | Path, workers: int = 2
) -> list[Teacher]:
    """The recipe's teachers fitted on `dataset` as training fits them, with their bank written where the recipe's
    runs read it (`teacher_bank_path`): those runs then distil from these very teachers, which the lab also scores.

    `model` gives the backbone whose cached frames the teachers share (the student's, as in training).
    """
    if config.teachtext is None:
        raise ConfigError("fitting teachers needs a recipe with a teachtext section")
    pairs = training_pairs(model, dataset, config, cache_root, workers=workers, progress=False)
    subset = decodable_subset(dataset, pairs)
    teachers = build_teachers(config.teachtext, subset, pairs.frames, pairs.mask)
    recipe_teacher_bank(config.teachtext, subset, pairs.frames, pairs.mask, teacher_bank_path(config),
                        own_frames=own_frames_reader(subset, cache_root, workers), teachers=teachers)
    return teachers


def evaluate_teachers(
    teachers: list[Teacher],
    test: RetrievalDataset,
    backbone: Backbone,
    cache_root: str | Path,
    num_frames: int = 12,
    workers: int = 2,
) -> dict[str, dict[str, RetrievalResult]]:
    """Each teacher on the test split (`vitr.lab.experiment.load_lab_test`), over the cached frames of `backbone`:
    {teacher name: {"all", "temporal", "static": result}}, ranked as `evaluate_lab` ranks a student."""
    spec = frame_spec_for(backbone, num_frames)
    cache = open_cache(cache_root, backbone, spec)
    found = extract_features(backbone, test.videos, cache, spec, workers=workers, progress=False)
    videos = [v for v in test.videos if v.video_id in found.keys]
    kept = RetrievalDataset(test.name, test.split, videos, [c for c in test.captions if c.video_id in found.keys],
                            test.paragraph)
    frames, mask = cache.stacked([found.keys[v.video_id] for v in videos])  # (V, T, D), (V, T)
    bank = build_teacher_bank(teachers, [c.text for c in kept.captions], frames, mask)
    return {
        name: evaluate_embeddings(DatasetEmbeddings(kept, text.numpy(), video.numpy(), found.failures), tags=SUBSETS)
        for name, text, video in zip(bank.names, bank.text, bank.video, strict=True)
    }


def filter_quality(
    result: CaptionFilterResult, bank: TeacherBank, noisy: RetrievalDataset, truth: np.ndarray
) -> dict[str, dict[str, float]]:
    """Precision and recall of the removed captions against the injected ones, for the teachers together (the
    filter `result` applied) and for each teacher alone under the same rule: {"all": ..., teacher name: ...}.

    `bank` is the one the filter ranked with (rows = `result.source`'s captions); `truth` is
    `inject_wrong_captions`' mask over `noisy.captions`, matched to the filtered captions by caption id.
    """
    source = result.source
    if bank.caption_ids != source.caption_ids():
        raise ValueError("the teacher bank was built for other captions than the filter ranked")
    injected = {cid for cid, wrong in zip(noisy.caption_ids(), truth, strict=True) if wrong}
    truth_rows = np.array([cid in injected for cid in source.caption_ids()], dtype=bool)
    quality = {"all": filter_precision_recall(~result.keep, truth_rows)}
    for n, name in enumerate(bank.names):
        alone = TeacherBank([name], [bank.text[n]], [bank.video[n]], [bank.scales[n]], bank.key,
                            bank.caption_ids, bank.video_ids)
        kept = filter_captions(source, caption_ranks(alone, source.caption_video_index()), result.config).keep
        quality[name] = filter_precision_recall(~kept, truth_rows)
    return quality
