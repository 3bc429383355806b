"""Incremental, resumable indexing of a folder: add new or changed videos, drop deleted ones, skip the rest.

A video is unchanged when its size and mtime match what was indexed; a file that failed before is retried
only once it changes. Work is committed every `commit_every` videos, so a killed run resumes where it stopped.
Long videos can be indexed as overlapping windows, as shots, or as shots cut into windows (moment search): one
segment per window or shot, each with its start and end, so a search reports where in the video the match is.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from safetensors import SafetensorError
from tqdm.auto import tqdm

from vitr.data.cache import FeatureCache
from vitr.data.types import VideoItem
from vitr.errors import ConfigError, IndexStoreError, VideoDecodeError
from vitr.index.metadata import IndexedVideo
from vitr.index.refine import Refinement, refine_hits
from vitr.index.text_tracks import TextOptions, TextReader, TextTrack, find_sidecars
from vitr.index.video_index import Hit, VideoIndex, Windowing
from vitr.inference.extract import extract_features, frame_spec_for, open_cache
from vitr.video.decode import probe
from vitr.video.shots import detect_shots

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
    text_read: int = 0  # videos whose text tracks were (re)read or dropped: new or changed videos, changed sidecars
    text_failed: dict[str, str] = field(default_factory=dict)  # sidecar path -> reason (this run's and earlier)
    # video path -> {source -> reason}: OCR or speech that failed on a video this run (the next run retries it)
    source_failed: dict[str, dict[str, str]] = field(default_factory=dict)
    text_paths: set[str] = field(default_factory=set, repr=False)  # the videos counted in text_read

    def summary(self) -> str:
        text = f"; text of {self.text_read} read" if self.text_read else ""
        if self.text_failed:
            text += f", {len(self.text_failed)} subtitle files unusable"
        if self.source_failed:
            text += f", OCR or speech failed on {len(self.source_failed)} videos"
        return (
            f"added {self.added}, updated {self.updated}, removed {self.removed}, unchanged {self.unchanged}, "
            f"failed {len(self.failed)}{text}"
        )


def scan_videos(root: str | Path, shard: tuple[int, int] | None = None) -> dict[str, os.stat_result]:
    """Every video file below `root` (by extension), as absolute path -> stat.

    Symbolic links are followed only when they stay inside `root`: a link to a file elsewhere is never
    indexed, so a server of this index can never be made to read outside the folder. `shard=(rank, world)`
    keeps the files whose path relative to `root` hashes to `rank`, the same split on every machine.
    """
    root = Path(root).resolve()
    found = {}
    for dirpath, _dirs, files in os.walk(root):  # does not descend into linked directories
        for name in files:
            if Path(name).suffix.lower() not in VIDEO_EXTENSIONS or name.startswith("."):
                continue
            path = Path(dirpath) / name
            if not path.resolve().is_relative_to(root) or not path.is_file():
                continue
            if shard is not None and shard_of(path.relative_to(root).as_posix(), shard[1]) != shard[0]:
                continue
            found[str(path)] = path.stat()
    return found


def shard_of(name: str, world: int) -> int:
    """A stable shard number for a file name (FNV-1a, independent of Python's per-process hash seed)."""
    h = 0xCBF29CE484222325
    for byte in name.encode():
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h % world


def _windows_of(path: str, windowing: Windowing | None) -> list[VideoItem]:
    """The items to extract for one video: the whole file, or one per window or shot (keyed separately in the
    cache by start and end, so a shot and a window that start together are never confused)."""
    if windowing is None:
        return [VideoItem(path, path)]
    duration = probe(path).duration
    cuts = detect_shots(path) if windowing.uses_shots else None
    spans = windowing.spans(duration, cuts)
    if not windowing.uses_shots:
        return [VideoItem(f"{path}#{start:.3f}", path, start, end) for start, end in spans]
    return [VideoItem(f"{path}#{start:.3f}-{end:.3f}", path, start, end) for start, end in spans]


def make_windowing(segments: str | None, window: float | None, stride: float | None) -> Windowing:
    """The Windowing asked for by `--segments/--window/--stride` (stride defaults to half the window)."""
    if stride is not None and window is None:
        raise ConfigError("--stride needs --window")
    if segments in (None, "windows", "shots+windows") and window is None:
        raise ConfigError(f"--segments {segments or 'windows'} needs --window SECONDS")
    if window is not None and stride is None:
        stride = window / 2
    return Windowing(window, stride, segments or "windows")


def update_index(
    index: VideoIndex,
    root: str | Path,
    commit_every: int = 64,
    batch_size: int = 16,
    workers: int = 2,
    progress: bool = True,
    after_commit: Callable[[int], None] | None = None,
    window: float | None = None,
    stride: float | None = None,
    segments: str | None = None,
    shard: tuple[int, int] | None = None,
    only: Collection[str | Path] | None = None,
    text_sources: Sequence[str] | None = None,
    text_options: TextOptions | None = None,
    decoder: str = "pyav",
) -> IndexReport:
    """Bring `index` in line with the videos under `root` (other roots' videos are left alone).

    window/stride (seconds) cut each video into overlapping windows; `segments` ("windows", "shots" or
    "shots+windows", see Windowing; "windows" where only a window is given) cuts it by shots instead or as well.
    They are recorded in index.json and later runs reuse them. stride defaults to half the window.
    `shard=(rank, world)` indexes one shard.
    `only` restricts the index to these files of `root` (the lab's test split): the root's other videos are
    treated as absent, so they are never indexed and dropped if they were.
    `text_sources` (None: those the index was made with, subtitles for a new one) are recorded in index.json; a
    video's text is re-read when it changes or when its sidecar files do, and a text source it lacks is dropped.
    A source newly enabled is read for every video, one that failed on a video (OCR, speech) is retried there, and
    nothing else is read again. `text_options` (OCR interval, speech engine) are recorded in index.json too.
    `decoder` ("pyav" or "torchcodec", which decodes on the index's device) decodes the new videos; its frame
    features are cached apart from PyAV's.
    """
    if window is not None or segments is not None:
        index.set_windowing(make_windowing(segments, window, stride))
    windowing = index.windowing
    root = Path(root).resolve()
    index.meta.add_root(str(root))
    on_disk = scan_videos(root, shard)
    if only is not None:
        wanted = {str(Path(p).resolve()) for p in only}
        on_disk = {p: st for p, st in on_disk.items() if p in wanted}
    indexed = {p: r for p, r in index.meta.videos().items() if Path(p).is_relative_to(root)}
    failures = {p: f for p, f in index.meta.failures().items() if Path(p).is_relative_to(root)}
    if shard is not None:  # videos of other shards are not this run's business
        mine = {
            p
            for p in set(indexed) | set(failures)
            if shard_of(Path(p).relative_to(root).as_posix(), shard[1]) == shard[0]
        }
        indexed = {p: r for p, r in indexed.items() if p in mine}
        failures = {p: f for p, f in failures.items() if p in mine}
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

    index.set_text_sources(index.text_sources if text_sources is None else tuple(text_sources))
    sources = index.text_sources
    if text_options is not None or {"ocr", "asr"} & set(sources):  # the index says how its text was read
        index.set_text_options(text_options or index.text_options)
    sidecars = {p: find_sidecars(p, root) if "subtitles" in sources else {} for p in on_disk}
    reader = TextReader(index.text_options)
    queued = set(todo)
    _update_text(index, [p for p in on_disk if p in indexed and p not in queued], sidecars, report, commit_every,
                 reader, progress)

    model = index.model
    spec = frame_spec_for(
        model.backbone, index.model_spec.num_frames, decoder=decoder, decode_device=str(index.device)
    )
    with _cache_writes(index.dir / "cache"):
        cache = open_cache(index.dir / "cache", model.backbone, spec)
    bar = tqdm(total=len(todo), desc=f"indexing {root.name}", unit="video", disable=not progress or not todo)
    try:
        for start in range(0, len(todo), commit_every):
            chunk = todo[start : start + commit_every]
            windows: dict[str, list[VideoItem]] = {}
            reasons: dict[str, str] = {}
            for path in chunk:
                try:
                    windows[path] = _windows_of(path, windowing)
                except VideoDecodeError as e:
                    reasons[path] = e.reason
            items = [item for path_items in windows.values() for item in path_items]
            with _cache_writes(index.dir / "cache"):
                result = extract_features(
                    model.backbone,
                    items,
                    cache,
                    spec,
                    batch_size=batch_size,
                    workers=workers,
                    precision=index.autocast_precision,
                    progress=False,
                )
            for path, path_items in windows.items():
                failed_items = [item.video_id for item in path_items if item.video_id in result.failures]
                if failed_items:
                    reasons[path] = result.failures[failed_items[0]]
            rows: list[IndexedVideo] = []
            ok = [p for p in chunk if p not in reasons]
            if ok:
                keys = [result.keys[item.video_id] for p in ok for item in windows[p]]
                frames, mask = cache.stacked(keys)  # (N, T, D), (N, T) over every window of every video
                vectors = iter(index.embed_frames(frames, mask))
                for path in ok:
                    st = on_disk[path]
                    path_items = windows[path]
                    segments = [(item.start, item.end, next(vectors)) for item in path_items]
                    whole = result.keys[path_items[0].video_id]
                    rows.append(
                        (path, st.st_size, st.st_mtime_ns, whole, _duration(cache, result.keys, path_items), segments)
                    )
                    if path in indexed:
                        report.updated += 1
                    else:
                        report.added += 1
            failed = []
            for path, reason in reasons.items():
                st = on_disk[path]
                failed.append((path, st.st_size, st.st_mtime_ns, reason))
                report.failed[path] = reason
            texts = {}
            for path, *_ in rows:  # subtitles now, with the video; OCR and speech, slower, committed as they come
                texts[path] = reader.read(path, [s for s in sources if s == "subtitles"], sidecars[path])
                _note_text(report, path, texts[path])
            index.meta.commit_batch(rows, failed=failed, removed=[p for p in reasons if p in indexed], texts=texts)
            slow = [s for s in sources if s != "subtitles"]
            if slow:
                _read_text(index, {path: (slow, []) for path, *_ in rows}, sidecars, report, commit_every, reader)
            bar.update(len(chunk))
            if after_commit is not None:
                after_commit(start + len(chunk))
    finally:
        bar.close()  # before any error is printed, so it starts a line of its own
    return report


def _update_text(
    index: VideoIndex,
    unchanged: list[str],
    sidecars: dict[str, dict[str, os.stat_result]],
    report: IndexReport,
    commit_every: int,
    reader: TextReader,
    progress: bool = False,
) -> None:
    """Bring the text of unchanged videos in line with the index's sources: read the subtitles of a video whose
    sidecar files were added, changed or removed (its streams again too, which a re-read would otherwise drop),
    read a newly enabled source, retry OCR or speech that failed, and drop a source no longer enabled. A sidecar
    that failed before and has not changed is reported again, not retried."""
    enabled = index.text_sources
    stored = index.meta.text_files()
    runs = index.meta.text_runs()
    work: dict[str, tuple[list[str], list[str]]] = {}  # path -> (sources to read, sources to drop)
    for path in unchanged:
        have = runs.get(path, {})
        files = stored.get(path, {})
        read = [s for s in enabled if s != "subtitles" and (s not in have or have[s] is not None)]
        if "subtitles" in enabled:
            now = {p: (st.st_size, st.st_mtime_ns) for p, st in sidecars[path].items()}
            if "subtitles" not in have or {p: v[:2] for p, v in files.items()} != now:
                read.insert(0, "subtitles")
            else:
                report.text_failed.update({p: v[2] for p, v in files.items() if v[2] is not None})
        dropped = [s for s in have if s not in enabled]
        if read or dropped:
            work[path] = (read, dropped)
    _read_text(index, work, sidecars, report, commit_every, reader, progress)


_TEXT_COMMIT_S = 30.0  # OCR and speech are slow: what they read is committed at least this often


def _read_text(
    index: VideoIndex,
    work: dict[str, tuple[list[str], list[str]]],
    sidecars: dict[str, dict[str, os.stat_result]],
    report: IndexReport,
    commit_every: int,
    reader: TextReader,
    progress: bool = False,
) -> None:
    """Read (and drop) the given sources of each video (path -> (sources to read, sources to drop)), committing
    every `commit_every` videos or `_TEXT_COMMIT_S` seconds, so a killed run keeps what it read."""
    paths = sorted(work)
    bar = tqdm(total=len(paths), desc="reading text", unit="video", disable=not progress or not paths)
    texts: dict[str, TextTrack] = {}
    since = time.monotonic()
    try:
        for path in paths:
            read, dropped = work[path]
            texts[path] = reader.read(path, read, sidecars[path], dropped)
            _note_text(report, path, texts[path])
            bar.update()
            if len(texts) >= commit_every or time.monotonic() - since > _TEXT_COMMIT_S:
                index.meta.commit_batch([], texts=texts)
                texts, since = {}, time.monotonic()
        if texts:
            index.meta.commit_batch([], texts=texts)
    finally:
        bar.close()


def _note_text(report: IndexReport, path: str, track: TextTrack) -> None:
    report.text_paths.add(path)
    report.text_read = len(report.text_paths)
    report.text_failed.update(track.failures)
    if track.source_failures:
        report.source_failed[path] = track.source_failures


@contextmanager
def _cache_writes(cache_dir: Path) -> Iterator[None]:
    """A full disk, read-only file system or missing permission while the feature cache is written becomes one
    clear error naming the cache; videos committed before it stay in the index, and a rerun resumes."""
    try:
        yield
    except (OSError, SafetensorError, sqlite3.OperationalError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise IndexStoreError(f"cannot write the feature cache under {cache_dir}: {reason}") from exc


def _duration(cache: FeatureCache, keys: dict[str, str], items: list[VideoItem]) -> float | None:
    """Seconds up to the last sampled frame (a window's end when windowed)."""
    if items[-1].end is not None:
        return float(items[-1].end)
    timestamps = cache.get(keys[items[0].video_id]).timestamps
    finite = timestamps[~timestamps.isnan()]
    return float(finite.max()) if finite.numel() else None


def search_by_video(index: VideoIndex, path: str | Path, k: int = 10, exclude_self: bool = True,
                    refine: Refinement | None = None) -> list[Hit]:
    """Videos most similar to `path`: its stored vector if indexed, else decoded and embedded now; `refine`
    sharpens the hits' moments (vitr.index.refine)."""
    resolved = str(Path(path).resolve())
    record = index.meta.video_by_path(resolved)
    query = index.video_vector(record.id) if record is not None else index.embed_clip(resolved)
    hits = index.search_vectors(query[None], k + int(exclude_self))[0]
    if exclude_self:
        hits = [h for h in hits if h.path != resolved]
    return hits[:k] if refine is None else refine_hits(index, hits[:k], query, refine)
