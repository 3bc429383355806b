"""CLIP2Video's frame sampling (5 fps JPEGs, then `--feature_framerate` decimation) and the named samplers."""

from pathlib import Path

import numpy as np
import pytest

from tests.video.clips import frame_indices, write_indexed_video
from vitr.inference.extract import spec_repr
from vitr.video import sample_frames
from vitr.video.loader import SAMPLERS, FrameSpec, decode_video, frame_sampling

FPS = 25.0
COUNT = 250  # 10 s at 25 fps, the length of a typical MSR-VTT clip


def official_c2v_times(jpegs: int, feature_framerate: int, max_frames: int = 12) -> np.ndarray:
    """CLIP2Video's loader on `jpegs` sorted files written at 5 fps (clip2video.md §8.1), as seconds."""
    n_sel = jpegs // feature_framerate
    idx = np.linspace(0, jpegs - 1, n_sel).astype(int)
    if len(idx) > max_frames:
        idx = idx[np.linspace(0, len(idx) - 1, max_frames).astype(int)]
    return idx / 5.0


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return write_indexed_video(tmp_path_factory.mktemp("c2v") / "clip.mp4", COUNT, FPS)


@pytest.mark.parametrize("feature_framerate", [1, 2, 3])
def test_jpeg_sampling_takes_the_frames_clip2videos_loader_keeps(video, feature_framerate):
    clip = sample_frames(video, fps=5.0, decimation=feature_framerate, max_frames=12)
    expected = official_c2v_times(50, feature_framerate)  # ffmpeg writes 50 JPEGs for 10 s at 5 fps
    np.testing.assert_allclose(clip.timestamps, expected)
    np.testing.assert_array_equal(frame_indices(clip.frames), np.round(expected * FPS).astype(int))


def test_jpeg_sampling_of_a_short_clip_keeps_every_decimated_frame(tmp_path):
    path = write_indexed_video(tmp_path / "short.mp4", 40, FPS)  # 1.6 s: 8 JPEGs, 4 kept at decimation 2
    clip = sample_frames(path, fps=5.0, decimation=2, max_frames=12)
    np.testing.assert_allclose(clip.timestamps, official_c2v_times(8, 2))
    assert len(clip.timestamps) == 4


def test_decimation_needs_a_jpeg_rate(video):
    with pytest.raises(ValueError, match="decimation"):
        sample_frames(video, decimation=2)


def test_named_samplers_build_frame_specs_and_pad_to_num_frames(tmp_path):
    assert SAMPLERS == ("uniform", "c4c_1fps", "c2v_jpeg5fps")
    assert frame_sampling("uniform") == {"fps": None, "decimation": None}
    assert frame_sampling("c4c_1fps") == {"fps": 1.0, "decimation": None}
    assert frame_sampling("c2v_jpeg5fps", 2) == {"fps": 5.0, "decimation": 2}
    with pytest.raises(ValueError, match="unknown frame sampler"):
        frame_sampling("every_frame")
    short = write_indexed_video(tmp_path / "short.mp4", 40, FPS)  # 8 JPEGs, 4 kept at decimation 2
    decoded = decode_video("v", short, FrameSpec(num_frames=12, size=32, **frame_sampling("c2v_jpeg5fps", 2)))
    assert decoded.pixels.shape == (12, 3, 32, 32)
    assert decoded.mask.tolist() == [1.0] * 4 + [0.0] * 8  # 4 frames kept, padded to 12


def test_cache_keys_of_existing_samplers_do_not_change_and_c2v_gets_its_own():
    uniform = FrameSpec(num_frames=12, size=224)
    assert spec_repr(uniform).startswith("n=12,fps=None,size=224,") and "decimation" not in spec_repr(uniform)
    c2v = FrameSpec(num_frames=12, size=224, **frame_sampling("c2v_jpeg5fps", 2))
    assert spec_repr(c2v) != spec_repr(FrameSpec(num_frames=12, size=224, fps=5.0))
