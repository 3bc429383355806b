"""The Milvus store (embedded milvus-lite) answers like the exact FAISS store and follows every commit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.index.videos import TINY_MODEL, write_shape_video
from vitr.index.indexer import update_index
from vitr.index.milvus_store import MilvusStore
from vitr.index.store import FaissStore, StoreSpec, parse_store_spec
from vitr.index.video_index import VideoIndex

pytest.importorskip("pymilvus", reason="the milvus store needs pymilvus (pip install 'vitr[vectordb]')")
pytest.importorskip("milvus_lite", reason="the embedded milvus store needs milvus-lite (pip install 'vitr[vectordb]')")


@pytest.fixture
def milvus_index(tmp_path: Path) -> VideoIndex:
    index = VideoIndex.create(tmp_path / "index", TINY_MODEL, store="milvus")
    yield index
    index.close()


def _exact(index: VideoIndex, query: np.ndarray, k: int) -> list[int]:
    ids, vectors = index.meta.all_segments()
    return FaissStore.build(ids, vectors).search(query, k)[1][0].tolist()


def test_store_spec_parsing() -> None:
    assert parse_store_spec("milvus") == StoreSpec("milvus", None)
    assert parse_store_spec("milvus:http://milvus:19530") == StoreSpec("milvus", "http://milvus:19530")
    assert parse_store_spec("hnsw") == StoreSpec("hnsw", None)


def test_milvus_matches_exact_search_and_follows_commits(tmp_path: Path, milvus_index: VideoIndex) -> None:
    root = tmp_path / "videos"
    for colours in (["red", "blue"], ["green", "green"], ["yellow", "red"]):
        write_shape_video(root / f"{colours[0]}-{colours[1]}.mp4", colours, seconds_each=1.0)
    update_index(milvus_index, root, window=1.0, stride=0.5, progress=False, workers=0)
    query = milvus_index.embed_texts(["a square"])
    store = milvus_index.store()
    assert isinstance(store, MilvusStore) and len(store) == 9
    assert store.search(query, 5)[1][0].tolist() == _exact(milvus_index, query, 5)
    assert (milvus_index.dir / "vectors.milvus.db").exists()

    (root / "red-blue.mp4").unlink()
    write_shape_video(root / "blue-blue.mp4", ["blue", "blue"], seconds_each=1.0)
    update_index(milvus_index, root, progress=False, workers=0)
    hits = milvus_index.search_vectors(query, k=10)[0]
    assert sorted(Path(h.path).name for h in hits) == ["blue-blue.mp4", "green-green.mp4", "yellow-red.mp4"]
    assert milvus_index.store().search(query, 9)[1][0].tolist() == _exact(milvus_index, query, 9)


def test_a_new_process_resumes_the_sync_where_it_stopped(tmp_path: Path, milvus_index: VideoIndex) -> None:
    root = tmp_path / "videos"
    write_shape_video(root / "a.mp4", "red", seconds_each=1.0)
    update_index(milvus_index, root, progress=False, workers=0)
    milvus_index.store()
    milvus_index.close()
    write_shape_video(root / "b.mp4", "blue", seconds_each=1.0)
    reopened = VideoIndex(tmp_path / "index")
    update_index(reopened, root, progress=False, workers=0)
    store = reopened.store()
    assert reopened.meta.vector_sync_state(store.target)[0] == int(reopened.meta.all_segments()[0].max())
    assert sorted(i for i in store.search(reopened.embed_texts(["x"]), 5)[1][0].tolist() if i >= 0) == [1, 2]
    reopened.close()
