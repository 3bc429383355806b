"""The Milvus store on embedded milvus-lite: answers like the exact FAISS store, follows every commit, one
collection per index, searchable from any process (tests/index/test_milvus_server.py runs a real server)."""

from __future__ import annotations

import fcntl
import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest

from tests.index.videos import TINY_MODEL, search_in_another_process, write_shape_video
from vitr.cli.main import main
from vitr.errors import IndexStoreError
from vitr.index.indexer import update_index
from vitr.index.milvus_store import MilvusStore, collection_name
from vitr.index.shards import merge_indexes
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


def test_creating_the_collection_logs_no_error(
    tmp_path: Path, milvus_index: VideoIndex, capfd: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture
) -> None:
    write_shape_video(tmp_path / "videos" / "a.mp4", "red", seconds_each=1.0)
    update_index(milvus_index, tmp_path / "videos", progress=False, workers=0)
    capfd.readouterr()
    caplog.set_level(logging.WARNING)
    assert len(milvus_index.search_text("a square", k=3)) == 1  # creates, fills and loads the collection
    err = capfd.readouterr().err
    assert "ERROR" not in err and "Method not implemented" not in err, err
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_an_index_made_before_ids_gets_its_own_collection(tmp_path: Path) -> None:
    write_shape_video(tmp_path / "videos" / "a.mp4", "red", seconds_each=1.0)
    index = VideoIndex.create(tmp_path / "index", TINY_MODEL, store="milvus")
    config = json.loads((index.dir / "index.json").read_text())
    assert len(config.pop("id")) == 32
    (index.dir / "index.json").write_text(json.dumps(config))  # as written by an older vitr
    index.close()
    old = VideoIndex(tmp_path / "index")
    update_index(old, tmp_path / "videos", progress=False, workers=0)
    assert len(old.search_text("a square", k=3)) == 1
    given = json.loads((old.dir / "index.json").read_text())["id"]
    assert old.store().collection == collection_name(given)
    old.close()
    assert json.loads((tmp_path / "index" / "index.json").read_text())["id"] == given  # kept from now on


def test_index_merge_into_a_milvus_store(tmp_path: Path) -> None:
    shards = []
    for rank, colours in enumerate((["red", "blue"], ["green"])):
        for colour in colours:
            write_shape_video(tmp_path / "videos" / str(rank) / f"{colour}.mp4", colour, seconds_each=1.0)
        shard = VideoIndex.create(tmp_path / f"shard-{rank}", TINY_MODEL)
        update_index(shard, tmp_path / "videos" / str(rank), progress=False, workers=0)
        shard.close()
        shards.append(tmp_path / f"shard-{rank}")
    assert main(["index-merge", str(tmp_path / "merged"), *map(str, shards), "--store", "milvus"]) == 0
    merged = VideoIndex(tmp_path / "merged")
    assert merged.stats()["store"] == "milvus"
    assert merged.meta.vector_sync_state(f"milvus-lite/{collection_name(merged.index_id())}")[0] == 3  # uploaded
    store = merged.store()
    assert isinstance(store, MilvusStore) and len(store) == 3
    hits = merged.search_text("a square", k=5)
    assert sorted(Path(h.path).name for h in hits) == ["blue.mp4", "green.mp4", "red.mp4"]
    merged.close()


@pytest.mark.slow
def test_a_second_process_searches_a_milvus_lite_index(tmp_path: Path, milvus_index: VideoIndex) -> None:
    write_shape_video(tmp_path / "videos" / "a.mp4", "red", seconds_each=1.0)
    update_index(milvus_index, tmp_path / "videos", progress=False, workers=0)
    milvus_index.store()
    milvus_index.close()
    assert [Path(h["path"]).name for h in search_in_another_process(tmp_path / "index")] == ["a.mp4"]


def test_a_milvus_lite_file_held_by_another_process_is_a_one_line_error(tmp_path: Path) -> None:
    write_shape_video(tmp_path / "videos" / "a.mp4", "red", seconds_each=1.0)
    index = VideoIndex.create(tmp_path / "index", TINY_MODEL, store="milvus")
    update_index(index, tmp_path / "videos", progress=False, workers=0)
    index.store()
    index.close()  # releases the file
    reopened = VideoIndex(tmp_path / "index")
    # what another process holding the file does: milvus-lite's exclusive flock on <file>/LOCK (milvus-lite 3.2)
    fd = os.open(tmp_path / "index" / "vectors.milvus.db" / "LOCK", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(IndexStoreError, match="another process holds the lock.*one process at a time"):
            reopened.store()
    finally:
        os.close(fd)
    assert len(reopened.search_text("a square", k=3)) == 1  # free again: opens
    reopened.close()


def test_index_merge_refuses_another_store_for_an_existing_target(tmp_path: Path) -> None:
    VideoIndex.create(tmp_path / "shard", TINY_MODEL).close()
    VideoIndex.create(tmp_path / "merged", TINY_MODEL).close()  # flat
    with pytest.raises(IndexStoreError, match="already exists with store 'flat', not 'milvus'"):
        merge_indexes(tmp_path / "merged", [tmp_path / "shard"], store="milvus")


def test_hybrid_search_fuses_milvus_vectors_with_the_index_text(tmp_path: Path, milvus_index: VideoIndex) -> None:
    """Visual ranking from Milvus, text ranking from the index's SQLite FTS5: the same fusion as the FAISS store."""
    from tests.index.test_text_tracks import srt
    from vitr.index.hybrid import search

    root = tmp_path / "videos"
    for colour in ("red", "green", "blue"):
        write_shape_video(root / f"{colour}.mp4", [colour, colour], seconds_each=1.0)
    (root / "green.en.srt").write_text(srt((0.2, 0.8, "welcome aboard"), (1.2, 1.9, "the lighthouse keeper sings")))
    update_index(milvus_index, root, window=1.0, stride=0.5, progress=False, workers=0)
    assert isinstance(milvus_index.store(), MilvusStore)

    for fusion in ("weighted", "rrf"):
        hits = search(milvus_index, "the lighthouse keeper", k=3, mode="hybrid", fusion=fusion)
        assert [Path(h.path).name for h in hits][0] == "green.mp4" and len(hits) == 3
        assert hits[0].sources == ("visual", "subtitles") and (hits[0].start, hits[0].end) == (1.2, 1.9)
    # a query no span matches ("a" is a function word) keeps Milvus's visual order
    visual = search(milvus_index, "a square", k=3, mode="visual")
    assert [h.path for h in search(milvus_index, "a square", k=3, mode="hybrid")] == [h.path for h in visual]
    assert search(milvus_index, "a square", k=3, mode="text") == []
