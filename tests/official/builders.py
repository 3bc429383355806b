"""Random-weight checkpoints in the official CLIP4Clip / CLIP2Video layout (clip2video.md §11).

Temporal key names and shapes are written out here from the spec, not taken from vitr's modules; the CLIP part is
an open_clip model (whose names are OpenAI's) cast as OpenAI stores it: fp16 Linear/Conv/attention weights,
fp32 embeddings and LayerNorms. Temporal modules are fp32.
"""

from __future__ import annotations

from pathlib import Path

import open_clip
import torch

WIDTH = 64
VOCAB = 49408  # the real BPE vocabulary, so vitr's tokenizer output is valid input
BLOCK = {  # per temporal block: name -> shape as a function of the width D
    "attn.in_proj_weight": lambda d: (3 * d, d),
    "attn.in_proj_bias": lambda d: (3 * d,),
    "attn.out_proj.weight": lambda d: (d, d),
    "attn.out_proj.bias": lambda d: (d,),
    "ln_1.weight": lambda d: (d,),
    "ln_1.bias": lambda d: (d,),
    "mlp.c_fc.weight": lambda d: (4 * d, d),
    "mlp.c_fc.bias": lambda d: (4 * d,),
    "mlp.c_proj.weight": lambda d: (d, 4 * d),
    "mlp.c_proj.bias": lambda d: (d,),
    "ln_2.weight": lambda d: (d,),
    "ln_2.bias": lambda d: (d,),
}


def openai_clip_state(seed: int = 0, vocab: int = VOCAB) -> dict[str, torch.Tensor]:
    """A tiny random OpenAI-named ViT CLIP (64 px, patch 16) with OpenAI's fp16 weight layout."""
    torch.manual_seed(seed)
    model = open_clip.CLIP(
        embed_dim=WIDTH,
        vision_cfg={"image_size": 64, "layers": 2, "width": 64, "patch_size": 16},
        text_cfg={"context_length": 77, "vocab_size": vocab, "width": WIDTH, "heads": 1, "layers": 2},
        quick_gelu=True,
    )
    open_clip.convert_weights_to_lp(model, dtype=torch.float16)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def temporal_blocks(prefix: str, layers: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    return {
        f"{prefix}.resblocks.{i}.{name}": 0.05 * torch.randn(shape(WIDTH), generator=gen)
        for i in range(layers)
        for name, shape in BLOCK.items()
    }


def official_state(kind: str = "clip2video", center_k: int = 5, layers: int = 4, seed: int = 0) -> dict:
    """kind: "meanP", "seqTransf" (CLIP4Clip) or "clip2video" (TDB + TAB, `sigmoid_selfA`)."""
    gen = torch.Generator().manual_seed(seed)
    state = {f"clip.{k}": v for k, v in openai_clip_state(seed).items()}
    if kind == "meanP":
        return state
    state["frame_position_embeddings.weight"] = 0.1 * torch.randn(77, WIDTH, generator=gen)
    state.update(temporal_blocks("transformerClip", layers, gen))
    if kind == "seqTransf":
        return state
    state["type_position_embeddings.weight"] = 0.1 * torch.randn(2, WIDTH, generator=gen)
    state.update(temporal_blocks("frame2t_attention", 1, gen))
    state.update(temporal_blocks("actionClip", 1, gen))
    state["trans_layernorm.weight"] = torch.ones(WIDTH)
    state["trans_layernorm.bias"] = torch.zeros(WIDTH)
    state["weight_center"] = 0.125 * torch.randn(center_k, WIDTH, generator=gen)
    state["emb_center"] = 0.125 * torch.randn(center_k, WIDTH, generator=gen)
    return state


def write_official_checkpoint(path: Path, kind: str = "clip2video", **kwargs: object) -> Path:
    """torch.save of the state dict, as the official training loop writes `pytorch_model.bin.{epoch}`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(official_state(kind, **kwargs), path)
    return path
