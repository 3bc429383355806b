"""A small retrieval problem with known answers: videos are (colour, shape, place) combinations, frames carry
their concept vectors plus noise, captions name the concepts in varied word order."""

from __future__ import annotations

import itertools

import torch

from vitr.data.types import Caption, RetrievalDataset, VideoItem

COLOURS = ["red", "green", "blue", "yellow"]
SHAPES = ["circle", "square", "star", "triangle", "heart"]
PLACES = ["left", "right", "top"]
TEMPLATES = ["a {c} {s} on the {p}", "the {s} is {c} and on the {p}", "on the {p} there is a {c} {s}"]


def make_problem(num_videos: int = 48, frames: int = 4, dim: int = 16, seed: int = 0):
    """-> (dataset with 3 captions per video, frames (V, T, D), mask (V, T), combination of each video)."""
    g = torch.Generator().manual_seed(seed)
    combos = list(itertools.product(range(len(COLOURS)), range(len(SHAPES)), range(len(PLACES))))
    picks = torch.randperm(len(combos), generator=g)[:num_videos].tolist()
    concept = torch.randn(len(COLOURS) + len(SHAPES) + len(PLACES), dim, generator=g)
    videos, captions, features = [], [], []
    for v, pick in enumerate(picks):
        c, s, p = combos[pick]
        vec = concept[c] + concept[len(COLOURS) + s] + concept[len(COLOURS) + len(SHAPES) + p]
        features.append(vec + 0.3 * torch.randn(frames, dim, generator=g))
        videos.append(VideoItem(f"video{v}", f"video{v}.mp4"))
        captions += [Caption(f"video{v}", t.format(c=COLOURS[c], s=SHAPES[s], p=PLACES[p])) for t in TEMPLATES]
    dataset = RetrievalDataset("synthetic", "train", videos, captions)
    return dataset, torch.stack(features), torch.ones(num_videos, frames), [combos[i] for i in picks]


def inject_wrong_captions(dataset: RetrievalDataset, share: float, seed: int = 0):
    """Replace `share` of the captions with a caption of another video -> (noisy dataset, (C,) bool truth)."""
    g = torch.Generator().manual_seed(seed)
    num = len(dataset.captions)
    noisy = torch.randperm(num, generator=g)[: int(round(share * num))].tolist()
    captions = list(dataset.captions)
    truth = torch.zeros(num, dtype=torch.bool)
    for i in noisy:
        while True:
            donor = dataset.captions[int(torch.randint(num, (1,), generator=g))]
            if donor.video_id != captions[i].video_id:
                break
        captions[i] = Caption(captions[i].video_id, donor.text)
        truth[i] = True
    return RetrievalDataset(dataset.name, dataset.split, list(dataset.videos), captions), truth.numpy()
