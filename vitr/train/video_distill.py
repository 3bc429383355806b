"""TeachText's video-side distillation: a teacher with a costly video side teaches a student with a cheap one.

The journal version of TeachText extends distillation to the video side, "reducing computational cost at
inference" (teachtext.md §2.1): the teachers' matrices come from a richer video representation than the student
keeps at test time. In vitr such a teacher is a trained model of kind `video` in the recipe's `teachtext:` section:
any head (e.g. CLIP2Video's TDB+TAB) over more frames than the student reads, taken from its own frame cache. Its
bank rows are keyed like every teacher's (text by caption id, video by video id), so the term, the aggregation and
L_d are text-side TeachText's own (`TeachTextTargets`); only the video rows are computed from other frames.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from vitr.data.types import RetrievalDataset
from vitr.errors import DatasetFormatError
from vitr.inference.extract import extract_features, frame_spec_for, open_cache
from vitr.teachers import ModelTeacher
from vitr.train.config import TeacherSpec


def teacher_frames(
    teacher: ModelTeacher,
    num_frames: int,
    dataset: RetrievalDataset,
    cache_root: str | Path,
    workers: int = 2,
    progress: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The teacher's own frame embeddings of `dataset.videos`: (V, num_frames, D') and mask (V, num_frames), in the
    dataset's video order, sampled for its backbone and extracted once into its own cache under `cache_root`."""
    backbone = teacher.model.backbone
    spec = frame_spec_for(backbone, num_frames)
    cache = open_cache(cache_root, backbone, spec)
    found = extract_features(backbone, dataset.videos, cache, spec, workers=workers, progress=progress)
    missing = [v.video_id for v in dataset.videos if v.video_id not in found.keys]
    if missing:
        raise DatasetFormatError(
            f"the video teacher {teacher.name!r} could not decode {len(missing)} videos its student reads, e.g. "
            f"{missing[:3]}: {found.failures.get(missing[0], 'no frames')}"
        )
    return cache.stacked([found.keys[v.video_id] for v in dataset.videos])


def own_frames_reader(
    dataset: RetrievalDataset, cache_root: str | Path, workers: int = 2
) -> Callable[[TeacherSpec, ModelTeacher], tuple[torch.Tensor, torch.Tensor]]:
    """`recipe_teacher_bank`'s `own_frames` for `dataset`: a video teacher reads `spec.model.num_frames` frames of
    each video from its own cache."""

    def read(spec: TeacherSpec, teacher: ModelTeacher) -> tuple[torch.Tensor, torch.Tensor]:
        return teacher_frames(teacher, spec.model.num_frames, dataset, cache_root, workers)

    return read
