"""A small index whose 'model' knows what its words mean, to check weak-match marking without training a CLIP.

Text and video vectors are bags of words: each content word has a fixed random unit vector (seeded by the word),
a text is the normalised sum of its words' vectors, and a video's segment vector is that of its description. So
a caption that shares the description's words scores high, and a query about anything else scores what random
256-d vectors score against each other (about 0 +- 0.06), plus whatever words it happens to share.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from tests.index.videos import TINY_MODEL
from vitr.index.video_index import VideoIndex

DIM = 256
STOP_WORDS = frozenset("a an the on in of to and is its at with from then it into over by for".split())
DESCRIPTIONS = [
    "red square moving right",
    "blue circle growing bigger",
    "green triangle left side",
    "yellow cross falling down",
    "purple disc shrinking slowly",
    "white square moving up",
    "red triangle appearing top",
    "blue cross disappearing bottom",
    "green disc moving left",
    "yellow square growing right",
]


def word_vector(word: str) -> np.ndarray:
    v = np.random.default_rng(zlib.crc32(word.encode())).standard_normal(DIM)
    return v / np.linalg.norm(v)


def embed_words(texts: list[str]) -> np.ndarray:
    out = np.zeros((len(texts), DIM), dtype=np.float32)
    for i, text in enumerate(texts):
        words = [w.strip(".,'\"").lower() for w in text.split()]
        vectors = [word_vector(w) for w in words if w and w not in STOP_WORDS]
        v = np.sum(vectors, axis=0) if vectors else word_vector("<empty>")
        out[i] = v / np.linalg.norm(v)
    return out


def add_videos(index: VideoIndex, folder: Path, descriptions: list[str]) -> None:
    rows = []
    for description in descriptions:
        path = folder / f"{description.replace(' ', '_')}.mp4"
        rows.append((str(path), 1, 1, f"digest-{description}", 3.0, [(None, None, embed_words([description])[0])]))
    index.meta.commit_batch(rows)


def word_index(directory: Path, descriptions: list[str] = DESCRIPTIONS) -> VideoIndex:
    """An index of `descriptions` (one whole-video segment each) whose text embedding is `embed_words`."""
    index = VideoIndex.create(directory / "index", TINY_MODEL)
    index.embed_texts = embed_words  # the model's text tower, for this fixture
    index.meta.add_root(str(directory / "videos"))
    add_videos(index, directory / "videos", descriptions)
    return index
