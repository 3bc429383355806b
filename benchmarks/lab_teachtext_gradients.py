"""How hard does TeachText's L_d pull, next to the retrieval loss? Gradient norms of both on the student.

    python benchmarks/lab_teachtext_gradients.py --lab lab [--run runs/lab_teachtext]

Reads the teacher bank and the labelled split that `benchmarks/lab_teachtext.py` used (RUN/teacher_bank.safetensors,
RUN/train.jsonl, frames cached in RUN/features), builds the student as that benchmark does (lab CLIP + seqTransf,
frozen visual tower) and, on the same batches, measures L_r (symmetric InfoNCE), L_d on cosines (the official
choice) and L_d on logits, and the norm of each one's gradient over the student's trainable parameters: at the start of
training and after one epoch of the lab recipe. A ratio ||grad L_d|| / ||grad L_r|| far below 1 means the
distillation term cannot move the student, whatever the teachers know. Writes the "## TeachText: how hard L_d
pulls" section of docs/results.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import default_collate

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from common import write_results_section  # noqa: E402

from vitr.data.readers import load_dataset  # noqa: E402
from vitr.inference.extract import extract_features, frame_spec_for, open_cache  # noqa: E402
from vitr.losses.infonce import retrieval_loss  # noqa: E402
from vitr.model.factory import ModelSpec, build_model  # noqa: E402
from vitr.teachers.bank import TeacherBank  # noqa: E402
from vitr.train import CachedPairDataset, TrainConfig, Trainer  # noqa: E402
from vitr.train.datasets import PairBatchSampler  # noqa: E402
from vitr.train.optim import configure_trainable  # noqa: E402
from vitr.train.pipeline import init_head_from_clip  # noqa: E402
from vitr.train.teachtext import TeachTextConfig, TeachTextTargets  # noqa: E402

SECTION = "## TeachText: how hard L_d pulls"


def grad_norm(loss: torch.Tensor, params: list[torch.Tensor]) -> float:
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    return float(torch.sqrt(sum((g.float() ** 2).sum() for g in grads if g is not None)))


def measure(model, data: CachedPairDataset, batches: list[list[int]], targets: dict) -> dict[str, list[float]]:  # noqa: ANN001
    """Loss values and gradient norms of L_r and each L_d on `batches` (lists of sample indices)."""
    params = [p for p in model.parameters() if p.requires_grad]
    out: dict[str, list[float]] = {}
    model.train()
    for rows in batches:
        frames, mask, tokens, videos, samples = default_collate([data[i] for i in rows])
        text, video = model.embed_text(tokens), model.embed_video_features(frames, mask)
        losses = {"L_r": retrieval_loss(model.head, text, video, model.logit_scale)}
        for name, target in targets.items():
            losses[name] = target.loss(text @ video.T, samples, videos, model.logit_scale)
        for name, loss in losses.items():
            out.setdefault(f"{name} value", []).append(loss.item())
            out.setdefault(f"{name} grad", []).append(grad_norm(loss, params))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lab", type=Path, default=REPO_ROOT / "lab")
    p.add_argument("--run", type=Path, default=REPO_ROOT / "runs" / "lab_teachtext", help="lab_teachtext.py --out")
    p.add_argument("--batches", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--no-doc", action="store_true")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    train = load_dataset("generic", args.run / "train.jsonl", "train")  # the student's data, in the bank's order
    bank = TeacherBank.load(args.run / "teacher_bank.safetensors")
    model = build_model(ModelSpec(backbone=str(args.lab / "clip"), head="seqTransf", num_frames=12))
    init_head_from_clip(model)
    spec = frame_spec_for(model.backbone, 12)
    cache = open_cache(args.run / "features", model.backbone, spec)
    keys = extract_features(model.backbone, train.videos, cache, spec, progress=False).keys
    data = CachedPairDataset(train, cache, keys, lambda texts: model.backbone.tokenize(texts, 32))
    sampler = PairBatchSampler(data.video_of_sample, args.batch_size, seed=0, distinct_videos=True)
    batches = sampler.global_batches(0)[: args.batches]
    targets = {f"L_d ({s})": TeachTextTargets(bank, TeachTextConfig(scores=s)) for s in ("cosine", "logits")}
    configure_trainable(model, "visual")
    stages = {"start of training": measure(model, data, batches, targets)}
    config = TrainConfig(
        model=ModelSpec(backbone=str(args.lab / "clip"), head="seqTransf", num_frames=12),
        lr=1e-3,
        backbone_lr=1e-3,
        epochs=1,
        batch_size=args.batch_size,
        distinct_videos=True,
        output_dir=str(args.run / "gradients_run"),
        resume=False,
        progress=False,
        tensorboard=False,
        device="cpu",
    )
    Trainer(model, config, data).fit()
    configure_trainable(model, "visual")
    stages["after 1 epoch (L_r only)"] = measure(model, data, batches, targets)

    lines = [
        "| when | term | value | gradient norm | gradient norm / L_r's |",
        "|---|---|---|---|---|",
    ]
    for stage, values in stages.items():
        reference = np.mean(values["L_r grad"])
        for term in ("L_r", *targets):
            grad = np.mean(values[f"{term} grad"])
            lines.append(
                f"| {stage} | {term} | {np.mean(values[f'{term} value']):.4f} | {grad:.4f} | {grad / reference:.3f} |"
            )
    command = " ".join(sys.argv[1:] if argv is None else argv)
    body = "\n".join(
        [
            f"Produced by `python benchmarks/lab_teachtext_gradients.py {command}`: the student of the TeachText table "
            f"(lab CLIP + seqTransf, frozen visual tower), {args.batches} batches of {args.batch_size} captions with "
            "distinct videos, the teacher bank of that run (mean of 3 teachers, Huber beta 1, weight 1). Gradient "
            "norms over the student's trainable parameters (text tower, head, logit scale), mean over the batches.",
            "",
            *lines,
        ]
    )
    print(body)
    if not args.no_doc:
        write_results_section(SECTION, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
