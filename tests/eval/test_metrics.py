import numpy as np
import pytest

from vitr.eval.metrics import (
    caption_group_max,
    compute_metrics,
    expanded_ranks,
    multi_caption_t2v,
    multi_caption_v2t,
    summarize_ranks,
    tie_averaged_metrics,
    tie_averaged_v2t,
)

NAN, INF = float("nan"), float("inf")

# GT (diagonal) tied for first with one other, GT first, GT third (clip2video.md §9).
TIED = np.array(
    [
        [0.9, 0.9, 0.1],
        [0.2, 0.8, 0.3],
        [0.7, 0.6, 0.5],
    ]
)


def test_compute_metrics_expands_ties_like_clip4clip():
    assert expanded_ranks(TIED).tolist() == [0, 1, 0, 2]
    m = compute_metrics(TIED)
    assert m == {"R1": 50.0, "R5": 100.0, "R10": 100.0, "MdR": 1.5, "MnR": 1.75, "n": 4}


def test_compute_metrics_drops_rows_with_nan_or_padding_ground_truth():
    sim = TIED.copy()
    sim[1, 1] = NAN  # this row emits nothing
    m = compute_metrics(sim)
    assert m["n"] == 3
    assert m["R1"] == pytest.approx(100 / 3)
    sim[2, 2] = -INF
    assert compute_metrics(sim)["n"] == 2


def test_compute_metrics_nan_candidates_never_outrank_the_ground_truth():
    sim = np.array([[0.5, NAN], [0.1, 0.2]])
    assert expanded_ranks(sim).tolist() == [0, 0]


def test_compute_metrics_uses_explicit_ground_truth_columns():
    sim = np.array([[0.1, 0.9, 0.3], [0.8, 0.2, 0.4]])  # 2 queries, 3 candidates
    m = compute_metrics(sim, gt=np.array([1, 2]))
    assert expanded_ranks(sim, np.array([1, 2])).tolist() == [0, 1]
    assert m["R1"] == 50.0 and m["MdR"] == 1.5
    assert compute_metrics(sim, gt=np.array([1, -1]))["n"] == 1


def test_compute_metrics_rejects_non_square_without_ground_truth():
    with pytest.raises(ValueError, match="square"):
        compute_metrics(np.zeros((2, 3)))


def test_tie_averaged_ranks_never_count_a_tie_as_rank_one():
    m = tie_averaged_metrics(TIED)  # ranks [0.5, 0, 2]
    assert m["R1"] == pytest.approx(100 / 3)
    assert m["R5"] == 100.0
    assert m["MdR"] == 1.5
    assert m["MnR"] == pytest.approx(2.5 / 3 + 1)
    assert m["n"] == 3


def test_tie_averaged_three_way_tie_is_the_middle_position():
    sim = np.array([[1.0, 1.0, 1.0, 2.0]])  # GT column 0 tied with 1 and 2, one score above: positions 1..3
    assert tie_averaged_metrics(sim, gt=np.array([0]))["MnR"] == 3.0


def test_multi_caption_t2v_counts_strictly_greater_and_takes_lower_median():
    caption_video = np.array([0, 0, 1, 1])
    sim = np.array(
        [
            [0.5, 0.5, 0.0],  # tie with video 1: resolved in the caption's favour -> rank 0
            [0.9, 0.1, 0.0],  # rank 0
            [0.3, 0.2, 0.1],  # rank 1
            [0.4, 0.1, 0.9],  # rank 3 - 1 = 2 videos above -> rank 2
        ]
    )
    m = multi_caption_t2v(sim, caption_video)
    # ranks [0, 0, 1, 2]: numpy median would be 0.5 -> 1.5; torch.median takes the lower middle -> 1
    assert m == {"R1": 50.0, "R5": 100.0, "R10": 100.0, "MdR": 1.0, "MnR": 1.75, "n": 4}


def test_multi_caption_t2v_drops_padded_captions():
    sim = np.array([[0.9, 0.1], [-INF, 0.3], [0.2, 0.8]])
    m = multi_caption_t2v(sim, np.array([0, 0, 1]))
    assert m["n"] == 2 and m["R1"] == 100.0


def test_caption_group_max_ranks_videos_against_caption_groups():
    caption_video = np.array([0, 0, 1])
    sim = np.array(
        [
            [0.1, 0.9],
            [0.8, 0.8],
            [0.3, 0.5],
        ]
    )
    grouped = caption_group_max(sim, caption_video)
    np.testing.assert_array_equal(grouped, [[0.8, 0.3], [0.9, 0.5]])
    # video 1: among all captions its own (0.5) is third, among caption groups second
    m = multi_caption_v2t(sim, caption_video)
    assert m == {"R1": 50.0, "R5": 100.0, "R10": 100.0, "MdR": 1.5, "MnR": 1.5, "n": 2}


def test_caption_group_max_ignores_nan_captions_and_leaves_captionless_videos_unranked():
    sim = np.array([[NAN, 0.2, 0.0], [0.7, 0.1, 0.0], [0.1, 0.6, 0.0]])
    caption_video = np.array([0, 0, 1])  # video 2 has no caption
    grouped = caption_group_max(sim, caption_video)
    assert grouped[0, 0] == 0.7
    assert np.all(grouped[:, 2] == -INF)
    assert multi_caption_v2t(sim, caption_video)["n"] == 2


def test_tie_averaged_v2t_takes_the_best_caption_rank():
    caption_video = np.array([0, 0, 1])
    sim = np.array(
        [
            [0.2, 0.9],
            [0.6, 0.1],
            [0.6, 0.5],
        ]
    )
    # video 0 over captions: [0.2, 0.6, 0.6]; its captions rank 2 and (0 + 1) / 2 = 0.5 -> 0.5
    # video 1 over captions: [0.9, 0.1, 0.5]; its caption ranks 1
    m = tie_averaged_v2t(sim, caption_video)
    assert m["R1"] == 0.0
    assert m["MnR"] == pytest.approx((0.5 + 1) / 2 + 1)
    assert m["n"] == 2


def test_summarize_ranks_of_nothing_is_nan_with_zero_count():
    m = summarize_ranks(np.array([], dtype=np.int64))
    assert m["n"] == 0 and np.isnan(m["R1"]) and np.isnan(m["MdR"])


def test_caption_video_must_index_videos():
    with pytest.raises(ValueError, match="index"):
        multi_caption_t2v(np.zeros((2, 2)), np.array([0, 2]))
