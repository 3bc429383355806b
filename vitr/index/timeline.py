"""Where in a video a query matched: the score of each of its segments for the query, in time order.

A hit names the video's best segment; the timeline shows the rest of them, so a user sees whether the query
matched once, several times or all along. The scores are the same dot products the search ranks by (unit
segment vectors from the index's metadata store against the query vector), so the timeline's best point is the
hit's own score. Long videos have thousands of windows: consecutive segments are pooled (their span, their best
score) into at most `max_points` points, which bounds what a search response carries per hit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vitr.index.video_index import VideoIndex

MAX_POINTS = 64


@dataclass(frozen=True)
class TimelinePoint:
    start: float
    end: float
    score: float


def timeline(index: VideoIndex, video_id: int, query: np.ndarray, max_points: int = MAX_POINTS) -> list[TimelinePoint]:
    """The scores of `video_id`'s timed segments for `query` (E,), by start time, pooled to at most `max_points`.

    Empty for a video indexed whole (its one segment has no time) or gone from the index.
    """
    if max_points < 1:
        raise ValueError(f"max_points must be at least 1, got {max_points}")
    starts, ends, vectors = index.meta.timed_vectors(video_id)  # (S,), (S,), (S, E)
    if not len(starts):
        return []
    # einsum, not `@`: a matrix-vector product this small gains nothing from BLAS threads, which a busy server's
    # other requests make spin (measured: 3x slower on 2 loaded cores)
    scores = np.einsum("se,e->s", vectors, np.asarray(query, dtype=np.float32))  # (S,)
    first = (np.arange(min(max_points, len(starts))) * len(starts)) // min(max_points, len(starts))  # of each group
    pooled_ends = np.maximum.reduceat(ends, first)
    pooled_scores = np.maximum.reduceat(scores, first)
    return [
        TimelinePoint(float(s), float(e), float(v))
        for s, e, v in zip(starts[first], pooled_ends, pooled_scores, strict=True)
    ]
