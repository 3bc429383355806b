"""`VideoIndex`: a folder of videos made searchable by text or by video, with no server.

`index_dir/` holds `index.json` (the index's id, model, store and segment settings), `metadata.sqlite` (videos, segment
vectors, failures: the source of truth), `vectors-<generation>.faiss` (a derived, rebuildable search
structure; or a Milvus collection kept in step with the metadata) and `cache/` (frame embeddings, so
re-indexing with another head never re-decodes).

Readers are safe while an indexer commits: each search runs inside one metadata snapshot and uses the vector
store of exactly that snapshot's generation.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from vitr.backbones.registry import LOCAL_DIR_PREFIX, backbone_directory, names_architecture
from vitr.errors import ConfigError, IndexStoreError
from vitr.files import atomic_write
from vitr.index.metadata import Metadata
from vitr.index.milvus_store import MilvusStore, collection_name
from vitr.index.store import FaissStore, StoreSpec, VectorStore, parse_store_spec
from vitr.index.text_tracks import TextOptions
from vitr.inference.extract import encode_pixels, frame_spec_for
from vitr.model.factory import ModelSpec, build_model
from vitr.model.retrieval import VideoTextModel
from vitr.precision import DTYPES, run_dtypes
from vitr.video.loader import DecodeFailure, decode_video

logger = logging.getLogger(__name__)

INDEX_VERSION = 1
_TEXT_VECTORS_KEPT = 64
_KEPT_GENERATIONS = 2  # readers on the previous generation keep their store while new ones move on


@dataclass(frozen=True)
class Evidence:
    """Why a hit matched, and where: a visual segment (its score), or a text span (its snippet, with the matched
    words at `highlights`, character ranges [start, end) of `snippet`)."""

    source: str  # "visual" or a text source ("subtitles", "ocr", "asr")
    start: float | None
    end: float | None
    score: float
    snippet: str | None = None
    highlights: tuple[tuple[int, int], ...] = ()
    language: str | None = None

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "start": self.start,
            "end": self.end,
            "score": self.score,
            "snippet": self.snippet,
            "highlights": [list(h) for h in self.highlights],
            "language": self.language,
        }


@dataclass(frozen=True)
class Hit:
    """A video, its score and its moment (start/end: where the best evidence is; None for a whole video)."""

    path: str
    score: float
    video_id: int
    start: float | None = None
    end: float | None = None
    sources: tuple[str, ...] = ("visual",)
    evidence: tuple[Evidence, ...] = ()

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "score": self.score,
            "video_id": self.video_id,
            "start": self.start,
            "end": self.end,
            "sources": list(self.sources),
            "evidence": [e.to_dict() for e in self.evidence],
        }


SEGMENT_KINDS = ("windows", "shots", "shots+windows")


@dataclass(frozen=True)
class Windowing:
    """How a video is cut into segments, each searched on its own so a hit says where in the video it matched.

    windows: overlapping windows of `window` seconds, one every `stride` seconds. shots: one segment per shot
    (vitr.video.shots). shots+windows: one per shot, a shot longer than `window` cut into windows within it.
    """

    window: float | None = None
    stride: float | None = None
    segments: str = "windows"

    def __post_init__(self) -> None:
        if self.segments not in SEGMENT_KINDS:
            raise ConfigError(f"unknown segments {self.segments!r}; choose one of {', '.join(SEGMENT_KINDS)}")
        if self.segments == "shots":
            if self.window is not None or self.stride is not None:
                raise ConfigError("segments 'shots' takes no window or stride; use 'shots+windows' to cut long shots")
            return
        if self.window is None or self.stride is None:
            raise ConfigError(f"segments {self.segments!r} need a window and a stride (seconds)")
        if not (self.window > 0 and 0 < self.stride <= self.window):
            raise ConfigError(
                f"need window > 0 and 0 < stride <= window, got window={self.window}, stride={self.stride}"
            )

    @property
    def uses_shots(self) -> bool:
        return self.segments != "windows"

    def spans(self, duration: float, cuts: list[float] | None = None) -> list[tuple[float, float]]:
        """[(start, end)] seconds covering [0, duration]; `cuts`: the shot boundaries (where segments use shots)."""
        if not self.uses_shots:
            return self._windows(0.0, duration)
        bounds = [0.0, *[c for c in cuts or [] if 0 < c < duration], duration]
        shots = [(round(a, 3), round(b, 3)) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]
        shots = shots or [(0.0, round(duration, 3))]  # a video of one frame still has one segment
        if self.segments == "shots":
            return shots
        return [span for start, end in shots for span in self._windows(start, end)]

    def _windows(self, start: float, end: float) -> list[tuple[float, float]]:
        """Windows of [start, end]; the last one ends at `end`."""
        assert self.window is not None and self.stride is not None
        if end - start <= self.window:
            return [(round(start, 3), round(end, 3))]
        starts = np.arange(start, end - self.window, self.stride).tolist()
        spans = [(round(s, 3), round(s + self.window, 3)) for s in starts]
        last = round(end - self.window, 3)
        if spans[-1][0] < last:
            spans.append((last, round(end, 3)))
        return spans


Accept = Callable[[Hit], bool]


def read_index_config(index_dir: str | Path) -> dict | None:
    """The settings in `index_dir/index.json` (model, store, windows), or None where there is no index."""
    config_path = Path(index_dir) / "index.json"
    if not config_path.exists():
        return None
    try:
        config = json.loads(config_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexStoreError(f"cannot read {config_path}: {exc}") from exc
    if not isinstance(config, dict) or not isinstance(config.get("model"), dict):
        raise IndexStoreError(f"{config_path} is not a vitr index description (no 'model' object)")
    return config


class VideoIndex:
    """read_only (None: when the index directory or its metadata file is not writable) opens an index for
    search only, writing nothing at all: a replica on a read-only mount, or a copy the user may not change."""

    def __init__(self, index_dir: str | Path, device: str = "cpu", read_only: bool | None = None) -> None:
        self.dir = Path(index_dir)
        config = read_index_config(self.dir)
        if config is None:
            raise IndexStoreError(f"{self.dir} is not a vitr index (no index.json); create one with `vitr index`")
        self.config = config
        if self.config.get("version") != INDEX_VERSION:
            raise IndexStoreError(
                f"{self.dir / 'index.json'} has index version {self.config.get('version')}, "
                f"this vitr reads version {INDEX_VERSION}"
            )
        self.model_spec = _located(ModelSpec.from_dict(self.config["model"]), self.dir)
        self.store_kind = self.config.get("store", "flat")
        self.store_spec: StoreSpec = parse_store_spec(self.store_kind)
        self.device = device
        if read_only is None:
            read_only = not _writable(self.dir, self.dir / "metadata.sqlite")
        self.read_only = read_only
        self.meta = Metadata(self.dir / "metadata.sqlite", read_only=read_only)
        self._model: VideoTextModel | None = None
        self._stores: dict[int, VectorStore] = {}
        self._external_store: MilvusStore | None = None
        self._lock = threading.Lock()
        self._text_vectors: OrderedDict[str, np.ndarray] = OrderedDict()

    @classmethod
    def create(
        cls,
        index_dir: str | Path,
        model_spec: ModelSpec,
        store: str = "flat",
        device: str = "cpu",
        exist_ok: bool = True,
        windowing: Windowing | None = None,
    ) -> VideoIndex:
        """Create an index, or open an existing one made with the same model (a different model is an error)."""
        parse_store_spec(store)
        index_dir = Path(index_dir)
        wanted = {
            "version": INDEX_VERSION,
            "model": _portable(model_spec, index_dir).to_dict(),
            "store": store,
            "windows": _windowing_dict(windowing),
            "id": _new_index_id(),
        }
        have = read_index_config(index_dir)
        if have is not None:
            built = _located(ModelSpec.from_dict(have.get("model", {})), index_dir)
            if built != _located(_portable(model_spec, index_dir), index_dir):
                raise IndexStoreError(
                    f"{index_dir} was built with model {have.get('model')}, not {wanted['model']}; "
                    "use a new index directory (vectors of different models cannot be mixed)"
                )
            if not exist_ok:
                raise IndexStoreError(f"{index_dir} already exists")
            index = cls(index_dir, device=device)
            index.index_id()
            if windowing is not None:
                index.set_windowing(windowing)
            return index
        model = build_model(model_spec, device=device)  # a model that cannot be built leaves no index behind
        try:
            index_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise IndexStoreError(f"cannot create the index directory {index_dir}: {exc.strerror or exc}") from exc
        _write_json(index_dir / "index.json", wanted)
        index = cls(index_dir, device=device)
        index._model = model
        return index

    # -- settings --------------------------------------------------------------------------------------------
    @property
    def windowing(self) -> Windowing | None:
        w = self.config.get("windows")
        return Windowing(w.get("window"), w.get("stride"), w.get("segments", "windows")) if w else None

    def set_windowing(self, windowing: Windowing | None) -> None:
        """Record how videos are cut into windows; changing it on an index that holds videos is an error."""
        if windowing == self.windowing:
            return
        if self.read_only:
            raise IndexStoreError(f"{self.dir} is open read-only; its window settings cannot change")
        if self.meta.count()[0]:
            raise IndexStoreError(
                f"{self.dir} was indexed with windows {self.config.get('windows')}, not {_windowing_dict(windowing)};"
                " use a new index directory or the same --segments/--window/--stride"
            )
        self.config["windows"] = _windowing_dict(windowing)
        _write_json(self.dir / "index.json", self.config)

    @property
    def text_sources(self) -> tuple[str, ...]:
        """The text sources indexed with the videos (index.json "text"); subtitles where none were recorded."""
        return tuple(self.config.get("text", ["subtitles"]))

    def set_text_sources(self, sources: tuple[str, ...]) -> None:
        """Record the text sources; later runs without `--text` keep them."""
        if list(sources) == self.config.get("text"):
            return
        if self.read_only:
            raise IndexStoreError(f"{self.dir} is open read-only; its text sources cannot change")
        self.config["text"] = list(sources)
        _write_json(self.dir / "index.json", self.config)

    @property
    def text_options(self) -> TextOptions:
        """How OCR and speech run for this index (index.json "text_options"; the defaults where none recorded)."""
        return TextOptions(**self.config.get("text_options", {}))

    def set_text_options(self, options: TextOptions) -> None:
        """Record the OCR and speech settings; later runs without those options keep them."""
        if options.to_dict() == self.config.get("text_options"):
            return
        if self.read_only:
            raise IndexStoreError(f"{self.dir} is open read-only; its text options cannot change")
        self.config["text_options"] = options.to_dict()
        _write_json(self.dir / "index.json", self.config)

    def index_id(self) -> str:
        """This index's stable random id (names its Milvus collection); an index made before ids gets one now."""
        if "id" not in self.config:
            self.config["id"] = _new_index_id()
            try:
                _write_json(self.dir / "index.json", self.config)
            except OSError as e:
                raise IndexStoreError(f"{self.dir / 'index.json'}: cannot record the index id ({e.strerror})") from e
        return self.config["id"]

    # -- model and store -------------------------------------------------------------------------------------
    @property
    def model(self) -> VideoTextModel:
        with self._lock:
            if self._model is None:
                _check_model_paths(self.config["model"], self.dir)
                _check_weights(self.model_spec, self.dir)
                self._model = build_model(self.model_spec, device=self.device)
            return self._model

    def store(self) -> VectorStore:
        """The search structure of the newest committed generation (rebuilt, loaded or synced when it moved on)."""
        with self.meta.snapshot():
            return self._store_for_snapshot()

    def _store_for_snapshot(self) -> VectorStore:
        generation = self.meta.generation()
        with self._lock:
            if self.store_spec.kind == "milvus":
                if self._external_store is None:
                    self._external_store = MilvusStore.open(self.store_spec, self.dir, collection_name(self.index_id()))
                self._external_store.sync(self.meta)
                return self._external_store
            store = self._stores.get(generation)
            if store is None:
                store = self._faiss_store(generation)
                self._stores[generation] = store
                for old in sorted(self._stores)[:-_KEPT_GENERATIONS]:
                    del self._stores[old]
            return store

    def _faiss_store(self, generation: int) -> FaissStore:
        path = self.dir / f"vectors-{generation}.faiss"
        if path.exists():
            try:
                return FaissStore.load(path)
            except RuntimeError:  # removed by a newer generation while we opened it: rebuild
                pass
        ids, vectors = self.meta.all_segments()
        store = FaissStore.build(ids, vectors, kind=self.store_spec.kind)
        if self.read_only:
            return store
        try:
            store.save(path)
            for old in self.dir.glob("vectors-*.faiss"):
                if old != path and _generation_of(old) < generation:
                    old.unlink(missing_ok=True)
        except (OSError, IndexStoreError) as exc:  # a derived file: search goes on, the next process rebuilds it
            logger.warning("%s; searching from memory", exc)
        return store

    # -- search ----------------------------------------------------------------------------------------------
    @property
    def autocast_precision(self) -> str:
        """What the encoders run under on this index's device ("fp32": no autocast); see `run_dtypes`."""
        return run_dtypes(self.model_spec.precision, self.device)[1]

    def _autocast(self) -> torch.autocast:
        dtype = DTYPES[self.autocast_precision]
        return torch.autocast(torch.device(self.device).type, dtype=dtype, enabled=dtype != torch.float32)

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        model = self.model
        with torch.inference_mode(), self._autocast():
            return model.embed_texts(texts).float().cpu().numpy()

    def text_vector(self, text: str) -> np.ndarray:
        """One query's embedding (E,), remembered for the last `_TEXT_VECTORS_KEPT` queries: the web page asks for
        the same text again for its hits' timelines and for every page it turns."""
        with self._lock:
            vector = self._text_vectors.get(text)
            if vector is not None:
                self._text_vectors.move_to_end(text)
                return vector
        vector = self.embed_texts([text])[0]
        vector.flags.writeable = False  # shared by every caller
        with self._lock:
            self._text_vectors[text] = vector
            while len(self._text_vectors) > _TEXT_VECTORS_KEPT:
                self._text_vectors.popitem(last=False)
        return vector

    def embed_frames(self, frames: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
        """Frame embeddings (B, T, D) + mask (B, T) -> video vectors (B, E) float32."""
        model = self.model
        with torch.inference_mode(), self._autocast():
            device = model.logit_scale.device
            return model.embed_video_features(frames.to(device), mask.to(device)).float().cpu().numpy()

    def embed_clip(self, path: str | Path) -> np.ndarray:
        """Decode and embed a file that is not part of the index (an uploaded query clip) -> (E,).

        Nothing is cached: query clips are transient and must not grow the index's feature cache.
        """
        model = self.model
        spec = frame_spec_for(model.backbone, self.model_spec.num_frames)
        decoded = decode_video("query", path, spec)
        if isinstance(decoded, DecodeFailure):
            raise decoded.error
        frames = encode_pixels(model.backbone, decoded.pixels[None], self.autocast_precision)  # (1, T, D)
        return self.embed_frames(frames, decoded.mask[None])[0]

    def search_vectors(
        self, queries: np.ndarray, k: int = 10, offset: int = 0, accept: Accept | None = None
    ) -> list[list[Hit]]:
        """Videos ranked by their best segment (its start/end reported), hits `offset .. offset + k`.

        `accept` filters hits (a path prefix, a minimum score); the search widens until enough pass.
        """
        queries = np.atleast_2d(queries)
        with self.meta.snapshot():
            store = self._store_for_snapshot()
            return [self._search_one(store, q, offset + k, accept)[offset:] for q in queries]

    def _search_one(self, store: VectorStore, query: np.ndarray, wanted: int, accept: Accept | None) -> list[Hit]:
        total = len(store)
        fetch = min(total, max(wanted * 4, wanted + 16))
        while True:
            scores, ids = store.search(query[None], fetch)
            hits = self._merge(scores[0], ids[0], accept)
            if len(hits) >= wanted or fetch >= total:
                return hits[:wanted]
            fetch = min(total, fetch * 4)

    def _merge(self, scores: np.ndarray, ids: np.ndarray, accept: Accept | None) -> list[Hit]:
        """Best segment per video, in score order; segments or videos gone from this snapshot are skipped."""
        seg = self.meta.segments(int(i) for i in ids if i >= 0)
        records = self.meta.videos_by_id(v for v, _, _ in seg.values())
        hits: dict[int, Hit | None] = {}
        for score, sid in zip(scores, ids, strict=True):
            if int(sid) not in seg:
                continue
            video_id, start, end = seg[int(sid)]
            if video_id in hits or video_id not in records:
                continue
            hit = Hit(records[video_id].path, float(score), video_id, start, end)
            hits[video_id] = hit if accept is None or accept(hit) else None
        return [h for h in hits.values() if h is not None]

    def search_text(self, text: str, k: int = 10, offset: int = 0, accept: Accept | None = None) -> list[Hit]:
        return self.search_vectors(self.text_vector(text), k, offset, accept)[0]

    def video_vector(self, video_id: int) -> np.ndarray:
        """The whole-video query vector of an indexed video (mean of its segment vectors, renormalised)."""
        v = self.meta.video_vectors(video_id).mean(0)
        return v / max(float(np.linalg.norm(v)), 1e-12)

    def stats(self) -> dict:
        with self.meta.snapshot():
            videos, segments = self.meta.count()
            return {
                "videos": videos,
                "segments": segments,
                "failures": len(self.meta.failures()),
                "generation": self.meta.generation(),
                "model": self.model_spec.to_dict(),
                "store": self.store_kind,
                "windows": self.config.get("windows"),
                "text": list(self.text_sources),
                "text_spans": self.meta.text_span_count(),
            }

    def close(self) -> None:
        with self._lock:
            if self._external_store is not None:
                self._external_store.close()
                self._external_store = None
        self.meta.close()


def _new_index_id() -> str:
    return uuid.uuid4().hex


# ModelSpec fields that may name local files: the backbone (a directory), weights, checkpoint, and pretrained
# (a tag, or a weights file).
_PATH_FIELDS = ("backbone", "weights", "checkpoint", "pretrained")


def _local_path(field: str, value: str | None) -> tuple[str, Path] | None:
    """(prefix, path) when a spec field names a local file or directory; None for names, tags and hub ids."""
    if not value:
        return None
    if field == "backbone":
        directory = backbone_directory(value)
        prefix = LOCAL_DIR_PREFIX if value.startswith(LOCAL_DIR_PREFIX) else ""
        return None if directory is None else (prefix, directory)
    if field == "pretrained" and not (Path(value).is_absolute() or len(Path(value).parts) > 1 or Path(value).is_file()):
        return None  # an open_clip tag such as "openai"
    return "", Path(value)


def _portable(spec: ModelSpec, index_dir: Path) -> ModelSpec:
    """The spec as index.json stores it: a local path next to the index (under the index directory's parent)
    relative to the index directory, so index and model can move together; any other path absolute. Either
    way the index works from any working directory."""
    base = index_dir.resolve()
    changes = {}
    for field in _PATH_FIELDS:
        local = _local_path(field, getattr(spec, field))
        if local is None or not local[1].exists():
            continue
        prefix, path = local[0], local[1].resolve()
        stored = os.path.relpath(path, base) if path.is_relative_to(base.parent) else str(path)
        changes[field] = prefix + stored
    return replace(spec, **changes)


def _candidates(value: str, index_dir: Path) -> list[Path]:
    """Where a stored path may be: relative paths are relative to the index directory, or (indexes written
    before that rule) to the working directory."""
    path = Path(value)
    if path.is_absolute():
        return [path]
    return [(index_dir / path).resolve(), path.resolve()]


def _located(spec: ModelSpec, index_dir: Path) -> ModelSpec:
    """The spec with index.json's local paths made absolute (the first candidate that exists)."""
    changes = {}
    for field in _PATH_FIELDS:
        local = _local_path(field, getattr(spec, field))
        if local is None:
            continue
        candidates = _candidates(str(local[1]), index_dir)
        found = next((c for c in candidates if c.exists()), candidates[0])
        changes[field] = local[0] + str(found)
    return replace(spec, **changes)


def _check_model_paths(stored: dict, index_dir: Path) -> None:
    """A moved index whose model was left behind says where it looked, instead of blaming the model's name."""
    spec = ModelSpec.from_dict(stored)
    for field in _PATH_FIELDS:
        local = _local_path(field, getattr(spec, field))
        if local is None:
            continue
        candidates = _candidates(str(local[1]), index_dir)
        if not any(c.exists() for c in candidates):
            looked = " or ".join(repr(str(c)) for c in candidates)
            raise IndexStoreError(
                f"{index_dir / 'index.json'} names the model {field} {str(local[1])!r}, which is not there: looked "
                f"for {looked}; move the model together with the index (paths next to the index are stored "
                f"relative to it) or rebuild the index"
            )


def _check_weights(spec: ModelSpec, index_dir: Path) -> None:
    """An index built before random weights had to be asked for: say so, rather than suggest a flag to search."""
    given = spec.pretrained or spec.weights or spec.checkpoint or spec.random_init
    if names_architecture(spec.backbone) and not given:
        raise IndexStoreError(
            f"{index_dir / 'index.json'} names the architecture {spec.backbone!r} with no weights: the index was "
            "built with random weights, so its vectors are noise; rebuild it with --pretrained or --weights"
        )


def _windowing_dict(windowing: Windowing | None) -> dict | None:
    if windowing is None:
        return None
    if windowing.segments == "windows":  # as indexes made before shots were recorded
        return {"window": windowing.window, "stride": windowing.stride}
    return {"window": windowing.window, "stride": windowing.stride, "segments": windowing.segments}


def _generation_of(path: Path) -> int:
    try:
        return int(path.stem.split("-", 1)[1])
    except (IndexError, ValueError):
        return -1


def _writable(*paths: Path) -> bool:
    return all(os.access(p, os.W_OK) for p in paths if p.exists())


def _write_json(path: Path, data: dict) -> None:
    try:
        atomic_write(path, json.dumps(data, indent=2))
    except OSError as exc:
        raise IndexStoreError(f"cannot write {path}: {exc.strerror or exc}") from exc
