"""Segment vectors in Milvus: an embedded milvus-lite file for one machine, or a Milvus cluster by URI.

Unlike FAISS, which is rebuilt per generation, a Milvus collection is kept in step with the metadata
incrementally: segment ids only ever grow, so new rows are those above the last synced id, and deleted rows
are read from the metadata's deletion log. How far the collection is synced is stored next to it, in a
small companion collection, so any process (indexer or API replica) resumes where the last one stopped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vitr.errors import IndexStoreError
from vitr.index.metadata import Metadata
from vitr.index.store import StoreSpec

COLLECTION = "vitr_segments"
_BATCH = 2048
_STATE_ID = 0


class MilvusStore:
    """Inner-product search over segment vectors keyed by segment id, in a Milvus collection."""

    def __init__(self, client: object, collection: str = COLLECTION) -> None:
        self.client = client
        self.collection = collection
        self.state_collection = f"{collection}_sync"
        self._count = 0
        self._synced_generation = -1

    @classmethod
    def open(cls, spec: StoreSpec, index_dir: str | Path, collection: str = COLLECTION) -> MilvusStore:
        """spec.uri None: a milvus-lite file inside the index; else a server such as http://milvus:19530."""
        try:
            from pymilvus import MilvusClient
        except ImportError as e:
            raise IndexStoreError("the milvus store needs pymilvus: pip install 'vitr[vectordb]'") from e
        uri = spec.uri or str(Path(index_dir) / "vectors.milvus.db")
        try:
            client = MilvusClient(uri)
        except Exception as e:  # pymilvus raises its own exception types for every connection failure
            raise IndexStoreError(f"cannot open Milvus at {uri}: {e}") from e
        return cls(client, collection)

    # -- keeping in step with the metadata --------------------------------------------------------------------
    def _state(self) -> tuple[int, int]:
        """(last synced segment id, last applied deletion-log position)."""
        if not self.client.has_collection(self.state_collection):
            return 0, 0
        rows = self.client.get(self.state_collection, ids=[_STATE_ID], output_fields=["last_id", "last_deleted"])
        return (int(rows[0]["last_id"]), int(rows[0]["last_deleted"])) if rows else (0, 0)

    def _save_state(self, last_id: int, last_deleted: int) -> None:
        if not self.client.has_collection(self.state_collection):
            self.client.create_collection(self.state_collection, dimension=2, auto_id=False)
        row = {"id": _STATE_ID, "vector": [0.0, 0.0], "last_id": last_id, "last_deleted": last_deleted}
        self.client.upsert(self.state_collection, [row])

    def sync(self, meta: Metadata) -> None:
        """Bring the collection up to the metadata's current (snapshot) state: add new rows, drop deleted ones."""
        generation = meta.generation()
        if generation == self._synced_generation:
            return
        last_id, last_deleted = self._state()
        while True:
            ids, vectors = meta.segments_after(last_id, limit=_BATCH)  # (N,), (N, E)
            if not len(ids):
                break
            if not self.client.has_collection(self.collection):
                self.client.create_collection(
                    self.collection,
                    dimension=vectors.shape[1],
                    metric_type="IP",
                    auto_id=False,
                    consistency_level="Strong",
                )
            rows = [{"id": int(i), "vector": v.tolist()} for i, v in zip(ids, vectors, strict=True)]
            self.client.upsert(self.collection, rows)
            last_id = int(ids[-1])
        newest_deleted, deleted = meta.deleted_segments_after(last_deleted)
        if deleted and self.client.has_collection(self.collection):
            for start in range(0, len(deleted), _BATCH):
                self.client.delete(self.collection, ids=deleted[start : start + _BATCH])
        self._save_state(last_id, newest_deleted)
        self._count = meta.count()[1]
        self._synced_generation = generation

    # -- search ------------------------------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        scores = np.full((len(queries), max(k, 0)), -np.inf, dtype=np.float32)
        ids = np.full((len(queries), max(k, 0)), -1, dtype=np.int64)
        if k <= 0 or not self.client.has_collection(self.collection):
            return scores, ids
        results = self.client.search(
            self.collection, data=queries.tolist(), limit=k, output_fields=[], search_params={"metric_type": "IP"}
        )
        for row, hits in enumerate(results):
            for col, hit in enumerate(hits[:k]):
                ids[row, col] = int(hit["id"])
                scores[row, col] = float(hit["distance"])
        return scores, ids

    def __len__(self) -> int:
        return self._count

    def close(self) -> None:
        self.client.close()
