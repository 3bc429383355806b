"""A video's text tracks as a video-side modality: what it says and shows, embedded by a sentence encoder.

TeachText's teachers differ in their text side; Collaborative Experts (Liu et al. 2019) also gave the video side
extra "experts" (speech, OCR) next to the visual one, with a mask where a video lacks a modality. This is that
expert for vitr's text spans (subtitles, OCR, speech): each span's sentence vector, pooled over the spans of a
video (or of a time window of it), so a multi-modal teacher can fuse it with the visual features while the student
stays visual-only. The spans are whatever carries `start`, `end`, `text` and `source` (`vitr.index.text_tracks.
TextSpan` does), so this module needs nothing of the index.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import torch

from vitr.teachers.text_encoders import load_sentence_encoder


class SpanLike(Protocol):
    start: float
    end: float
    text: str
    source: str


class TextTrackExpert:
    """Spans of N videos -> (N, X) unit vectors (the duration-weighted mean of their spans' sentence vectors,
    renormalised) and an (N,) mask, False for a video with no span in `sources` and the window: its row is zeros,
    a missing modality rather than a guess."""

    name = "text_tracks"

    def __init__(self, encoder, sources: Sequence[str] | None = None, batch_size: int = 256) -> None:  # noqa: ANN001
        self.encoder = encoder
        self.sources = None if sources is None else frozenset(sources)
        self.batch_size = batch_size

    @classmethod
    def minilm(cls, sources: Sequence[str] | None = None, model_dir: str | Path | None = None,
               device: str = "cpu") -> TextTrackExpert:
        """The expert on the bundled all-MiniLM-L6-v2, the sentence encoder of the TeachText teachers."""
        return cls(load_sentence_encoder(model_dir, device), sources)

    @property
    def dim(self) -> int:
        return int(self.encoder.get_embedding_dimension())

    def _kept(self, spans: Sequence[SpanLike], window: tuple[float, float] | None) -> list[SpanLike]:
        return [s for s in spans if s.text.strip() and (self.sources is None or s.source in self.sources)
                and (window is None or (s.start < window[1] and s.end > window[0]))]

    @torch.inference_mode()
    def featurize(self, tracks: Sequence[Sequence[SpanLike]],
                  windows: Sequence[tuple[float, float] | None] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """tracks: each video's spans; windows: (start, end) seconds per video to keep only the spans that overlap
        it (a segment of the video), None for all. -> ((N, X) float32, (N,) bool)."""
        windows = windows if windows is not None else [None] * len(tracks)
        if len(windows) != len(tracks):
            raise ValueError(f"{len(windows)} windows for {len(tracks)} videos")
        kept = [self._kept(spans, window) for spans, window in zip(tracks, windows, strict=True)]
        texts = [s.text for spans in kept for s in spans]
        out = torch.zeros(len(tracks), self.dim)
        mask = torch.tensor([bool(spans) for spans in kept])
        if not texts:
            return out, mask
        vectors = self.encoder.encode(texts, batch_size=self.batch_size, convert_to_tensor=True,
                                      normalize_embeddings=True, show_progress_bar=False).float().cpu()  # (S, X)
        row = 0
        for i, spans in enumerate(kept):
            if not spans:
                continue
            # longer spans say more of the video; a floor keeps a zero-length OCR span from vanishing
            weights = torch.tensor([max(s.end - s.start, 0.1) for s in spans])[:, None]  # (s, 1)
            pooled = (vectors[row : row + len(spans)] * weights).sum(0)
            out[i] = pooled / pooled.norm().clamp_min(1e-12)
            row += len(spans)
        return out, mask
