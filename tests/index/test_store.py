"""FaissStore's approximate kinds: HNSW (fp16 vectors) finds what exact search finds, round-trips through a file,
and an HNSW index saved in the earlier fp32 layout still loads and searches."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from vitr.index.store import FaissStore

K = 10


@pytest.fixture(scope="module")
def collection() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """5,000 clustered unit vectors, 50 queries from the same clusters, and their ids."""
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((50, 64)).astype(np.float32)

    def draw(n: int) -> np.ndarray:
        x = centres[rng.integers(0, len(centres), n)] + rng.standard_normal((n, 64)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    return np.arange(100, 5100, dtype=np.int64), draw(5000), draw(50)


def recall(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(e)) / K for f, e in zip(found, exact, strict=True)]))


def test_hnsw_finds_the_exact_neighbours_and_keeps_vectors_in_fp16(collection) -> None:
    ids, vectors, queries = collection
    exact = FaissStore.build(ids, vectors, kind="flat").search(queries, K)[1]
    store = FaissStore.build(ids, vectors, kind="hnsw")
    scores, found = store.search(queries, K)
    assert recall(found, exact) >= 0.95
    assert set(found.ravel()) <= set(ids.tolist())
    assert np.all(np.diff(scores, axis=1) <= 1e-6)  # best first
    base = faiss.downcast_index(store.index.index)
    assert isinstance(base, faiss.IndexHNSWSQ)
    assert faiss.downcast_index(base.storage).sq.qtype == faiss.ScalarQuantizer.QT_fp16


def test_hnsw_round_trips_through_a_file(collection, tmp_path) -> None:
    ids, vectors, queries = collection
    store = FaissStore.build(ids, vectors, kind="hnsw")
    store.save(tmp_path / "v.faiss")
    again = FaissStore.load(tmp_path / "v.faiss")
    np.testing.assert_array_equal(again.search(queries, K)[1], store.search(queries, K)[1])


def test_an_hnsw_index_saved_in_the_earlier_fp32_layout_still_searches(collection, tmp_path) -> None:
    ids, vectors, queries = collection
    old = faiss.IndexHNSWFlat(vectors.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    old = faiss.IndexIDMap2(old)
    old.add_with_ids(vectors, ids)
    faiss.write_index(old, str(tmp_path / "old.faiss"))
    exact = FaissStore.build(ids, vectors, kind="flat").search(queries, K)[1]
    assert recall(FaissStore.load(tmp_path / "old.faiss").search(queries, K)[1], exact) >= 0.9
