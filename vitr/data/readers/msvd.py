"""MSVD from the collaborative-experts files used by CLIP4Clip (ecosystem.md §4, clip2video.md §8.3).

`raw-captions.pkl` maps a video id to its ~40 captions, each a list of tokens (joined with spaces, as C4C does);
`{train,val,test}_list.txt` name the videos of each split; videos are `<id>.avi` (other extensions accepted, as
C4C matches by the name without extension). The pickle is read with an unpickler that can only build dicts,
lists and strings, so a tampered file cannot run code.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from vitr.data.readers.files import VideoLocator, read_lines, require_file
from vitr.data.types import Caption, RetrievalDataset, VideoItem
from vitr.errors import DatasetFormatError

CAPTIONS = "raw-captions.pkl"
SPLITS = ("train", "val", "test")
_ALLOWED_GLOBALS = {("builtins", "dict"), ("builtins", "list"), ("builtins", "str")}


class _CaptionUnpickler(pickle.Unpickler):
    """Refuses every global except the builtin containers; plain dict/list/str pickles need none at all."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        return super().find_class(module, name)


def load_caption_pickle(path: Path) -> dict[str, list[str]]:
    """raw-captions.pkl -> {video_id: [caption, ...]} with token lists joined by spaces."""
    require_file(path, "MSVD captions")
    try:
        with path.open("rb") as f:
            data = _CaptionUnpickler(f, encoding="utf-8").load()
    except (pickle.UnpicklingError, EOFError, UnicodeDecodeError, ValueError, IndexError, KeyError, TypeError) as e:
        raise DatasetFormatError(f"{path}: not a pickle of plain captions ({e})") from e
    if not isinstance(data, dict):
        raise DatasetFormatError(f"{path}: expected a dict of video id -> captions, got {type(data).__name__}")
    captions: dict[str, list[str]] = {}
    for video_id, entries in data.items():
        if not isinstance(video_id, str) or not isinstance(entries, list):
            raise DatasetFormatError(f"{path}: entry {video_id!r} is not a str -> list of captions")
        captions[video_id] = [_caption_text(entry, path, video_id) for entry in entries]
    return captions


def _caption_text(entry: object, path: Path, video_id: str) -> str:
    if isinstance(entry, str):
        return entry
    if isinstance(entry, list) and all(isinstance(token, str) for token in entry):
        return " ".join(entry)
    raise DatasetFormatError(f"{path}: a caption of {video_id!r} is neither a token list nor a string")


def read_msvd(root: Path, split: str, video_dir: Path) -> RetrievalDataset:
    if split not in SPLITS:
        raise DatasetFormatError(f"MSVD has no split {split!r}; choose one of {list(SPLITS)}")
    list_path = root / f"{split}_list.txt"
    video_ids = list(dict.fromkeys(read_lines(list_path, f"MSVD split {split}")))
    by_video = load_caption_pickle(root / CAPTIONS)
    without = [vid for vid in video_ids if not by_video.get(vid)]
    if without:
        raise DatasetFormatError(
            f"{root / CAPTIONS}: no captions for {len(without)} videos of {list_path.name}, e.g. {without[:3]}"
        )
    locator = VideoLocator(video_dir, (".avi", ".mp4", ".webm", ".mkv"))
    videos = [VideoItem(vid, locator.by_stem(vid)) for vid in video_ids]
    captions = [Caption(vid, text) for vid in video_ids for text in by_video[vid]]
    return RetrievalDataset("msvd", split, videos, captions)
