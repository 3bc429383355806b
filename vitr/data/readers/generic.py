"""A user's own benchmark: one CSV or JSONL file of (video, caption) rows.

Columns / keys: `video` (a path, relative to the file's folder or to `video_dir`, or absolute), `caption`, and
optionally `start` and `end` (seconds) and `tags` (semicolon-separated in CSV, a list or that string in JSONL).
A video may appear in several rows, one per caption. Rows naming the same file with different segments are
different videos; their id is the path plus a media-fragment suffix, `clip.mp4#t=2,5`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from vitr.data.readers.files import read_csv, require_file
from vitr.data.types import Caption, RetrievalDataset, VideoItem
from vitr.errors import DatasetFormatError
from vitr.files import atomic_write

REQUIRED = ("video", "caption")


def find_annotation_file(root: Path, split: str) -> Path:
    """`root` itself when it is a file, else `<root>/<split>.csv` or `<root>/<split>.jsonl`."""
    if root.is_file():
        return root
    for suffix in (".csv", ".jsonl"):
        candidate = root / f"{split}{suffix}"
        if candidate.is_file():
            return candidate
    raise DatasetFormatError(f"{root}: no {split}.csv or {split}.jsonl here, and it is not an annotation file")


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    for line_number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DatasetFormatError(f"{path}: line {line_number} is not valid JSON ({e})") from e
        if not isinstance(row, dict):
            raise DatasetFormatError(f"{path}: line {line_number} is not a JSON object")
        missing = [key for key in REQUIRED if key not in row]
        if missing:
            raise DatasetFormatError(f"{path}: line {line_number} has no {missing} field")
        rows.append(row)
    return rows


def _seconds(value: Any, path: Path, row: int, column: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise DatasetFormatError(f"{path}: row {row} has {column}={value!r}, expected seconds >= 0")
    return seconds


def _tags(value: Any, path: Path, row: int) -> frozenset[str]:
    if value is None:
        return frozenset()
    if isinstance(value, str):
        value = value.split(";")
    if not isinstance(value, list) or not all(isinstance(tag, str) for tag in value):
        raise DatasetFormatError(f"{path}: row {row} has tags={value!r}, expected 'a;b' or a list of strings")
    return frozenset(tag.strip() for tag in value if tag.strip())


def _video_id(video: str, start: float | None, end: float | None) -> str:
    if start is None and end is None:
        return video
    return f"{video}#t={'' if start is None else f'{start:g}'},{'' if end is None else f'{end:g}'}"


def read_generic(root: Path, split: str, video_dir: Path | None) -> RetrievalDataset:
    path = find_annotation_file(root, split)
    require_file(path, "a generic retrieval dataset")
    rows = _read_jsonl(path) if path.suffix == ".jsonl" else read_csv(path, REQUIRED, "a generic retrieval dataset")
    base = video_dir if video_dir is not None else path.parent
    videos: dict[str, VideoItem] = {}
    captions = []
    for row_number, row in enumerate(rows, start=1):
        video, text = row["video"], row["caption"]
        if not isinstance(video, str) or not video.strip() or not isinstance(text, str) or not text.strip():
            raise DatasetFormatError(f"{path}: row {row_number} needs a non-empty 'video' and 'caption'")
        start = _seconds(row.get("start"), path, row_number, "start")
        end = _seconds(row.get("end"), path, row_number, "end")
        if start is not None and end is not None and end <= start:
            raise DatasetFormatError(f"{path}: row {row_number} has end {end:g} s not after start {start:g} s")
        video_id = _video_id(video.strip(), start, end)
        if video_id not in videos:
            videos[video_id] = VideoItem(video_id, str(base / video.strip()), start, end)
        captions.append(Caption(video_id, text.strip(), _tags(row.get("tags"), path, row_number)))
    if not captions:
        raise DatasetFormatError(f"{path}: no rows")
    name = path.stem if root.is_file() else root.name
    return RetrievalDataset(name, split, list(videos.values()), captions)


def write_generic(dataset: RetrievalDataset, path: Path) -> Path:
    """Write `dataset` as a generic JSONL annotation file `read_generic` reads back (video paths absolute, so the
    file may live anywhere); one row per caption, with its segment and tags."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    videos = {v.video_id: v for v in dataset.videos}
    lines = []
    for c in dataset.captions:
        video = videos[c.video_id]
        row: dict[str, Any] = {"video": str(Path(video.path).absolute()), "caption": c.text}
        if video.start is not None:
            row["start"] = video.start
        if video.end is not None:
            row["end"] = video.end
        if c.tags:
            row["tags"] = sorted(c.tags)
        lines.append(json.dumps(row, ensure_ascii=False))
    atomic_write(path, "\n".join(lines) + "\n")
    return path
