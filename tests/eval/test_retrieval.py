import json

import numpy as np
import pytest
import torch

from vitr.errors import ConfigError
from vitr.eval import chunked
from vitr.eval.metrics import compute_metrics, multi_caption_t2v, multi_caption_v2t
from vitr.eval.retrieval import chance_level, evaluate, evaluate_similarity, twin_accuracy

CHUNK_SIZES = (1, 7, 100_000)


def _tied_embeddings(rng, n_texts, n_videos, dim=4):
    """Small integer embeddings: exact dot products in any order, and many exact ties."""
    texts = rng.integers(-2, 3, size=(n_texts, dim)).astype(np.float32)
    videos = rng.integers(-2, 3, size=(n_videos, dim)).astype(np.float32)
    return texts, videos


def _dense(texts, videos, caption_video, protocol):
    return evaluate_similarity(texts.astype(np.float64) @ videos.astype(np.float64).T, caption_video, protocol)


@pytest.mark.parametrize("protocol", ["clip4clip", "tie_averaged"])
@pytest.mark.parametrize("chunk_size", CHUNK_SIZES)
def test_chunked_equals_dense_single_caption_with_ties(protocol, chunk_size):
    rng = np.random.default_rng(0)
    texts, videos = _tied_embeddings(rng, 30, 30)
    caption_video = rng.permutation(30)  # one caption per video, in shuffled order
    result = evaluate(texts, videos, caption_video, protocol, chunk_size)
    assert result == _dense(texts, videos, caption_video, protocol)
    assert not result.multi_caption
    assert result.t2v["n"] >= 30  # ties expanded (clip4clip) or one rank per caption


@pytest.mark.parametrize("protocol", ["clip4clip", "tie_averaged"])
@pytest.mark.parametrize("chunk_size", CHUNK_SIZES)
def test_chunked_equals_dense_multi_caption_with_ties_and_captionless_videos(protocol, chunk_size):
    rng = np.random.default_rng(1)
    texts, videos = _tied_embeddings(rng, 57, 20)
    caption_video = rng.integers(0, 17, size=57)  # videos 17..19 have no caption: pure distractors
    result = evaluate(texts, videos, caption_video, protocol, chunk_size)
    assert result == _dense(texts, videos, caption_video, protocol)
    assert result.multi_caption


@pytest.mark.parametrize("chunk_size", CHUNK_SIZES)
def test_chunked_equals_dense_on_continuous_scores(chunk_size):
    rng = np.random.default_rng(2)
    texts, videos = rng.normal(size=(45, 8)), rng.normal(size=(15, 8))
    caption_video = np.repeat(np.arange(15), 3)
    result = evaluate(texts, videos, caption_video, chunk_size=chunk_size)
    sim = texts @ videos.T
    assert result.t2v == pytest.approx(multi_caption_t2v(sim, caption_video))
    assert result.v2t == pytest.approx(multi_caption_v2t(sim, caption_video))


def test_single_caption_square_set_is_compute_metrics_both_ways():
    rng = np.random.default_rng(3)
    texts, videos = _tied_embeddings(rng, 25, 25)
    result = evaluate(texts, videos, np.arange(25), chunk_size=4)
    sim = texts.astype(np.float64) @ videos.T.astype(np.float64)
    assert result.t2v == compute_metrics(sim)
    assert result.v2t == compute_metrics(sim.T)


def test_nan_embeddings_are_dropped_the_same_way_as_dense():
    rng = np.random.default_rng(4)
    texts, videos = _tied_embeddings(rng, 12, 4)
    texts[5] = np.nan
    caption_video = np.repeat(np.arange(4), 3)
    for protocol in ("clip4clip", "tie_averaged"):
        result = evaluate(texts, videos, caption_video, protocol, chunk_size=3)
        assert result == _dense(texts, videos, caption_video, protocol)
        assert result.t2v["n"] == 11


def test_evaluate_never_scores_more_rows_than_chunk_size(monkeypatch):
    seen_rows = []
    original = chunked._count

    def recording_count(scores, target):
        seen_rows.append(scores.shape[0])
        return original(scores, target)

    monkeypatch.setattr(chunked, "_count", recording_count)
    rng = np.random.default_rng(5)
    texts, videos = _tied_embeddings(rng, 40, 10)
    for protocol in ("clip4clip", "tie_averaged"):
        evaluate(texts, videos, np.repeat(np.arange(10), 4), protocol, chunk_size=6)
    assert seen_rows and max(seen_rows) <= 6


def test_evaluate_accepts_torch_tensors():
    rng = np.random.default_rng(6)
    texts, videos = _tied_embeddings(rng, 8, 8)
    result = evaluate(torch.from_numpy(texts).half(), torch.from_numpy(videos), torch.arange(8))
    assert result == evaluate(texts, videos, np.arange(8))


def test_perfect_embeddings_score_perfectly():
    eye = np.eye(6)
    result = evaluate(eye, eye, np.arange(6))
    assert result.t2v["R1"] == result.v2t["R1"] == 100.0
    assert result.t2v["MdR"] == result.v2t["MnR"] == 1.0


def test_unknown_protocol_and_bad_shapes_are_rejected():
    with pytest.raises(ConfigError, match="protocol"):
        evaluate(np.eye(2), np.eye(2), np.arange(2), protocol="dsl")
    with pytest.raises(ValueError, match="caption_video"):
        evaluate(np.eye(2), np.eye(2), np.arange(3))
    with pytest.raises(ValueError, match="index"):
        evaluate(np.eye(2), np.eye(2), np.array([0, 2]))


def test_result_table_names_protocol_and_json_round_trips():
    result = evaluate(np.eye(3), np.eye(3), np.arange(3), protocol="tie_averaged")
    table = result.to_markdown("MSR-VTT 1k-A")
    assert "tie_averaged" in table and "MSR-VTT 1k-A" in table
    assert "| text→video | 100.0 | 100.0 | 100.0 | 1.0 | 1.0 |" in table
    loaded = json.loads(result.to_json())
    assert loaded["protocol"] == "tie_averaged" and loaded["v2t"]["R1"] == 100.0


def test_twin_accuracy_counts_identical_twins_by_the_tie_rule():
    rng = np.random.default_rng(7)
    texts, own = rng.normal(size=(10, 5)), rng.normal(size=(10, 5))
    assert twin_accuracy(texts, own, own.copy(), ties="half") == 50.0
    assert twin_accuracy(texts, own, own.copy(), ties="strict") == 0.0


def test_twin_accuracy_counts_wins_losses_and_ties():
    texts = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    own = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 1.0]])
    twin = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    # win, loss, tie, win
    assert twin_accuracy(texts, own, twin, ties="half") == 62.5
    assert twin_accuracy(texts, own, twin, ties="strict") == 50.0
    with pytest.raises(ConfigError):
        twin_accuracy(texts, own, twin, ties="random")


def test_chance_level_matches_a_random_ranking():
    assert chance_level(1000) == {"R1": 0.1, "R5": 0.5, "R10": 1.0, "MdR": 500.5, "MnR": 500.5}
    assert chance_level(4)["R5"] == 100.0
    rng = np.random.default_rng(8)
    n = 50
    mean_r10 = np.mean(
        [evaluate(rng.normal(size=(n, 16)), rng.normal(size=(n, 16)), np.arange(n)).t2v["R10"] for _ in range(40)]
    )
    assert mean_r10 == pytest.approx(chance_level(n)["R10"], abs=3.0)
