from pathlib import Path

import numpy as np
import pytest

from tests.video.clips import (
    frame_indices,
    indexed_frames,
    keyframe_count,
    write_audio_only,
    write_empty_video_track,
    write_encoded_video,
    write_indexed_video,
)
from vitr.errors import VideoDecodeError
from vitr.video import probe, sample_frames, write_video

FPS = 8.0
COUNT = 40  # 5 s at 8 fps: frame i is shown from i / 8 s


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return write_indexed_video(tmp_path_factory.mktemp("video") / "clip.mp4", COUNT, FPS)


@pytest.fixture(scope="module")
def long_video(tmp_path_factory) -> Path:
    """40 s at 5 fps with many keyframes, so seeking lands somewhere other than the first frame."""
    path = write_indexed_video(tmp_path_factory.mktemp("video") / "long.mp4", 200, 5.0)
    assert keyframe_count(path) > 4
    return path


def test_probe_reads_duration_rate_and_size(video):
    info = probe(video)
    assert info.path == str(video)
    assert info.duration == pytest.approx(COUNT / FPS)
    assert info.fps == pytest.approx(FPS)
    assert (info.width, info.height) == (64, 48)
    assert info.num_frames == COUNT


def test_uniform_sampling_picks_clip2video_frames(video):
    clip = sample_frames(video, num_frames=12)
    expected = np.linspace(0, COUNT - 1, 12).astype(int)
    assert clip.frames.shape == (12, 48, 64, 3) and clip.frames.dtype == np.uint8
    np.testing.assert_array_equal(frame_indices(clip.frames), expected)
    np.testing.assert_allclose(clip.timestamps, expected / FPS)


def test_uniform_sampling_repeats_frames_of_a_short_clip(tmp_path):
    path = write_indexed_video(tmp_path / "short.mp4", 5, FPS)
    clip = sample_frames(path, num_frames=12)
    indices = frame_indices(clip.frames)
    assert len(indices) == 12
    assert set(indices) == {0, 1, 2, 3, 4}
    assert np.all(np.diff(indices) >= 0)
    np.testing.assert_allclose(clip.timestamps, indices / FPS)


def test_single_frame_video_fills_every_slot(tmp_path):
    path = write_indexed_video(tmp_path / "still.mp4", 1, FPS)
    clip = sample_frames(path, num_frames=4)
    np.testing.assert_array_equal(frame_indices(clip.frames), [0, 0, 0, 0])


def test_rate_sampling_takes_a_frame_every_period(video):
    clip = sample_frames(video, fps=2.0)
    expected = np.arange(0, COUNT, 4)  # every 0.5 s = every 4th frame
    np.testing.assert_array_equal(frame_indices(clip.frames), expected)
    np.testing.assert_allclose(clip.timestamps, expected / FPS)


def test_rate_sampling_caps_like_clip4clip(video):
    clip = sample_frames(video, fps=4.0, max_frames=6)
    candidates = np.arange(0, COUNT, 2)  # 20 frames at 4 fps
    expected = candidates[np.linspace(0, len(candidates) - 1, 6).astype(int)]
    np.testing.assert_array_equal(frame_indices(clip.frames), expected)


def test_rate_faster_than_the_video_returns_each_frame_once(tmp_path):
    path = write_indexed_video(tmp_path / "slow.mp4", 6, 2.0)
    clip = sample_frames(path, fps=10.0)
    np.testing.assert_array_equal(frame_indices(clip.frames), np.arange(6))
    np.testing.assert_allclose(clip.timestamps, np.arange(6) / 2.0)


def test_window_samples_only_inside_start_and_end(video):
    clip = sample_frames(video, num_frames=5, start=1.0, end=2.0)
    np.testing.assert_array_equal(frame_indices(clip.frames), [8, 10, 12, 14, 16])
    rate = sample_frames(video, fps=1.0, start=1.5, end=3.9)
    np.testing.assert_array_equal(frame_indices(rate.frames), [12, 20, 28])


def test_window_end_past_the_video_stops_at_the_last_frame(video):
    clip = sample_frames(video, num_frames=3, start=4.0, end=99.0)
    np.testing.assert_array_equal(frame_indices(clip.frames), [32, 35, 39])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_frames": 12},
        {"num_frames": 7, "start": 3.3, "end": 31.0},
        {"fps": 0.4},
        {"fps": 1.0, "max_frames": 9, "start": 10.0},
    ],
)
def test_seeking_and_single_pass_decode_the_same_frames(long_video, kwargs):
    single_pass = sample_frames(long_video, seek=False, **kwargs)
    seeking = sample_frames(long_video, seek=True, **kwargs)
    automatic = sample_frames(long_video, **kwargs)
    np.testing.assert_array_equal(seeking.frames, single_pass.frames)
    np.testing.assert_array_equal(seeking.timestamps, single_pass.timestamps)
    np.testing.assert_array_equal(automatic.frames, single_pass.frames)
    np.testing.assert_allclose(single_pass.timestamps, frame_indices(single_pass.frames) / 5.0)


@pytest.mark.parametrize(
    ("name", "container_format", "codec"),
    [("bframes.mp4", "mp4", {"bf": "3", "g": "24"}), ("video.mkv", "matroska", {"g": "30"})],
)
def test_b_frames_and_matroska_sample_the_right_frames_on_both_paths(tmp_path, name, container_format, codec):
    path = write_encoded_video(tmp_path / name, 200, 5, container_format, codec=codec)
    for kwargs in ({"num_frames": 12}, {"fps": 0.3}, {"num_frames": 5, "start": 7.3, "end": 25.0}):
        single_pass = sample_frames(path, seek=False, **kwargs)
        seeking = sample_frames(path, seek=True, **kwargs)
        np.testing.assert_array_equal(seeking.frames, single_pass.frames)
        np.testing.assert_array_equal(seeking.timestamps, single_pass.timestamps)
        np.testing.assert_allclose(single_pass.timestamps, frame_indices(single_pass.frames) / 5.0)
    uniform = sample_frames(path, num_frames=12)
    np.testing.assert_array_equal(frame_indices(uniform.frames), np.linspace(0, 199, 12).astype(int))


def test_raw_stream_without_timestamps(tmp_path):
    """A bare .h264 stream has no container timestamps: times follow from the frame rate in the bitstream."""
    path = write_encoded_video(tmp_path / "clip.h264", COUNT, int(FPS), "h264")
    info = probe(path)
    assert info.duration == pytest.approx(COUNT / FPS)
    assert info.fps == pytest.approx(FPS)
    for seek in (False, True):
        clip = sample_frames(path, num_frames=12, seek=seek)
        np.testing.assert_array_equal(frame_indices(clip.frames), np.linspace(0, COUNT - 1, 12).astype(int))
        np.testing.assert_allclose(clip.timestamps, frame_indices(clip.frames) / FPS)


def _raises_naming(path: Path, match: str, **kwargs) -> VideoDecodeError:
    with pytest.raises(VideoDecodeError, match=match) as caught:
        sample_frames(path, **kwargs)
    assert caught.value.path == str(path)
    assert str(path) in str(caught.value)
    return caught.value


def test_missing_file(tmp_path):
    _raises_naming(tmp_path / "nope.mp4", "no such file")


def test_directory(tmp_path):
    _raises_naming(tmp_path, "not a regular file")


def test_text_file_named_mp4(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("these are not the frames you are looking for\n" * 20)
    _raises_naming(path, "not a readable media file")
    with pytest.raises(VideoDecodeError):
        probe(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    _raises_naming(path, "not a readable media file")


def test_truncated_file(video, tmp_path):
    data = video.read_bytes()
    path = tmp_path / "half.mp4"
    path.write_bytes(data[: len(data) // 2])
    _raises_naming(path, "truncated")


def test_audio_only_file(tmp_path):
    path = write_audio_only(tmp_path / "speech.m4a")
    _raises_naming(path, "no video stream")
    with pytest.raises(VideoDecodeError, match="no video stream"):
        probe(path)


def test_video_track_without_frames(tmp_path):
    _raises_naming(write_empty_video_track(tmp_path / "silent.mkv"), "no decodable frames")


def test_frame_data_overwritten(video, tmp_path):
    data = bytearray(video.read_bytes())
    at = data.index(b"mdat")
    size = int.from_bytes(data[at - 4 : at], "big")
    data[at + 4 : at - 4 + size] = bytes(size - 8)  # keep the index, zero every frame's bytes
    path = tmp_path / "zeroed.mp4"
    path.write_bytes(bytes(data))
    _raises_naming(path, "corrupt")


def test_empty_or_out_of_range_window(video):
    _raises_naming(video, "empty time window", start=2.0, end=2.0)
    _raises_naming(video, "past the end", start=6.0)


def test_bad_arguments_are_value_errors(video):
    with pytest.raises(ValueError):
        sample_frames(video, num_frames=0)
    with pytest.raises(ValueError):
        sample_frames(video, fps=-1.0)


def test_file_cut_short_after_its_index(tmp_path):
    """A streaming-ready mp4 keeps its index at the front, so a cut-off copy opens but its frames stop early."""
    full = write_encoded_video(tmp_path / "full.mp4", COUNT, int(FPS), container={"movflags": "faststart"})
    data = full.read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: int(len(data) * 0.9)])
    _raises_naming(path, "truncated", seek=False)
    _raises_naming(path, "truncated", seek=True)
    _raises_naming(path, "truncated", fps=2.0)
    intact = sample_frames(path, num_frames=3, end=1.0)
    np.testing.assert_array_equal(frame_indices(intact.frames), [0, 4, 8])


def damage_codec_tag(video: Path, path: Path) -> Path:
    """A copy of an mp4 whose sample description names a codec that does not exist (PyAV: codec_context None)."""
    data = bytearray(video.read_bytes())
    at = data.rindex(b"avc1")  # the stsd entry (the first 'avc1' is a brand in ftyp)
    data[at : at + 4] = b"zzzz"
    path.write_bytes(bytes(data))
    return path


def flip_second_half(video: Path, path: Path, seed: int, flips: int = 200) -> Path:
    """A copy with `flips` bytes inverted at random places in its second half (where PyAV puts the mp4 index)."""
    rng = np.random.default_rng(seed)
    data = np.frombuffer(video.read_bytes(), dtype=np.uint8).copy()
    at = rng.integers(len(data) // 2, len(data), flips)
    data[at] ^= 0xFF
    path.write_bytes(data.tobytes())
    return path


def test_stream_without_a_codec_is_a_decode_error(video, tmp_path):
    path = damage_codec_tag(video, tmp_path / "tag.mp4")
    _raises_naming(path, "names no codec")
    with pytest.raises(VideoDecodeError, match="names no codec"):
        probe(path)


@pytest.mark.parametrize("seed", range(24))
def test_flipped_bytes_decode_or_fail_cleanly(video, tmp_path, seed):
    """Whatever the damage, a file either decodes or raises VideoDecodeError: never another exception."""
    path = flip_second_half(video, tmp_path / "flipped.mp4", seed)
    for kwargs in ({}, {"fps": 2.0}, {"seek": True}):
        try:
            clip = sample_frames(path, num_frames=4, **kwargs)
        except VideoDecodeError as error:
            assert error.path == str(path)
        else:
            assert clip.frames.ndim == 4 and clip.frames.shape[-1] == 3


@pytest.mark.parametrize(("rotation", "corner"), [(90, (1, 0)), (-90, (0, 1)), (180, (1, 1))])
def test_rotation_metadata_is_applied(tmp_path, rotation, corner):
    """A phone's display rotation turns the frames upright: the marked top-left corner moves where a player shows it."""
    frames = np.zeros((4, 48, 64, 3), dtype=np.uint8)
    frames[:, :12, :12] = 255  # a white top-left corner on a 64 x 48 landscape frame
    path = write_video(tmp_path / "phone.mp4", frames, rotation=rotation)
    clip = sample_frames(path, num_frames=2)
    height, width = (64, 48) if rotation % 180 else (48, 64)
    assert clip.frames.shape == (2, height, width, 3)
    bright = clip.frames[0, ..., 0] > 128
    rows, cols = np.nonzero(bright)
    assert (rows.mean() > height / 2, cols.mean() > width / 2) == tuple(bool(c) for c in corner)


def test_ten_bit_video(tmp_path):
    path = write_video(tmp_path / "hdr.mp4", indexed_frames(8), pix_fmt="yuv420p10le")
    clip = sample_frames(path, num_frames=8)
    assert clip.frames.dtype == np.uint8
    np.testing.assert_array_equal(frame_indices(clip.frames), np.arange(8))


def test_variable_frame_rate_uses_each_frames_time(tmp_path):
    times = [0.0, 0.1, 0.15, 1.0, 1.05, 2.5, 3.0, 3.1]
    path = write_video(tmp_path / "vfr.mp4", indexed_frames(len(times)), times=times)
    clip = sample_frames(path, num_frames=4, end=2.6)
    np.testing.assert_allclose(clip.timestamps, [0.0, 0.15, 1.05, 2.5])
    np.testing.assert_array_equal(frame_indices(clip.frames), [0, 2, 4, 5])


@pytest.mark.parametrize("fps", [0.4, 1.0, 10.0])
def test_iter_frames_yields_the_frames_rate_sampling_picks_one_at_a_time(long_video, fps):
    from vitr.video.decode import iter_frames

    clip = sample_frames(long_video, fps=fps)
    walked = list(iter_frames(long_video, fps))
    np.testing.assert_array_equal([t for t, _ in walked], clip.timestamps)
    np.testing.assert_array_equal(np.stack([f for _, f in walked]), clip.frames)


def test_iter_frames_of_a_cut_off_file_says_truncated(tmp_path):
    from vitr.video.decode import iter_frames

    full = write_encoded_video(tmp_path / "full.mp4", COUNT, int(FPS), container={"movflags": "faststart"})
    path = tmp_path / "cut.mp4"
    path.write_bytes(full.read_bytes()[: int(full.stat().st_size * 0.9)])
    with pytest.raises(VideoDecodeError, match="truncated"):
        list(iter_frames(path, 2.0))
