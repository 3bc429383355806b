"""TeachText in the lab: teachers with different text encoders, distillation into the student, noisy captions.

    python benchmarks/lab_teachtext.py --lab LAB [--clip LAB/clip] [--quick]

LAB is a folder made by `vitr synth`, LAB/clip the lab CLIP from `vitr pretrain`. Every model is trained by
`vitr.train.pipeline.train`, the function `vitr train` calls, from a recipe, on an annotation file this script
writes under --out (RUN), the data `vitr train ... --dataset generic --root RUN/<file> --split train` reads:
1. RUN/train.jsonl, the first --train-videos labelled videos; teachers on it: CLIP+seqTransf (configs/lab/
   supervised.yaml, model.head=seqTransf) and the MiniLM and bag-of-words teachers of configs/lab/teachtext.yaml,
   each scored on the test split;
2. the student, configs/lab/teachtext.yaml alone (teachtext=null) and with the three teachers (the official L_d on
   cosines, or on logits: teachtext.scores), over --seeds;
3. RUN/train_noisy.jsonl: a known share of the captions replaced by captions of other videos
   (`vitr.lab.teachtext.inject_wrong_captions`). Teachers retrained on it rank every caption; the recipe's
   `teachtext.filter`, applied by the function `vitr filter-captions` calls, writes RUN/train_filtered.jsonl and
   its report; its precision/recall against the injected truth, and the student trained on both files.
The tables replace the "## TeachText" section of docs/results.md; every run's numbers go to RUN/report.json.
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
from vitr.data.readers.generic import write_generic  # noqa: E402
from vitr.data.types import RetrievalDataset  # noqa: E402
from vitr.eval.retrieval import RetrievalResult  # noqa: E402
from vitr.lab.experiment import evaluate_lab, load_lab_test, load_lab_train  # noqa: E402
from vitr.lab.teachtext import (  # noqa: E402
    evaluate_teachers,
    filter_quality,
    fit_recipe_teachers,
    inject_wrong_captions,
)
from vitr.model.retrieval import VideoTextModel  # noqa: E402
from vitr.teachers.bank import TeacherBank  # noqa: E402
from vitr.train.checkpoint import LATEST, MODEL_FILE, resolve_checkpoint  # noqa: E402
from vitr.train.config import TeacherSpec, TrainConfig, load_config  # noqa: E402
from vitr.train.pipeline import (  # noqa: E402
    filter_training_captions,
    teacher_bank_path,
    train,
    training_model,
)
from vitr.train.teachtext import write_filter_report  # noqa: E402

SECTION = "## TeachText"
METRICS = {"R@1": "R1", "R@5": "R5", "R@10": "R10"}  # column label -> metric key
Row = dict[str, dict]  # subset -> RetrievalResult.to_dict()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lab", type=Path, required=True, help="folder made by `vitr synth`")
    p.add_argument("--clip", type=Path, default=None, help="lab CLIP from `vitr pretrain` (default LAB/clip)")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "runs" / "lab_teachtext", help="annotations and runs")
    p.add_argument("--cache", type=Path, default=None, help="frame-feature cache (default OUT/features)")
    p.add_argument("--config", type=Path, default=REPO_ROOT / "configs" / "lab" / "teachtext.yaml")
    p.add_argument("--teacher-config", type=Path, default=REPO_ROOT / "configs" / "lab" / "supervised.yaml",
                   help="the CLIP teacher's recipe (trained with model.head set to the student's head)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--teacher-seed", type=int, default=100, help="seed of both CLIP teacher runs")
    p.add_argument("--train-videos", type=int, default=1500, help="train on the first N labelled videos")
    p.add_argument("--epochs", type=int, default=None, help="override both recipes' epochs")
    p.add_argument("--noise", type=float, default=0.2, help="share of training captions replaced by wrong ones")
    p.add_argument("--noise-seed", type=int, default=0, help="which captions are replaced, and by which")
    p.add_argument("--filter-rule", default="rank", choices=["rank", "fraction"])
    p.add_argument("--max-rank", type=float, default=None, help="rank rule threshold (default: 3%% of the videos)")
    p.add_argument("--quick", action="store_true", help="1 seed, 2 epochs, at most 600 train videos: a smoke run")
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
        args.seeds, args.epochs, args.train_videos = args.seeds[:1], 2, min(args.train_videos, 600)
    args.clip = args.clip or args.lab / "clip"
    args.cache = args.cache or args.out / "features"
    return args


# ------------------------------------------------------------------------------------------- recipes and runs
def recipe(path: Path, args: argparse.Namespace, name: str, seed: int, *extra: str) -> TrainConfig:
    """A lab recipe as `vitr train PATH OVERRIDES` loads it; every run starts fresh in RUN/<name>."""
    overrides = [f"model.backbone={args.clip}", f"seed={seed}", f"output_dir={args.out / name}", "resume=false",
                 "progress=false", "tensorboard=false", *extra]
    if args.epochs:
        overrides.append(f"epochs={args.epochs}")
    return load_config(path, overrides)


def distill_recipe(args: argparse.Namespace, name: str, seed: int, teacher: TrainConfig, *extra: str) -> TrainConfig:
    """configs/lab/teachtext.yaml with the CLIP teacher run `teacher` (its final weights) as its first teacher,
    the `{kind: model, ...}` line the recipe's comment shows."""
    config = recipe(args.config, args, name, seed, *extra)
    checkpoint = resolve_checkpoint(Path(teacher.output_dir) / "checkpoints", LATEST) / MODEL_FILE
    spec = replace(teacher.model, checkpoint=str(checkpoint))
    config.teachtext.teachers.insert(0, TeacherSpec(kind="model", name=f"CLIP+{spec.head}", model=spec))
    return config


def run(config: TrainConfig, dataset: RetrievalDataset, args: argparse.Namespace) -> VideoTextModel:
    """Train as `vitr train` does: the same model construction, the same function."""
    model = training_model(config)
    train(model, config, dataset, args.cache)
    return model.eval()


def written(dataset: RetrievalDataset, path: Path) -> RetrievalDataset:
    """Write `dataset` as a generic annotation file and read it back as `vitr train --dataset generic` will."""
    return load_dataset("generic", write_generic(dataset, path), "train", check_files=True)


def as_row(results: dict[str, RetrievalResult]) -> Row:
    return {subset: result.to_dict() for subset, result in results.items()}


# ------------------------------------------------------------------------------------------------ tables
def mean_std(runs: list[Row], subset: str, direction: str, metric: str) -> str:
    values = np.array([r[subset][direction][metric] for r in runs], dtype=float)
    return f"{values.mean():.1f} ± {values.std():.1f}" if len(values) > 1 else f"{values[0]:.1f}"


def metric_table(rows: dict[str, list[Row]]) -> str:
    header = ["model"] + [f"{d} {m}" for d in ("t2v", "v2t") for m in METRICS] + ["temporal t2v R@1"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, runs in rows.items():
        cells = [mean_std(runs, "all", d, key) for d in ("t2v", "v2t") for key in METRICS.values()]
        lines.append("| " + " | ".join([name, *cells, mean_std(runs, "temporal", "t2v", "R1")]) + " |")
    return "\n".join(lines)


# -------------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:  # noqa: PLR0915  (one linear experiment script)
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if not (args.clip / "model.safetensors").exists():
        raise SystemExit(f"no lab CLIP in {args.clip}: run `vitr pretrain --lab {args.lab}`")
    start = time.time()
    train_set = written(load_lab_train(args.lab, args.train_videos), args.out / "train.jsonl")
    test = load_lab_test(args.lab)

    def scored(model: VideoTextModel, config: TrainConfig) -> Row:
        report = evaluate_lab(model, args.lab, args.cache, num_frames=config.model.num_frames, progress=False)
        return as_row(report.results)

    # 1. teachers on the clean labelled split, each scored on the test split
    clip_run = recipe(args.teacher_config, args, "teacher_clip", args.teacher_seed, "model.head=seqTransf")
    run(clip_run, train_set, args)
    bank = args.out / "teacher_bank.safetensors"
    fitting = distill_recipe(args, "teachers", args.teacher_seed, clip_run, f"teachtext.bank={bank}")
    student = training_model(fitting)
    teachers = fit_recipe_teachers(student, fitting, train_set, args.cache)  # the bank every distilled run reads
    teacher_rows = {
        name: [as_row(results)]
        for name, results in evaluate_teachers(
            teachers, test, student.backbone, args.cache, fitting.model.num_frames
        ).items()
    }

    # 2. the student alone and with TeachText
    head = fitting.model.head
    variants = {f"{head} + TeachText ({scores})": scores for scores in args.distill_scores}
    student_rows: dict[str, list[Row]] = {head: [], **{name: [] for name in variants}}
    for seed in args.seeds:
        alone = recipe(args.config, args, f"student_{seed}", seed, "teachtext=null")  # the recipe's comment: vitr train
        student_rows[head].append(scored(run(alone, train_set, args), alone))
        for name, scores in variants.items():
            config = distill_recipe(args, f"teachtext_{scores}_{seed}", seed, clip_run, f"teachtext.bank={bank}",
                                    f"teachtext.scores={scores}")
            student_rows[name].append(scored(run(config, train_set, args), config))

    # 3. noisy captions: teachers retrained on the noisy split rank every caption
    noisy, truth = inject_wrong_captions(train_set, args.noise, args.noise_seed)
    noisy = written(noisy, args.out / "train_noisy.jsonl")
    noisy_clip = recipe(args.teacher_config, args, "noisy_teacher_clip", args.teacher_seed, "model.head=seqTransf")
    run(noisy_clip, noisy, args)
    max_rank = args.max_rank or max(1.0, 0.03 * len(noisy.videos))
    filtering = distill_recipe(
        args, "noisy_filter", args.teacher_seed, noisy_clip,
        f"teachtext.bank={args.out / 'noisy_teacher_bank.safetensors'}",
        f"teachtext.filter.rule={args.filter_rule}", f"teachtext.filter.max_rank={max_rank}",
        f"teachtext.filter.fraction={args.noise}",
    )
    teacher_bank_path(filtering).unlink(missing_ok=True)  # a bank left by an earlier run knew other teachers
    result = filter_training_captions(training_model(filtering), filtering, noisy, args.cache)
    filtered = written(result.dataset, args.out / "train_filtered.jsonl")
    write_filter_report(result, args.out, "train_filtered.removed")  # as `vitr filter-captions` writes it
    quality = filter_quality(result, TeacherBank.load(teacher_bank_path(filtering)), noisy, truth)
    noise_rows: dict[str, list[Row]] = {
        "clean split": student_rows[head],
        "noisy split": [],
        "noisy split, captions removed": [],
    }
    for seed in args.seeds:
        for label, dataset, name in (("noisy split", noisy, "noisy"),
                                     ("noisy split, captions removed", filtered, "filtered")):
            config = recipe(args.config, args, f"{name}_{seed}", seed, "teachtext=null")
            noise_rows[label].append(scored(run(config, dataset, args), config))

    minutes = (time.time() - start) / 60
    report = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "teachers": teacher_rows,
        "students": student_rows,
        "noise": noise_rows,
        "filter": quality,
        "minutes": minutes,
    }
    (args.out / "report.json").write_text(json.dumps(report, indent=2))

    seeds = ", ".join(map(str, args.seeds))
    together = f"all teachers ({filtering.teachtext.aggregation})"
    quality_rows = [
        f"| {together if name == 'all' else f'{name} alone'} | {q['precision']:.3f} | {q['recall']:.3f} | "
        f"{q['flagged']} |"
        for name, q in quality.items()
    ]
    body = "\n\n".join(
        [
            f"Produced by `python benchmarks/lab_teachtext.py {args.command}` ({len(train_set.videos)} labelled "
            f"videos, {len(train_set.captions)} captions; test {len(test.videos)} videos; student head {head}, "
            f"{alone.epochs} epochs, lr {alone.lr:g} head / {alone.backbone_lr:g} text tower, seeds {seeds}; "
            f"{minutes:.1f} min). Every model is trained by `vitr train`'s function from configs/lab/teachtext.yaml "
            f"(the student; `teachtext=null` alone) and configs/lab/supervised.yaml (`model.head={head}`, the CLIP "
            "teacher). Cached frame features of the frozen lab CLIP; R@k in %, mean ± std over seeds; `temporal` "
            "ranks the temporal captions against the whole test gallery; ties follow the CLIP4Clip protocol "
            "(docs/methods/teachtext.md).",
            "### Teachers (each a retrieval model trained on the labelled split)",
            metric_table(teacher_rows),
            f"### Student vs student + TeachText (mean of {len(teachers)} teacher matrices, Huber beta 1, weight 1; "
            "L_d on cosines as the official code, or on logits)",
            metric_table(student_rows),
            f"### Noisy captions: {args.noise:.0%} of the training captions replaced by captions of other videos",
            f"Filter: rule `{result.config.rule}`, own video must rank < {max_rank:g} among {len(noisy.videos)} "
            f"videos (teachers retrained on the noisy split; one caption per video always kept). Chance precision "
            f"{quality['all']['chance_precision']:.3f}; {quality['all']['noisy']} captions injected.",
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
