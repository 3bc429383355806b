"""Sharper moment boundaries: a second stage that re-scores the neighbourhood of a hit's coarse moment frame by frame
and tightens (or widens) its start and end to where the query matches.

Why re-decode rather than reuse the index: the feature cache holds `num_frames` frames per segment (12 over a shot
of any length: a frame every second or more), keyed by a hash of the whole file, so a search would have to hash the
video to find them and would still see boundaries no finer than that spacing. Decoding the moment and `pad` seconds
either side at `fps` frames a second and encoding them costs at most `max_frames` image encodings per hit, and is
done only for the hits a user is shown.

The rule (`tighten`): every sampled frame is scored as a sub-window of `context` frames centred on it (embedded by
the index's own temporal head, so any head works), against the query vector. The peak is the best frame inside the
coarse moment, so refinement never jumps to another part of the video. The refined moment is the contiguous run of
frames around the peak scoring at least `peak - margin * (peak - floor)`, floor being the lowest score of the
neighbourhood: the frames that match nearly as well as the best one, relative to how much the scores vary there.
Its start and end lie halfway between the run's outer frames and the first frames outside it. In an index cut by
shots (`--segments shots`) a hit's moment is a shot, and its cuts bound the refined moment: refinement may find a
cut the detector missed inside the shot, but never grows past one it found, where the picture changed (in the lab,
growing into a neighbouring clip that matches the query nearly as well was most of what refinement got wrong there).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from vitr.errors import ConfigError
from vitr.index.video_index import Hit, VideoIndex
from vitr.inference.extract import encode_pixels, frame_spec_for
from vitr.video.loader import DecodeFailure, decode_video


@dataclass(frozen=True)
class Refinement:
    """How to sharpen moments. fps: frames sampled per second around a moment (boundaries land within 1/(2 fps));
    pad: seconds looked at either side of the coarse moment (None: half the moment's length, at least 1 s, so a
    moment can grow to twice its length); max_frames: frames encoded per hit at most (a long neighbourhood is
    sampled more sparsely); context: frames per scored sub-window (odd); margin: how far below the peak, as a share
    of the neighbourhood's score range, a frame may score and still belong to the moment."""

    fps: float = 4.0
    pad: float | None = None
    max_frames: int = 32
    context: int = 3
    margin: float = 0.5

    def __post_init__(self) -> None:
        if not self.fps > 0:
            raise ConfigError(f"refinement fps must be positive, got {self.fps}")
        if self.pad is not None and not self.pad >= 0:
            raise ConfigError(f"refinement pad must be >= 0 seconds, got {self.pad}")
        if self.max_frames < 2:
            raise ConfigError(f"refinement max_frames must be at least 2, got {self.max_frames}")
        if self.context < 1 or self.context % 2 == 0:
            raise ConfigError(f"refinement context must be an odd number of frames, got {self.context}")
        if not 0 < self.margin < 1:
            raise ConfigError(f"refinement margin must lie strictly between 0 and 1, got {self.margin}")

    def neighbourhood(self, start: float, end: float, duration: float | None) -> tuple[float, float]:
        """The seconds [from, to] decoded around the moment [start, end]."""
        pad = max((end - start) / 2, 1.0) if self.pad is None else self.pad
        return max(0.0, start - pad), end + pad if duration is None else min(duration, end + pad)


def refine_hits(index: VideoIndex, hits: list[Hit], query: np.ndarray, refinement: Refinement) -> list[Hit]:
    """`hits` with their visual moments sharpened (query: the (E,) vector they were found with). A hit whose moment
    comes from a text span, or that has no moment (an index of whole videos), is returned as it was; so is one whose
    video cannot be decoded now (it was when indexed: the coarse moment still stands)."""
    out = []
    bounded = index.windowing is not None and index.windowing.segments == "shots"
    for hit in hits:
        visual = not hit.evidence or hit.evidence[0].source == "visual"
        if hit.start is None or hit.end is None or not visual:
            out.append(hit)
            continue
        record = index.meta.video(hit.video_id)
        moment = refine_moment(index, hit.path, hit.start, hit.end, query, refinement,
                               record.duration if record else None)
        if moment is None:
            out.append(hit)
            continue
        start, end = (max(moment[0], hit.start), min(moment[1], hit.end)) if bounded else moment
        evidence = tuple(
            replace(e, start=start, end=end) if e.source == "visual" and (e.start, e.end) == (hit.start, hit.end) else e
            for e in hit.evidence
        )
        out.append(replace(hit, start=start, end=end, evidence=evidence))
    return out


def refine_moment(
    index: VideoIndex,
    path: str | Path,
    start: float,
    end: float,
    query: np.ndarray,
    refinement: Refinement,
    duration: float | None = None,
) -> tuple[float, float] | None:
    """The sharpened [start, end] of the moment [start, end] of `path`, or None when it cannot be decoded."""
    first, last = refinement.neighbourhood(start, end, duration)
    times, scores = frame_scores(index, path, first, last, query, refinement)
    if len(times) == 0:
        return None
    return tighten(times, scores, start, end, first, last, refinement.margin)


def frame_scores(
    index: VideoIndex, path: str | Path, first: float, last: float, query: np.ndarray, refinement: Refinement
) -> tuple[np.ndarray, np.ndarray]:
    """(times (N,), scores (N,)) of the frames sampled from [first, last]: each frame's sub-window of `context`
    frames, embedded by the index's head, dotted with `query`. Empty arrays when the file cannot be decoded."""
    model = index.model
    spec = replace(frame_spec_for(model.backbone, refinement.max_frames), fps=refinement.fps)
    decoded = decode_video("refine", path, spec, first, last)
    if isinstance(decoded, DecodeFailure):
        return np.empty(0), np.empty(0)
    n = int(decoded.mask.sum())
    frames = encode_pixels(model.backbone, decoded.pixels[None, :n], index.autocast_precision)[0]  # (N, D)
    half = refinement.context // 2
    neighbours = torch.arange(n)[:, None] + torch.arange(-half, half + 1)[None]  # (N, context) frame indices
    mask = ((neighbours >= 0) & (neighbours < n)).float()  # (N, context)
    windows = frames[neighbours.clamp(0, n - 1)]  # (N, context, D)
    vectors = index.embed_frames(windows, mask)  # (N, E)
    return decoded.timestamps[:n], vectors @ query.astype(np.float32)


def tighten(
    times: np.ndarray,
    scores: np.ndarray,
    start: float,
    end: float,
    first: float,
    last: float,
    margin: float,
) -> tuple[float, float]:
    """The run of frames around the best-scoring frame of [start, end] that score within `margin` of the peak
    (relative to the range of `scores`), as [start, end] seconds; `first`/`last` bound the sampled neighbourhood."""
    inside = np.flatnonzero((times >= start - 1e-6) & (times <= end + 1e-6))
    if len(inside) == 0:  # a moment shorter than the sampling interval: the frame nearest its middle
        inside = np.array([int(np.argmin(np.abs(times - (start + end) / 2)))])
    peak = int(inside[np.argmax(scores[inside])])
    threshold = scores[peak] - margin * (scores[peak] - scores.min())
    low = high = peak
    while low > 0 and scores[low - 1] >= threshold:
        low -= 1
    while high < len(scores) - 1 and scores[high + 1] >= threshold:
        high += 1
    new_start = first if low == 0 else (times[low - 1] + times[low]) / 2
    new_end = last if high == len(scores) - 1 else (times[high] + times[high + 1]) / 2
    return round(float(new_start), 3), round(float(new_end), 3)
