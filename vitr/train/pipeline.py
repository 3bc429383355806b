"""Training runs as users start them: a dataset split, a config, cached frame features, validation.

`freeze: visual` (the default) trains the head and the text tower over frame embeddings extracted once into
the feature cache, as lab.md §3 recommends on CPUs; `freeze: none` decodes pixels and fine-tunes end to end.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import torch

from vitr.backbones.open_clip_backbone import OpenClipBackbone
from vitr.data.types import RetrievalDataset
from vitr.model.evaluate import embed_dataset, evaluate_embeddings
from vitr.model.extract import extract_features, frame_spec_for, open_cache
from vitr.model.retrieval import VideoTextModel
from vitr.train.config import TrainConfig
from vitr.train.datasets import CachedPairDataset, PixelPairDataset, caption_tokenizer
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
