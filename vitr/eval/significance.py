"""Is a gain in R@1 larger than the test set's own noise? Per-query hits and a paired bootstrap over queries.

Seeds measure how much training varies; they say nothing about how much a 1,000-query test set varies. Two models
scored on the same queries are compared pairwise: resample the queries with replacement, recompute both R@1s on
each resample, and read the percentile interval of their difference (scipy's `bootstrap`, `paired=True`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import bootstrap

from vitr.eval import chunked
from vitr.eval.retrieval import _caption_of_video, _check_inputs


@dataclass(frozen=True)
class Delta:
    """R@1 of B minus R@1 of A, in points, with a confidence interval over resampled queries."""

    delta: float
    low: float
    high: float
    confidence: float

    @property
    def clear(self) -> bool:
        """The interval excludes zero: the gain (or loss) is larger than the test set's noise."""
        return self.low > 0 or self.high < 0

    def __str__(self) -> str:
        return f"{self.delta:+.1f} [{self.low:+.1f}, {self.high:+.1f}]"


def top1_hits(text_emb: Any, video_emb: Any, caption_video: Any, chunk_size: int = 4096) -> dict[str, np.ndarray]:
    """Per query, the chance that its ground truth is ranked first, both directions (single caption per video).

    A ground truth tied with m rivals for first counts 1 / (m + 1), as if ties were broken at random; the
    benchmark tables expand ties instead (CLIP4Clip), which differs only where scores tie exactly.
    """
    texts, videos, caption_video = _check_inputs(text_emb, video_emb, caption_video)
    greater, equal, valid = chunked.ground_truth_counts(texts, videos, caption_video, chunk_size)
    t2v = np.where(greater == 0, 1.0 / np.maximum(equal, 1), 0.0)[valid]
    caption_of = _caption_of_video(caption_video, len(videos))
    greater, equal, valid = chunked.ground_truth_counts(videos, texts, caption_of, chunk_size)
    v2t = np.where(greater == 0, 1.0 / np.maximum(equal, 1), 0.0)[valid]
    return {"t2v": t2v, "v2t": v2t}


def paired_delta(
    hits_a: np.ndarray, hits_b: np.ndarray, confidence: float = 0.95, resamples: int = 10000, seed: int = 0
) -> Delta:
    """R@1(B) - R@1(A) over the same queries, with a paired percentile bootstrap interval."""
    hits_a, hits_b = np.asarray(hits_a, dtype=np.float64), np.asarray(hits_b, dtype=np.float64)
    if hits_a.shape != hits_b.shape or hits_a.ndim != 1 or len(hits_a) < 2:
        raise ValueError(f"paired hits must be 1-d arrays of one length >= 2, got {hits_a.shape} and {hits_b.shape}")
    result = bootstrap(
        (hits_a, hits_b),
        lambda a, b, axis: 100 * (np.mean(b, axis=axis) - np.mean(a, axis=axis)),
        paired=True,
        vectorized=True,
        confidence_level=confidence,
        n_resamples=resamples,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    low, high = result.confidence_interval
    return Delta(float(100 * (hits_b.mean() - hits_a.mean())), float(low), float(high), confidence)
