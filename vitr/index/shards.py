"""Sharded indexing: each rank (a torchrun process, a machine) indexes a deterministic share of a folder into
its own index directory; `merge_indexes` then joins the shard indexes into one.

The share of a file depends only on its path relative to the folder, so every rank agrees on the split
without talking to the others, and a re-run of one rank redoes exactly its own files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from vitr.errors import ConfigError, IndexStoreError
from vitr.index.metadata import IndexedVideo
from vitr.index.store import parse_store_spec
from vitr.index.text_tracks import TextTrack
from vitr.index.video_index import VideoIndex, Windowing, read_index_config

_MERGE_BATCH = 256


def parse_shard(text: str) -> tuple[int, int]:
    """'RANK/WORLD' (e.g. '0/4') -> (rank, world)."""
    try:
        rank, world = (int(x) for x in text.split("/"))
    except ValueError as e:
        raise ConfigError(f"--shard must look like RANK/WORLD, e.g. 0/4; got {text!r}") from e
    if not 0 <= rank < world:
        raise ConfigError(f"--shard {text}: need 0 <= RANK < WORLD")
    return rank, world


def shard_from_env(env: Mapping[str, str] | None = None) -> tuple[int, int] | None:
    """(RANK, WORLD_SIZE) as torchrun sets them, or None outside a multi-process launch."""
    env = os.environ if env is None else env
    if "RANK" not in env or "WORLD_SIZE" not in env:
        return None
    return parse_shard(f"{env['RANK']}/{env['WORLD_SIZE']}")


def shard_dir(index_dir: str | Path, shard: tuple[int, int]) -> Path:
    """Where rank `shard[0]` of `shard[1]` writes its index: `<index_dir>/shard-<rank>-of-<world>`."""
    return Path(index_dir) / f"shard-{shard[0]}-of-{shard[1]}"


def merge_indexes(target: str | Path, sources: Sequence[str | Path], store: str | None = None) -> VideoIndex:
    """Copy every video, segment vector and failure of `sources` into the index at `target`.

    All sources must have been built with the same model and window settings (their vectors are
    comparable only then). A video in several sources keeps the copy of the last one. `store` (a `--store`
    value) is the merged index's vector store, by default the first source's; a Milvus store is filled
    before returning, so replicas opening the merged index find its collection complete.
    """
    if store is not None:
        parse_store_spec(store)  # a clear error before any work
        have = (read_index_config(target) or {"store": store}).get("store", "flat")
        if have != store:
            raise IndexStoreError(f"{target} already exists with store {have!r}, not {store!r}")
    if not sources:
        raise ConfigError("give at least one shard index to merge")
    configs = [read_index_config(s) for s in sources]
    for source, config in zip(sources, configs, strict=True):
        if config is None:
            raise IndexStoreError(f"{source} is not a vitr index (no index.json)")
        if (config["model"], config.get("windows")) != (configs[0]["model"], configs[0].get("windows")):
            raise IndexStoreError(
                f"{source} was built with another model or window setting than {sources[0]}; "
                "only indexes of the same model can be merged"
            )
    first = VideoIndex(sources[0])
    windows = configs[0].get("windows")
    merged = VideoIndex.create(
        target,
        first.model_spec,
        store=store or configs[0].get("store", "flat"),
        windowing=Windowing(**windows) if windows else None,
    )
    merged.set_text_sources(first.text_sources)
    if "text_options" in first.config:  # how OCR and speech were read, so a rerun on the merged index reads alike
        merged.set_text_options(first.text_options)
    first.close()
    for source in sources:
        shard = VideoIndex(source)
        for root in shard.meta.roots():
            merged.meta.add_root(root)
        rows: list[IndexedVideo] = []
        texts: dict[str, TextTrack] = {}
        for path, record in sorted(shard.meta.videos().items()):
            segments = [(s.start, s.end, s.vector) for s in shard.meta.video_segments(record.id)]
            rows.append((path, record.size, record.mtime_ns, record.digest, record.duration, segments))
            texts[path] = shard.meta.text_track(record.id)
            if len(rows) >= _MERGE_BATCH:
                merged.meta.commit_batch(rows, texts=texts)
                rows, texts = [], {}
        failed = [(path, size, mtime_ns, reason) for path, (size, mtime_ns, reason) in shard.meta.failures().items()]
        merged.meta.commit_batch(rows, failed=failed, texts=texts)
        shard.close()
    if merged.store_spec.kind == "milvus":
        merged.store()
    return merged
