"""Vector stores behind one interface: FAISS in-process (exact by default, HNSW/IVF for large collections),
or Milvus (`vitr.index.milvus_store`) for collections that outgrow one machine.

The FAISS index is derived state: it is rebuilt from the metadata store's vectors whenever the metadata
generation moved on, and cached on disk tagged with that generation, so it can never disagree with what
was committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import faiss
import numpy as np

from vitr.errors import ConfigError, IndexStoreError
from vitr.files import atomic_path

INDEX_KINDS = ("flat", "hnsw", "ivf")
HNSW_EF_SEARCH = 192  # candidates an HNSW search keeps: recall@10 >= 0.95 at 1M vectors, p50 under 2 ms
STORE_KINDS = (*INDEX_KINDS, "milvus")


@dataclass(frozen=True)
class StoreSpec:
    """Parsed `--store` value: a FAISS kind, or `milvus` with an optional server URI."""

    kind: str
    uri: str | None = None


def parse_store_spec(text: str) -> StoreSpec:
    """`flat`, `hnsw`, `ivf`, `milvus` (a milvus-lite file in the index) or `milvus:URI` (a Milvus server)."""
    kind, _, uri = text.partition(":")
    if kind not in STORE_KINDS or (uri and kind != "milvus"):
        raise ConfigError(
            f"unknown store {text!r}; choose one of {INDEX_KINDS}, 'milvus' or 'milvus:URI' "
            "(e.g. milvus:http://milvus:19530)"
        )
    return StoreSpec(kind, uri or None)


class VectorStore(Protocol):
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """queries (Q, E) -> scores (Q, k), ids (Q, k) of segments, best first; missing results have id -1."""

    def __len__(self) -> int: ...


class FaissStore:
    """Inner-product search over segment vectors keyed by segment id."""

    def __init__(self, index: faiss.Index) -> None:
        self.index = index

    @classmethod
    def build(
        cls, ids: np.ndarray, vectors: np.ndarray, kind: str = "flat", hnsw_m: int = 32, ivf_lists: int | None = None
    ) -> FaissStore:
        if kind not in INDEX_KINDS:
            raise ConfigError(f"unknown index kind {kind!r}; choose one of {INDEX_KINDS}")
        dim = vectors.shape[1] if vectors.size else 1
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if kind == "flat" or len(ids) < 1000:
            base = faiss.IndexFlatIP(dim)  # small collections: exact search is both fastest and correct
        elif kind == "hnsw":
            # vectors stored in fp16: half the memory and bandwidth of fp32, so each query visits the same graph
            # about a quarter faster, at the same recall (unit vectors lose ~1e-3 of a cosine to fp16 rounding);
            # efSearch 192 gives recall@10 about 0.96 (docs/performance.md, search). Indexes saved by earlier
            # versions (IndexHNSWFlat) load and search as they are.
            base = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_fp16, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            base.hnsw.efConstruction = 80
            base.hnsw.efSearch = HNSW_EF_SEARCH
        else:
            nlist = ivf_lists or max(1, int(4 * np.sqrt(len(ids))))
            base = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
            base.train(vectors)
            # 256 lists: recall@10 0.98 at 100k (4 ms) and at 1M (14 ms); a fixed share of the lists grows the
            # latency with sqrt(n) although larger lists need a smaller share (docs/performance.md, search)
            base.nprobe = min(nlist, 256)
        index = faiss.IndexIDMap2(base)
        if len(ids):
            index.add_with_ids(vectors, ids.astype(np.int64))
        return cls(index)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = max(1, min(k, len(self)))
        if len(self) == 0:
            return np.empty((len(queries), 0), np.float32), np.empty((len(queries), 0), np.int64)
        return self.index.search(queries, k)

    def __len__(self) -> int:
        return self.index.ntotal

    def save(self, path: str | Path) -> None:
        path = Path(path)
        try:
            with atomic_path(path) as tmp:
                faiss.write_index(self.index, str(tmp))  # FAISS reports I/O failures as RuntimeError
        except (OSError, RuntimeError) as exc:
            raise IndexStoreError(f"cannot write {path}: {exc}") from exc

    @classmethod
    def load(cls, path: str | Path) -> FaissStore:
        return cls(faiss.read_index(str(path)))
