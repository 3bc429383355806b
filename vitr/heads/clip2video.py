"""CLIP2Video's Temporal Difference Block (TDB) and Temporal Alignment Block (TAB), clip2video.md §3-§4.

Attribute names equal the official ones (`frame_position_embeddings`, `type_position_embeddings`,
`frame2t_attention`, `trans_layernorm`, `frame2t_projection`, `transformerClip`, `actionClip`, `weight_center`,
`emb_center`), so a released state dict loads after stripping its `clip.*` part. D comes from the backbone
instead of the official hard-coded 512.

Heads:
- "tdb": the TDB global branch alone.
- "tab": a global branch without TDB (seqTransf, the CLIP2Video base, or meanP) plus the TAB term.
- "clip2video": TDB global branch plus the TAB term, as released.
Two-term heads emit concat[sqrt(1-w) g, sqrt(w) a] of unit vectors g, a, so the dot product is
(1-w) cos_global + w cos_tab exactly.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Mapping

import torch
from torch import nn

from vitr.backbones.base import TextFeatures
from vitr.errors import ConfigError
from vitr.heads.base import TemporalHead, register_head
from vitr.heads.meanp import l2_normalise, masked_mean_pool, text_global
from vitr.heads.seq_transf import (
    check_frame_count,
    copy_clip_positions,
    frame_position_embedding,
    sequence_transformer_video,
)
from vitr.heads.temporal_transformer import TemporalTransformer, default_heads, init_temporal_weights

TEMPORAL_PROJECTIONS = ("sigmoid_selfA", "sigmoid_mlp", "none")
DIFFERENCE_MASKS = ("strict", "official")
GLOBAL_BRANCHES = ("seqTransf", "meanP")
CENTER_INIT_STD = 64**-0.5  # 0.125, official init of the TAB centres and of `frame2t_projection`
FRAME_TYPE, DIFFERENCE_TYPE = 1, 0  # rows of `type_position_embeddings`


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {allowed}, got {value!r}")
    return value


def temporal_alignment(
    tokens: torch.Tensor, mask: torch.Tensor, weight_center: torch.Tensor, emb_center: torch.Tensor
) -> torch.Tensor:
    """align(X, M) of §4: soft-assign tokens to K centres, sum masked residuals, L2 per centre, mean, L2.

    tokens: (B, N, D) unnormalised, mask: (B, N), centres: (K, D) -> (B, D) unit vectors. The softmax has no
    temperature. sum_n a_nk (x_n - c_k) is computed as sum_n a_nk x_n - (sum_n a_nk) c_k, which is the same
    number without materialising the (B, N, K, D) residual tensor.
    """
    assign = torch.softmax(tokens @ weight_center.T, dim=-1) * mask.to(tokens.dtype)[..., None]  # (B, N, K)
    residuals = torch.einsum("bnk,bnd->bkd", assign, tokens) - assign.sum(1)[..., None] * emb_center  # (B, K, D)
    return l2_normalise(l2_normalise(residuals).mean(1))


class _DifferenceTokenHead(TemporalHead):
    """The TDB token machinery that TDB and TAB share: P, E, the difference enhancer, the interleaving.

    `difference_mask` decides which interleaved tokens attention may see:
    - "strict" (default): a difference token is visible only when both of its frames are real, and the
      difference enhancer uses the same pair mask, so padded frames never change a score.
    - "official": the difference enhancer masks by the later frame and the interleaved difference token takes
      the earlier frame's mask, so the last real frame minus the first padded one stays visible (§3); needed to
      reproduce released checkpoints exactly.
    """

    def __init__(
        self,
        embed_dim: int,
        num_frames: int,
        heads: int | None,
        mask_tiling: str,
        difference_mask: str,
        temporal_proj: str,
        ln_eps: float,
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.num_frames = num_frames
        self.heads = default_heads(embed_dim) if heads is None else heads
        self.mask_tiling = mask_tiling
        self.ln_eps = ln_eps
        self.difference_mask = _choice("difference_mask", difference_mask, DIFFERENCE_MASKS)
        self.temporal_proj = _choice("temporal_proj", temporal_proj, TEMPORAL_PROJECTIONS)
        self.frame_position_embeddings = frame_position_embedding(embed_dim, num_frames)  # P
        self.type_position_embeddings = nn.Embedding(2, embed_dim)  # E: row 0 difference, row 1 frame
        if temporal_proj == "sigmoid_selfA":
            self.frame2t_attention = self.temporal_transformer(layers=1)
        if temporal_proj == "sigmoid_mlp":
            self.frame2t_projection = nn.Parameter(torch.randn(embed_dim, embed_dim) * CENTER_INIT_STD)
        if temporal_proj != "none":
            self.trans_layernorm = nn.LayerNorm(embed_dim, eps=1e-5)  # torch LN, unlike the TF-style blocks

    def temporal_transformer(self, layers: int) -> TemporalTransformer:
        return TemporalTransformer(self.embed_dim, layers, self.heads, self.mask_tiling, self.ln_eps)

    def enhance_differences(
        self, differences: torch.Tensor, later_positions: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """`temporal_proj`: raw differences (B, T-1, D) -> motion features in (-1, 1) (or raw with "none")."""
        if self.temporal_proj == "sigmoid_selfA":
            attended = self.frame2t_attention(differences + later_positions, mask)
            return 2 * torch.sigmoid(self.trans_layernorm(attended)) - 1
        if self.temporal_proj == "sigmoid_mlp":
            return 2 * torch.sigmoid(self.trans_layernorm(differences @ self.frame2t_projection)) - 1
        return differences

    def difference_tokens(self, frames: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """tdb_tokens of §3: frames (B, T, D), mask (B, T) -> tokens (B, 2T-1, D), token mask (B, 2T-1).

        Order v_0, d_0, v_1, d_1, ..., d_{T-2}, v_{T-1} with d_i = v_{i+1} - v_i enhanced. Frame token i gets
        P[i] + E[1]; difference token i gets P[i] + E[0] (the earlier frame's position), while the enhancer
        tags d_i with P[i+1] (the later frame's position), as in the official code.
        """
        check_frame_count(frames, self.frame_position_embeddings)
        batch, length, width = frames.shape
        positions = self.frame_position_embeddings.weight[:length]  # (T, D)
        types = self.type_position_embeddings.weight  # (2, D)
        frame_tokens = frames + positions + types[FRAME_TYPE]  # (B, T, D)
        if length == 1:
            return frame_tokens, mask
        both_real = mask[:, 1:] * mask[:, :-1]  # (B, T-1)
        if self.difference_mask == "strict":
            enhancer_mask, difference_mask = both_real, both_real
        else:
            enhancer_mask, difference_mask = mask[:, 1:], mask[:, :-1]
        differences = self.enhance_differences(frames[:, 1:] - frames[:, :-1], positions[1:], enhancer_mask)
        difference_tokens = differences + positions[:-1] + types[DIFFERENCE_TYPE]  # (B, T-1, D)
        pairs = torch.stack([frame_tokens[:, :-1], difference_tokens], dim=2).reshape(batch, 2 * length - 2, width)
        pair_mask = torch.stack([mask[:, :-1], difference_mask.to(mask.dtype)], dim=2).reshape(batch, 2 * length - 2)
        tokens = torch.cat([pairs, frame_tokens[:, -1:]], dim=1)  # (B, 2T-1, D)
        token_mask = torch.cat([pair_mask, mask[:, -1:]], dim=1)  # (B, 2T-1)
        return tokens, token_mask

    def difference_enhanced_frames(
        self, frames: torch.Tensor, mask: torch.Tensor, transformer: TemporalTransformer
    ) -> torch.Tensor:
        """Run the interleaved tokens through `transformer` and keep the frame outputs plus the residual: (B, T, D)."""
        tokens, token_mask = self.difference_tokens(frames, mask)
        return transformer(tokens, token_mask)[:, 0::2] + frames

    def init_from_clip(self, clip_text_state: Mapping[str, torch.Tensor]) -> list[str]:
        """P <- CLIP text positions, E <- position rows 0-1, frame2t_attention <- text block 0 (§6)."""
        copied = copy_clip_positions(self.frame_position_embeddings, clip_text_state)
        copied += copy_clip_positions(self.type_position_embeddings, clip_text_state)
        if self.temporal_proj == "sigmoid_selfA":
            copied += self.frame2t_attention.init_from_clip_text(clip_text_state)
        return copied


@register_head("tdb")
class TemporalDifferenceHead(_DifferenceTokenHead):
    """TDB global branch: h = transformerClip(tdb_tokens(v, m))[frame tokens] + v;  u = pool(h, m)."""

    def __init__(
        self,
        embed_dim: int,
        num_frames: int = 12,
        layers: int = 4,
        heads: int | None = None,
        mask_tiling: str = "per_sample",
        difference_mask: str = "strict",
        temporal_proj: str = "sigmoid_selfA",
        ln_eps: float = 1e-12,
    ) -> None:
        super().__init__(embed_dim, num_frames, heads, mask_tiling, difference_mask, temporal_proj, ln_eps)
        self.transformerClip = self.temporal_transformer(layers)
        self.apply(init_temporal_weights)

    def embed_video(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return masked_mean_pool(self.difference_enhanced_frames(frames, mask, self.transformerClip), mask)

    def embed_text(self, text: TextFeatures) -> torch.Tensor:
        return text_global(text)

    def init_from_clip(self, clip_text_state: Mapping[str, torch.Tensor]) -> list[str]:
        """§6 plus transformerClip blocks <- CLIP text blocks 0..layers-1."""
        return super().init_from_clip(clip_text_state) + self.transformerClip.init_from_clip_text(clip_text_state)


class _AlignedHead(_DifferenceTokenHead):
    """A global branch plus the TAB term; subclasses choose the global branch.

    TAB video tokens: the T raw frames plus ceil(T/2) stride-2 frames enhanced by TDB tokens and `actionClip`.
    TAB text tokens: every real token except the start-of-text one (words and end-of-text).
    """

    def __init__(
        self,
        embed_dim: int,
        num_frames: int,
        heads: int | None,
        mask_tiling: str,
        difference_mask: str,
        temporal_proj: str,
        ln_eps: float,
        center_k: int,
        center_weight: float,
    ) -> None:
        super().__init__(embed_dim, num_frames, heads, mask_tiling, difference_mask, temporal_proj, ln_eps)
        if center_k < 1:
            raise ConfigError(f"center_k (the number of TAB centres) must be >= 1, got {center_k}")
        if not 0.0 < center_weight < 1.0:
            raise ConfigError(
                f"center_weight must lie strictly between 0 and 1, got {center_weight}; "
                "use the 'tdb' or 'seqTransf' head for a global branch alone"
            )
        self.center_weight = center_weight
        self.actionClip = self.temporal_transformer(layers=1)
        self.weight_center = nn.Parameter(torch.randn(center_k, embed_dim) * CENTER_INIT_STD)  # (K, D)
        self.emb_center = nn.Parameter(torch.randn(center_k, embed_dim) * CENTER_INIT_STD)  # (K, D)

    @abstractmethod
    def global_video(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, T, D), (B, T) -> (B, D) unit vectors of the global branch."""

    def aligned_video(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """TAB video vector: (B, T, D), (B, T) -> (B, D) unit vectors."""
        strided, strided_mask = frames[:, 0::2], mask[:, 0::2]  # (B, ceil(T/2), D)
        motion = self.difference_enhanced_frames(strided, strided_mask, self.actionClip)
        tokens = torch.cat([frames, motion], dim=1)  # (B, T + ceil(T/2), D)
        return temporal_alignment(tokens, torch.cat([mask, strided_mask], 1), self.weight_center, self.emb_center)

    def aligned_text(self, text: TextFeatures) -> torch.Tensor:
        """TAB text vector from the per-token states, start-of-text excluded: (B, D) unit vectors."""
        not_start = torch.arange(text.mask.shape[1], device=text.mask.device) > 0  # (L,)
        return temporal_alignment(text.tokens, text.mask * not_start, self.weight_center, self.emb_center)

    def _weighted_concat(self, global_unit: torch.Tensor, aligned_unit: torch.Tensor) -> torch.Tensor:
        """(B, D), (B, D) -> (B, 2D) whose dot products are (1-w) cos_global + w cos_tab."""
        w = self.center_weight
        return torch.cat([math.sqrt(1 - w) * global_unit, math.sqrt(w) * aligned_unit], dim=-1)

    def embed_video(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self._weighted_concat(self.global_video(frames, mask), self.aligned_video(frames, mask))

    def embed_text(self, text: TextFeatures) -> torch.Tensor:
        return self._weighted_concat(text_global(text), self.aligned_text(text))

    def score_terms(self, text_emb: torch.Tensor, video_emb: torch.Tensor) -> dict[str, tuple[float, torch.Tensor]]:
        """{"global": (1-w, cosines), "tab": (w, cosines)}: (Bt, Bv) matrices recovered from the concatenation."""
        w, d = self.center_weight, self.embed_dim
        global_cos = text_emb[:, :d] @ video_emb[:, :d].T / (1 - w)
        tab_cos = text_emb[:, d:] @ video_emb[:, d:].T / w
        return {"global": (1 - w, global_cos), "tab": (w, tab_cos)}

    def init_from_clip(self, clip_text_state: Mapping[str, torch.Tensor]) -> list[str]:
        """§6 plus actionClip <- CLIP text block 0."""
        return super().init_from_clip(clip_text_state) + self.actionClip.init_from_clip_text(clip_text_state)


@register_head("tab")
class TemporalAlignmentHead(_AlignedHead):
    """TAB without TDB in the global branch: score = (1-w) cos(global) + w cos(TAB).

    `global_branch` "seqTransf" (default) is CLIP2Video's base (`--sim_type seqTransf` without
    `--temporal_type TDB`); "meanP" gives a parameter-free global branch. The TAB term still uses the TDB
    token machinery for its stride-2 motion tokens (official `--center_proj TAB_TDB`).
    """

    def __init__(
        self,
        embed_dim: int,
        num_frames: int = 12,
        layers: int = 4,
        heads: int | None = None,
        mask_tiling: str = "per_sample",
        difference_mask: str = "strict",
        temporal_proj: str = "sigmoid_selfA",
        ln_eps: float = 1e-12,
        center_k: int = 5,
        center_weight: float = 0.5,
        global_branch: str = "seqTransf",
    ) -> None:
        super().__init__(
            embed_dim, num_frames, heads, mask_tiling, difference_mask, temporal_proj, ln_eps, center_k, center_weight
        )
        self.global_branch = _choice("global_branch", global_branch, GLOBAL_BRANCHES)
        if global_branch == "seqTransf":
            self.transformerClip = self.temporal_transformer(layers)
        self.apply(init_temporal_weights)

    def global_video(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.global_branch == "meanP":
            return masked_mean_pool(frames, mask)
        return sequence_transformer_video(frames, mask, self.frame_position_embeddings, self.transformerClip)

    def init_from_clip(self, clip_text_state: Mapping[str, torch.Tensor]) -> list[str]:
        copied = super().init_from_clip(clip_text_state)
        if self.global_branch == "seqTransf":
            copied += self.transformerClip.init_from_clip_text(clip_text_state)
        return copied


@register_head("clip2video")
class Clip2VideoHead(_AlignedHead):
    """CLIP2Video as released: (1-w) cos(TDB global) + w cos(TAB), w = center_weight = 0.5."""

    def __init__(
        self,
        embed_dim: int,
        num_frames: int = 12,
        layers: int = 4,
        heads: int | None = None,
        mask_tiling: str = "per_sample",
        difference_mask: str = "strict",
        temporal_proj: str = "sigmoid_selfA",
        ln_eps: float = 1e-12,
        center_k: int = 5,
        center_weight: float = 0.5,
    ) -> None:
        super().__init__(
            embed_dim, num_frames, heads, mask_tiling, difference_mask, temporal_proj, ln_eps, center_k, center_weight
        )
        self.transformerClip = self.temporal_transformer(layers)
        self.apply(init_temporal_weights)

    def global_video(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return masked_mean_pool(self.difference_enhanced_frames(frames, mask, self.transformerClip), mask)

    def init_from_clip(self, clip_text_state: Mapping[str, torch.Tensor]) -> list[str]:
        return super().init_from_clip(clip_text_state) + self.transformerClip.init_from_clip_text(clip_text_state)
