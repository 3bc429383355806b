"""Frame-feature cache: decode and encode each video once, reuse the frame embeddings everywhere.

Layout under `root/<namespace>/`: `shard_*.safetensors` files, each holding `<key>/frames (T, D)`,
`<key>/mask (T,)` and `<key>/timestamps (T,)` for up to `shard_size` videos, and `index.sqlite` mapping
key -> shard. The namespace is a hash of the model fingerprint and the frame-sampling spec, and each key a
hash of the video's bytes and the sampled window, so a changed model, spec or file never serves stale
features. Shards are written to a temporary name and renamed before their index rows are committed: a killed
run loses at most the unflushed shard and never leaves a key pointing at a partial file.
"""

from __future__ import annotations

import hashlib
import sqlite3
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open

from vitr.errors import IndexStoreError
from vitr.files import save_safetensors

_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class CachedFeatures:
    frames: torch.Tensor  # (T, D) unnormalised frame embeddings
    mask: torch.Tensor  # (T,) 1.0 on real frames
    timestamps: torch.Tensor  # (T,) seconds of each sampled frame


def file_digest(path: str | Path) -> str:
    """sha256 of a file's bytes: the identity of a video, whatever its name or mtime."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def feature_key(digest: str, start: float | None = None, end: float | None = None) -> str:
    """Cache key of one sampled window of one video's content."""
    if start is None and end is None:
        return digest[:40]
    return hashlib.sha256(f"{digest}:{start}:{end}".encode()).hexdigest()[:40]


def namespace_for(model_fingerprint: str, spec_repr: str) -> str:
    """Directory name for features of one model under one frame-sampling spec."""
    return hashlib.sha256(f"{model_fingerprint}|{spec_repr}".encode()).hexdigest()[:16]


class FeatureCache:
    """Read and append frame embeddings keyed by video content; safe to reopen after a crash."""

    def __init__(self, root: str | Path, namespace: str) -> None:
        self.dir = Path(root) / namespace
        self.dir.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.dir / "index.sqlite", timeout=30)
        self._db.execute("CREATE TABLE IF NOT EXISTS features (key TEXT PRIMARY KEY, shard TEXT NOT NULL)")
        self._db.commit()
        self._open_shards: dict[str, object] = {}

    def __contains__(self, key: str) -> bool:
        return self._db.execute("SELECT 1 FROM features WHERE key = ?", (key,)).fetchone() is not None

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM features").fetchone()[0]

    def keys(self) -> list[str]:
        return [k for (k,) in self._db.execute("SELECT key FROM features ORDER BY key")]

    def missing(self, keys: Iterable[str]) -> list[str]:
        """The keys (in the given order, without repeats) that still need extraction."""
        seen: set[str] = set()
        out = []
        for k in keys:
            if k not in seen and k not in self:
                out.append(k)
            seen.add(k)
        return out

    def _shard(self, name: str):  # noqa: ANN202  (safetensors handle)
        handle = self._open_shards.get(name)
        if handle is None:
            path = self.dir / name
            if not path.exists():
                raise IndexStoreError(f"feature cache {self.dir} lists shard {name} but the file is gone; delete "
                                      f"{self.dir} to rebuild the cache")
            handle = safe_open(str(path), framework="pt")
            self._open_shards[name] = handle
        return handle

    def get(self, key: str) -> CachedFeatures | None:
        row = self._db.execute("SELECT shard FROM features WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        shard = self._shard(row[0])
        return CachedFeatures(*(shard.get_tensor(f"{key}/{part}") for part in ("frames", "mask", "timestamps")))

    def get_many(self, keys: Iterable[str]) -> dict[str, CachedFeatures]:
        out = {}
        for k in keys:
            feats = self.get(k)
            if feats is None:
                raise KeyError(f"no cached features for key {k} in {self.dir}")
            out[k] = feats
        return out

    def stacked(self, keys: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, T, D) frames and (N, T) masks for `keys`, in order (all videos share T by construction)."""
        found = self.get_many(keys)
        feats = [found[k] for k in keys]
        if not feats:
            return torch.empty(0), torch.empty(0)
        return torch.stack([f.frames.float() for f in feats]), torch.stack([f.mask.float() for f in feats])

    def writer(self, shard_size: int = 256) -> CacheWriter:
        return CacheWriter(self, shard_size)

    def _commit_shard(self, items: dict[str, CachedFeatures]) -> None:
        name = f"shard_{uuid.uuid4().hex[:12]}.safetensors"
        tensors = {}
        for key, f in items.items():
            tensors[f"{key}/frames"] = f.frames.contiguous()
            tensors[f"{key}/mask"] = f.mask.float().contiguous()
            tensors[f"{key}/timestamps"] = f.timestamps.float().contiguous()
        save_safetensors(self.dir / name, tensors)
        with self._db:
            self._db.executemany("INSERT OR IGNORE INTO features (key, shard) VALUES (?, ?)",
                                 [(k, name) for k in items])

    def close(self) -> None:
        self._open_shards.clear()
        self._db.close()


class CacheWriter:
    """Buffers features and commits them shard by shard; use as a context manager so the tail is flushed."""

    def __init__(self, cache: FeatureCache, shard_size: int) -> None:
        self.cache = cache
        self.shard_size = shard_size
        self._buffer: dict[str, CachedFeatures] = {}

    def add(self, key: str, features: CachedFeatures) -> None:
        if key in self.cache or key in self._buffer:
            return
        self._buffer[key] = features
        if len(self._buffer) >= self.shard_size:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            self.cache._commit_shard(self._buffer)
            self._buffer = {}

    def __enter__(self) -> CacheWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()
