"""TeachText in the lab: teachers with different text encoders, distillation into the student, noisy captions.

    python benchmarks/lab_teachtext.py --lab LAB [--clip LAB/clip] [--quick]

LAB is a folder made by `vitr synth`, LAB/clip the lab CLIP from `vitr pretrain`. Steps, all on cached frame
features of the frozen lab CLIP:
1. teachers on the labelled split: the lab CLIP's text tower + seqTransf (a vitr model, trained by `Trainer`),
   MiniLM + projection, bag of words; each evaluated on the test split;
2. the student (lab CLIP + `--head`) with and without TeachText (official recipe: mean of teacher matrices,
   Huber beta 1 over all BxB entries, weight 1), over `--seeds`;
3. a known share of wrong captions (captions of other videos) injected into the labelled split: teachers
   retrained on it rank every caption; the filter's precision/recall against the injected truth, and the
   student trained on the noisy split with and without removal.
The tables replace the "## TeachText" section of docs/results.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from common import write_results_section  # noqa: E402

from vitr.data.readers import load_dataset  # noqa: E402
from vitr.data.types import Caption, RetrievalDataset  # noqa: E402
from vitr.inference.evaluate import embed_dataset, evaluate_embeddings  # noqa: E402
from vitr.inference.extract import extract_features, frame_spec_for, open_cache  # noqa: E402
from vitr.model.factory import ModelSpec, build_model  # noqa: E402
from vitr.teachers import (  # noqa: E402
    BagOfWordsText,
    ModelTeacher,
    ProjectionTeacher,
    SentenceEncoderText,
    TeacherFitConfig,
    fit_teacher,
)
from vitr.train import CachedPairDataset, TrainConfig, Trainer  # noqa: E402
from vitr.train.pipeline import init_head_from_clip  # noqa: E402
from vitr.train.teachtext import (  # noqa: E402
    CaptionFilterConfig,
    TeachTextConfig,
    TeachTextTargets,
    caption_ranks,
    filter_captions,
    filter_precision_recall,
    teacher_bank_for_dataset,
    write_filter_report,
)

SECTION = "## TeachText"
METRICS = {"R@1": "R1", "R@5": "R5", "R@10": "R10"}  # column label -> metric key


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lab", type=Path, required=True, help="folder made by `vitr synth`")
    p.add_argument("--clip", type=Path, default=None, help="lab CLIP from `vitr pretrain` (default LAB/clip)")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "runs" / "lab_teachtext")
    p.add_argument("--head", default="seqTransf", help="the student's temporal head")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3, help="lr of the student's head (new modules)")
    p.add_argument("--text-lr", type=float, default=1e-3, help="lr of the student's text tower")
    p.add_argument("--train-videos", type=int, default=None, help="use only the first N labelled videos")
    p.add_argument("--teacher-epochs", type=int, default=30, help="epochs of the MiniLM and bag-of-words teachers")
    p.add_argument("--noise", type=float, default=0.2, help="share of training captions replaced by wrong ones")
    p.add_argument("--filter-rule", default="rank", choices=["rank", "fraction"])
    p.add_argument("--max-rank", type=float, default=None, help="rank rule threshold (default: 3%% of the videos)")
    p.add_argument("--quick", action="store_true", help="1 seed, 2 epochs, 600 train videos: a smoke run")
    p.add_argument(
        "--distill-scores",
        nargs="+",
        default=["cosine", "logits"],
        choices=["cosine", "logits"],
        help="what L_d compares: cosines (official) and/or logits (cosines x each model's exp(scale))",
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-doc", action="store_true", help="do not rewrite docs/results.md")
    args = p.parse_args(argv)
    args.command = " ".join(sys.argv[1:] if argv is None else argv)
    if args.quick:
        args.seeds, args.epochs, args.teacher_epochs = args.seeds[:1], 2, 10
        args.train_videos = args.train_videos or 600
    args.clip = args.clip or args.lab / "clip"
    return args


# ------------------------------------------------------------------------------------------------- data
def lab_splits(lab: Path, train_videos: int | None) -> tuple[RetrievalDataset, RetrievalDataset]:
    """The labelled train split (MSR-VTT format) and the tagged test split (generic format)."""
    train = load_dataset("msrvtt", lab / "annotations", "train9k", video_dir=lab / "videos")
    test = load_dataset("generic", lab, "test")
    if train_videos is not None:
        keep = {v.video_id for v in train.videos[:train_videos]}
        train = RetrievalDataset(
            train.name,
            train.split,
            [v for v in train.videos if v.video_id in keep],
            [c for c in train.captions if c.video_id in keep],
        )
    return train, test


def inject_wrong_captions(dataset: RetrievalDataset, share: float, seed: int) -> tuple[RetrievalDataset, np.ndarray]:
    """Replace `share` of the captions by captions of other videos -> (noisy split, (C,) bool: replaced)."""
    rng = np.random.default_rng(seed)
    captions = list(dataset.captions)
    truth = np.zeros(len(captions), dtype=bool)
    for i in rng.choice(len(captions), size=int(round(share * len(captions))), replace=False):
        while (donor := dataset.captions[int(rng.integers(len(captions)))]).video_id == captions[i].video_id:
            pass
        captions[i] = Caption(captions[i].video_id, donor.text)
        truth[i] = True
    return RetrievalDataset(dataset.name, dataset.split, list(dataset.videos), captions, dataset.paragraph), truth


# ------------------------------------------------------------------------------------------------ models
def train_config(args: argparse.Namespace, seed: int, out: Path) -> TrainConfig:
    """The lab recipe (configs/lab/supervised.yaml, lrs chosen on held-out train videos): frozen visual tower."""
    spec = ModelSpec(backbone=str(args.clip), head=args.head, num_frames=12)
    return TrainConfig(
        model=spec,
        freeze="visual",
        lr=args.lr,
        backbone_lr=args.text_lr,
        epochs=args.epochs,
        batch_size=args.batch_size,
        distinct_videos=True,
        seed=seed,
        output_dir=str(out),
        resume=False,
        progress=False,
        tensorboard=False,
        device="cpu",
    )


def train_student(args, dataset, cache, keys, seed: int, out: Path, targets: TeachTextTargets | None = None):  # noqa: ANN001, ANN201
    config = train_config(args, seed, out)
    torch.manual_seed(seed)
    model = build_model(config.model)
    init_head_from_clip(model)  # CLIP4Clip's start for seqTransf / TDB blocks, as `vitr train` does
    data = CachedPairDataset(dataset, cache, keys, lambda texts: model.backbone.tokenize(texts, config.max_words))
    terms = [] if targets is None else [targets.extra_loss]
    Trainer(model, config, data, extra_losses=terms).fit()
    return model.eval()


def projection_teachers(args, dataset, frames, mask, seed: int) -> list[ProjectionTeacher]:  # noqa: ANN001
    texts = [c.text for c in dataset.captions]
    video_of_caption = torch.as_tensor(dataset.caption_video_index())
    dim = frames.shape[-1]
    team = [
        ProjectionTeacher("MiniLM", SentenceEncoderText.minilm(256), dim),
        ProjectionTeacher("bag-of-words", BagOfWordsText.from_corpus(texts, 256), dim),
    ]
    for teacher in team:
        fit_teacher(
            teacher,
            teacher.featurize(texts),
            video_of_caption,
            frames,
            mask,
            TeacherFitConfig(epochs=args.teacher_epochs, seed=seed),
        )
    return team


def evaluate_model_like(teacher, test: RetrievalDataset, test_cache, test_keys) -> dict[str, dict]:  # noqa: ANN001
    """Metrics of any teacher on the test split, overall and on the temporal subset."""
    from vitr.eval.retrieval import evaluate

    frames, mask = test_cache.stacked([test_keys[v.video_id] for v in test.videos])
    text = teacher.embed_texts([c.text for c in test.captions]).numpy()
    video = teacher.embed_videos(frames, mask).numpy()
    out = {"all": evaluate(text, video, test.caption_video_index()).to_dict()}
    rows = [i for i, c in enumerate(test.captions) if "temporal" in c.tags]
    out["temporal"] = evaluate(text[rows], video, test.subset("temporal").caption_video_index()).to_dict()
    return out


def evaluate_student(model, test: RetrievalDataset, cache_root: Path) -> dict[str, dict]:  # noqa: ANN001
    results = evaluate_embeddings(embed_dataset(model, test, cache_root, progress=False), tags=("temporal",))
    return {k: v.to_dict() for k, v in results.items()}


# ------------------------------------------------------------------------------------------------ tables
def mean_std(runs: list[dict], subset: str, direction: str, metric: str) -> str:
    values = np.array([r[subset][direction][metric] for r in runs], dtype=float)
    return f"{values.mean():.1f} ± {values.std():.1f}" if len(values) > 1 else f"{values[0]:.1f}"


def metric_table(rows: dict[str, list[dict]]) -> str:
    header = ["model"] + [f"{d} {m}" for d in ("t2v", "v2t") for m in METRICS] + ["temporal t2v R@1"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, runs in rows.items():
        if not runs:
            lines.append("| " + " | ".join([name] + ["n/a"] * (len(header) - 1)) + " |")
            continue
        cells = [mean_std(runs, "all", d, key) for d in ("t2v", "v2t") for key in METRICS.values()]
        lines.append("| " + " | ".join([name, *cells, mean_std(runs, "temporal", "t2v", "R1")]) + " |")
    return "\n".join(lines)


# -------------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:  # noqa: C901, PLR0915  (one linear experiment script)
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.time()
    out, cache_root = args.out, args.out / "features"
    train, test = lab_splits(args.lab, args.train_videos)
    backbone = build_model(ModelSpec(backbone=str(args.clip), head="meanP")).backbone
    spec = frame_spec_for(backbone, 12)
    cache = open_cache(cache_root, backbone, spec)
    keys = extract_features(backbone, train.videos + test.videos, cache, spec, progress=False).keys
    frames, mask = cache.stacked([keys[v.video_id] for v in train.videos])  # (V, T, D)
    report: dict = {"args": {k: str(v) for k, v in vars(args).items()}}

    # 1. teachers on the clean labelled split
    clip_teacher = ModelTeacher(train_student(args, train, cache, keys, 100, out / "teacher_clip"), "CLIP+" + args.head)
    team = [clip_teacher, *projection_teachers(args, train, frames, mask, seed=100)]
    teacher_rows = {t.name: [evaluate_model_like(t, test, cache, keys)] for t in team}
    bank = teacher_bank_for_dataset(team, train, cache, keys)  # teachers were just retrained: no reuse
    bank.save(out / "teacher_bank.safetensors")

    # 2. student with and without TeachText
    variants = {f"{args.head} + TeachText ({scores})": TeachTextConfig(scores=scores) for scores in args.distill_scores}
    student_rows: dict[str, list[dict]] = {args.head: [], **{name: [] for name in variants}}
    for seed in args.seeds:
        student = train_student(args, train, cache, keys, seed, out / f"student_{seed}")
        student_rows[args.head].append(evaluate_student(student, test, cache_root))
        for name, tt_config in variants.items():
            run_dir = out / f"teachtext_{tt_config.scores}_{seed}"
            distilled = train_student(args, train, cache, keys, seed, run_dir, TeachTextTargets(bank, tt_config))
            student_rows[name].append(evaluate_student(distilled, test, cache_root))

    # 3. noisy captions: teachers retrained on the noisy split rank every caption
    noisy, truth = inject_wrong_captions(train, args.noise, seed=0)
    noisy_team = [
        ModelTeacher(train_student(args, noisy, cache, keys, 200, out / "noisy_teacher_clip"), "CLIP"),
        *projection_teachers(args, noisy, frames, mask, seed=200),
    ]
    noisy_bank = teacher_bank_for_dataset(noisy_team, noisy, cache, keys)
    ranks = caption_ranks(noisy_bank, noisy.caption_video_index())
    max_rank = args.max_rank or max(1.0, 0.03 * len(noisy.videos))
    filter_cfg = CaptionFilterConfig(rule=args.filter_rule, max_rank=max_rank, fraction=args.noise)
    filtered = filter_captions(noisy, ranks, filter_cfg)
    write_filter_report(filtered, out, "removed_captions")
    quality = filter_precision_recall(~filtered.keep, truth)
    per_teacher = {}
    for n, name in enumerate(noisy_bank.names):
        single = replace(
            noisy_bank,
            names=[name],
            text=[noisy_bank.text[n]],
            video=[noisy_bank.video[n]],
            scales=[noisy_bank.scales[n]],
        )
        alone = filter_captions(noisy, caption_ranks(single, noisy.caption_video_index()), filter_cfg)
        per_teacher[name] = filter_precision_recall(~alone.keep, truth)
    noise_rows: dict[str, list[dict]] = {
        "clean split": student_rows[args.head],
        "noisy split": [],
        "noisy split, captions removed": [],
    }
    for seed in args.seeds:
        noise_rows["noisy split"].append(
            evaluate_student(train_student(args, noisy, cache, keys, seed, out / f"noisy_{seed}"), test, cache_root)
        )
        noise_rows["noisy split, captions removed"].append(
            evaluate_student(
                train_student(args, filtered.dataset, cache, keys, seed, out / f"filtered_{seed}"), test, cache_root
            )
        )

    minutes = (time.time() - start) / 60
    report.update(
        teachers=teacher_rows,
        students=student_rows,
        noise=noise_rows,
        filter=quality,
        filter_per_teacher=per_teacher,
        minutes=minutes,
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2))

    seeds = ", ".join(map(str, args.seeds))
    quality_rows = [
        f"| all teachers (mean) | {quality['precision']:.3f} | {quality['recall']:.3f} | {quality['flagged']} |"
    ]
    quality_rows += [
        f"| {name} alone | {q['precision']:.3f} | {q['recall']:.3f} | {q['flagged']} |"
        for name, q in per_teacher.items()
    ]
    body = "\n\n".join(
        [
            f"Produced by `python benchmarks/lab_teachtext.py {args.command}` "
            f"({len(train.videos)} labelled videos, {len(train.captions)} captions; test {len(test.videos)} videos; "
            f"student head {args.head}, {args.epochs} epochs, lr {args.lr:g} head / {args.text_lr:g} text tower, seeds "
            f"{seeds}; {minutes:.1f} min). Cached frame features "
            "of the frozen lab CLIP; R@k in %, mean ± std over seeds; `temporal` ranks the temporal captions against "
            "the whole test gallery; ties follow the CLIP4Clip protocol (docs/methods/teachtext.md).",
            "### Teachers (each a retrieval model trained on the labelled split)",
            metric_table(teacher_rows),
            "### Student vs student + TeachText (mean of 3 teacher matrices, Huber beta 1, weight 1; L_d on cosines "
            "as the official code, or on logits)",
            metric_table(student_rows),
            f"### Noisy captions: {args.noise:.0%} of the training captions replaced by captions of other videos",
            f"Filter: rule `{filter_cfg.rule}`, own video must rank < {max_rank:g} among {len(noisy.videos)} videos "
            f"(teachers retrained on the noisy split; one caption per video always kept). Chance precision "
            f"{quality['chance_precision']:.3f}; {quality['noisy']} captions injected.",
            "| teachers | precision | recall | flagged |\n|---|---|---|---|\n" + "\n".join(quality_rows),
            metric_table(noise_rows),
        ]
    )
    if not args.no_doc:
        write_results_section(SECTION, body)
    print(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
