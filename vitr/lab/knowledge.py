"""What the lab's CLIP knows: zero-shot recognition of each static concept on held-out stills.

docs/lab.md asks the small CLIP to know, like the real one, the objects, colours, sizes and positions of a still.
Caption matching alone cannot show that (a batch can be told apart by colour and position without ever looking at
shape), so this scores each attribute on its own: stills with exactly one visible object, never seen in
pretraining (indices after the pretraining set), classified against one prompt-ensembled text embedding per class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vitr.backbones.base import Backbone
from vitr.lab.captions import BACKGROUND_WORDS, COLUMN_PHRASES, ROW_PHRASES, SHAPE_WORDS, SIZE_WORDS
from vitr.lab.synth import LabConfig, pretrain_item
from vitr.lab.world import OBJECT_COLOURS, NamedState, frame_time, name_state, render_frame, state_at
from vitr.video.transforms import preprocess_frames

# attribute -> class -> prompts; the class embedding is the renormalised mean of its prompts' embeddings
PROMPTS: dict[str, dict[str, list[str]]] = {
    "colour": {c: [f"a {c} shape", f"a {c} object", f"something {c}"] for c in OBJECT_COLOURS},
    "shape": {s: [p.format(w) for w in words for p in ("a {}", "there is a {}")] for s, words in SHAPE_WORDS.items()},
    "size": {s: [f"a {w} shape" for w in words] for s, words in SIZE_WORDS.items()},
    "column": {c: [f"a shape {p}" for p in phrases] for c, phrases in COLUMN_PHRASES.items() if c != "centre"},
    "row": {r: [f"a shape {p}" for p in phrases] for r, phrases in ROW_PHRASES.items() if r != "middle"},
    "background": {b: [f"a shape on a {w} background" for w in words] for b, words in BACKGROUND_WORDS.items()},
}


@dataclass(frozen=True)
class HeldOutStill:
    image: np.ndarray  # (S, S, 3) uint8
    background: str
    named: NamedState


def held_out_stills(config: LabConfig, n: int) -> list[HeldOutStill]:
    """n stills with one visible object, drawn after the pretraining set (so never trained on)."""
    stills: list[HeldOutStill] = []
    index = config.n_pretrain
    while len(stills) < n:
        scene, t, _ = pretrain_item(config, index)
        index += 1
        visible = [s for s in state_at(scene, frame_time(t, config.num_frames)) if s.visible]
        if len(visible) != 1:
            continue
        image = render_frame(scene, t, config.num_frames, config.image_size, config.noise)
        stills.append(HeldOutStill(image, scene.background, name_state(visible[0])))
    return stills


def _truth(still: HeldOutStill, attribute: str) -> str | None:
    if attribute == "background":
        return still.background
    return getattr(still.named, attribute)


@torch.inference_mode()
def recognition(backbone: Backbone, stills: list[HeldOutStill]) -> dict[str, tuple[float, int, int]]:
    """attribute -> (top-1 accuracy, stills scored, classes). Positions count only columns/rows that are named
    and not the middle one (whose phrases overlap); chance is 1 / classes."""
    device = backbone.logit_scale.device
    pixels = preprocess_frames(
        np.stack([s.image for s in stills]), size=backbone.image_size, mean=backbone.image_mean, std=backbone.image_std
    )
    images = torch.nn.functional.normalize(backbone.encode_image(pixels.to(device)).float(), dim=-1)
    results = {}
    for attribute, classes in PROMPTS.items():
        names = list(classes)
        prompts = [p for name in names for p in classes[name]]
        text = torch.nn.functional.normalize(
            backbone.encode_text(backbone.tokenize(prompts).to(device)).pooled.float(), dim=-1
        )
        chunks = torch.split(text, [len(classes[name]) for name in names])
        weights = torch.nn.functional.normalize(torch.stack([c.mean(0) for c in chunks]), dim=-1)
        predicted = (images @ weights.T).argmax(1).tolist()
        scored = [(names[p], _truth(s, attribute)) for p, s in zip(predicted, stills, strict=True)]
        scored = [(p, t) for p, t in scored if t in classes]
        accuracy = float(np.mean([p == t for p, t in scored])) if scored else float("nan")
        results[attribute] = (accuracy, len(scored), len(names))
    return results
