"""`VideoIndex`: a folder of videos made searchable by text or by video, with no server.

`index_dir/` holds `index.json` (the model and store settings), `metadata.sqlite` (videos, segment vectors,
failures: the source of truth), `vectors-<generation>.faiss` (a derived, rebuildable search structure) and
`cache/` (frame embeddings, so re-indexing with another head never re-decodes).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vitr.errors import IndexStoreError
from vitr.index.metadata import Metadata
from vitr.index.store import FaissStore
from vitr.model.factory import ModelSpec, build_model
from vitr.model.retrieval import VideoTextModel

INDEX_VERSION = 1


@dataclass(frozen=True)
class Hit:
    path: str
    score: float
    video_id: int
    start: float | None = None
    end: float | None = None

    def to_dict(self) -> dict:
        return {"path": self.path, "score": self.score, "video_id": self.video_id, "start": self.start,
                "end": self.end}


class VideoIndex:
    def __init__(self, index_dir: str | Path, device: str = "cpu") -> None:
        self.dir = Path(index_dir)
        config_path = self.dir / "index.json"
        if not config_path.exists():
            raise IndexStoreError(f"{self.dir} is not a vitr index (no index.json); create one with `vitr index`")
        self.config = json.loads(config_path.read_text())
        if self.config.get("version") != INDEX_VERSION:
            raise IndexStoreError(f"{config_path} has index version {self.config.get('version')}, "
                                  f"this vitr reads version {INDEX_VERSION}")
        self.model_spec = ModelSpec.from_dict(self.config["model"])
        self.store_kind = self.config.get("store", "flat")
        self.device = device
        self.meta = Metadata(self.dir / "metadata.sqlite")
        self._model: VideoTextModel | None = None
        self._store: FaissStore | None = None
        self._store_generation = -1
        self._lock = threading.Lock()

    @classmethod
    def create(cls, index_dir: str | Path, model_spec: ModelSpec, store: str = "flat", device: str = "cpu",
               exist_ok: bool = True) -> VideoIndex:
        """Create an index, or open an existing one made with the same model (a different model is an error)."""
        index_dir = Path(index_dir)
        config_path = index_dir / "index.json"
        wanted = {"version": INDEX_VERSION, "model": model_spec.to_dict(), "store": store}
        if config_path.exists():
            have = json.loads(config_path.read_text())
            if have.get("model") != wanted["model"]:
                raise IndexStoreError(
                    f"{index_dir} was built with model {have.get('model')}, not {wanted['model']}; "
                    "use a new index directory (vectors of different models cannot be mixed)")
            if not exist_ok:
                raise IndexStoreError(f"{index_dir} already exists")
        else:
            index_dir.mkdir(parents=True, exist_ok=True)
            tmp = config_path.with_suffix(".json.partial")
            tmp.write_text(json.dumps(wanted, indent=2))
            tmp.replace(config_path)
        return cls(index_dir, device=device)

    # -- model and store -------------------------------------------------------------------------------------
    @property
    def model(self) -> VideoTextModel:
        if self._model is None:
            self._model = build_model(self.model_spec, device=self.device)
        return self._model

    def store(self) -> FaissStore:
        """The search structure for the newest committed generation (rebuilt or loaded when it moved on)."""
        with self._lock:
            generation = self.meta.generation()
            if self._store is None or generation != self._store_generation:
                path = self.dir / f"vectors-{generation}.faiss"
                if path.exists():
                    self._store = FaissStore.load(path)
                else:
                    ids, vectors = self.meta.all_segments()
                    self._store = FaissStore.build(ids, vectors, kind=self.store_kind)
                    if generation == self.meta.generation():
                        self._store.save(path)
                        for old in self.dir.glob("vectors-*.faiss"):
                            if old != path:
                                old.unlink(missing_ok=True)
                self._store_generation = generation
            return self._store

    # -- search ----------------------------------------------------------------------------------------------
    def embed_texts(self, texts: list[str]) -> np.ndarray:
        with torch.inference_mode():
            return self.model.embed_texts(texts).float().cpu().numpy()

    def search_vectors(self, queries: np.ndarray, k: int = 10) -> list[list[Hit]]:
        """Best segment per video, videos ranked by it; over-fetches so merging windows still returns k videos."""
        store = self.store()
        fetch = min(len(store), max(k * 4, k + 16))
        scores, ids = store.search(queries, fetch)
        results = []
        for row_scores, row_ids in zip(scores, ids, strict=True):
            seg = self.meta.segments(i for i in row_ids if i >= 0)
            hits: dict[int, Hit] = {}
            for score, sid in zip(row_scores, row_ids, strict=True):
                if sid < 0 or sid not in seg:
                    continue
                video_id, start, end = seg[sid]
                if video_id not in hits:
                    record = self.meta.video(video_id)
                    if record is None:
                        continue
                    hits[video_id] = Hit(record.path, float(score), video_id, start, end)
            results.append(list(hits.values())[:k])
        return results

    def search_text(self, text: str, k: int = 10) -> list[Hit]:
        return self.search_vectors(self.embed_texts([text]), k)[0]

    def video_vector(self, video_id: int) -> np.ndarray:
        """The whole-video query vector of an indexed video (mean of its segment vectors, renormalised)."""
        v = self.meta.video_vectors(video_id).mean(0)
        return v / max(float(np.linalg.norm(v)), 1e-12)

    def stats(self) -> dict:
        videos, segments = self.meta.count()
        return {"videos": videos, "segments": segments, "failures": len(self.meta.failures()),
                "generation": self.meta.generation(), "model": self.model_spec.to_dict(), "store": self.store_kind}

    def close(self) -> None:
        self.meta.close()
