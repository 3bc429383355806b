"""Training runs as users start them: a dataset split, a config, cached frame features, validation.

`freeze: visual` (the default) trains the head and the text tower over frame embeddings extracted once into
the feature cache, as lab.md §3 recommends on CPUs; `freeze: none` decodes pixels and fine-tunes end to end.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from vitr.backbones.open_clip_backbone import OpenClipBackbone
from vitr.data.types import RetrievalDataset, VideoItem
from vitr.errors import DatasetFormatError
from vitr.model.evaluate import embed_dataset, evaluate_embeddings
from vitr.model.extract import extract_features, frame_spec_for, open_cache
from vitr.model.retrieval import VideoTextModel
from vitr.pseudo.label import PseudoLabel
from vitr.train.config import TrainConfig
from vitr.train.datasets import CachedPairDataset, PixelPairDataset, caption_tokenizer
from vitr.train.ps_scl import PsSclConfig, PsSclHistory, pool_from_dataset, pool_from_pseudo_labels, train_ps_scl
from vitr.train.trainer import ExtraLoss, Trainer, ValFn

log = logging.getLogger(__name__)


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
    if result.failures:
        log.warning("%d training videos could not be decoded and are left out", len(result.failures))
    return CachedPairDataset(dataset, cache, result.keys, tokenize, skip_missing=True)


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
    train_set: RetrievalDataset,
    cache_root: str | Path,
    val_set: RetrievalDataset | None = None,
    extra_loss: ExtraLoss | None = None,
    workers: int = 2,
    init_from_clip: bool = True,
) -> Trainer:
    """Fit `model` on `train_set`; returns the trainer (history, last metrics, checkpoints under output_dir)."""
    if init_from_clip:
        copied = init_head_from_clip(model)
        log.info("initialised %d head tensors from CLIP's text tower", len(copied))
    pairs = training_pairs(model, train_set, config, cache_root, workers=workers, progress=config.progress)
    val_fn = retrieval_validation(val_set, cache_root, config.model.num_frames, workers) if val_set else None
    trainer = Trainer(model, config, pairs, val_fn=val_fn, extra_loss=extra_loss)
    trainer.fit()
    return trainer


def train_on_pseudo_labels(
    model: VideoTextModel,
    config: PsSclConfig,
    labels: Sequence[PseudoLabel],
    video_dir: str | Path,
    cache_root: str | Path,
    forms: Sequence[str] = (),
    labelled: RetrievalDataset | None = None,
    workers: int = 2,
    init_from_clip: bool = True,
) -> PsSclHistory:
    """PS-SCL as users start it: the file `vitr pseudo-label` wrote, the videos it names, optionally a labelled split.

    Frames go through the feature cache, so a second run (or the pseudo-labelling CLIP's own cache) decodes nothing
    again. Videos that cannot be decoded, or that have no pseudo-text of the chosen `forms`, are left out and logged.
    """
    if init_from_clip:
        init_head_from_clip(model)
    cfg = config.train
    spec = frame_spec_for(model.backbone, cfg.model.num_frames)
    cache = open_cache(cache_root, model.backbone, spec)
    tokenize = caption_tokenizer(model.backbone, cfg.max_words)
    described = [label for label in labels if any(not forms or t["form"] in forms for t in label.texts)]
    if len(described) < len(labels):
        log.warning("%d of %d videos have no pseudo-text of forms %s; left out", len(labels) - len(described),
                    len(labels), list(forms))
    items = [VideoItem(label.video, str(Path(video_dir) / label.video)) for label in described]
    found = extract_features(model.backbone, items, cache, spec, workers=workers, progress=cfg.progress)
    usable = [label for label in described if label.video in found.keys]
    if found.failures:
        log.warning("%d pseudo-labelled videos could not be decoded and are left out", len(found.failures))
    if not usable:
        raise DatasetFormatError(f"none of the {len(labels)} pseudo-labelled videos could be used from {video_dir}")
    frames, mask = cache.stacked([found.keys[label.video] for label in usable])
    pool = pool_from_pseudo_labels(usable, frames, mask, tokenize, forms)
    if labelled is not None:
        done = extract_features(model.backbone, labelled.videos, cache, spec, workers=workers, progress=cfg.progress)
        videos = [v for v in labelled.videos if v.video_id in done.keys]
        captions = [c for c in labelled.captions if c.video_id in done.keys]
        subset = RetrievalDataset(labelled.name, labelled.split, videos, captions, labelled.paragraph)
        frames, mask = cache.stacked([done.keys[v.video_id] for v in videos])
        pool = pool.concat(pool_from_dataset(subset, frames, mask, tokenize))
    log.info("PS-SCL on %d pseudo-labelled videos%s", len(usable), f" + {len(videos)} labelled" if labelled else "")
    return train_ps_scl(model, pool, config, progress=cfg.progress)
