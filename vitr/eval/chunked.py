"""Rank statistics computed from embeddings one block of query rows at a time.

Every rank the metrics need is determined by two counts per query: how many candidates score strictly above
the ground truth and how many score exactly equal to it. So a 100k x 100k evaluation holds only a
(chunk_size, N) block of scores at a time, and the results equal the dense functions in `metrics` exactly.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from vitr.eval.metrics import RECALL_AT


def _row_blocks(n: int, chunk_size: int) -> Iterator[slice]:
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    for start in range(0, n, chunk_size):
        yield slice(start, min(start + chunk_size, n))


def _count(scores: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """scores (B, N), target (B,) -> #(scores > target), #(scores == target) per row."""
    target = target[:, None]
    return np.sum(scores > target, axis=1), np.sum(scores == target, axis=1)


def ground_truth_counts(
    queries: np.ndarray, candidates: np.ndarray, gt: np.ndarray, chunk_size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts of candidates scoring above / equal to each query's GT candidate.

    queries (Nq, E), candidates (Nc, E), gt (Nq,) with -1 for "no ground truth" ->
    greater (Nq,), equal (Nq,), valid (Nq,) bool: False where there is no GT or its score is not finite.
    """
    greater = np.zeros(len(queries), dtype=np.int64)
    equal = np.zeros(len(queries), dtype=np.int64)
    valid = np.zeros(len(queries), dtype=bool)
    for rows in _row_blocks(len(queries), chunk_size):
        scores = queries[rows] @ candidates.T  # (B, Nc)
        block_gt = gt[rows]
        target = np.full(len(block_gt), np.nan, dtype=scores.dtype)
        has_gt = block_gt >= 0
        target[has_gt] = scores[np.flatnonzero(has_gt), block_gt[has_gt]]
        greater[rows], equal[rows] = _count(scores, target)
        valid[rows] = np.isfinite(target)
    return greater, equal, valid


class CaptionGroups:
    """Captions sorted by video, so the captions of a run of videos form one contiguous slice."""

    def __init__(self, caption_video: np.ndarray, num_videos: int) -> None:
        self.order = np.argsort(caption_video, kind="stable")  # (Nt,) caption indices grouped by video
        sorted_video = caption_video[self.order]
        self.present, self.starts = np.unique(sorted_video, return_index=True)  # videos that have captions
        self.bounds = np.searchsorted(sorted_video, np.arange(num_videos + 1))  # captions of v: bounds[v:v+2]
        self.num_videos = num_videos

    def group_max(self, scores: np.ndarray) -> np.ndarray:
        """scores (B, Nt) of B videos against all captions -> (B, Nv) best caption score per caption group."""
        scores = np.where(np.isnan(scores), -np.inf, scores)
        grouped = np.full((len(scores), self.num_videos), -np.inf, dtype=scores.dtype)
        if len(self.present):
            grouped[:, self.present] = np.maximum.reduceat(scores[:, self.order], self.starts, axis=1)
        return grouped


def group_max_counts(
    videos: np.ndarray, texts: np.ndarray, groups: CaptionGroups, chunk_size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts for the official multi-caption v2t: video v against caption groups g scored by their best caption.

    Returns greater, equal, valid over the (Nv, Nv) matrix S' with the GT on the diagonal, built a block of
    video rows at a time.
    """
    num_videos = len(videos)
    greater = np.zeros(num_videos, dtype=np.int64)
    equal = np.zeros(num_videos, dtype=np.int64)
    valid = np.zeros(num_videos, dtype=bool)
    for rows in _row_blocks(num_videos, chunk_size):
        grouped = groups.group_max(videos[rows] @ texts.T)  # (B, Nv)
        target = grouped[np.arange(len(grouped)), np.arange(rows.start, rows.stop)]
        greater[rows], equal[rows] = _count(grouped, target)
        valid[rows] = np.isfinite(target)
    return greater, equal, valid


def best_caption_averaged_ranks(
    videos: np.ndarray, texts: np.ndarray, caption_video: np.ndarray, groups: CaptionGroups, chunk_size: int
) -> np.ndarray:
    """TeachText v2t: per video, the best tie-averaged rank of its captions among all captions.

    Returns (Nv,) float ranks, +inf for videos without a caption with a finite score.
    """
    best = np.full(len(videos), np.inf)
    for rows in _row_blocks(len(videos), chunk_size):
        scores = videos[rows] @ texts.T  # (B, Nt)
        own = groups.order[groups.bounds[rows.start] : groups.bounds[rows.stop]]  # captions of these videos
        for pairs in _row_blocks(len(own), chunk_size):
            captions = own[pairs]
            local = caption_video[captions] - rows.start
            rivals = scores[local]  # (P, Nt): each pair's video scored against all captions
            target = rivals[np.arange(len(captions)), captions]
            above, tied = _count(rivals, target)
            keep = np.isfinite(target)
            np.minimum.at(best, caption_video[captions][keep], above[keep] + (tied[keep] - 1) / 2)
    return best


def expanded_summary(greater: np.ndarray, equal: np.ndarray, num_candidates: int) -> dict[str, float]:
    """`summarize_ranks` of CLIP4Clip's tie-expanded ranks, without listing them.

    A row with g greater and e equal scores emits the ranks g, g+1, ..., g+e-1; a histogram over rank values
    (size Nc) holds them all, however many ties there are.
    """
    histogram = np.zeros(num_candidates + 1, dtype=np.int64)
    np.add.at(histogram, greater, 1)
    np.add.at(histogram, greater + equal, -1)
    counts = np.cumsum(histogram)[:num_candidates]  # counts[r] = number of emitted ranks equal to r
    n = int(counts.sum())
    if n == 0:
        return {**{f"R{k}": float("nan") for k in RECALL_AT}, "MdR": float("nan"), "MnR": float("nan"), "n": 0}
    metrics: dict[str, float] = {f"R{k}": float(counts[:k].sum()) * 100 / n for k in RECALL_AT}
    cumulative = np.cumsum(counts)

    def rank_at(position: int) -> int:
        return int(np.searchsorted(cumulative, position, side="right"))

    middle = (rank_at((n - 1) // 2) + rank_at(n // 2)) / 2
    metrics["MdR"] = float(middle) + 1
    metrics["MnR"] = int(np.dot(counts, np.arange(num_candidates, dtype=np.int64))) / n + 1
    metrics["n"] = n
    return metrics
