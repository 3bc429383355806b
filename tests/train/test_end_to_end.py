"""End-to-end training on decoded pixels, and the autocast path."""

import math

import numpy as np
import torch

from tests.train.fakes import tiny_model, tiny_tokenize, toy_pairs, toy_retrieval
from vitr.data.types import RetrievalDataset, VideoItem
from vitr.train.config import TrainConfig
from vitr.train.datasets import PixelPairDataset
from vitr.train.trainer import Trainer
from vitr.video.loader import FrameSpec
from vitr.video.writer import write_video


def _config(tmp_path, **overrides):
    base = {
        "lr": 1e-2,
        "backbone_lr": 1e-2,
        "epochs": 1,
        "batch_size": 4,
        "output_dir": str(tmp_path / "run"),
        "progress": False,
        "tensorboard": False,
    }
    return TrainConfig(**{**base, **overrides})


def test_freeze_none_trains_the_visual_tower_on_decoded_video(tmp_path):
    toy = toy_retrieval(num_videos=4, captions_per_video=2)
    rng = np.random.default_rng(0)
    videos = []
    for item in toy.videos:
        path = write_video(tmp_path / f"{item.video_id}.mp4", rng.integers(0, 255, (6, 8, 8, 3), dtype=np.uint8))
        videos.append(VideoItem(item.video_id, str(path)))
    dataset = RetrievalDataset("toy", "train", videos, toy.captions)
    model = tiny_model()
    spec = FrameSpec(
        num_frames=3, size=model.backbone.image_size, mean=model.backbone.image_mean, std=model.backbone.image_std
    )
    pairs = PixelPairDataset(dataset, spec, tiny_tokenize)
    pixels, mask, tokens, video, sample = pairs[3]
    assert pixels.shape == (3, 3, 4, 4) and mask.tolist() == [1.0, 1.0, 1.0] and video == 1

    visual_before = model.backbone.visual.weight.detach().clone()
    history = Trainer(model, _config(tmp_path, freeze="none"), pairs).fit()
    assert len(history) == 2 and all(math.isfinite(h) for h in history)
    assert not torch.equal(model.backbone.visual.weight, visual_before)


def test_bf16_autocast_trains(tmp_path):
    pairs = toy_pairs(tmp_path / "cache")
    model = tiny_model()
    history = Trainer(model, _config(tmp_path, precision="bf16", batch_size=8, epochs=2), pairs).fit()
    assert len(history) == 6 and all(math.isfinite(h) for h in history)
    assert all(p.dtype == torch.float32 for p in model.parameters())  # autocast leaves the weights in fp32
