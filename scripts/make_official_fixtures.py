"""Produce tests/official/fixtures/ by running the official CLIP4Clip and CLIP2Video code (clip2video.md §14).

The official code is not part of vitr and is never imported by it or by the tests. Fetch it into a throwaway
directory outside the repository, at the commits the spec was read at:

    git clone https://github.com/ArrowLuo/CLIP4Clip /tmp/official/c4c && git -C /tmp/official/c4c checkout 508ffa3
    git clone https://github.com/CryhanFang/CLIP2Video /tmp/official/c2v && git -C /tmp/official/c2v checkout e941318
    python scripts/make_official_fixtures.py --c4c /tmp/official/c4c --c2v /tmp/official/c2v

What it does, in the official classes, in fp32 and eval mode:
- builds a tiny random CLIP2Video (`--sim_type seqTransf --temporal_type TDB --temporal_proj sigmoid_selfA
  --center_type TAB --center_proj TAB_TDB --centerK 5 --center_weight 0.5`) with embedding width 128, so the
  temporal Transformers get 128 / 64 = 2 attention heads and the two mask tilings differ;
- builds CLIP4Clip meanP and seqTransf (`--loose_type`) on the same CLIP, positions and temporal Transformer;
- runs text and image encoders, every similarity head on a full and a mixed frame mask, TAB, the inference
  logits and the training loss, and saves parameters, inputs and outputs as safetensors.

Deviations from running the released models, all forced by size or by CPU:
- CLIP2Video hard-codes width 512 for `trans_layernorm` and the TAB centres; those three tensors are rebuilt at
  width 128 after construction (same classes, same initialisers). Every forward pass is the official code.
- Parameters are drawn at random and rounded to fp16 before the run, so the state file stores them in half
  precision (as the released checkpoints store CLIP) while the reference computes in fp32 on the same values.
- The official TDB calls `.cuda()` on an index tensor; `Tensor.cuda` is a no-op while CLIP2Video runs.
- CLIP4Clip's `file_utils` imports boto3/botocore for S3 downloads it never does here; they are stubbed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import subprocess
import sys
import tempfile
import types
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import torch
from safetensors.torch import save_file
from torch import nn

WIDTH = 128  # embedding = text width = temporal width; 2 attention heads
VISION_WIDTH, VISION_LAYERS, PATCH, IMAGE = 64, 2, 16, 32
TEXT_LAYERS, VOCAB, CONTEXT = 1, 600, 77
TEMPORAL_LAYERS, CENTER_K = 2, 5
BATCH, FRAMES, WORDS = 4, 12, 32
MIXED_LENGTHS = (12, 5, 9, 2)  # real frames per video in the mixed-mask batch
SEED = 20240611


def tiny_clip_state(gen: torch.Generator) -> dict[str, torch.Tensor]:
    """A random OpenAI-named ViT CLIP state dict (shapes only matter to the official constructors)."""
    state: dict[str, torch.Tensor] = {
        "visual.conv1.weight": torch.randn(VISION_WIDTH, 3, PATCH, PATCH, generator=gen),
        "visual.positional_embedding": torch.randn((IMAGE // PATCH) ** 2 + 1, VISION_WIDTH, generator=gen),
        "visual.proj": torch.randn(VISION_WIDTH, WIDTH, generator=gen),
        "text_projection": torch.randn(WIDTH, WIDTH, generator=gen),
        "positional_embedding": torch.randn(CONTEXT, WIDTH, generator=gen),
        "token_embedding.weight": torch.randn(VOCAB, WIDTH, generator=gen),
        "ln_final.weight": torch.ones(WIDTH),
    }
    for i in range(VISION_LAYERS):
        state[f"visual.transformer.resblocks.{i}.attn.in_proj_weight"] = torch.zeros(3 * VISION_WIDTH, VISION_WIDTH)
    for i in range(TEXT_LAYERS):
        state[f"transformer.resblocks.{i}.attn.in_proj_weight"] = torch.zeros(3 * WIDTH, WIDTH)
    return state


def randomise(model: nn.Module, gen: torch.Generator) -> None:
    """Draw every parameter so each one moves the outputs, then round to fp16 (the stored precision)."""
    with torch.no_grad():
        for name, param in model.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if param.ndim == 1 and ("ln" in name or "layernorm" in name) and leaf == "weight":
                value = 1 + 0.1 * torch.randn(param.shape, generator=gen)
            elif param.ndim == 1:
                value = 0.05 * torch.randn(param.shape, generator=gen)
            elif name.endswith("logit_scale"):
                value = torch.full(param.shape, math.log(60.0))
            elif "center" in name:
                value = 0.125 * torch.randn(param.shape, generator=gen)
            elif "embedding" in name:
                value = 0.3 * torch.randn(param.shape, generator=gen)
            else:
                value = torch.randn(param.shape, generator=gen) / math.sqrt(param.shape[-1])
            if param.ndim == 0:
                value = value.reshape(())
            param.copy_(value.half().float())


@contextlib.contextmanager
def official_package(root: Path) -> Iterator[None]:
    """Import the repository's top-level `modules` package; both repositories use that name, so forget it after."""
    sys.path.insert(0, str(root))
    try:
        yield
    finally:
        sys.path.remove(str(root))
        for name in [n for n in sys.modules if n == "modules" or n.startswith("modules.")]:
            del sys.modules[name]


@contextlib.contextmanager
def cuda_is_a_no_op() -> Iterator[None]:
    original = torch.Tensor.cuda
    torch.Tensor.cuda = lambda self, *args, **kwargs: self  # type: ignore[method-assign]
    try:
        yield
    finally:
        torch.Tensor.cuda = original  # type: ignore[method-assign]


def stub_s3_clients() -> None:
    boto3 = types.ModuleType("boto3")
    botocore = types.ModuleType("botocore")
    exceptions = types.ModuleType("botocore.exceptions")
    exceptions.ClientError = type("ClientError", (Exception,), {})  # type: ignore[attr-defined]
    botocore.exceptions = exceptions  # type: ignore[attr-defined]
    sys.modules.setdefault("boto3", boto3)
    sys.modules.setdefault("botocore", botocore)
    sys.modules.setdefault("botocore.exceptions", exceptions)


def cross_config_file(directory: Path) -> Path:
    path = directory / "cross_config.json"
    path.write_text(
        json.dumps(
            {
                "attention_probs_dropout_prob": 0.1,
                "hidden_act": "gelu",
                "hidden_dropout_prob": 0.1,
                "hidden_size": WIDTH,
                "initializer_range": 0.02,
                "intermediate_size": 4 * WIDTH,
                "max_position_embeddings": CONTEXT,
                "num_attention_heads": WIDTH // 64,
                "num_hidden_layers": TEMPORAL_LAYERS,
                "vocab_size": WIDTH,
            }
        )
    )
    return path


def text_inputs(gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 32) ids: SOT, words, EOT (the largest id, as CLIP's BPE), zero padding; and the attention mask."""
    lengths = torch.tensor([32, 7, 15, 3])  # tokens including SOT and EOT
    ids = torch.zeros(BATCH, WORDS, dtype=torch.long)
    for b, n in enumerate(lengths.tolist()):
        ids[b, 0] = VOCAB - 2
        ids[b, 1 : n - 1] = torch.randint(1, VOCAB - 2, (n - 2,), generator=gen)
        ids[b, n - 1] = VOCAB - 1
    mask = (torch.arange(WORDS)[None, :] < lengths[:, None]).long()
    return ids, mask


def frame_masks() -> dict[str, torch.Tensor]:
    mixed = (torch.arange(FRAMES)[None, :] < torch.tensor(MIXED_LENGTHS)[:, None]).long()
    return {"full": torch.ones(BATCH, FRAMES, dtype=torch.long), "mixed": mixed}


def run_clip2video(c2v: Path, gen: torch.Generator, work: Path) -> dict:
    """Build and randomise the official CLIP2Video; return its state and outputs."""
    with official_package(c2v), cuda_is_a_no_op():
        from modules.modeling import CLIP2Video
        from modules.module_cross import CrossConfig

        config = SimpleNamespace(
            local_rank=0, vocab_size=VOCAB, sim_type="seqTransf", temporal_type="TDB", temporal_proj="sigmoid_selfA",
            center_type="TAB", centerK=CENTER_K, center_weight=0.5, center_proj="TAB_TDB",
            cross_num_hidden_layers=TEMPORAL_LAYERS,
        )  # fmt: skip
        model = CLIP2Video(CrossConfig(str(cross_config_file(work))), tiny_clip_state(gen), config)
        model.trans_layernorm = nn.LayerNorm(WIDTH)  # hard-coded 512 in the official __init__
        model.weight_center = nn.Parameter(torch.empty(CENTER_K, WIDTH))
        model.emb_center = nn.Parameter(torch.empty(CENTER_K, WIDTH))
        model = model.float().eval()
        randomise(model, gen)
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}

        ids, attention_mask = text_inputs(gen)
        images = torch.randn(3, 3, IMAGE, IMAGE, generator=gen)
        frames = 0.5 * torch.randn(BATCH, FRAMES, WIDTH, generator=gen)  # padded frames hold content too
        out: dict[str, torch.Tensor] = {
            "ids": ids,
            "attention_mask": attention_mask,
            "images": images,
            "frames": frames,
        }
        with torch.no_grad():
            out["image_embeddings"] = model.clip.encode_image(images).float()
            pooled, hidden = model.get_sequence_output(ids, torch.zeros_like(ids), attention_mask, shaped=True)
            out["text_pooled"], out["text_hidden"] = pooled, hidden
            for name, mask in frame_masks().items():
                out[f"{name}.mask"] = mask
                out[f"{name}.tdb"] = model.get_similarity_logits(pooled, frames, attention_mask, mask, shaped=True)
                final, _ = model.get_inference_logits((pooled, hidden), frames, attention_mask, mask, shaped=True)
                out[f"{name}.final"] = final
                out[f"{name}.tab"] = tab_logits(model, hidden, frames, attention_mask, mask)
                out[f"{name}.seqTransf.repeat"] = model._similarity(pooled, frames, attention_mask, mask, "seqTransf")
                global_loss = model.calc_loss(pooled, frames, attention_mask, mask)
                tab_loss = model.calc_TAB_loss(hidden, frames, attention_mask, mask)
                out[f"{name}.loss"] = global_loss * model.center_weight + tab_loss * (1 - model.center_weight)
        return {"state": state, "outputs": out}


def tab_logits(model: nn.Module, hidden, frames, attention_mask, mask) -> torch.Tensor:  # noqa: ANN001
    """The TAB term of `get_inference_logits`, step for step."""
    video = model.get_TAB_embedding(frames, mask.float().unsqueeze(-1).unsqueeze(-1), type="visual")
    text_mask = attention_mask.float().unsqueeze(-1)
    text_mask[:, 0, :] = 0.0
    text = model.get_TAB_embedding(hidden, text_mask.unsqueeze(-1), type="sequence")
    return model.clip.logit_scale.exp() * text @ video.T


def run_clip4clip(c4c: Path, state: dict[str, torch.Tensor], inputs: dict, work: Path) -> dict:
    """CLIP4Clip meanP and seqTransf on the CLIP, positions and temporal Transformer of the CLIP2Video state."""
    stub_s3_clients()
    clip_state = {k.removeprefix("clip."): v for k, v in state.items() if k.startswith("clip.")}
    out: dict[str, torch.Tensor] = {}
    with official_package(c4c):
        from modules.modeling import CLIP4Clip
        from modules.module_cross import CrossConfig

        for head in ("meanP", "seqTransf"):
            config = SimpleNamespace(
                local_rank=0, loose_type=True, sim_header=head, max_words=WORDS, max_frames=FRAMES,
                cross_num_hidden_layers=TEMPORAL_LAYERS, linear_patch="2d",
            )  # fmt: skip
            model = CLIP4Clip(CrossConfig(str(cross_config_file(work))), dict(clip_state), config).float().eval()
            wanted = {k: v for k, v in state.items() if k in model.state_dict()}
            model.load_state_dict(wanted, strict=True)
            with torch.no_grad():
                pooled = model.get_sequence_output(inputs["ids"], inputs["ids"] * 0, inputs["attention_mask"], True)
                out["c4c.text_pooled"] = pooled.squeeze(1)
                for name in frame_masks():
                    logits, _ = model.get_similarity_logits(
                        pooled, inputs["frames"], inputs["attention_mask"], inputs[f"{name}.mask"], True, True
                    )
                    out[f"{name}.{head}" + (".per_sample" if head == "seqTransf" else "")] = logits
    return out


def commit_of(repo: Path) -> str:
    try:
        return subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--c4c", type=Path, required=True, help="ArrowLuo/CLIP4Clip checkout @ 508ffa3")
    parser.add_argument("--c2v", type=Path, required=True, help="CryhanFang/CLIP2Video checkout @ e941318")
    parser.add_argument("--out", type=Path, default=Path(__file__).parents[1] / "tests" / "official" / "fixtures")
    args = parser.parse_args()
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    with tempfile.TemporaryDirectory() as tmp:
        c2v = run_clip2video(args.c2v, gen, Path(tmp))
        c4c = run_clip4clip(args.c4c, c2v["state"], c2v["outputs"], Path(tmp))
    args.out.mkdir(parents=True, exist_ok=True)
    metadata = {
        "produced_by": "scripts/make_official_fixtures.py",
        "clip4clip_commit": commit_of(args.c4c),
        "clip2video_commit": commit_of(args.c2v),
        "torch": torch.__version__,
    }
    state = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in c2v["state"].items()}
    save_file(state, args.out / "clip2video_tiny.safetensors", metadata=metadata)
    outputs = {k: v.contiguous() for k, v in {**c2v["outputs"], **c4c}.items()}
    save_file(outputs, args.out / "reference.safetensors", metadata=metadata)
    for name in ("clip2video_tiny.safetensors", "reference.safetensors"):
        print(f"{args.out / name}: {(args.out / name).stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
