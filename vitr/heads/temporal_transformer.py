"""The temporal Transformer shared by seqTransf, TDB and TAB (clip2video.md §1.3).

It is CLIP's text block run over frame tokens: pre-LN residual attention, a QuickGELU MLP, and the TF-style
LayerNorm (eps 1e-12) of CLIP4Clip's `until_module`. Module names follow CLIP (`resblocks.{i}.attn`, `ln_1`,
`mlp.c_fc`, `mlp.c_proj`, `ln_2`) so official CLIP4Clip/CLIP2Video state dicts and CLIP text blocks load 1:1.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from vitr.errors import CheckpointError, ConfigError

MASK_TILINGS = ("per_sample", "clip2video_repeat")
MASKED_KEY_BIAS = -1e6  # additive bias on masked keys, as in the official code (not -inf: no NaN on empty rows)
LINEAR_INIT_STD = 0.02  # CLIP4Clip `init_weights` for Linear/Embedding


class QuickGELU(nn.Module):
    """CLIP's GELU approximation x * sigmoid(1.702 x); the pretrained blocks were trained with it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class TFLayerNorm(nn.Module):
    """LayerNorm with the epsilon inside the square root (TF style), computed in the input dtype.

    The official temporal modules use eps 1e-12 although CLIP's blocks were trained with torch LN at 1e-5;
    keeping the official value makes released checkpoints reproduce exactly.
    """

    def __init__(self, width: int, eps: float = 1e-12) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))
        self.bias = nn.Parameter(torch.zeros(width))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(-1, keepdim=True)
        var = (x - mean).pow(2).mean(-1, keepdim=True)
        return self.weight * ((x - mean) / torch.sqrt(var + self.eps)) + self.bias


class MLP(nn.Module):
    """D -> 4D -> D with QuickGELU; `c_fc`/`c_proj` are CLIP's names."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.c_fc = nn.Linear(width, 4 * width)
        self.gelu = QuickGELU()
        self.c_proj = nn.Linear(4 * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(self.gelu(self.c_fc(x)))


class ResidualAttentionBlock(nn.Module):
    """Pre-LN block: x + MHA(LN1(x)), then x + MLP(LN2(x)); sequence-first, as CLIP."""

    def __init__(self, width: int, heads: int, ln_eps: float) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_1 = TFLayerNorm(width, ln_eps)
        self.mlp = MLP(width)
        self.ln_2 = TFLayerNorm(width, ln_eps)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor) -> torch.Tensor:
        # x: (L, B, D); attn_mask: (B*H, L, L) additive
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=attn_mask)[0]
        return x + self.mlp(self.ln_2(x))


class TemporalTransformer(nn.Module):
    """A stack of residual attention blocks over (B, L, D) tokens with a (B, L) key mask.

    `mask_tiling` chooses how the per-sample (B, L, L) mask is spread over the B*H attention maps that
    `nn.MultiheadAttention` reads at index b*H + h:
    - "per_sample" (`repeat_interleave`): every head of sample b uses sample b's mask. Correct; the default.
    - "clip2video_repeat" (`repeat`): head h of sample b uses the mask of sample (b*H + h) mod B, as in the
      released CLIP2Video code and CLIP4Clip before 2021-07-26. Only for reproducing released checkpoints:
      a video's output then depends on its batch-mates whenever masks differ within the batch.
    """

    def __init__(
        self, width: int, layers: int, heads: int, mask_tiling: str = "per_sample", ln_eps: float = 1e-12
    ) -> None:
        super().__init__()
        if mask_tiling not in MASK_TILINGS:
            raise ConfigError(f"mask_tiling must be one of {MASK_TILINGS}, got {mask_tiling!r}")
        if heads < 1 or width % heads != 0:
            raise ConfigError(f"attention heads ({heads}) must be >= 1 and divide the width ({width})")
        self.width = width
        self.heads = heads
        self.mask_tiling = mask_tiling
        self.resblocks = nn.ModuleList(ResidualAttentionBlock(width, heads, ln_eps) for _ in range(layers))
        self.apply(init_temporal_weights)

    def attention_mask(self, mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """(B, L) 1/0 key mask -> (B*H, L, L) additive mask: 0 on valid keys, -1e6 on masked keys."""
        length = mask.shape[1]
        bias = (1.0 - mask.to(dtype)) * MASKED_KEY_BIAS  # (B, L)
        per_sample = bias[:, None, :].expand(-1, length, -1)  # (B, L_query, L_key); padded queries still computed
        if self.mask_tiling == "per_sample":
            return per_sample.repeat_interleave(self.heads, dim=0)
        return per_sample.repeat(self.heads, 1, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x: (B, L, D), mask: (B, L) -> (B, L, D)."""
        attn_mask = self.attention_mask(mask, x.dtype)
        h = x.permute(1, 0, 2)  # (L, B, D)
        for block in self.resblocks:
            h = block(h, attn_mask)
        return h.permute(1, 0, 2)

    def init_from_clip_text(self, clip_text_state: Mapping[str, torch.Tensor], first_block: int = 0) -> list[str]:
        """Copy CLIP text blocks `transformer.resblocks.{first_block + i}.*` into `resblocks.{i}` (clip2video.md §6).

        Blocks absent from the CLIP state (a text tower shallower than this stack) keep their fresh initialisation;
        a block that is present must match key for key and shape for shape. Returns the CLIP keys copied.
        """
        copied = []
        for i, block in enumerate(self.resblocks):
            prefix = f"transformer.resblocks.{first_block + i}."
            if not any(key.startswith(prefix) for key in clip_text_state):
                continue
            with torch.no_grad():
                for name, tensor in block.state_dict(keep_vars=True).items():
                    copy_into(tensor, clip_text_state, prefix + name)
                    copied.append(prefix + name)
        return copied


def copy_into(target: torch.Tensor, state: Mapping[str, torch.Tensor], key: str) -> None:
    """Copy `state[key]` into `target` in place, with an actionable error when it is missing or misshapen."""
    if key not in state:
        raise CheckpointError(f"CLIP text state has no {key!r}; pass an OpenAI-named CLIP state dict (no prefix)")
    source = state[key]
    if tuple(source.shape) != tuple(target.shape):
        raise CheckpointError(
            f"CLIP text {key!r} has shape {tuple(source.shape)} but the head expects {tuple(target.shape)}; "
            "the text width must equal the head's embed_dim to initialise from CLIP"
        )
    with torch.no_grad():
        target.copy_(source.to(dtype=target.dtype, device=target.device))


def init_temporal_weights(module: nn.Module) -> None:
    """CLIP4Clip's fresh init (clip2video.md §6): Linear/Embedding ~ N(0, 0.02), biases 0, LayerNorms (1, 0).

    MHA's packed in-projection is not an nn.Linear and keeps PyTorch's default, as in the official code.
    """
    if isinstance(module, nn.Linear | nn.Embedding):
        nn.init.normal_(module.weight, std=LINEAR_INIT_STD)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)
    if isinstance(module, TFLayerNorm | nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def default_heads(embed_dim: int) -> int:
    """CLIP's rule: one attention head per 64 channels (8 heads at D = 512)."""
    return max(1, embed_dim // 64)
