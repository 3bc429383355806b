"""Text<->video retrieval evaluation from embeddings, in both directions, under a named protocol.

`evaluate` never builds the full (Nt, Nv) score matrix: it works a block of query rows at a time
(`vitr.eval.chunked`) and returns exactly what the dense functions in `vitr.eval.metrics` return on the full
matrix, which `evaluate_similarity` applies directly.

Which functions a protocol uses depends on the captions: when no video has more than one caption (MSR-VTT 1k-A,
paragraph sets such as DiDeMo and ActivityNet, or a tagged subset of those), both directions use the
single-caption metrics; otherwise (MSVD, VATEX, MSR-VTT full) the multi-caption ones (clip2video.md §9).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from vitr.errors import ConfigError
from vitr.eval import chunked, metrics
from vitr.eval.report import results_table

PROTOCOLS = ("clip4clip", "tie_averaged")
METRIC_COLUMNS = ("R1", "R5", "R10", "MdR", "MnR")


@dataclass
class RetrievalResult:
    """Metrics of both directions, with the protocol and the sizes they were computed under."""

    protocol: str
    t2v: dict[str, float]
    v2t: dict[str, float]
    num_texts: int
    num_videos: int
    multi_caption: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=True)

    def to_markdown(self, title: str) -> str:
        """A two-row table (text->video, video->text), one decimal, titled with the protocol."""
        rows = [{"direction": "text→video", **self.t2v}, {"direction": "video→text", **self.v2t}]
        sizes = f"{self.num_texts} texts, {self.num_videos} videos"
        return results_table(rows, ("direction", *METRIC_COLUMNS), self.protocol, f"{title} ({sizes})")


def _to_numpy(x: Any) -> np.ndarray:
    """numpy array or torch tensor (any device, any float dtype) -> numpy float32/float64, without importing torch."""
    if hasattr(x, "detach"):
        x = x.detach()
        x = (x.double() if str(x.dtype) == "torch.float64" else x.float()).cpu().numpy()
    x = np.asarray(x)
    return x.astype(np.result_type(x.dtype, np.float32), copy=False)


def _check_inputs(text_emb: Any, video_emb: Any, caption_video: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    texts, videos = _to_numpy(text_emb), _to_numpy(video_emb)
    if texts.ndim != 2 or videos.ndim != 2 or texts.shape[1] != videos.shape[1]:
        raise ValueError(f"need text (Nt, E) and video (Nv, E) embeddings, got {texts.shape} and {videos.shape}")
    dtype = np.result_type(texts.dtype, videos.dtype)
    caption_video = _caption_video(caption_video, len(texts), len(videos))
    return texts.astype(dtype, copy=False), videos.astype(dtype, copy=False), caption_video


def _caption_video(caption_video: Any, num_texts: int, num_videos: int) -> np.ndarray:
    if hasattr(caption_video, "detach"):
        caption_video = caption_video.detach().cpu().numpy()
    caption_video = np.asarray(caption_video)
    if caption_video.shape != (num_texts,) or not np.issubdtype(caption_video.dtype, np.integer):
        raise ValueError(
            f"caption_video must be ({num_texts},) integers, got {caption_video.shape} {caption_video.dtype}"
        )
    caption_video = caption_video.astype(np.int64)
    if num_texts and (caption_video.min() < 0 or caption_video.max() >= num_videos):
        raise ValueError(f"caption_video entries must index the {num_videos} videos")
    return caption_video


def _check_protocol(protocol: str) -> None:
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown evaluation protocol {protocol!r}; choose one of {list(PROTOCOLS)}")


def _is_multi_caption(caption_video: np.ndarray, num_videos: int) -> bool:
    return bool(np.bincount(caption_video, minlength=num_videos).max(initial=0) > 1)


def _caption_of_video(caption_video: np.ndarray, num_videos: int) -> np.ndarray:
    """(Nv,) the caption of each video in a single-caption set, -1 for a video without one."""
    caption_of = np.full(num_videos, -1, dtype=np.int64)
    caption_of[caption_video] = np.arange(len(caption_video))
    return caption_of


def evaluate(
    text_emb: Any,
    video_emb: Any,
    caption_video: Any,
    protocol: str = "clip4clip",
    chunk_size: int = 4096,
) -> RetrievalResult:
    """Both retrieval directions from text (Nt, E) and video (Nv, E) embeddings; score = dot product.

    caption_video (Nt,): index of each caption's video. Peak memory is a (chunk_size, max(Nt, Nv)) block.
    """
    _check_protocol(protocol)
    texts, videos, caption_video = _check_inputs(text_emb, video_emb, caption_video)
    num_texts, num_videos = len(texts), len(videos)
    multi = _is_multi_caption(caption_video, num_videos)

    greater, equal, valid = chunked.ground_truth_counts(texts, videos, caption_video, chunk_size)
    if protocol == "tie_averaged":
        t2v = metrics.summarize_ranks(greater[valid] + (equal[valid] - 1) / 2, r1_exact=True)
        groups = chunked.CaptionGroups(caption_video, num_videos)
        best = chunked.best_caption_averaged_ranks(videos, texts, caption_video, groups, chunk_size)
        v2t = metrics.summarize_ranks(best[np.isfinite(best)], r1_exact=True)
    elif multi:
        t2v = metrics.summarize_ranks(greater[valid], median="lower")
        groups = chunked.CaptionGroups(caption_video, num_videos)
        greater, equal, valid = chunked.group_max_counts(videos, texts, groups, chunk_size)
        v2t = chunked.expanded_summary(greater[valid], equal[valid], num_videos)
    else:
        t2v = chunked.expanded_summary(greater[valid], equal[valid], num_videos)
        caption_of = _caption_of_video(caption_video, num_videos)
        greater, equal, valid = chunked.ground_truth_counts(videos, texts, caption_of, chunk_size)
        v2t = chunked.expanded_summary(greater[valid], equal[valid], num_texts)
    return RetrievalResult(protocol, t2v, v2t, num_texts, num_videos, multi)


def evaluate_similarity(sim: Any, caption_video: Any, protocol: str = "clip4clip") -> RetrievalResult:
    """The dense counterpart of `evaluate`, for a score matrix sim (Nt, Nv) that fits in memory."""
    _check_protocol(protocol)
    sim = _to_numpy(sim)
    if sim.ndim != 2:
        raise ValueError(f"sim must be (Nt, Nv), got shape {sim.shape}")
    num_texts, num_videos = sim.shape
    caption_video = _caption_video(caption_video, num_texts, num_videos)
    multi = _is_multi_caption(caption_video, num_videos)
    if protocol == "tie_averaged":
        t2v = metrics.tie_averaged_metrics(sim, caption_video)
        v2t = metrics.tie_averaged_v2t(sim, caption_video)
    elif multi:
        t2v = metrics.multi_caption_t2v(sim, caption_video)
        v2t = metrics.multi_caption_v2t(sim, caption_video)
    else:
        t2v = metrics.compute_metrics(sim, caption_video)
        v2t = metrics.compute_metrics(sim.T, _caption_of_video(caption_video, num_videos))
    return RetrievalResult(protocol, t2v, v2t, num_texts, num_videos, multi)


def twin_accuracy(text_emb: Any, own_video_emb: Any, twin_video_emb: Any, ties: str = "half") -> float:
    """Percentage of captions that score their own video strictly above its time-reversed twin (lab.md §2).

    text_emb, own_video_emb, twin_video_emb: (N, E), row i = caption i, its video, that video's twin.
    An order-blind head (meanP) ties every pair: 0 % with ties="strict", 50 % with ties="half".
    """
    if ties not in ("half", "strict"):
        raise ConfigError(f"ties must be 'half' or 'strict', got {ties!r}")
    texts, own, twin = (_to_numpy(x) for x in (text_emb, own_video_emb, twin_video_emb))
    if not (texts.shape == own.shape == twin.shape) or texts.ndim != 2 or len(texts) == 0:
        shapes = f"{texts.shape}, {own.shape}, {twin.shape}"
        raise ValueError(f"need three non-empty (N, E) arrays of one shape, got {shapes}")
    # the same row-wise reduction for both, so identical video vectors give bit-identical scores
    own_score = np.einsum("ne,ne->n", texts, own)
    twin_score = np.einsum("ne,ne->n", texts, twin)
    wins = np.sum(own_score > twin_score) + (0.5 * np.sum(own_score == twin_score) if ties == "half" else 0.0)
    return float(wins) * 100 / len(texts)


def chance_level(n_videos: int) -> dict[str, float]:
    """Expected metrics of a uniformly random ranking of n videos: R@k = 100·k/n, MdR = MnR = (n + 1) / 2."""
    if n_videos < 1:
        raise ValueError(f"n_videos must be >= 1, got {n_videos}")
    recalls = {f"R{k}": 100 * min(k, n_videos) / n_videos for k in metrics.RECALL_AT}
    return {**recalls, "MdR": (n_videos + 1) / 2, "MnR": (n_videos + 1) / 2}
