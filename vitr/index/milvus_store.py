"""Segment vectors in Milvus: an embedded milvus-lite file for one machine, or a Milvus server by URI.

Unlike FAISS, which is rebuilt per generation, a Milvus collection is kept in step with the metadata
incrementally: segment ids only ever grow, so new rows are those above the last synced id, and deleted rows
are read from the metadata's deletion log. Each index has its own collection, named from the index's id
(`index.json`), so indexes sharing one server never touch each other's rows. How far the collection is
synced is kept in the index's own metadata (`Metadata.vector_sync_state`), written after every batch, so any
process (indexer or API replica) resumes where the last one stopped; uploads are upserts by segment id, so
a batch sent twice (a crash between the upload and the record) leaves no duplicate.

milvus-lite and a Milvus server answer the same calls here. Differences that matter to vitr: a server keeps
a collection released after its own restart until someone loads it, and loads it asynchronously after a
restart (`_ensure_loaded` handles both). docs/deploy.md says which to use where.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import numpy as np

from vitr.errors import IndexStoreError
from vitr.index.metadata import Metadata
from vitr.index.store import StoreSpec

_BATCH = 2048
_LITE_TARGET = "milvus-lite"


class _LiteStartFailures(logging.Handler):
    """While opening: keeps milvus-lite's start failure (it logs a traceback and pymilvus raises only
    "Open local milvus failed") so the error vitr raises names the cause, e.g. another process's lock."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.reason: str | None = None
        self._logger = logging.getLogger("milvus_lite.server_manager")

    def emit(self, record: logging.LogRecord) -> None:
        self.reason = str(record.exc_info[1]) if record.exc_info else record.getMessage()

    def __enter__(self) -> None:
        self._propagate = self._logger.propagate
        self._logger.addHandler(self)
        self._logger.propagate = False

    def __exit__(self, *exc: object) -> None:
        self._logger.removeHandler(self)
        self._logger.propagate = self._propagate


def collection_name(index_id: str) -> str:
    """The collection of the index with this id (Milvus names allow letters, digits and underscores)."""
    return f"vitr_{index_id}"


class MilvusStore:
    """Inner-product search over segment vectors keyed by segment id, in one Milvus collection per index."""

    def __init__(self, client: object, collection: str, target: str, lite_path: str | None = None) -> None:
        from pymilvus import MilvusException

        self.client = client
        self.lite_path = lite_path  # the milvus-lite file this process holds open, if any
        self.collection = collection
        self.target = target  # where the collection lives: the key of its sync state in the metadata
        self._errors = MilvusException
        self._count = 0
        self._synced_generation = -1
        self._loaded = False

    @classmethod
    def open(cls, spec: StoreSpec, index_dir: str | Path, collection: str) -> MilvusStore:
        """spec.uri None: a milvus-lite file inside the index; else a server such as http://milvus:19530."""
        try:
            from pymilvus import MilvusClient
        except ImportError as e:
            raise IndexStoreError("the milvus store needs pymilvus: pip install 'vitr[vectordb]'") from e
        uri = spec.uri or str(Path(index_dir) / "vectors.milvus.db")
        lite = not uri.startswith(("http://", "https://", "tcp://", "unix:"))
        lite_failures = _LiteStartFailures()
        try:
            with lite_failures:
                client = MilvusClient(uri)
        except Exception as e:  # pymilvus raises its own exception types for every connection failure
            reason = lite_failures.reason or str(e)
            hint = "; a milvus-lite file is open in one process at a time (a Milvus server has no such limit)"
            raise IndexStoreError(f"cannot open Milvus at {uri}: {reason}{hint if lite else ''}") from e
        return cls(client, collection, f"{spec.uri or _LITE_TARGET}/{collection}", uri if lite else None)

    # -- keeping in step with the metadata --------------------------------------------------------------------
    def sync(self, meta: Metadata) -> None:
        """Bring the collection up to the metadata's current (snapshot) state: add new rows, drop deleted ones."""
        generation = meta.generation()
        if generation == self._synced_generation:
            return
        try:
            self._sync(meta)
        except self._errors as e:
            raise IndexStoreError(f"Milvus collection {self.collection}: {e.message}") from e
        self._count = meta.count()[1]
        self._synced_generation = generation

    def _sync(self, meta: Metadata) -> None:
        last_id, last_deleted = meta.vector_sync_state(self.target)
        newest_deleted, deleted = meta.deleted_segments_after(last_deleted)
        exists = self.client.has_collection(self.collection)
        if not exists:  # never made, or lost with the server's data: upload everything the metadata holds
            last_id, deleted = 0, []
        while True:
            ids, vectors = meta.segments_after(last_id, limit=_BATCH)  # (N,), (N, E)
            if not len(ids):
                break
            if not exists:
                self._create(vectors.shape[1])
                exists = True
            rows = [{"id": int(i), "vector": v.tolist()} for i, v in zip(ids, vectors, strict=True)]
            self.client.upsert(self.collection, rows)
            last_id = int(ids[-1])
            self._record(meta, last_id, last_deleted)
        if deleted and exists:
            for start in range(0, len(deleted), _BATCH):
                self.client.delete(self.collection, ids=deleted[start : start + _BATCH])
        self._record(meta, last_id, newest_deleted)

    def _create(self, dim: int) -> None:
        """An (id, vector) collection with an inner-product AUTOINDEX, loaded for search.

        Built from an explicit schema and a non-blocking `create_index` rather than the one-call quick setup:
        the quick setup waits for the index through `AllocTimestamp`, which milvus-lite does not implement,
        and its gRPC server logs a NotImplementedError traceback for every such call.
        """
        from pymilvus import DataType, MilvusClient

        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        self.client.create_collection(self.collection, schema=schema, consistency_level="Strong")
        index = self.client.prepare_index_params()
        index.add_index(field_name="vector", index_type="AUTOINDEX", metric_type="IP")
        self.client.create_index(self.collection, index, sync=False)
        self.client.load_collection(self.collection)
        self._loaded = True

    def _record(self, meta: Metadata, last_id: int, last_deleted: int) -> None:
        try:
            meta.set_vector_sync_state(self.target, last_id, last_deleted)
        except sqlite3.OperationalError:
            pass  # a read-only index: the next process re-sends these rows (upserts, so nothing doubles)

    def _ensure_loaded(self, force: bool = False) -> None:
        """A collection is searchable only once loaded: after its creation elsewhere, or a server restart."""
        if self._loaded and not force:
            return
        from pymilvus.client.types import LoadState

        if self.client.get_load_state(self.collection)["state"] != LoadState.Loaded:
            self.client.load_collection(self.collection)  # returns once loaded (also one that is loading)
        self._loaded = True

    # -- search ------------------------------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        scores = np.full((len(queries), max(k, 0)), -np.inf, dtype=np.float32)
        ids = np.full((len(queries), max(k, 0)), -1, dtype=np.int64)
        if k <= 0:
            return scores, ids
        try:
            if not self._loaded:
                if not self.client.has_collection(self.collection):  # nothing uploaded yet
                    return scores, ids
                self._ensure_loaded()
            try:
                results = self._search(queries, k)
            except self._errors:  # released since we loaded it (a server restart): load again, once
                self._ensure_loaded(force=True)
                results = self._search(queries, k)
        except self._errors as e:
            raise IndexStoreError(f"Milvus collection {self.collection}: {e.message}") from e
        for row, hits in enumerate(results):
            for col, hit in enumerate(hits[:k]):
                ids[row, col] = int(hit["id"])
                scores[row, col] = float(hit["distance"])
        return scores, ids

    def _search(self, queries: np.ndarray, k: int) -> list:
        return self.client.search(
            self.collection, data=queries.tolist(), limit=k, output_fields=["id"], search_params={"metric_type": "IP"}
        )

    def __len__(self) -> int:
        return self._count

    def close(self) -> None:
        """Close the connection; for milvus-lite also stop this process's embedded server, which holds the
        file's lock until then (pymilvus alone keeps it to process exit), so another process can open it."""
        self.client.close()
        if self.lite_path is not None:
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(self.lite_path)
