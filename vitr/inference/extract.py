"""Extract per-frame embeddings of many videos into the feature cache, decoding ahead while encoding."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from vitr.backbones.base import Backbone
from vitr.data.cache import CachedFeatures, FeatureCache, feature_key, file_digest, namespace_for
from vitr.data.types import VideoItem
from vitr.precision import DTYPES
from vitr.video.loader import DecodeFailure, FrameSpec, iter_decoded


@dataclass
class ExtractionResult:
    keys: dict[str, str] = field(default_factory=dict)  # video_id -> cache key
    failures: dict[str, str] = field(default_factory=dict)  # video_id -> reason
    extracted: int = 0  # videos decoded and encoded by this call (the rest came from the cache)


def spec_repr(spec: FrameSpec) -> str:
    """What about the sampling changes the features; part of the cache namespace."""
    text = f"n={spec.num_frames},fps={spec.fps},size={spec.size},mean={tuple(spec.mean)},std={tuple(spec.std)}"
    if spec.decimation is not None:  # fields at their default add nothing, so older caches keep their key
        text = f"{text},decimation={spec.decimation}"
    if spec.decoder != "pyav":  # another decoder's pixels differ from PyAV's
        text = f"{text},decoder={spec.decoder}@{torch.device(spec.decode_device).type}"
    return text


def frame_spec_for(backbone: Backbone, num_frames: int = 12, fps: float | None = None,
                   decimation: int | None = None, decoder: str = "pyav", decode_device: str = "cpu") -> FrameSpec:
    return FrameSpec(num_frames=num_frames, fps=fps, size=backbone.image_size, mean=backbone.image_mean,
                     std=backbone.image_std, decimation=decimation, decoder=decoder, decode_device=decode_device)


def open_cache(cache_root: str | Path, backbone: Backbone, spec: FrameSpec) -> FeatureCache:
    return FeatureCache(cache_root, namespace_for(backbone.visual_fingerprint(), spec_repr(spec)))


@torch.inference_mode()
def encode_pixels(backbone: Backbone, pixels: torch.Tensor, precision: str = "fp32") -> torch.Tensor:
    """pixels: (B, T, 3, S, S) -> (B, T, D) float32 frame embeddings."""
    b, t = pixels.shape[:2]
    device = backbone.logit_scale.device
    flat = pixels.flatten(0, 1).to(device)
    dtype = DTYPES.get(precision, torch.float32)  # the autocast precision; fp32 means none
    with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
        out = backbone.encode_image(flat)
    return out.float().view(b, t, -1).cpu()


def extract_features(
    backbone: Backbone,
    items: Sequence[VideoItem],
    cache: FeatureCache,
    spec: FrameSpec,
    batch_size: int = 16,
    workers: int = 2,
    precision: str = "fp32",
    progress: bool = True,
) -> ExtractionResult:
    """Make sure every item's frame embeddings are in `cache`; corrupt videos are reported and skipped."""
    result = ExtractionResult()
    todo: dict[str, tuple[str, float | None, float | None]] = {}
    for item in tqdm(items, desc="hashing", unit="video", disable=not progress, leave=False):
        try:
            key = feature_key(file_digest(item.path), item.start, item.end)
        except OSError as e:
            result.failures[item.video_id] = f"cannot read {item.path}: {e.strerror or e}"
            continue
        result.keys[item.video_id] = key
        if key not in cache and key not in todo:
            todo[key] = (item.path, item.start, item.end)

    failed_keys: dict[str, str] = {}
    bar = tqdm(total=len(todo), desc="extracting", unit="video", disable=not progress or not todo)
    batch: list = []

    def flush(writer) -> None:  # noqa: ANN001
        if not batch:
            return
        pixels = torch.stack([v.pixels for v in batch])
        frames = encode_pixels(backbone, pixels, precision)
        for v, f in zip(batch, frames, strict=True):
            writer.add(v.key, CachedFeatures(f, v.mask.float(), torch.as_tensor(v.timestamps, dtype=torch.float32)))
        bar.update(len(batch))
        batch.clear()

    with cache.writer() as writer:
        stream = iter_decoded([(k, p, s, e) for k, (p, s, e) in todo.items()], spec, workers=workers)
        for decoded in stream:
            if isinstance(decoded, DecodeFailure):
                failed_keys[decoded.key] = decoded.error.reason
                bar.update(1)
                continue
            batch.append(decoded)
            if len(batch) >= batch_size:
                flush(writer)
        flush(writer)
    bar.close()
    result.extracted = len(todo) - len(failed_keys)
    for vid, key in list(result.keys.items()):
        if key in failed_keys:
            result.failures[vid] = failed_keys[key]
            del result.keys[vid]
    return result
