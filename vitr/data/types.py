"""The in-memory form every dataset reader returns: videos, captions, and which caption belongs to which video.

Readers for the benchmark files (MSR-VTT, MSVD, ...) and for a user's own CSV all produce a `RetrievalDataset`,
so evaluation, caching and training never see a file format.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from vitr.errors import DatasetFormatError


@dataclass(frozen=True)
class VideoItem:
    """One retrievable video: a file, optionally restricted to the segment [start, end] seconds."""

    video_id: str
    path: str
    start: float | None = None
    end: float | None = None


@dataclass(frozen=True)
class Caption:
    """One text query; `tags` mark subsets such as "temporal" that are reported separately."""

    video_id: str
    text: str
    tags: frozenset[str] = frozenset()
    caption_id: str | None = None  # a stable id (see `RetrievalDataset.caption_ids`); None: from its position


@dataclass
class RetrievalDataset:
    """A split of a benchmark: its videos and captions, in the reader's (official) order.

    `paragraph` marks datasets whose single caption per video joins all its sentences (DiDeMo, ActivityNet);
    they are evaluated as single-caption sets (clip2video.md §9).
    """

    name: str
    split: str
    videos: list[VideoItem]
    captions: list[Caption]
    paragraph: bool = False

    def video_index(self) -> dict[str, int]:
        """video_id -> position in `videos`; raises when two videos share an id."""
        index = {video.video_id: i for i, video in enumerate(self.videos)}
        if len(index) != len(self.videos):
            duplicates = [vid for vid, n in Counter(v.video_id for v in self.videos).items() if n > 1]
            raise DatasetFormatError(f"{self.name}/{self.split}: duplicate video ids {duplicates[:5]}")
        return index

    def caption_video_index(self) -> np.ndarray:
        """(num_captions,) int64: for each caption, the index of its video in `videos` (the ground truth)."""
        index = self.video_index()
        missing = [c.video_id for c in self.captions if c.video_id not in index]
        if missing:
            raise DatasetFormatError(
                f"{self.name}/{self.split}: {len(missing)} captions refer to videos not in the split, "
                f"e.g. {missing[:3]}"
            )
        return np.fromiter((index[c.video_id] for c in self.captions), dtype=np.int64, count=len(self.captions))

    def caption_ids(self) -> list[str]:
        """A stable id per caption: its own `caption_id`, else `<video_id>#<n>` for the n-th caption of its video in
        the reader's order. Neither shifts when other videos' captions are dropped (a video that fails to decode);
        a subset that drops captions within a video (`filter_captions`) stamps the ids of the full set first."""
        seen: Counter[str] = Counter()
        ids = []
        for c in self.captions:
            ids.append(c.caption_id or f"{c.video_id}#{seen[c.video_id]}")
            seen[c.video_id] += 1
        return ids

    @property
    def is_multi_caption(self) -> bool:
        """True when some video has more than one caption (MSVD, VATEX, MSR-VTT full, MSR-VTT train)."""
        counts = Counter(c.video_id for c in self.captions)
        return any(n > 1 for n in counts.values())

    def subset(self, tag: str) -> RetrievalDataset:
        """The captions carrying `tag`, ranked against the same full video list (other videos stay distractors)."""
        captions = [c for c in self.captions if tag in c.tags]
        return RetrievalDataset(self.name, self.split, list(self.videos), captions, self.paragraph)
