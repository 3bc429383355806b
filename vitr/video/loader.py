"""Decode many videos ahead of the caller, in order, so decoding overlaps encoding and memory stays bounded."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vitr.errors import VideoDecodeError
from vitr.video.decode import sample_frames
from vitr.video.transforms import CLIP_MEAN, CLIP_STD, pad_frames, preprocess_frames

VideoRequest = tuple[str, str | Path] | tuple[str, str | Path, float | None, float | None]


@dataclass(frozen=True)
class FrameSpec:
    """Which frames to take from each video and how to turn them into model input.

    fps None: `num_frames` uniform frames (CLIP4Clip/CLIP2Video default); fps set: frames at that rate, at most
    `num_frames` of them; fps and `decimation` set: CLIP2Video's JPEG pipeline (`sample_frames`). Either way
    clips are padded to `num_frames`. `frame_sampling` builds the named samplers.
    `decoder` ("pyav", the reference, or "torchcodec") decodes on `decode_device` ("cpu" or a CUDA device, where
    torchcodec uses NVDEC); both change the pixels slightly, so both are part of the feature cache's namespace.
    """

    num_frames: int = 12
    fps: float | None = None
    size: int = 224
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD
    decimation: int | None = None
    decoder: str = "pyav"
    decode_device: str = "cpu"


# Named frame samplers (clip2video.md §8.1): uniform (both repos' default for pre-cut clips), CLIP4Clip's online
# 1 frame per second, CLIP2Video's 5 fps JPEGs decimated by `--feature_framerate`.
SAMPLERS = ("uniform", "c4c_1fps", "c2v_jpeg5fps")


def frame_sampling(sampler: str, feature_framerate: int = 1) -> dict[str, float | int | None]:
    """The `FrameSpec` fields (fps, decimation) of a named sampler."""
    if sampler == "uniform":
        return {"fps": None, "decimation": None}
    if sampler == "c4c_1fps":
        return {"fps": 1.0, "decimation": None}
    if sampler == "c2v_jpeg5fps":
        if feature_framerate < 1:
            raise ValueError(f"feature_framerate must be at least 1, got {feature_framerate}")
        return {"fps": 5.0, "decimation": feature_framerate}
    raise ValueError(f"unknown frame sampler {sampler!r}; choose one of {SAMPLERS}")


@dataclass
class DecodedVideo:
    key: str
    path: str
    pixels: torch.Tensor  # (T, 3, S, S) float32, normalised; zero on padded frames
    mask: torch.Tensor  # (T,) float32, 1 on real frames
    timestamps: np.ndarray  # (T,) float64 seconds; NaN on padded frames


@dataclass
class DecodeFailure:
    key: str
    path: str
    error: VideoDecodeError


def decode_video(
    key: str, path: str | Path, spec: FrameSpec, start: float | None = None, end: float | None = None
) -> DecodedVideo | DecodeFailure:
    """Sample, preprocess and pad one video; a file that cannot be decoded becomes a DecodeFailure."""
    try:
        decoding = {"decoder": spec.decoder, "decode_device": spec.decode_device}
        if spec.fps is None:
            clip = sample_frames(path, num_frames=spec.num_frames, start=start, end=end, **decoding)
        else:
            clip = sample_frames(
                path,
                fps=spec.fps,
                start=start,
                end=end,
                max_frames=spec.num_frames,
                decimation=spec.decimation,
                **decoding,
            )
    except VideoDecodeError as error:
        return DecodeFailure(key=key, path=str(path), error=error)
    pixels, mask = pad_frames(preprocess_frames(clip.frames, spec.size, spec.mean, spec.std), spec.num_frames)
    timestamps = np.full(spec.num_frames, np.nan)
    timestamps[: len(clip.timestamps)] = clip.timestamps
    return DecodedVideo(key=key, path=str(path), pixels=pixels, mask=mask, timestamps=timestamps)


def iter_decoded(
    items: Iterable[VideoRequest], spec: FrameSpec, workers: int = 2, prefetch: int = 8
) -> Iterator[DecodedVideo | DecodeFailure]:
    """Yield one result per item, in input order, decoding up to `prefetch` videos ahead on `workers` threads.

    items are (key, path) or (key, path, start, end) with times in seconds. PyAV and torch release the GIL while
    they work, so threads decode in parallel with the caller. At most `prefetch` decoded videos wait in memory.
    A file that cannot be decoded is yielded as a DecodeFailure and the iteration goes on. workers=0 decodes in
    the caller's thread.
    """
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    if prefetch < 1:
        raise ValueError(f"prefetch must be >= 1, got {prefetch}")
    requests = (_parse_request(item) for item in items)
    if workers == 0:
        for key, path, start, end in requests:
            yield decode_video(key, path, spec, start, end)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vitr-decode") as pool:
        pending: deque[Future[DecodedVideo | DecodeFailure]] = deque()
        try:
            for key, path, start, end in requests:
                pending.append(pool.submit(decode_video, key, path, spec, start, end))
                if len(pending) >= prefetch:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:  # the caller stopped early: drop the work not yet started
                future.cancel()


def collate(videos: Sequence[DecodedVideo]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack decoded videos into a batch: pixels (B, T, 3, S, S), mask (B, T)."""
    if not videos:
        raise ValueError("collate needs at least one video")
    return torch.stack([v.pixels for v in videos]), torch.stack([v.mask for v in videos])


def _parse_request(item: VideoRequest) -> tuple[str, str | Path, float | None, float | None]:
    if len(item) == 2:
        key, path = item
        return str(key), path, None, None
    if len(item) == 4:
        key, path, start, end = item
        return str(key), path, start, end
    raise ValueError(f"a video request is (key, path) or (key, path, start, end), got {item!r}")
