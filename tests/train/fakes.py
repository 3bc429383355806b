"""A tiny dual encoder (D = 16), a head with parameters, and a cached-feature caption dataset for trainer tests.

The toy problem is learnable: video i's frames scatter around a random direction c_i, and its captions name
it ("clip seven"), so the text tower can learn to map words onto the c_i.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vitr.backbones.base import Backbone, TextFeatures
from vitr.data.cache import CachedFeatures, FeatureCache
from vitr.data.types import Caption, RetrievalDataset, VideoItem
from vitr.heads.base import TemporalHead
from vitr.losses.selection import SelectionConfig
from vitr.model.retrieval import VideoTextModel
from vitr.teachers.bank import TeacherBank
from vitr.train.config import PsSclConfig, TeachTextConfig, TrainConfig
from vitr.train.datasets import CachedPairDataset
from vitr.train.ps_scl import PairPool
from vitr.train.sources import LossTerm
from vitr.train.teachtext import TeachTextTargets

DIM = 16
FRAMES = 4
VOCAB = 97
NUMBERS = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen".split()


def tiny_tokenize(texts: Sequence[str], context_length: int = 8) -> torch.Tensor:
    """Start id 1, one hashed id per word, end id 2, zero padding: (B, context_length)."""
    out = torch.zeros(len(texts), context_length, dtype=torch.long)
    for i, text in enumerate(texts):
        words = [zlib.crc32(w.encode()) % (VOCAB - 3) + 3 for w in text.lower().split()]
        ids = [1, *words[: context_length - 2], 2]
        out[i, : len(ids)] = torch.tensor(ids)
    return out


class TinyBackbone(Backbone):
    """Text: word embeddings + positions, masked mean, projection. Images: one linear map of the pixels."""

    embed_dim = DIM
    image_size = 4
    image_mean = (0.5, 0.5, 0.5)
    image_std = (0.25, 0.25, 0.25)
    context_length = 8

    def __init__(self) -> None:
        super().__init__()
        self.visual = nn.Linear(3 * self.image_size**2, DIM)
        self.token_embedding = nn.Embedding(VOCAB, DIM)
        self.positional_embedding = nn.Parameter(0.01 * torch.randn(self.context_length, DIM))
        self.ln_final = nn.LayerNorm(DIM)
        self.text_projection = nn.Linear(DIM, DIM)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return self.visual(images.flatten(1))

    def encode_text(self, tokens: torch.Tensor) -> TextFeatures:
        mask = (tokens != 0).float()  # (B, L)
        states = self.ln_final(self.token_embedding(tokens) + self.positional_embedding[: tokens.shape[1]])
        projected = self.text_projection(states)  # (B, L, D)
        pooled = (projected * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        return TextFeatures(pooled, projected, mask)

    def tokenize(self, texts: Sequence[str], context_length: int | None = None) -> torch.Tensor:
        return tiny_tokenize(texts, context_length or self.context_length)

    def fingerprint(self) -> str:
        return "tiny-test-backbone"

    def visual_fingerprint(self) -> str:
        return "tiny-test-backbone-visual"


class ProjectedMeanHead(TemporalHead):
    """Masked mean of the frames through a learnable linear map (with dropout, so RNG state matters)."""

    name = "test_projected_mean"

    def __init__(self, embed_dim: int = DIM, dropout: float = 0.0) -> None:
        super().__init__()
        self.proj = nn.Linear(embed_dim, embed_dim)
        self.dropout = nn.Dropout(dropout)

    def embed_video(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        pooled = (frames * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)  # (B, D)
        return F.normalize(self.proj(self.dropout(pooled)), dim=-1)

    def embed_text(self, text: TextFeatures) -> torch.Tensor:
        return F.normalize(text.pooled, dim=-1)


def tiny_model(seed: int = 0, head: TemporalHead | None = None, dropout: float = 0.0) -> VideoTextModel:
    torch.manual_seed(seed)
    backbone = TinyBackbone()
    return VideoTextModel(backbone, head if head is not None else ProjectedMeanHead(DIM, dropout))


def toy_retrieval(num_videos: int = 12, captions_per_video: int = 2) -> RetrievalDataset:
    videos = [VideoItem(f"video{i}", f"/videos/video{i}.mp4") for i in range(num_videos)]
    captions = [
        Caption(f"video{i}", f"clip {NUMBERS[i]} {'take ' * j}".strip())
        for i in range(num_videos)
        for j in range(captions_per_video)
    ]
    return RetrievalDataset("toy", "train", videos, captions)


def write_toy_features(root: Path, dataset: RetrievalDataset, seed: int = 0) -> tuple[FeatureCache, dict[str, str]]:
    """Frames of video i = c_i + noise (the last frame of odd videos masked out); returns the cache and keys."""
    gen = torch.Generator().manual_seed(seed)
    cache = FeatureCache(root, "toy")
    keys = {}
    with cache.writer() as writer:
        for i, video in enumerate(dataset.videos):
            centre = torch.randn(DIM, generator=gen)
            frames = centre + 0.3 * torch.randn(FRAMES, DIM, generator=gen)
            mask = torch.ones(FRAMES)
            if i % 2:
                mask[-1] = 0.0
                frames[-1] = 0.0
            keys[video.video_id] = f"key-{video.video_id}"
            writer.add(keys[video.video_id], CachedFeatures(frames, mask, torch.arange(FRAMES, dtype=torch.float32)))
    return cache, keys


def toy_pairs(root: Path, num_videos: int = 12, captions_per_video: int = 2) -> CachedPairDataset:
    dataset = toy_retrieval(num_videos, captions_per_video)
    cache, keys = write_toy_features(root, dataset)
    return CachedPairDataset(dataset, cache, keys, tiny_tokenize)


def ddp_case_config(output_dir: Path) -> TrainConfig:
    """The run that test_distributed trains once in one process and once under torchrun with two."""
    return TrainConfig(
        lr=1e-2,
        backbone_lr=1e-3,
        weight_decay=0.1,
        epochs=2,
        batch_size=8,
        grad_accum=2,
        output_dir=str(output_dir),
        progress=False,
        tensorboard=False,
        seed=5,
    )


def toy_pseudo_pool(num_videos: int = 16, seed: int = 0) -> PairPool:
    """Videos of the toy problem with two pseudo-texts each, one right ("clip seven") and one wrong (another
    video's number), and teacher scores that favour the right one: something for SeLeCT to select."""
    gen = torch.Generator().manual_seed(seed)
    frames = torch.randn(num_videos, 1, DIM, generator=gen) + 0.3 * torch.randn(num_videos, FRAMES, DIM, generator=gen)
    mask = torch.ones(num_videos, FRAMES)
    mask[1::2, -1] = 0.0
    texts, owners, teacher = [], [], []
    for i in range(num_videos):
        texts += [f"clip {NUMBERS[i]}", f"clip {NUMBERS[(i + 5) % num_videos]}"]
        owners += [i, i]
        teacher += [0.6, 0.1]
    form = torch.tensor([2, 3] * num_videos)  # single, temporal: half the videos' texts say something changed
    return PairPool(
        frames,
        mask,
        tiny_tokenize(texts),
        torch.tensor(owners),
        torch.tensor(teacher),
        torch.ones(num_videos, dtype=torch.bool),
        form,
    )


def toy_teachtext(pairs: CachedPairDataset, dataset: RetrievalDataset, seed: int = 0) -> TeachTextTargets:
    """Two random teachers over every caption and video of `dataset`, rows named by id."""
    gen = torch.Generator().manual_seed(seed)

    def unit(n: int) -> torch.Tensor:
        return F.normalize(torch.randn(n, 6, generator=gen), dim=-1)

    bank = TeacherBank(
        ["t0", "t1"],
        [unit(len(dataset.captions)) for _ in range(2)],
        [unit(len(dataset.videos)) for _ in range(2)],
        [10.0, 20.0],
        caption_ids=dataset.caption_ids(),
        video_ids=[v.video_id for v in dataset.videos],
    )
    return TeachTextTargets.for_pairs(bank, pairs, dataset, TeachTextConfig(weight=2.0))


def method_case_config(output_dir: Path, method: str, **overrides: object) -> TrainConfig:
    """The DDP case's settings for `method`: supervised, ps_scl (gmm selection fitted each epoch, symmetric anchor)
    or teachtext."""
    base = dict(ddp_case_config(output_dir).__dict__)
    if method == "ps_scl":
        base["epochs"] = 3  # the mixture is fitted at the start of epochs 1 and 2
        selection = SelectionConfig(rule="gmm", warmup_epochs=1)
        base["ps_scl"] = PsSclConfig(selection=selection, anchor="symmetric", anchor_weight=0.5)
    return TrainConfig(**{**base, **overrides})


def method_case(root: Path, method: str) -> tuple[object, list[LossTerm]]:
    """(training data, extra loss terms) of `method` on the toy problem, built the same in every process."""
    if method == "ps_scl":
        return toy_pseudo_pool(), []
    dataset = toy_retrieval()
    cache, keys = write_toy_features(root, dataset)
    pairs = CachedPairDataset(dataset, cache, keys, tiny_tokenize)
    if method == "teachtext":
        return pairs, [toy_teachtext(pairs, dataset).extra_loss]
    return pairs, []


def write_labelled_csv(root: Path, frames: int = 8) -> Path:
    """Four `frames`-frame noise videos whose frames all differ, two captions each, as a generic CSV in `root`."""
    import csv

    import numpy as np

    from vitr.video.writer import write_video

    rng = np.random.default_rng(0)
    rows = []
    for i, colour in enumerate(["red", "blue", "green", "white"]):
        write_video(root / "videos" / f"v{i}.mp4", rng.integers(0, 255, (frames, 32, 32, 3), dtype=np.uint8))
        rows += [(f"videos/v{i}.mp4", f"a {colour} circle"), (f"videos/v{i}.mp4", f"something {colour} moves")]
    ann = root / "train.csv"
    with ann.open("w", newline="") as f:
        csv.writer(f).writerows([("video", "caption"), *rows])
    return ann
