"""Training runs as users start them: a dataset split, a config, cached frame features, validation.

`freeze: visual` (the default) trains the head and the text tower over frame embeddings extracted once into
the feature cache, as lab.md §3 recommends on CPUs; `freeze: none` decodes pixels and fine-tunes end to end.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import torch

from vitr.backbones.open_clip_backbone import OpenClipBackbone
from vitr.data.types import Caption, RetrievalDataset, VideoItem
from vitr.errors import ConfigError, DatasetFormatError
from vitr.inference.evaluate import embed_dataset, evaluate_embeddings
from vitr.inference.extract import extract_features, frame_spec_for, open_cache
from vitr.model.factory import build_model
from vitr.model.retrieval import VideoTextModel
from vitr.pseudo.label import PseudoLabel, read_pseudo_labels
from vitr.teachers.bank import TeacherBank
from vitr.train.config import TrainConfig
from vitr.train.datasets import CachedPairDataset, PixelPairDataset, caption_tokenizer
from vitr.train.distributed import training_device
from vitr.train.ps_scl import PairPool, pool_from_dataset, pool_from_pseudo_labels, ps_scl_trainer
from vitr.train.teachtext import (
    CaptionFilterConfig,
    CaptionFilterResult,
    TeachTextTargets,
    caption_ranks,
    filter_captions,
    recipe_teacher_bank,
)
from vitr.train.trainer import Trainer, ValFn
from vitr.train.video_distill import own_frames_reader

log = logging.getLogger(__name__)


def training_model(config: TrainConfig, device: str | torch.device | None = None) -> VideoTextModel:
    """The model `config` trains, on `device` (default: the device it trains on, `config.device`).

    The head's tensors that CLIP does not initialise (frame positions, CLIP2Video's centres) are drawn with
    `config.seed`, so a recipe and its seed decide the whole run, whether `vitr train` or a benchmark starts it; the
    caller's random state is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return build_model(config.model, training_device(config.device) if device is None else device)


def init_head_from_clip(model: VideoTextModel) -> list[str]:
    """CLIP4Clip/CLIP2Video's fresh start: temporal blocks and positions copied from CLIP's text tower (§6)."""
    if not isinstance(model.backbone, OpenClipBackbone):
        log.info("head initialisation from CLIP's text tower needs an open_clip backbone; keeping random init")
        return []
    state: Mapping[str, torch.Tensor] = model.backbone.model.state_dict()
    return model.head.init_from_clip(state)


def training_pairs(
    model: VideoTextModel,
    dataset: RetrievalDataset,
    config: TrainConfig,
    cache_root: str | Path,
    workers: int = 2,
    progress: bool = True,
) -> CachedPairDataset | PixelPairDataset:
    """(video, caption) training items: cached frame features unless the image tower is trained too."""
    spec = frame_spec_for(model.backbone, config.model.num_frames)
    tokenize = caption_tokenizer(model.backbone, config.max_words)
    if config.freeze == "none":
        return PixelPairDataset(dataset, spec, tokenize)
    cache = open_cache(cache_root, model.backbone, spec)
    result = extract_features(model.backbone, dataset.videos, cache, spec, workers=workers, progress=progress)
    pairs = CachedPairDataset(dataset, cache, result.keys, tokenize, skip_missing=True)
    if pairs.skipped:
        lost = len(dataset.captions) - len(pairs)
        log.warning("%d training videos could not be decoded (e.g. %s); they are left out with their %d captions "
                    "(and teacher rows)", len(pairs.skipped), pairs.skipped[0], lost)
    return pairs


def retrieval_validation(dataset: RetrievalDataset, cache_root: str | Path, num_frames: int, workers: int = 2) -> ValFn:
    """A validation callable reporting R@1/5/10 and MdR both ways (keys like "t2v/R@1")."""

    def validate(model: VideoTextModel) -> dict[str, float]:
        emb = embed_dataset(model, dataset, cache_root, num_frames, workers=workers, progress=False)
        result = evaluate_embeddings(emb)["all"]
        out = {}
        for direction, metrics in (("t2v", result.t2v), ("v2t", result.v2t)):
            for key in ("R1", "R5", "R10", "MdR"):
                out[f"{direction}/{key.replace('R', 'R@', 1) if key != 'MdR' else key}"] = float(metrics[key])
        return out

    return validate


def train(
    model: VideoTextModel,
    config: TrainConfig,
    train_set: RetrievalDataset | None,
    cache_root: str | Path,
    val_set: RetrievalDataset | None = None,
    workers: int = 2,
    init_from_clip: bool = True,
    labels: Sequence[PseudoLabel] | None = None,
) -> Trainer:
    """Fit `model` as `config` says; returns the trainer (history, last metrics, checkpoints under output_dir).

    Supervised on `train_set`; with a `ps_scl` section on the pseudo pairs of `labels` (default: read from
    ps_scl.pseudo_labels), beside `train_set`'s labelled pairs when given; with a `teachtext` section plus the
    distillation from the recipe's teachers, whose bank is cached (teachtext.bank, else output_dir).
    """
    if init_from_clip:
        copied = init_head_from_clip(model)
        log.info("initialised %d head tensors from CLIP's text tower", len(copied))
    val_fn = retrieval_validation(val_set, cache_root, config.model.num_frames, workers) if val_set else None
    if config.ps_scl is not None:
        pool, pool_set = pseudo_pair_pool(model, config, cache_root, labels, train_set, workers)
        terms = []
        if config.teachtext is not None:
            bank = _bank(config, pool_set, pool.frames, pool.mask, cache_root, workers)
            terms.append(TeachTextTargets(bank, config.teachtext).extra_loss)  # pool order = the bank's order
        trainer = ps_scl_trainer(model, pool, config, val_fn, extra_losses=terms)
    else:
        if train_set is None:
            raise ConfigError("supervised training needs a dataset (--dataset/--root), or a ps_scl section")
        pairs = training_pairs(model, train_set, config, cache_root, workers=workers, progress=config.progress)
        terms = []
        if config.teachtext is not None:
            subset = decodable_subset(train_set, pairs)
            bank = _bank(config, subset, pairs.frames, pairs.mask, cache_root, workers)
            if config.teachtext.filter is not None:
                result = teacher_filter(config, subset, bank)
                log.info("TeachText filter (%s): %d of %d captions removed", result.config.rule,
                         len(result.removed), len(subset.captions))
                train_set = result.dataset
                pairs = training_pairs(model, train_set, config, cache_root, workers=workers, progress=False)
            terms.append(TeachTextTargets.for_pairs(bank, pairs, train_set, config.teachtext).extra_loss)
        trainer = Trainer(model, config, pairs, val_fn=val_fn, extra_losses=terms)
    trainer.fit()
    return trainer


def decodable_subset(dataset: RetrievalDataset, pairs: CachedPairDataset | PixelPairDataset) -> RetrievalDataset:
    """The videos of `dataset` that have frames in `pairs`, with their captions, in the order of `pairs.frames`."""
    if not isinstance(pairs, CachedPairDataset):
        raise ConfigError("TeachText distils over cached frame features; use freeze: visual or all")
    usable = set(pairs.video_ids)
    ids = dataset.caption_ids()  # stamped: the subset keeps the full set's caption ids
    captions = [replace(c, caption_id=i) for c, i in zip(dataset.captions, ids, strict=True) if c.video_id in usable]
    videos = [v for v in dataset.videos if v.video_id in usable]
    return RetrievalDataset(dataset.name, dataset.split, videos, captions, dataset.paragraph)


def teacher_filter(config: TrainConfig, dataset: RetrievalDataset, bank: TeacherBank) -> CaptionFilterResult:
    """Drop (or down-weight) the captions of `dataset` that the teachers rank far from their own video."""
    tt = config.teachtext
    ranks = caption_ranks(bank, dataset.caption_video_index(), tt.aggregation, tt.teacher_weights)
    return filter_captions(dataset, ranks, tt.filter or CaptionFilterConfig())


def filter_training_captions(
    model: VideoTextModel, config: TrainConfig, dataset: RetrievalDataset, cache_root: str | Path, workers: int = 2
) -> CaptionFilterResult:
    """`vitr filter-captions`: the recipe's teachers (bank built and cached as training does) rank every caption
    of `dataset` against all its videos; the recipe's `teachtext.filter` (default: rank < 100) decides."""
    if config.teachtext is None:
        raise ConfigError("filtering captions needs a recipe with a teachtext section (its teachers rank captions)")
    pairs = training_pairs(model, dataset, config, cache_root, workers=workers, progress=config.progress)
    subset = decodable_subset(dataset, pairs)
    return teacher_filter(config, subset, _bank(config, subset, pairs.frames, pairs.mask, cache_root, workers))


def teacher_bank_path(config: TrainConfig) -> Path:
    """Where a recipe's teacher bank is cached: teachtext.bank, else output_dir/teacher_bank.safetensors."""
    return Path(config.teachtext.bank or Path(config.output_dir) / "teacher_bank.safetensors")


def _bank(
    config: TrainConfig,
    dataset: RetrievalDataset,
    frames: torch.Tensor,
    mask: torch.Tensor,
    cache_root: str | Path,
    workers: int = 2,
) -> TeacherBank:
    path = teacher_bank_path(config)
    own = own_frames_reader(dataset, cache_root, workers)  # video-side teachers read their own frames
    bank = recipe_teacher_bank(config.teachtext, dataset, frames, mask, path, own_frames=own)
    log.info("TeachText: %d teachers (%s), bank %s", len(bank.names), ", ".join(bank.names), path)
    return bank


def pseudo_pair_pool(
    model: VideoTextModel,
    config: TrainConfig,
    cache_root: str | Path,
    labels: Sequence[PseudoLabel] | None = None,
    labelled: RetrievalDataset | None = None,
    workers: int = 2,
) -> tuple[PairPool, RetrievalDataset]:
    """PS-SCL's pool as users start it: the file `vitr pseudo-label` wrote, the videos it names, optionally a
    labelled split; and the same pairs as a dataset in pool order (the order a teacher bank for it takes).

    Frames go through the feature cache, so a second run (or the pseudo-labelling CLIP's own cache) decodes nothing
    again. Videos that cannot be decoded, or that have no pseudo-text of the chosen forms, are left out and logged.
    With a `teachtext:` section, a pseudo-labelled and a labelled video that share an id are refused before any
    video is decoded (`refuse_shared_video_ids`).
    """
    ps = config.ps_scl
    if labels is None:
        if ps.pseudo_labels is None:
            raise ConfigError("ps_scl.pseudo_labels names no file: set it to what `vitr pseudo-label` wrote")
        labels = read_pseudo_labels(ps.pseudo_labels)
    video_dir = Path(ps.videos) if ps.videos else Path(ps.pseudo_labels or ".").parent
    forms = list(ps.forms)
    described = [label for label in labels if any(not forms or t["form"] in forms for t in label.texts)]
    if len(described) < len(labels):
        log.warning("%d of %d videos have no pseudo-text of forms %s; left out", len(labels) - len(described),
                    len(labels), forms)
    if labelled is not None and config.teachtext is not None:
        refuse_shared_video_ids(described, video_dir, ps.pseudo_labels or "the pseudo-labels given", labelled)
    spec = frame_spec_for(model.backbone, config.model.num_frames)
    cache = open_cache(cache_root, model.backbone, spec)
    tokenize = caption_tokenizer(model.backbone, config.max_words)
    items = [VideoItem(label.video, str(video_dir / label.video)) for label in described]
    found = extract_features(model.backbone, items, cache, spec, workers=workers, progress=config.progress)
    usable = [label for label in described if label.video in found.keys]
    if found.failures:
        log.warning("%d pseudo-labelled videos could not be decoded and are left out", len(found.failures))
    if not usable:
        raise DatasetFormatError(f"none of the {len(labels)} pseudo-labelled videos could be used from {video_dir}")
    frames, mask = cache.stacked([found.keys[label.video] for label in usable])
    pool = pool_from_pseudo_labels(usable, frames, mask, tokenize, forms)
    videos = [VideoItem(label.video, str(video_dir / label.video)) for label in usable]
    captions = [Caption(label.video, t["text"]) for label in usable for t in label.texts
                if not forms or t["form"] in forms]
    pool_set = RetrievalDataset("pseudo", "pool", videos, captions)
    if labelled is not None:
        done = extract_features(model.backbone, labelled.videos, cache, spec, workers=workers, progress=config.progress)
        kept = [v for v in labelled.videos if v.video_id in done.keys]
        subset = RetrievalDataset(labelled.name, labelled.split, kept,
                                  [c for c in labelled.captions if c.video_id in done.keys], labelled.paragraph)
        if len(kept) < len(labelled.videos):
            log.warning("%d labelled videos could not be decoded and are left out", len(labelled.videos) - len(kept))
        frames, mask = cache.stacked([done.keys[v.video_id] for v in kept])
        pool = pool.concat(pool_from_dataset(subset, frames, mask, tokenize))
        pool_set = RetrievalDataset("pseudo+labelled", "pool", videos + kept, captions + subset.captions)
    log.info("PS-SCL on %d pseudo-labelled videos%s", len(usable), f" + {len(kept)} labelled" if labelled else "")
    return pool, pool_set


def refuse_shared_video_ids(
    labels: Sequence[PseudoLabel], video_dir: Path, source: str, labelled: RetrievalDataset
) -> None:
    """A one-line ConfigError when a pseudo-labelled video and a labelled one share a video id.

    TeachText over PS-SCL's pool names each teacher bank row by video id (and each caption `<video_id>#<n>`), so one
    id for two videos leaves the bank, its cached key and the teachers' fit unable to tell them apart. Refused
    rather than renamed apart, because a shared id most often means the same file in both sets (a labelled folder
    pseudo-labelled as the pool): kept apart, its labels and its pseudo-texts would be in-batch negatives of each
    other and the teachers would be fitted to tell the video from itself. Where two files only share a name,
    renaming one is the user's fix; refusing before any decoding costs nothing.
    """
    paths = {video.video_id: video.path for video in labelled.videos}
    shared = [label.video for label in labels if label.video in paths]
    if shared:
        raise ConfigError(
            f"{len(shared)} videos are both pseudo-labelled ({source}) and labelled ({labelled.name} split "
            f"{labelled.split}) under one id, e.g. {shared[:3]}: {video_dir / shared[0]} and {paths[shared[0]]}; the "
            "teacher bank names its rows by video id, so drop them from one of the two sets or rename one of each pair"
        )
