"""Caption-video pairs from the feature cache, and the per-epoch batch order."""

import pytest
import torch

from tests.train.fakes import DIM, FRAMES, tiny_tokenize, toy_retrieval, write_toy_features
from vitr.data.cache import CachedFeatures
from vitr.errors import DatasetFormatError
from vitr.train.datasets import CachedPairDataset, PairBatchSampler


def test_every_caption_is_a_sample_with_its_videos_features(tmp_path):
    dataset = toy_retrieval(num_videos=5, captions_per_video=3)
    cache, keys = write_toy_features(tmp_path, dataset)
    pairs = CachedPairDataset(dataset, cache, keys, tiny_tokenize)
    assert len(pairs) == 15
    frames, mask, tokens, video, sample = pairs[7]
    assert video == 2 and sample == 7 and frames.shape == (FRAMES, DIM) and mask.shape == (FRAMES,)
    assert torch.equal(frames, cache.get(keys["video2"]).frames)
    assert torch.equal(tokens, tiny_tokenize([dataset.captions[7].text])[0])


def test_missing_or_empty_videos_fail_loudly_or_are_skipped(tmp_path):
    dataset = toy_retrieval(num_videos=4, captions_per_video=2)
    cache, keys = write_toy_features(tmp_path, dataset)
    del keys["video1"]
    with pytest.raises(DatasetFormatError, match="1 of 4 videos"):
        CachedPairDataset(dataset, cache, keys, tiny_tokenize)
    pairs = CachedPairDataset(dataset, cache, keys, tiny_tokenize, skip_missing=True)
    assert pairs.skipped == ["video1"]
    assert len(pairs) == 6 and 1 not in pairs.video_of_sample
    assert [pairs[i][3] for i in range(len(pairs))] == [0, 0, 2, 2, 3, 3]
    assert torch.equal(pairs[2][0], cache.get(keys["video2"]).frames)


def test_batches_depend_on_seed_and_epoch_only():
    videos = [i // 2 for i in range(40)]
    a, b = PairBatchSampler(videos, 8, seed=3), PairBatchSampler(videos, 8, seed=3)
    a.set_epoch(1)
    b.set_epoch(1)
    assert list(a) == list(b) and len(a) == 5
    b.set_epoch(2)
    assert list(a) != list(b)
    a.set_epoch(1, skip=3)
    assert list(a) == a.global_batches(1)[3:]
    assert sorted(i for batch in a.global_batches(1) for i in batch) == list(range(40))


def test_ranks_split_each_global_batch():
    videos = list(range(24))
    whole = PairBatchSampler(videos, 8, seed=0)
    ranks = [PairBatchSampler(videos, 8, seed=0, rank=r, world_size=2) for r in range(2)]
    for sampler in (whole, *ranks):
        sampler.set_epoch(4)
    for batch, left, right in zip(whole, *ranks, strict=True):
        assert left + right == batch and len(left) == 4
    with pytest.raises(DatasetFormatError, match="divisible"):
        PairBatchSampler(videos, 9, seed=0, world_size=2)


def test_distinct_videos_keeps_captions_of_one_video_apart():
    videos = [i // 5 for i in range(60)]  # 12 videos x 5 captions
    plain = PairBatchSampler(videos, 6, seed=1)
    assert any(len({videos[i] for i in b}) < 6 for b in plain.global_batches(0))
    distinct = PairBatchSampler(videos, 6, seed=1, distinct_videos=True)
    batches = distinct.global_batches(0)
    assert len(batches) >= 8
    for batch in batches:
        assert len(batch) == 6 and len({videos[i] for i in batch}) == 6
    used = [i for b in batches for i in b]
    assert len(used) == len(set(used))
    assert distinct.num_batches(0) == len(batches)


def test_a_video_with_no_real_frames_counts_as_missing(tmp_path):
    dataset = toy_retrieval(num_videos=3, captions_per_video=1)
    cache, keys = write_toy_features(tmp_path, dataset)
    keys["video2"] = "empty"
    with cache.writer() as writer:
        writer.add("empty", CachedFeatures(torch.zeros(FRAMES, DIM), torch.zeros(FRAMES), torch.zeros(FRAMES)))
    with pytest.raises(DatasetFormatError, match="no frames"):
        CachedPairDataset(dataset, cache, keys, tiny_tokenize)
    assert CachedPairDataset(dataset, cache, keys, tiny_tokenize, skip_missing=True).skipped == ["video2"]
