"""Retrieval metrics as pure numpy functions of a score matrix (rows = queries, columns = candidates).

Two protocols, named so a results table can say which one it reports:
- "clip4clip": the official CLIP4Clip / CLIP2Video `metrics.py` semantics (clip2video.md §9), including its
  exact-equality tie expansion for single-caption sets and the caption-group max for multi-caption v2t.
- "tie_averaged": TeachText / collaborative-experts ranks, where tied positions are averaged
  (teachtext.md §3.1); a tie can then never count as a hit at rank 1.

Ranks are 0-based inside this module; R@k is the percentage of ranks below k; MdR and MnR add 1.
A query whose ground-truth score is not finite (NaN, or the -inf of padding) has no rank and is left out,
as the official code drops it.
"""

from __future__ import annotations

import numpy as np

RECALL_AT = (1, 5, 10)


def _as_matrix(sim: np.ndarray) -> np.ndarray:
    sim = np.asarray(sim)
    if sim.ndim != 2:
        raise ValueError(f"a score matrix must be 2-D (queries, candidates), got shape {sim.shape}")
    return sim.astype(np.result_type(sim.dtype, np.float32), copy=False)


def _ground_truth(sim: np.ndarray, gt: np.ndarray | None) -> np.ndarray:
    """(Nq,) ground-truth column per query row; -1 = no ground truth. Default: the diagonal."""
    if gt is None:
        if sim.shape[0] != sim.shape[1]:
            raise ValueError(f"ground truth on the diagonal needs a square matrix, got {sim.shape}")
        return np.arange(sim.shape[0])
    gt = np.asarray(gt, dtype=np.int64)
    if gt.shape != (sim.shape[0],) or gt.max(initial=-1) >= sim.shape[1] or gt.min(initial=0) < -1:
        raise ValueError(f"gt must be (Nq,) = ({sim.shape[0]},) column indices or -1, got {gt.shape}")
    return gt


def _ground_truth_scores(sim: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(Nq,) the GT score of each row, NaN where a row has no ground truth."""
    scores = np.full(sim.shape[0], np.nan, dtype=sim.dtype)
    has_gt = gt >= 0
    scores[has_gt] = sim[np.flatnonzero(has_gt), gt[has_gt]]
    return scores


def summarize_ranks(ranks: np.ndarray, median: str = "numpy", r1_exact: bool = False) -> dict[str, float]:
    """0-based ranks -> {R1, R5, R10, MdR, MnR, n}.

    median="numpy" averages the middle pair (CLIP4Clip `compute_metrics`); median="lower" takes the lower
    middle value, as `torch.median` does in the official multi-sentence t2v. r1_exact counts R@1 as rank == 0
    (TeachText, where an averaged tie at the top has rank 0.5).
    """
    ranks = np.asarray(ranks)
    n = int(ranks.size)
    if n == 0:
        return {**{f"R{k}": float("nan") for k in RECALL_AT}, "MdR": float("nan"), "MnR": float("nan"), "n": 0}
    metrics: dict[str, float] = {}
    for k in RECALL_AT:
        hits = np.sum(ranks == 0) if (k == 1 and r1_exact) else np.sum(ranks < k)
        metrics[f"R{k}"] = float(hits) * 100 / n
    if median == "numpy":
        metrics["MdR"] = float(np.median(ranks)) + 1
    elif median == "lower":
        metrics["MdR"] = float(np.sort(ranks)[(n - 1) // 2]) + 1
    else:
        raise ValueError(f"median must be 'numpy' or 'lower', got {median!r}")
    metrics["MnR"] = float(np.mean(ranks)) + 1
    metrics["n"] = n
    return metrics


def expanded_ranks(sim: np.ndarray, gt: np.ndarray | None = None) -> np.ndarray:
    """CLIP4Clip's tie expansion: per row, the sorted positions of *every* entry equal to the GT score.

    A faithful port of `compute_metrics`: sort each row descending, subtract the GT score and keep the positions
    of exact zeros. A row whose GT is tied with m others contributes m + 1 ranks.
    """
    sim = _as_matrix(sim)
    gt = _ground_truth(sim, gt)
    sorted_neg = np.sort(-sim, axis=1)  # NaNs sort last, so they never precede the GT
    with np.errstate(invalid="ignore"):  # inf - inf for a non-finite GT: NaN, i.e. the row emits nothing
        diff = sorted_neg - (-_ground_truth_scores(sim, gt))[:, None]
    return np.nonzero(diff == 0)[1]


def compute_metrics(sim: np.ndarray, gt: np.ndarray | None = None) -> dict[str, float]:
    """Official single-caption metrics (tie-expanded) of `sim` (Nq, Nc); GT on the diagonal unless `gt` given.

    Example: GT tied for first with one other, GT first, GT third -> ranks [0, 1, 0, 2], R@1 50, MdR 1.5.
    """
    return summarize_ranks(expanded_ranks(sim, gt), median="numpy")


def tie_averaged_ranks(sim: np.ndarray, gt: np.ndarray | None = None) -> np.ndarray:
    """Per query, #(scores > GT) + (#(scores == GT) - 1) / 2: the mean of the positions the tied group spans."""
    sim = _as_matrix(sim)
    gt = _ground_truth(sim, gt)
    target = _ground_truth_scores(sim, gt)
    keep = np.isfinite(target)
    rows, target = sim[keep], target[keep, None]
    greater = np.sum(rows > target, axis=1)
    equal = np.sum(rows == target, axis=1)
    return greater + (equal - 1) / 2


def tie_averaged_metrics(sim: np.ndarray, gt: np.ndarray | None = None) -> dict[str, float]:
    """TeachText-style metrics of `sim` (Nq, Nc) with tied ranks averaged; R@1 counts rank == 0 only."""
    return summarize_ranks(tie_averaged_ranks(sim, gt), median="numpy", r1_exact=True)


def tie_averaged_v2t(sim: np.ndarray, caption_video: np.ndarray) -> dict[str, float]:
    """TeachText v2t: a video's rank is the best tie-averaged rank of its captions among all captions.

    sim: (Nt, Nv) text x video scores; caption_video: (Nt,) video index of each caption. Videos without a
    caption are left out.
    """
    sim = _as_matrix(sim)
    caption_video = _caption_video(sim, caption_video)
    target = sim[np.arange(sim.shape[0]), caption_video]  # (Nt,) each caption's score with its own video
    keep = np.isfinite(target)
    rivals = sim[:, caption_video[keep]].T  # (kept captions, Nt): all captions scored against that video
    target = target[keep, None]
    ranks = np.sum(rivals > target, axis=1) + (np.sum(rivals == target, axis=1) - 1) / 2
    best = np.full(sim.shape[1], np.inf)
    np.minimum.at(best, caption_video[keep], ranks)
    return summarize_ranks(best[np.isfinite(best)], median="numpy", r1_exact=True)


def _caption_video(sim: np.ndarray, caption_video: np.ndarray) -> np.ndarray:
    caption_video = np.asarray(caption_video, dtype=np.int64)
    if caption_video.shape != (sim.shape[0],):
        raise ValueError(f"caption_video must have shape ({sim.shape[0]},), got {caption_video.shape}")
    if caption_video.size and (caption_video.min() < 0 or caption_video.max() >= sim.shape[1]):
        raise ValueError(f"caption_video entries must index the {sim.shape[1]} videos")
    return caption_video


def multi_caption_t2v(sim: np.ndarray, caption_video: np.ndarray) -> dict[str, float]:
    """Official multi-sentence t2v: each caption's rank among all videos.

    The official double argsort breaks ties arbitrarily; vitr ranks a caption by the number of videos scoring
    *strictly* higher than its own (ties resolved in its favour), which is deterministic. NaN scores of other
    videos never outrank it. MdR is the lower median (`torch.median`), MnR the mean, both + 1.
    """
    sim = _as_matrix(sim)
    caption_video = _caption_video(sim, caption_video)
    target = _ground_truth_scores(sim, caption_video)
    keep = np.isfinite(target)
    ranks = np.sum(sim[keep] > target[keep, None], axis=1)
    return summarize_ranks(ranks, median="lower")


def caption_group_max(sim: np.ndarray, caption_video: np.ndarray) -> np.ndarray:
    """S'[v, g] = max over captions c of video g of sim[c, v]: (Nt, Nv) -> (Nv, Nv).

    NaN scores are replaced by -inf first, as the official `tensor_video_to_text_sim` does; a video without
    captions gets a column of -inf, so it never matches and, as a query, has no rank.
    """
    sim = _as_matrix(sim)
    caption_video = _caption_video(sim, caption_video)
    by_video = np.where(np.isnan(sim), -np.inf, sim).T  # (Nv, Nt)
    grouped = np.full((sim.shape[1], sim.shape[1]), -np.inf, dtype=sim.dtype)
    np.maximum.at(grouped, (slice(None), caption_video), by_video)
    return grouped


def multi_caption_v2t(sim: np.ndarray, caption_video: np.ndarray) -> dict[str, float]:
    """Official multi-sentence v2t: `compute_metrics` of the caption-group max matrix S' (clip2video.md §9)."""
    return compute_metrics(caption_group_max(sim, caption_video))
