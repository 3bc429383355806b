"""The Milvus store against a real Milvus server process: indexes sharing it, its restart mid-sync, a second
process searching. The server (the `milvus` package's standalone binary) runs on 127.0.0.1 for this module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.index.videos import TINY_MODEL, search_in_another_process, write_shape_video
from vitr.errors import IndexStoreError
from vitr.index import milvus_store
from vitr.index.indexer import update_index
from vitr.index.milvus_store import MilvusStore
from vitr.index.video_index import VideoIndex

pytest.importorskip("pymilvus", reason="the milvus store needs pymilvus (pip install 'vitr[vectordb]')")
pytest.importorskip("milvus", reason="the Milvus server tests need the `milvus` package (pip install 'vitr[vectordb]')")

pytestmark = pytest.mark.slow  # one server start (10-60 s) for the module, plus a restart


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from tests.index.milvus_server import MilvusServerProcess

    server = MilvusServerProcess(tmp_path_factory.mktemp("milvus-server"))
    server.start()
    yield server
    server.kill()


def _index(root: Path, index_dir: Path, uri: str, colours: list[str], **kwargs: object) -> VideoIndex:
    for colour in colours:
        write_shape_video(root / f"{colour}.mp4", colour, seconds_each=1.0)
    index = VideoIndex.create(index_dir, TINY_MODEL, store=f"milvus:{uri}")
    update_index(index, root, progress=False, workers=0, **kwargs)
    return index


def _stored_ids(store: MilvusStore) -> list[int]:
    """Every row of the store's collection, as the server holds it (duplicates included)."""
    store._ensure_loaded()
    rows = store.client.query(store.collection, filter="id >= 0", output_fields=["id"], limit=16384)
    return sorted(int(r["id"]) for r in rows)


def test_two_indexes_on_one_server_never_see_each_other(tmp_path: Path, milvus_server: object) -> None:
    first = _index(tmp_path / "a", tmp_path / "index-a", milvus_server.uri, ["red", "blue"])
    second = _index(tmp_path / "b", tmp_path / "index-b", milvus_server.uri, ["green", "yellow", "red"])
    query = first.embed_texts(["a square"])
    a_store, b_store = first.store(), second.store()
    assert a_store.collection != b_store.collection
    assert _stored_ids(a_store) == first.meta.all_segments()[0].tolist()
    assert _stored_ids(b_store) == second.meta.all_segments()[0].tolist()  # same segment ids, other rows
    assert {Path(h.path).parent.name for h in first.search_vectors(query, k=10)[0]} == {"a"}
    assert {Path(h.path).parent.name for h in second.search_vectors(query, k=10)[0]} == {"b"}

    (tmp_path / "a" / "red.mp4").unlink()  # a change to one index leaves the other whole
    update_index(first, tmp_path / "a", progress=False, workers=0)
    assert [Path(h.path).name for h in first.search_vectors(query, k=10)[0]] == ["blue.mp4"]
    assert len(second.search_vectors(query, k=10)[0]) == 3
    assert _stored_ids(b_store) == second.meta.all_segments()[0].tolist()
    first.close()
    second.close()


def test_a_server_restart_mid_sync_resumes_without_duplicates_or_loss(
    tmp_path: Path, milvus_server: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = _index(tmp_path / "v", tmp_path / "index", milvus_server.uri, ["red", "green", "blue", "yellow"])
    all_ids = index.meta.all_segments()[0].tolist()
    assert len(all_ids) >= 4
    monkeypatch.setattr(milvus_store, "_BATCH", 2)  # several batches, so the server can die between two
    opened = MilvusStore.open(index.store_spec, index.dir, milvus_store.collection_name(index.index_id()))
    real_upsert = opened.client.upsert
    sent: list[int] = []

    def upsert_then_crash(collection: str, rows: list[dict]) -> object:
        if sent:  # the second batch: the server dies before it arrives
            milvus_server.kill()
        result = real_upsert(collection, rows)
        sent.extend(r["id"] for r in rows)
        return result

    opened.client.upsert = upsert_then_crash
    with pytest.raises(IndexStoreError, match="Milvus"):
        opened.sync(index.meta)
    assert sent == all_ids[:2]
    assert index.meta.vector_sync_state(opened.target)[0] == all_ids[1]  # the first batch was recorded

    milvus_server.start()
    index.close()
    reopened = VideoIndex(tmp_path / "index")  # a new process's view: resumes from the recorded batch
    store = reopened.store()
    assert _stored_ids(store) == all_ids  # each segment exactly once, none missing
    assert reopened.meta.vector_sync_state(store.target)[0] == all_ids[-1]
    hits = reopened.search_vectors(reopened.embed_texts(["a square"]), k=10)[0]
    assert sorted(Path(h.path).name for h in hits) == ["blue.mp4", "green.mp4", "red.mp4", "yellow.mp4"]
    reopened.close()


def test_a_second_process_searches_the_same_index(tmp_path: Path, milvus_server: object) -> None:
    index = _index(tmp_path / "v", tmp_path / "index", milvus_server.uri, ["red", "blue"])
    index.store()
    index.close()
    hits = search_in_another_process(tmp_path / "index")
    assert sorted(Path(h["path"]).name for h in hits) == ["blue.mp4", "red.mp4"]
