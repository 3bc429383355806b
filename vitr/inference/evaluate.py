"""Evaluate a model on a dataset: cached frame features -> head -> embeddings -> metrics (both directions)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from vitr.data.types import RetrievalDataset
from vitr.eval.retrieval import RetrievalResult, evaluate
from vitr.inference.extract import extract_features, frame_spec_for, open_cache
from vitr.model.retrieval import VideoTextModel
from vitr.video.loader import frame_sampling

log = logging.getLogger(__name__)


@dataclass
class DatasetEmbeddings:
    dataset: RetrievalDataset  # without the videos that failed to decode (and their captions)
    text: np.ndarray  # (Nt, E)
    video: np.ndarray  # (Nv, E)
    failures: dict[str, str] = field(default_factory=dict)  # video_id -> reason


@torch.inference_mode()
def embed_texts(
    model: VideoTextModel, texts: list[str], batch_size: int = 256, max_words: int | None = None
) -> np.ndarray:
    """(N, E) caption embeddings; `max_words` cuts every caption to that many tokens (CLIP4Clip: 32)."""
    out = [
        model.embed_texts(texts[i : i + batch_size], max_words).float().cpu()
        for i in range(0, len(texts), batch_size)
    ]
    return torch.cat(out).numpy() if out else np.empty((0, 0), np.float32)


@torch.inference_mode()
def embed_cached_videos(model: VideoTextModel, cache, keys: list[str], batch_size: int = 256) -> np.ndarray:  # noqa: ANN001
    device = model.logit_scale.device
    out = []
    for i in range(0, len(keys), batch_size):
        frames, mask = cache.stacked(keys[i : i + batch_size])
        out.append(model.embed_video_features(frames.to(device), mask.to(device)).float().cpu())
    return torch.cat(out).numpy() if out else np.empty((0, 0), np.float32)


def embed_dataset(
    model: VideoTextModel,
    dataset: RetrievalDataset,
    cache_root: str | Path,
    num_frames: int = 12,
    workers: int = 2,
    precision: str = "fp32",
    progress: bool = True,
    max_words: int | None = None,
    sampler: str = "uniform",
    feature_framerate: int = 1,
) -> DatasetEmbeddings:
    """Embed every video (through the feature cache) and caption; undecodable videos are reported and dropped.

    `max_words` is the caption length in tokens (start and end included): None keeps the model's context (77
    for OpenAI CLIP); the official CLIP4Clip/CLIP2Video evaluation uses 32 (64 for paragraph datasets).
    `sampler` names how frames are taken (`vitr.video.loader.SAMPLERS`); `feature_framerate` is
    CLIP2Video's decimation of its 5 fps JPEGs (`c2v_jpeg5fps` only).
    """
    spec = frame_spec_for(model.backbone, num_frames, **frame_sampling(sampler, feature_framerate))
    cache = open_cache(cache_root, model.backbone, spec)
    result = extract_features(model.backbone, dataset.videos, cache, spec, workers=workers, precision=precision,
                              progress=progress)
    if result.failures:
        log.warning("%d of %d videos could not be decoded and are left out: %s", len(result.failures),
                    len(dataset.videos), "; ".join(f"{k}: {v}" for k, v in list(result.failures.items())[:5]))
    videos = [v for v in dataset.videos if v.video_id in result.keys]
    captions = [c for c in dataset.captions if c.video_id in result.keys]
    kept = RetrievalDataset(dataset.name, dataset.split, videos, captions, dataset.paragraph)
    video_emb = embed_cached_videos(model, cache, [result.keys[v.video_id] for v in videos])
    text_emb = embed_texts(model, [c.text for c in captions], max_words=max_words)
    return DatasetEmbeddings(kept, text_emb, video_emb, result.failures)


def evaluate_embeddings(emb: DatasetEmbeddings, tags: tuple[str, ...] = (), protocol: str = "clip4clip"
                        ) -> dict[str, RetrievalResult]:
    """Metrics over all captions, and over each tagged subset (ranked against the full video gallery)."""
    results = {"all": evaluate(emb.text, emb.video, emb.dataset.caption_video_index(), protocol=protocol)}
    for tag in tags:
        rows = np.array([i for i, c in enumerate(emb.dataset.captions) if tag in c.tags], dtype=np.int64)
        if len(rows):
            subset = emb.dataset.subset(tag)
            results[tag] = evaluate(emb.text[rows], emb.video, subset.caption_video_index(), protocol=protocol)
    return results
