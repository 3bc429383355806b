"""What a video costs at inference: frames decoded and encoded, and the milliseconds that takes per video.

A cheaper student is only worth distilling into if its video side costs less where it runs (indexing, search by
video). The cost is measured as a user pays it: each video decoded from its file, sampled to the model's frames,
encoded by the image tower and pooled by the head, one video at a time on the current device.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch

from vitr.data.types import VideoItem
from vitr.errors import DatasetFormatError
from vitr.inference.extract import encode_pixels, frame_spec_for
from vitr.model.retrieval import VideoTextModel
from vitr.video.loader import DecodeFailure, decode_video


@dataclass
class InferenceCost:
    frames: int  # frames decoded and encoded per video
    videos: int  # videos timed (after the warm-up ones)
    decode_ms: float  # per video: open, seek, decode, sample, resize, normalise
    encode_ms: float  # per video: image tower over every frame, then the temporal head
    ms_per_video: float  # decode_ms + encode_ms

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@torch.inference_mode()
def video_inference_cost(
    model: VideoTextModel, videos: Sequence[VideoItem], num_frames: int, warmup: int = 2
) -> InferenceCost:
    """Decode and embed each of `videos` with `num_frames` frames; mean milliseconds per video after `warmup`."""
    if len(videos) <= warmup:
        raise ValueError(f"need more than {warmup} videos to time, got {len(videos)}")
    spec = frame_spec_for(model.backbone, num_frames)
    model = model.eval()
    decode = encode = 0.0
    for i, item in enumerate(videos):
        start = time.perf_counter()
        decoded = decode_video(item.video_id, item.path, spec, item.start, item.end)
        if isinstance(decoded, DecodeFailure):
            raise DatasetFormatError(f"cannot time {item.path}: {decoded.error.reason}")
        decoded_at = time.perf_counter()
        frames = encode_pixels(model.backbone, decoded.pixels.unsqueeze(0))  # (1, T, D)
        model.embed_video_features(frames, decoded.mask.unsqueeze(0))  # (1, E)
        if i >= warmup:
            decode += decoded_at - start
            encode += time.perf_counter() - decoded_at
    timed = len(videos) - warmup
    return InferenceCost(num_frames, timed, 1000 * decode / timed, 1000 * encode / timed,
                         1000 * (decode + encode) / timed)
