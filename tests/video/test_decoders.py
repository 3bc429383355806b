"""The two decoders: torchcodec picks the frames PyAV picks, and their features never share a cache entry."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from tests.video.clips import frame_indices, write_indexed_video
from vitr.data.cache import namespace_for
from vitr.errors import ConfigError
from vitr.inference.extract import spec_repr
from vitr.video import sample_frames
from vitr.video.decode import torchcodec_decoder
from vitr.video.loader import FrameSpec, decode_video

FPS = 8.0
COUNT = 40  # 5 s at 8 fps


def torchcodec_usable() -> bool:
    try:
        torchcodec_decoder()
    except ConfigError:
        return False
    return True


needs_torchcodec = pytest.mark.skipif(not torchcodec_usable(), reason="torchcodec or FFmpeg's libraries missing")


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return write_indexed_video(tmp_path_factory.mktemp("video") / "clip.mp4", COUNT, FPS)


def test_pyav_cache_keys_stay_as_they_were_and_each_decoder_and_device_kind_gets_its_own() -> None:
    pyav = FrameSpec(num_frames=12, size=224)
    assert "decoder" not in spec_repr(pyav)  # caches written before the option keep their entries
    keys = {
        spec_repr(FrameSpec(num_frames=12, size=224, decoder=decoder, decode_device=device))
        for decoder, device in (("pyav", "cpu"), ("torchcodec", "cpu"), ("torchcodec", "cuda:0"))
    }
    assert len(keys) == 3
    same_kind = {FrameSpec(decoder="torchcodec", decode_device=d) for d in ("cuda:0", "cuda:1")}
    assert len({spec_repr(s) for s in same_kind}) == 1  # one GPU's NVDEC decodes like another's
    assert len({namespace_for("model", key) for key in keys}) == 3


def test_an_unknown_decoder_is_refused(video) -> None:
    with pytest.raises(ValueError, match="unknown decoder 'ffmpeg'"):
        sample_frames(video, num_frames=4, decoder="ffmpeg")


def test_torchcodec_that_cannot_load_is_one_clear_error(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "torchcodec.decoders", None)  # import fails as with the package absent
    with pytest.raises(ConfigError, match="decoder torchcodec is not usable here"):
        torchcodec_decoder()


@needs_torchcodec
@pytest.mark.parametrize(
    "kwargs",
    [{"num_frames": 12}, {"num_frames": 5, "start": 1.0, "end": 3.0}, {"num_frames": 12, "fps": 2.0}],
    ids=["uniform", "window", "rate"],
)
def test_torchcodec_shows_the_same_frames_at_the_same_times_as_pyav(video, kwargs) -> None:
    reference = sample_frames(video, **kwargs)
    other = sample_frames(video, decoder="torchcodec", **kwargs)
    np.testing.assert_array_equal(frame_indices(other.frames), frame_indices(reference.frames))
    np.testing.assert_allclose(other.timestamps, reference.timestamps, atol=1e-6)
    assert other.frames.shape == reference.frames.shape and other.frames.dtype == np.uint8
    # the same frames, converted to RGB by another library: close, not necessarily equal
    assert np.abs(other.frames.astype(int) - reference.frames.astype(int)).mean() < 2.0


@needs_torchcodec
def test_the_loader_decodes_with_the_spec_s_decoder(video, tmp_path) -> None:
    spec = FrameSpec(num_frames=6, size=32, decoder="torchcodec")
    decoded = decode_video("k", video, spec)
    reference = decode_video("k", video, FrameSpec(num_frames=6, size=32))
    assert decoded.pixels.shape == reference.pixels.shape == (6, 3, 32, 32)
    np.testing.assert_allclose(decoded.timestamps, reference.timestamps, atol=1e-6)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(video.read_bytes()[:300])
    failure = decode_video("b", broken, spec)
    assert type(failure).__name__ == "DecodeFailure"
