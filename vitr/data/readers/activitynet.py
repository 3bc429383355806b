"""ActivityNet Captions paragraph retrieval as CLIP4Clip runs it (clip2video.md §8.3, ecosystem.md §4).

`train.json` / `val_1.json` map `"v_<youtube id>"` to `{duration, timestamps, sentences}`; `train_ids.json` /
`val_ids.json` list the ids of each split. A video's sentences are joined with spaces into one paragraph and the
video is read over [0, ceil(duration)] s. The `v_` prefix is stripped for the video id and the file name (any
extension). The test split is `val_1`, so `val` and `test` read the same files.
"""

from __future__ import annotations

import math
from pathlib import Path

from vitr.data.readers.files import VideoLocator, field, read_json
from vitr.data.types import Caption, RetrievalDataset, VideoItem
from vitr.errors import DatasetFormatError

SPLIT_FILES = {"train": ("train_ids.json", "train.json"), "val": ("val_ids.json", "val_1.json")}
SPLIT_FILES["test"] = SPLIT_FILES["val"]


def _strip_prefix(pseudo_id: str) -> str:
    return pseudo_id[2:] if pseudo_id.startswith("v_") else pseudo_id


def _seconds(value: int | float | str) -> float | None:
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def read_activitynet(root: Path, split: str, video_dir: Path) -> RetrievalDataset:
    if split not in SPLIT_FILES:
        raise DatasetFormatError(f"ActivityNet has no split {split!r}; choose one of {list(SPLIT_FILES)}")
    ids_path, captions_path = (root / name for name in SPLIT_FILES[split])
    pseudo_ids = read_json(ids_path, f"ActivityNet split {split}")
    if not isinstance(pseudo_ids, list) or not all(isinstance(i, str) for i in pseudo_ids):
        raise DatasetFormatError(f"{ids_path}: expected a JSON list of video ids like 'v_QOlSCBRmfWY'")
    annotations = read_json(captions_path, f"ActivityNet split {split}")
    if not isinstance(annotations, dict):
        raise DatasetFormatError(f"{captions_path}: expected an object of 'v_<id>' -> annotation")
    without = [i for i in pseudo_ids if i not in annotations]
    if without:
        raise DatasetFormatError(
            f"{captions_path}: no annotation for {len(without)} ids of {ids_path.name}, e.g. {without[:3]}"
        )

    locator = VideoLocator(video_dir)
    videos, captions = [], []
    for pseudo_id in dict.fromkeys(pseudo_ids):
        annotation = annotations[pseudo_id]
        duration = _seconds(field(annotation, "duration", captions_path, pseudo_id, (int, float, str)))
        if duration is None:
            raise DatasetFormatError(f"{captions_path}: {pseudo_id} has a duration that is not a number of seconds")
        sentences = field(annotation, "sentences", captions_path, pseudo_id, list)
        video_id = _strip_prefix(pseudo_id)
        videos.append(VideoItem(video_id, locator.by_stem(video_id), 0.0, float(math.ceil(duration))))
        captions.append(Caption(video_id, " ".join(str(s) for s in sentences)))
    return RetrievalDataset("activitynet", split, videos, captions, paragraph=True)
