"""Zero-shot classifiers from prompt templates: CLIP's prompt ensembling (ps_scl.md §4 #7).

For C concepts and P templates, the classifier row of concept c is n(mean_p n(g_text(template_p(c)))) where
n L2-normalises: each prompt's embedding is normalised, averaged over templates, and renormalised (openai/CLIP
`notebooks/Prompt_Engineering_for_ImageNet.ipynb`, `zeroshot_classifier`).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from vitr.backbones.base import Backbone
from vitr.pseudo.vocab import Category

TemplateMode = Literal["ensemble", "first", "bare"]


def prompts_for(category: Category, mode: TemplateMode = "ensemble") -> tuple[list[str], int]:
    """Every prompt of a category, concept-major (concept 0 under all templates first) -> (prompts, P).

    ensemble: all templates; first: the first template only (VidIL's single "A photo of {}"); bare: the
    concept name alone (better than templates for vanilla CLIP on UCF101, ViFi-CLIP#6).
    """
    if mode == "ensemble":
        templates = list(category.templates)
    elif mode == "first":
        templates = [category.templates[0]]
    elif mode == "bare":
        templates = ["{}"]
    else:
        raise ValueError(f"unknown template mode {mode!r}; choose ensemble, first or bare")
    return [t.format(concept) for concept in category.concepts for t in templates], len(templates)


def ensemble_embeddings(prompt_embeddings: torch.Tensor, num_templates: int) -> torch.Tensor:
    """(C * P, D) prompt embeddings, concept-major -> (C, D) unit classifier rows: n(mean_p n(e_cp))."""
    if prompt_embeddings.shape[0] % num_templates:
        raise ValueError(
            f"{prompt_embeddings.shape[0]} prompt embeddings do not split into groups of {num_templates} templates"
        )
    per_concept = F.normalize(prompt_embeddings.float(), dim=-1).view(-1, num_templates, prompt_embeddings.shape[-1])
    return F.normalize(per_concept.mean(dim=1), dim=-1)


@torch.inference_mode()
def encode_prompts(backbone: Backbone, prompts: list[str], batch_size: int = 256) -> torch.Tensor:
    """Prompts -> (N, D) pooled text embeddings (not normalised), on the CPU."""
    device = backbone.logit_scale.device
    out = [
        backbone.encode_text(backbone.tokenize(prompts[i : i + batch_size]).to(device)).pooled.float().cpu()
        for i in range(0, len(prompts), batch_size)
    ]
    return torch.cat(out)


def category_classifier(
    backbone: Backbone, category: Category, mode: TemplateMode = "ensemble", batch_size: int = 256
) -> torch.Tensor:
    """One category's zero-shot classifier: (C, D) unit rows, one per concept."""
    prompts, num_templates = prompts_for(category, mode)
    return ensemble_embeddings(encode_prompts(backbone, prompts, batch_size), num_templates)
