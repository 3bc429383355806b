import numpy as np
import pytest

from tests.train.fakes import tiny_model
from vitr.data.types import VideoItem
from vitr.errors import DatasetFormatError
from vitr.lab.cost import video_inference_cost
from vitr.video.writer import write_video


def _videos(tmp_path, n=4):
    rng = np.random.default_rng(0)
    return [
        VideoItem(f"v{i}", str(write_video(tmp_path / f"v{i}.mp4", rng.integers(0, 255, (12, 16, 16, 3), np.uint8))))
        for i in range(n)
    ]


def test_cost_counts_the_frames_each_video_is_decoded_and_encoded_with(tmp_path):
    cost = video_inference_cost(tiny_model(), _videos(tmp_path), num_frames=6, warmup=1)
    assert cost.frames == 6 and cost.videos == 3
    assert cost.decode_ms > 0 and cost.encode_ms > 0
    assert cost.ms_per_video == pytest.approx(cost.decode_ms + cost.encode_ms)


def test_a_video_that_cannot_be_decoded_is_named(tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    videos = [*_videos(tmp_path, 2), VideoItem("broken", str(broken))]
    with pytest.raises(DatasetFormatError, match="cannot time .*broken.mp4"):
        video_inference_cost(tiny_model(), videos, num_frames=4, warmup=1)
