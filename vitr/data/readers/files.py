"""Shared file handling for the readers: strict JSON/CSV/list loading and finding video files on disk.

Every failure names the file and what is wrong with it, because a missing or half-downloaded annotation file
is the most common way a benchmark run goes wrong (ArrowLuo/CLIP4Clip#48, #50, #98).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from vitr.data.types import VideoItem
from vitr.errors import DatasetFormatError

VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v")


def require_file(path: Path, what: str) -> Path:
    """Return `path` if it is a file; otherwise raise an error saying which file `what` needs."""
    if not path.is_file():
        raise DatasetFormatError(f"{path}: file not found (needed for {what})")
    return path


def read_json(path: Path, what: str) -> Any:
    """Parse a JSON annotation file, naming it in the error when it is missing or not JSON."""
    require_file(path, what)
    try:
        with path.open(encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetFormatError(f"{path}: not valid JSON ({e})") from e


def read_lines(path: Path, what: str) -> list[str]:
    """Non-empty stripped lines of a split list file (`train_list.txt`: one id per line)."""
    require_file(path, what)
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    ids = [line for line in lines if line]
    if not ids:
        raise DatasetFormatError(f"{path}: empty list file (needed for {what})")
    return ids


def read_csv(path: Path, required: Iterable[str], what: str, delimiter: str = ",") -> list[dict[str, str]]:
    """Rows of a CSV file with a header row that must contain every column in `required`."""
    require_file(path, what)
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        columns = reader.fieldnames or []
        missing = [c for c in required if c not in columns]
        if missing:
            raise DatasetFormatError(f"{path}: missing column(s) {missing}; header is {columns}")
        return list(reader)


def field(record: Mapping[str, Any], key: str, path: Path, where: str, kind: type | tuple[type, ...]) -> Any:
    """record[key], checked for presence and type, with an error that locates the record in its file."""
    if not isinstance(record, Mapping) or key not in record:
        raise DatasetFormatError(f"{path}: {where} has no {key!r} field")
    value = record[key]
    if not isinstance(value, kind):
        raise DatasetFormatError(f"{path}: {where} field {key!r} has type {type(value).__name__}, expected {kind}")
    return value


class VideoLocator:
    """Finds video files under a folder (searched recursively once), by exact name or by name without extension.

    A video that is not found still gets a path (`<video_dir>/<name><first extension>`) so that reading
    annotations never touches the videos; `missing_videos` reports them when the caller asks.
    """

    def __init__(self, video_dir: Path, extensions: tuple[str, ...] = VIDEO_EXTENSIONS) -> None:
        self.video_dir = video_dir
        self.extensions = extensions
        self._by_name: dict[str, Path] = {}
        if video_dir.is_dir():
            for folder, _, files in os.walk(video_dir):
                for name in files:
                    self._by_name.setdefault(name, Path(folder) / name)

    def by_name(self, name: str) -> str:
        """The file called exactly `name` (DiDeMo matches list entries to file names exactly)."""
        return str(self._by_name.get(name, self.video_dir / name))

    def by_stem(self, stem: str) -> str:
        """`<stem><ext>` for the first extension present, in the reader's order of preference."""
        for ext in self.extensions:
            found = self._by_name.get(stem + ext)
            if found is not None:
                return str(found)
        return str(self.video_dir / (stem + self.extensions[0]))


def missing_videos(videos: Iterable[VideoItem]) -> list[VideoItem]:
    """The videos whose file does not exist."""
    return [video for video in videos if not os.path.isfile(video.path)]
