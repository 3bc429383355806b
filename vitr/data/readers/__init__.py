"""Dataset readers by name: `load_dataset("msrvtt", root, "test")` -> `RetrievalDataset`.

Each reader turns one benchmark's annotation files into videos and captions without opening a video; checking
that the video files exist is a separate, explicit step (`check_files=True`), because annotation files are often
inspected on a machine without the videos.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vitr.data.readers.activitynet import read_activitynet
from vitr.data.readers.didemo import read_didemo
from vitr.data.readers.files import missing_videos
from vitr.data.readers.generic import read_generic
from vitr.data.readers.msrvtt import read_msrvtt
from vitr.data.readers.msvd import load_caption_pickle, read_msvd
from vitr.data.readers.vatex import read_vatex
from vitr.data.types import RetrievalDataset
from vitr.errors import ConfigError, DatasetFormatError

__all__ = ["DATASETS", "load_caption_pickle", "load_dataset", "missing_videos"]


@dataclass(frozen=True)
class _Reader:
    read: Callable[[Path, str, Path], RetrievalDataset]
    skip_missing_videos: bool = False


DATASETS: dict[str, _Reader] = {
    "msrvtt": _Reader(read_msrvtt),
    "msvd": _Reader(read_msvd),
    "didemo": _Reader(read_didemo),
    "activitynet": _Reader(read_activitynet),
    "vatex": _Reader(read_vatex, skip_missing_videos=True),
}


def load_dataset(
    name: str,
    root: str | Path,
    split: str,
    video_dir: str | Path | None = None,
    check_files: bool = False,
) -> RetrievalDataset:
    """Read split `split` of dataset `name` from the annotation folder `root`.

    Videos are looked up under `video_dir` (default `<root>/videos`; for `generic`, paths are relative to the
    annotation file). With `check_files=True`, missing videos raise `DatasetFormatError` giving their count,
    except for VATEX, whose official protocol skips them (with a warning giving the count).
    """
    root = Path(root)
    if name == "generic":
        dataset = read_generic(root, split, None if video_dir is None else Path(video_dir))
        skip = False
    elif name in DATASETS:
        if not root.is_dir():
            raise DatasetFormatError(f"{root}: annotation folder for {name} not found")
        reader = DATASETS[name]
        dataset = reader.read(root, split, Path(video_dir) if video_dir is not None else root / "videos")
        skip = reader.skip_missing_videos
    else:
        raise ConfigError(f"unknown dataset {name!r}; choose one of {[*DATASETS, 'generic']}")
    if check_files:
        dataset = _handle_missing(dataset, skip)
    return dataset


def _handle_missing(dataset: RetrievalDataset, skip: bool) -> RetrievalDataset:
    missing = missing_videos(dataset.videos)
    if not missing:
        return dataset
    where = f"{dataset.name}/{dataset.split}: {len(missing)} of {len(dataset.videos)} video files are missing"
    if not skip:
        raise DatasetFormatError(f"{where}, e.g. {[v.path for v in missing[:3]]}")
    warnings.warn(f"{where}; skipping them and their captions", stacklevel=3)
    gone = {video.video_id for video in missing}
    return RetrievalDataset(
        dataset.name,
        dataset.split,
        [v for v in dataset.videos if v.video_id not in gone],
        [c for c in dataset.captions if c.video_id not in gone],
        dataset.paragraph,
    )
