"""Video files to model input: PyAV decoding and frame sampling, CLIP transforms, a prefetching loader, a writer."""

from vitr.video.decode import SampledClip, VideoInfo, probe, sample_frames
from vitr.video.loader import DecodedVideo, DecodeFailure, FrameSpec, collate, decode_video, iter_decoded
from vitr.video.transforms import CLIP_MEAN, CLIP_STD, pad_frames, preprocess_frames
from vitr.video.writer import write_video

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "DecodeFailure",
    "DecodedVideo",
    "FrameSpec",
    "SampledClip",
    "VideoInfo",
    "collate",
    "decode_video",
    "iter_decoded",
    "pad_frames",
    "preprocess_frames",
    "probe",
    "sample_frames",
    "write_video",
]
