"""Caption-video training pairs and the batch order of every epoch.

Every caption is its own sample (MSR-VTT `expand_msrvtt_sentences`, clip2video.md §8.3), so a video with 20
captions appears 20 times per epoch. Items are `(video (T, D) features or (T, 3, S, S) pixels, mask (T,),
tokens (L,), video_index)`; `video_index` is the video's position in `RetrievalDataset.videos`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence

import torch
from torch.utils.data import Dataset, Sampler

from vitr.backbones.base import Backbone
from vitr.data.cache import FeatureCache
from vitr.data.types import RetrievalDataset
from vitr.errors import DatasetFormatError
from vitr.video.loader import DecodeFailure, FrameSpec, decode_video

Tokenize = Callable[[Sequence[str]], torch.Tensor]  # captions -> (B, L) token ids
# (frames or pixels, mask, tokens, video index, sample index): the sample index lets extra loss terms look
# up per-caption data (TeachText's teacher scores) for exactly the captions of a batch.
PairItem = tuple[torch.Tensor, torch.Tensor, torch.Tensor, int, int]


def _caption_pairs(
    dataset: RetrievalDataset, usable: set[str], tokenize: Tokenize
) -> tuple[list[int], torch.Tensor, list[str]]:
    """Video index of every caption of a usable video, all those captions tokenised once (C, L), and their ids."""
    video_index = dataset.video_index()
    kept = [(c, cid) for c, cid in zip(dataset.captions, dataset.caption_ids(), strict=True) if c.video_id in usable]
    if not kept:
        raise DatasetFormatError(f"{dataset.name}/{dataset.split}: no caption belongs to a usable video")
    tokens = tokenize([c.text for c, _ in kept])
    return [video_index[c.video_id] for c, _ in kept], tokens, [cid for _, cid in kept]


class CachedPairDataset(Dataset):
    """(frames (T, D), mask (T,), tokens (L,), video_index) from cached frame features.

    All features are read into memory once (9k MSR-VTT videos x 12 x 512 floats is ~220 MB): training then
    never touches the cache's sqlite handle, so DataLoader workers are safe. A video without features, or whose
    mask is all zero, is an error (training on zeros gives NaN or silent garbage, CLIP4Clip issues #59, #93)
    unless `skip_missing`; `skipped` lists what was left out either way.
    """

    def __init__(
        self,
        dataset: RetrievalDataset,
        cache: FeatureCache,
        video_keys: Mapping[str, str],
        tokenize: Tokenize,
        skip_missing: bool = False,
    ) -> None:
        present = [v.video_id for v in dataset.videos if v.video_id in video_keys and video_keys[v.video_id] in cache]
        features = cache.get_many(video_keys[vid] for vid in present)
        frames = [features[video_keys[vid]].frames.float() for vid in present]  # N x (T, D)
        masks = [features[video_keys[vid]].mask.float() for vid in present]  # N x (T,)
        usable = {vid for vid, m in zip(present, masks, strict=True) if m.any()}
        self.skipped = [v.video_id for v in dataset.videos if v.video_id not in usable]
        if self.skipped and not skip_missing:
            raise DatasetFormatError(
                f"{dataset.name}/{dataset.split}: {len(self.skipped)} of {len(dataset.videos)} videos have no "
                f"cached features or no frames, e.g. {self.skipped[:5]}; extract them "
                "(vitr.inference.extract.extract_features) or pass skip_missing=True to train without them"
            )
        if not usable:
            raise DatasetFormatError(
                f"{dataset.name}/{dataset.split}: none of {len(dataset.videos)} videos has "
                "cached features with frames; extract features first (vitr.inference.extract.extract_features)"
            )
        keep = [i for i, vid in enumerate(present) if vid in usable]
        self.video_ids = [present[i] for i in keep]  # the video of each row of `frames`, in the dataset's order
        self.frames = torch.stack([frames[i] for i in keep])  # (N, T, D)
        self.mask = torch.stack([masks[i] for i in keep])  # (N, T)
        index = dataset.video_index()
        self._row = {index[present[i]]: row for row, i in enumerate(keep)}  # video_index -> row in self.frames
        self.video_of_sample, self.tokens, self.caption_ids = _caption_pairs(dataset, usable, tokenize)

    def __len__(self) -> int:
        return len(self.video_of_sample)

    def __getitem__(self, i: int) -> PairItem:
        video = self.video_of_sample[i]
        row = self._row[video]
        return self.frames[row], self.mask[row], self.tokens[i], video, i


def caption_tokenizer(backbone: Backbone, max_words: int) -> Tokenize:
    """The backbone's tokenizer cut to `max_words` positions (CLIP4Clip: 32, start and end tokens included)."""
    return functools.partial(backbone.tokenize, context_length=max_words)


class PixelPairDataset(Dataset):
    """(pixels (T, 3, S, S), mask (T,), tokens (L,), video_index), decoding each video when it is drawn.

    For end-to-end training (freeze="none"). Frame sampling is deterministic (`FrameSpec`), so a resumed run
    sees the same pixels. A file that cannot be decoded raises `VideoDecodeError` rather than becoming a
    batch of zeros.
    """

    def __init__(self, dataset: RetrievalDataset, spec: FrameSpec, tokenize: Tokenize) -> None:
        self.videos = dataset.videos
        self.spec = spec
        usable = {v.video_id for v in dataset.videos}
        self.video_of_sample, self.tokens, self.caption_ids = _caption_pairs(dataset, usable, tokenize)

    def __len__(self) -> int:
        return len(self.video_of_sample)

    def __getitem__(self, i: int) -> PairItem:
        video = self.video_of_sample[i]
        item = self.videos[video]
        decoded = decode_video(item.video_id, item.path, self.spec, item.start, item.end)
        if isinstance(decoded, DecodeFailure):
            raise decoded.error
        return decoded.pixels, decoded.mask, self.tokens[i], video, i


class PairBatchSampler(Sampler[list[int]]):
    """This rank's micro-batches of one epoch; the order is a function of (seed, epoch) alone.

    Each global batch of `global_batch` samples is cut into `world_size` contiguous slices, rank r taking the
    r-th (like DistributedSampler, but batch-aligned), so the gathered batch of a multi-process run is exactly
    the single-process batch. `distinct_videos` packs batches greedily from the shuffled order, deferring a
    caption whose video is already in the batch to a later one: no caption then meets another caption of its
    own video as a negative. `set_epoch(epoch, skip)` starts after `skip` batches (exact resume).
    """

    def __init__(
        self,
        video_of_sample: Sequence[int],
        global_batch: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        distinct_videos: bool = False,
    ) -> None:
        if global_batch % world_size:
            raise DatasetFormatError(f"batch size {global_batch} is not divisible by {world_size} processes")
        self.video_of_sample = list(video_of_sample)
        self.global_batch = global_batch
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.distinct_videos = distinct_videos
        self.epoch, self.skip = 0, 0
        self._plans: dict[int, list[list[int]]] = {}

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def num_batches(self, epoch: int) -> int:
        """Global batches in `epoch` (the last, incomplete one is dropped)."""
        if not self.distinct_videos:
            return len(self.video_of_sample) // self.global_batch
        return len(self.global_batches(epoch))

    def global_batches(self, epoch: int) -> list[list[int]]:
        if epoch not in self._plans:
            generator = torch.Generator().manual_seed(self.seed + epoch)
            order = torch.randperm(len(self.video_of_sample), generator=generator).tolist()
            plan = self._pack_distinct(order) if self.distinct_videos else self._chunk(order)
            self._plans = {epoch: plan}  # one epoch at a time is all the loop needs
        return self._plans[epoch]

    def _chunk(self, order: list[int]) -> list[list[int]]:
        n = len(order) // self.global_batch
        return [order[i * self.global_batch : (i + 1) * self.global_batch] for i in range(n)]

    def _pack_distinct(self, order: list[int]) -> list[list[int]]:
        video = self.video_of_sample
        batches: list[list[int]] = []
        deferred: list[int] = []
        cursor = 0
        while True:
            batch: list[int] = []
            seen: set[int] = set()
            still_deferred = []
            for i in deferred:
                if len(batch) < self.global_batch and video[i] not in seen:
                    batch.append(i)
                    seen.add(video[i])
                else:
                    still_deferred.append(i)
            deferred = still_deferred
            while len(batch) < self.global_batch and cursor < len(order):
                i = order[cursor]
                cursor += 1
                if video[i] in seen:
                    deferred.append(i)
                else:
                    batch.append(i)
                    seen.add(video[i])
            if len(batch) < self.global_batch:
                return batches
            batches.append(batch)

    def __iter__(self) -> Iterator[list[int]]:
        local = self.global_batch // self.world_size
        for batch in self.global_batches(self.epoch)[self.skip :]:
            yield batch[self.rank * local : (self.rank + 1) * local]

    def __len__(self) -> int:
        return max(0, self.num_batches(self.epoch) - self.skip)
