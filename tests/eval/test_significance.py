import numpy as np
import pytest

from vitr.eval.retrieval import evaluate
from vitr.eval.significance import paired_delta, top1_hits


def _embeddings(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    videos = rng.normal(size=(n, 16))
    texts = videos + noise * rng.normal(size=(n, 16))
    return texts, videos


def test_top1_hits_average_to_the_r1_of_the_tables():
    texts, videos = _embeddings(np.random.default_rng(0), 200, 1.5)
    hits = top1_hits(texts, videos, np.arange(200))
    result = evaluate(texts, videos, np.arange(200))
    assert 100 * hits["t2v"].mean() == pytest.approx(result.t2v["R1"])
    assert 100 * hits["v2t"].mean() == pytest.approx(result.v2t["R1"])


def test_a_tie_for_first_counts_as_a_coin_flip():
    videos = np.eye(3)
    texts = np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])  # caption 0 ties videos 0 and 1
    assert top1_hits(texts, videos, np.arange(3))["t2v"].tolist() == [0.5, 1.0, 1.0]


def test_a_real_gain_is_clear_and_a_relabelled_copy_is_not():
    rng = np.random.default_rng(1)
    texts, videos = _embeddings(rng, 1000, 1.2)
    better = top1_hits(texts, videos, np.arange(1000))["t2v"]
    worse = top1_hits(texts + 1.5 * rng.normal(size=texts.shape), videos, np.arange(1000))["t2v"]
    gain = paired_delta(worse, better)
    assert gain.delta == pytest.approx(100 * (better.mean() - worse.mean()))
    assert gain.low <= gain.delta <= gain.high
    assert gain.clear and gain.low > 0
    same = paired_delta(better, rng.permutation(better))  # same R@1, queries shuffled: no real difference
    assert same.delta == pytest.approx(0.0)
    assert not same.clear
    assert str(gain).startswith("+")


def test_paired_delta_refuses_unpaired_hits():
    with pytest.raises(ValueError, match="one length"):
        paired_delta(np.ones(10), np.ones(9))
