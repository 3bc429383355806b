"""Incremental, resumable indexing of a folder: add new or changed videos, drop deleted ones, skip the rest.

A video is unchanged when its size and mtime match what was indexed; a file that failed before is retried
only once it changes. Work is committed every `commit_every` videos, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from vitr.data.types import VideoItem
from vitr.errors import VideoDecodeError
from vitr.index.video_index import Hit, VideoIndex
from vitr.model.extract import extract_features, frame_spec_for, open_cache

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".ts", ".ogv"}
)


@dataclass
class IndexReport:
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # path -> reason (this run's and earlier unchanged ones)

    def summary(self) -> str:
        return (f"added {self.added}, updated {self.updated}, removed {self.removed}, unchanged {self.unchanged}, "
                f"failed {len(self.failed)}")


def scan_videos(root: str | Path) -> dict[str, os.stat_result]:
    """Every video file below `root` (by extension), as absolute path -> stat."""
    root = Path(root).resolve()
    found = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if Path(name).suffix.lower() in VIDEO_EXTENSIONS and not name.startswith("."):
                path = os.path.join(dirpath, name)
                found[path] = os.stat(path)
    return found


def _embed_frames(index: VideoIndex, frames: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    with torch.inference_mode():
        model = index.model
        device = model.logit_scale.device
        return model.embed_video_features(frames.to(device), mask.to(device)).float().cpu().numpy()


def update_index(
    index: VideoIndex,
    root: str | Path,
    commit_every: int = 64,
    batch_size: int = 16,
    workers: int = 2,
    progress: bool = True,
    after_commit: Callable[[int], None] | None = None,
) -> IndexReport:
    """Bring `index` in line with the videos under `root` (other roots' videos are left alone)."""
    root = Path(root).resolve()
    on_disk = scan_videos(root)
    indexed = {p: r for p, r in index.meta.videos().items() if Path(p).is_relative_to(root)}
    failures = {p: f for p, f in index.meta.failures().items() if Path(p).is_relative_to(root)}
    report = IndexReport()

    todo: list[str] = []
    for path, st in sorted(on_disk.items()):
        record = indexed.get(path)
        if record is not None and (record.size, record.mtime_ns) == (st.st_size, st.st_mtime_ns):
            report.unchanged += 1
        elif path in failures and failures[path][:2] == (st.st_size, st.st_mtime_ns):
            report.failed[path] = failures[path][2]
        else:
            todo.append(path)
    removed = sorted((set(indexed) | set(failures)) - set(on_disk))
    if removed:
        index.meta.commit_batch([], removed=removed)
        report.removed = len([p for p in removed if p in indexed])

    model = index.model
    spec = frame_spec_for(model.backbone, index.model_spec.num_frames)
    cache = open_cache(index.dir / "cache", model.backbone, spec)
    bar = tqdm(total=len(todo), desc=f"indexing {root.name}", unit="video", disable=not progress or not todo)
    for start in range(0, len(todo), commit_every):
        chunk = todo[start : start + commit_every]
        items = [VideoItem(path, path) for path in chunk]
        result = extract_features(model.backbone, items, cache, spec, batch_size=batch_size, workers=workers,
                                  precision=index.model_spec.precision, progress=False)
        rows, failed = [], []
        ok = [p for p in chunk if p in result.keys]
        if ok:
            frames, mask = cache.stacked([result.keys[p] for p in ok])
            vectors = _embed_frames(index, frames, mask)
            for path, vec in zip(ok, vectors, strict=True):
                st = on_disk[path]
                digest_key = result.keys[path]
                timestamps = cache.get(digest_key).timestamps
                duration = float(timestamps.max()) if timestamps.numel() else None
                rows.append((path, st.st_size, st.st_mtime_ns, digest_key, duration, [(None, None, vec)]))
                if path in indexed:
                    report.updated += 1
                else:
                    report.added += 1
        for path, reason in result.failures.items():
            st = on_disk[path]
            failed.append((path, st.st_size, st.st_mtime_ns, reason))
            report.failed[path] = reason
        index.meta.commit_batch(rows, failed=failed, removed=[p for p in result.failures if p in indexed])
        bar.update(len(chunk))
        if after_commit is not None:
            after_commit(start + len(chunk))
    bar.close()
    return report


def search_by_video(index: VideoIndex, path: str | Path, k: int = 10, exclude_self: bool = True) -> list[Hit]:
    """Videos most similar to `path`: its stored vector if indexed, else decoded and embedded now."""
    resolved = str(Path(path).resolve())
    record = index.meta.video_by_path(resolved)
    if record is not None:
        query = index.video_vector(record.id)
    else:
        model = index.model
        spec = frame_spec_for(model.backbone, index.model_spec.num_frames)
        cache = open_cache(index.dir / "cache", model.backbone, spec)
        result = extract_features(model.backbone, [VideoItem(resolved, resolved)], cache, spec, progress=False)
        if resolved in result.failures:
            raise VideoDecodeError(resolved, result.failures[resolved])
        frames, mask = cache.stacked([result.keys[resolved]])
        query = _embed_frames(index, frames, mask)[0]
    hits = index.search_vectors(query[None], k + int(exclude_self))[0]
    if exclude_self:
        hits = [h for h in hits if h.path != resolved]
    return hits[:k]
