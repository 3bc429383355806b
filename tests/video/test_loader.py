from pathlib import Path

import numpy as np
import pytest
import torch

from tests.video.clips import write_indexed_video
from vitr.errors import VideoDecodeError
from vitr.video import DecodedVideo, DecodeFailure, FrameSpec, collate, iter_decoded

SPEC = FrameSpec(num_frames=6, size=32)


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("videos")
    broken = folder / "broken.mp4"
    broken.write_text("not a video")
    return {
        "long": write_indexed_video(folder / "long.mp4", 40, 8.0),
        "short": write_indexed_video(folder / "short.mp4", 3, 8.0),
        "broken": broken,
        "missing": folder / "missing.mp4",
    }


def test_yields_in_input_order_and_keeps_going_after_failures(videos):
    items = [
        ("a", videos["long"]),
        ("b", videos["missing"]),
        ("c", videos["short"], None, None),
        ("d", videos["broken"]),
        ("e", str(videos["long"]), 1.0, 2.0),
    ]
    results = list(iter_decoded(items, SPEC, workers=2, prefetch=2))
    assert [r.key for r in results] == ["a", "b", "c", "d", "e"]
    assert [type(r) for r in results] == [DecodedVideo, DecodeFailure, DecodedVideo, DecodeFailure, DecodedVideo]
    for failure in (results[1], results[3]):
        assert isinstance(failure.error, VideoDecodeError)
        assert failure.path == str(failure.error.path) == str(videos["missing" if failure.key == "b" else "broken"])
    for video in (results[0], results[2], results[4]):
        assert video.pixels.shape == (6, 3, 32, 32)
        assert video.timestamps.shape == (6,)
    np.testing.assert_allclose(results[4].timestamps, [1.0, 1.125, 1.375, 1.5, 1.75, 2.0])


def test_uniform_spec_fills_every_slot_even_for_a_short_clip(videos):
    (video,) = iter_decoded([("s", videos["short"])], SPEC)
    torch.testing.assert_close(video.mask, torch.ones(6))
    assert not np.isnan(video.timestamps).any()


def test_rate_spec_pads_and_masks_missing_frames(videos):
    spec = FrameSpec(num_frames=6, fps=1.0, size=32)  # 5 s video -> frames at 0, 1, 2, 3, 4 s
    (video,) = iter_decoded([("r", videos["long"])], spec)
    torch.testing.assert_close(video.mask, torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0, 0.0]))
    np.testing.assert_allclose(video.timestamps[:5], [0.0, 1.0, 2.0, 3.0, 4.0])
    assert np.isnan(video.timestamps[5])
    assert torch.all(video.pixels[5] == 0)
    capped = next(iter_decoded([("r", videos["long"])], FrameSpec(num_frames=3, fps=1.0, size=32)))
    np.testing.assert_allclose(capped.timestamps, [0.0, 2.0, 4.0])


def test_threaded_and_inline_decoding_agree(videos):
    items = [(name, path) for name, path in videos.items()] * 2
    threaded = list(iter_decoded(items, SPEC, workers=2, prefetch=3))
    inline = list(iter_decoded(items, SPEC, workers=0))
    assert [type(r) for r in threaded] == [type(r) for r in inline]
    for a, b in zip(threaded, inline, strict=True):
        if isinstance(a, DecodedVideo):
            torch.testing.assert_close(a.pixels, b.pixels)


def test_reads_ahead_at_most_prefetch_items(videos):
    pulled = []

    def items():
        for index in range(10):
            pulled.append(index)
            yield (str(index), videos["short"])

    stream = iter_decoded(items(), SPEC, workers=2, prefetch=3)
    first = next(stream)
    assert first.key == "0"
    assert len(pulled) <= 3
    stream.close()  # stopping early must not hang on the work still queued
    assert len(pulled) <= 3


def test_collate_stacks_a_batch(videos):
    decoded = list(iter_decoded([("a", videos["long"]), ("b", videos["short"])], SPEC))
    pixels, mask = collate(decoded)
    assert pixels.shape == (2, 6, 3, 32, 32)
    assert mask.shape == (2, 6)
    with pytest.raises(ValueError):
        collate([])


def test_rejects_malformed_items(videos):
    with pytest.raises(ValueError, match="key, path"):
        list(iter_decoded([("a", videos["long"], 1.0)], SPEC))
