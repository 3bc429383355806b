"""MSR-VTT from the CLIP4Clip / CLIP2Video annotation files (ecosystem.md §4, clip2video.md §8.3).

- `train9k` / `train7k`: videos of `MSRVTT_train.9k.csv` / `.7k.csv`, each with all its ~20 captions from
  `MSRVTT_data.json` (C4C `--expand_msrvtt_sentences`, C2V always).
- `test`: the 1k-A split, `MSRVTT_JSFUSION_test.csv`, one caption per row (1000 video-caption pairs).
- `full_train` / `full_val` / `full_test`: `MSRVTT_{train,val,test}.full.csv` with all captions per video
  (C2V's multi-sentence protocol).

Captions are grouped by video in the split file's order, each video's captions in JSON order (the contiguous
layout C2V's multi-sentence test asserts). Videos are `<video_id>.mp4`, or `<video_id>.webm` when only that
exists (as C4C falls back).
"""

from __future__ import annotations

from pathlib import Path

from vitr.data.readers.files import VideoLocator, field, read_csv, read_json
from vitr.data.types import Caption, RetrievalDataset, VideoItem
from vitr.errors import DatasetFormatError

ANNOTATIONS = "MSRVTT_data.json"
TEST_1KA = "MSRVTT_JSFUSION_test.csv"
SPLIT_FILES = {
    "train9k": "MSRVTT_train.9k.csv",
    "train7k": "MSRVTT_train.7k.csv",
    "full_train": "MSRVTT_train.full.csv",
    "full_val": "MSRVTT_val.full.csv",
    "full_test": "MSRVTT_test.full.csv",
}
SPLITS = (*SPLIT_FILES, "test")


def _sentences_by_video(path: Path) -> dict[str, list[str]]:
    """video_id -> its captions, in the order of `sentences` in MSRVTT_data.json."""
    data = read_json(path, "MSR-VTT captions")
    sentences = field(data, "sentences", path, "the top-level object", list)
    by_video: dict[str, list[str]] = {}
    for i, sentence in enumerate(sentences):
        where = f"sentences[{i}]"
        video_id = field(sentence, "video_id", path, where, str)
        by_video.setdefault(video_id, []).append(field(sentence, "caption", path, where, str))
    return by_video


def read_msrvtt(root: Path, split: str, video_dir: Path) -> RetrievalDataset:
    locator = VideoLocator(video_dir, (".mp4", ".webm"))
    if split == "test":
        path = root / TEST_1KA
        rows = read_csv(path, ("video_id", "sentence"), "the MSR-VTT 1k-A test split")
        captions = [Caption(row["video_id"], row["sentence"]) for row in rows]
        video_ids = list(dict.fromkeys(c.video_id for c in captions))
    elif split in SPLIT_FILES:
        path = root / SPLIT_FILES[split]
        video_ids = list(dict.fromkeys(row["video_id"] for row in read_csv(path, ("video_id",), f"split {split}")))
        by_video = _sentences_by_video(root / ANNOTATIONS)
        without = [vid for vid in video_ids if vid not in by_video]
        if without:
            raise DatasetFormatError(
                f"{root / ANNOTATIONS}: no captions for {len(without)} videos of {path.name}, e.g. {without[:3]}"
            )
        captions = [Caption(vid, text) for vid in video_ids for text in by_video[vid]]
    else:
        raise DatasetFormatError(f"MSR-VTT has no split {split!r}; choose one of {list(SPLITS)}")
    videos = [VideoItem(vid, locator.by_stem(vid)) for vid in video_ids]
    return RetrievalDataset("msrvtt", split, videos, captions)
