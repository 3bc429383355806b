"""TeachText's video-side distillation in the lab: a costly video side (CLIP2Video over 24 frames) teaches a cheap
one (meanP over 4 frames) through its similarity matrix.

    python benchmarks/lab_video_distill.py --lab LAB [--clip LAB/clip] [--seeds 0 1 2]

LAB is a folder made by `vitr synth`, LAB/clip the lab CLIP from `vitr pretrain`. Every run goes through
`vitr.train.pipeline.train`, the function `vitr train` calls, with the recipes configs/lab/video_teacher.yaml (the
teacher) and configs/lab/video_distill.yaml (the student, with `teachtext=null` for the student alone). The teacher
is trained once (seed `--teacher-seed`); the student alone and the student + distillation once per seed. Each model
is evaluated on the lab test split (R@1 both ways, the temporal subset, twin accuracy); paired-bootstrap intervals
compare the queries' top-1 hits (averaged over seeds). Inference cost per video: the frames decoded and encoded and
the milliseconds that takes on this machine (`vitr.lab.cost`). The table replaces the "## TeachText: video-side
distillation" section of docs/results.md; per-run numbers go to docs/results/video_distill.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from common import machine_line, write_results_section  # noqa: E402

from vitr.data.readers import load_dataset  # noqa: E402
from vitr.eval.significance import paired_delta  # noqa: E402
from vitr.lab.cost import video_inference_cost  # noqa: E402
from vitr.lab.experiment import LabReport, evaluate_lab, load_lab_test  # noqa: E402
from vitr.model.factory import build_model  # noqa: E402
from vitr.train.checkpoint import LATEST, resolve_checkpoint  # noqa: E402
from vitr.train.config import TrainConfig, load_config  # noqa: E402
from vitr.train.pipeline import train, training_model  # noqa: E402

SECTION = "## TeachText: video-side distillation"
COLUMNS = [("all", "t2v"), ("all", "v2t"), ("temporal", "t2v"), ("temporal", "v2t")]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lab", type=Path, required=True, help="folder made by `vitr synth`")
    p.add_argument("--clip", type=Path, default=None, help="lab CLIP from `vitr pretrain` (default LAB/clip)")
    p.add_argument("--teacher-config", type=Path, default=REPO_ROOT / "configs" / "lab" / "video_teacher.yaml")
    p.add_argument("--config", type=Path, default=REPO_ROOT / "configs" / "lab" / "video_distill.yaml")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--teacher-seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=None, help="override both recipes' epochs")
    p.add_argument("--distill-scores", nargs="+", default=["cosine", "logits"], choices=["cosine", "logits"],
                   help="what L_d compares: cosines (official) and/or logits (cosines x each model's exp(scale))")
    p.add_argument("--cost-videos", type=int, default=102, help="test videos timed per model (2 warm up)")
    p.add_argument("--runs", type=Path, default=REPO_ROOT / "runs" / "lab_video_distill")
    p.add_argument("--cache", type=Path, default=None, help="frame-feature cache (default RUNS/cache)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1: stable timings on a busy machine)")
    p.add_argument("--no-doc", action="store_true", help="print only; leave docs/results.md alone")
    args = p.parse_args(argv)
    args.command = " ".join(sys.argv[1:] if argv is None else argv)
    args.clip = args.clip or args.lab / "clip"
    return args


def recipe(path: Path, args: argparse.Namespace, name: str, seed: int, *extra: str) -> TrainConfig:
    overrides = [f"model.backbone={args.clip}", f"seed={seed}", "progress=false", "tensorboard=false",
                 f"output_dir={args.runs / name}", *extra]
    if args.epochs:
        overrides.append(f"epochs={args.epochs}")
    return load_config(path, overrides)


def run(config: TrainConfig, train_set, cache_root: Path, lab: Path) -> tuple[LabReport, float]:  # noqa: ANN001
    """Train as `vitr train` does, then evaluate. A finished run is reused (it resumes at its last step) with the
    training time it took, kept in its output_dir."""
    model = training_model(config)  # as `vitr train` builds it
    timing = Path(config.output_dir) / "wall_seconds.txt"
    start = time.time()
    trained_before = resolve_checkpoint(Path(config.output_dir) / "checkpoints", LATEST) is not None
    train(model, config, train_set, cache_root)
    if not trained_before:
        timing.write_text(f"{time.time() - start:.1f}")
    seconds = float(timing.read_text()) if timing.exists() else float("nan")
    return evaluate_lab(model.eval(), lab, cache_root, num_frames=config.model.num_frames, progress=False), seconds


def r1(report: LabReport, subset: str, direction: str) -> float:
    return float(report.results[subset].to_dict()[direction]["R1"])


def cell(reports: list[LabReport], subset: str, direction: str) -> str:
    xs = np.array([r1(r, subset, direction) for r in reports])
    return f"{xs.mean():.1f}" if len(xs) == 1 else f"{xs.mean():.1f} ± {xs.std(ddof=1):.1f}"


def mean_hits(reports: list[LabReport], direction: str) -> np.ndarray:
    return np.mean([r.hits[direction] for r in reports], axis=0)


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0915  (one linear experiment script)
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if not (args.clip / "model.safetensors").exists():
        raise SystemExit(f"no lab CLIP in {args.clip}: run `vitr pretrain --lab {args.lab}`")
    machine = machine_line()
    start = time.time()
    cache_root = args.cache or args.runs / "cache"
    train_set = load_dataset("msrvtt", args.lab / "annotations", "train9k", video_dir=args.lab / "videos")
    test = load_lab_test(args.lab)
    temporal = {d: np.array(i) for d, i in temporal_queries(test).items()}

    teacher_cfg = recipe(args.teacher_config, args, "teacher", args.teacher_seed)
    teacher_report, teacher_s = run(teacher_cfg, train_set, cache_root, args.lab)
    print(f"teacher: {teacher_s:.0f} s, t2v R@1 {r1(teacher_report, 'all', 't2v'):.1f}", flush=True)

    variants = {"cosine": "distilled", "logits": "distilled-logits"}  # L_d on cosines: the official recipe
    names = ["student", *(variants[scores] for scores in args.distill_scores)]
    reports: dict[str, list[LabReport]] = {name: [] for name in names}
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for seed in args.seeds:
        configs = {"student": recipe(args.config, args, f"student-seed{seed}", seed, "teachtext=null")}
        for scores in args.distill_scores:
            name = variants[scores]
            configs[name] = recipe(args.config, args, f"{name}-seed{seed}", seed, f"teachtext.scores={scores}",
                                   f"teachtext.bank={args.runs / 'teacher_bank.safetensors'}")
            configs[name].teachtext.teachers[0].model.checkpoint = teacher_cfg.output_dir  # its latest checkpoint
            configs[name].teachtext.teachers[0].model.backbone = str(args.clip)
        alone = configs["student"]
        for name, config in configs.items():
            report, s = run(config, train_set, cache_root, args.lab)
            reports[name].append(report)
            seconds[name].append(s)
            print(f"{name} seed {seed}: {s:.0f} s, t2v R@1 {r1(report, 'all', 't2v'):.1f}", flush=True)

    # inference cost per video, both models on the same test videos, one after the other
    timed = test.videos[: args.cost_videos]
    teacher_model = build_model(teacher_cfg.model)
    student_model = build_model(alone.model)
    cost = {"teacher": video_inference_cost(teacher_model, timed, teacher_cfg.model.num_frames),
            "student": video_inference_cost(student_model, timed, alone.model.num_frames)}

    rows = {"teacher": [teacher_report], **reports}
    labels = {
        "teacher": f"teacher: CLIP2Video (TDB+TAB), {teacher_cfg.model.num_frames} frames",
        "student": f"student: meanP, {alone.model.num_frames} frames",
        "distilled": f"student + video-side TeachText (L_d on cosines), {alone.model.num_frames} frames",
        "distilled-logits": f"student + video-side TeachText (L_d on logits), {alone.model.num_frames} frames",
    }
    deltas = {}
    for direction in ("t2v", "v2t"):
        student_hits = mean_hits(reports["student"], direction)
        teacher_hits = teacher_report.hits[direction]
        for subset, rows_of in (("all", slice(None)), ("temporal", temporal[direction])):
            pair = {"teacher - student": paired_delta(student_hits[rows_of], teacher_hits[rows_of])}
            for name in names[1:]:
                hits = mean_hits(reports[name], direction)
                pair[f"{name} - student"] = paired_delta(student_hits[rows_of], hits[rows_of])
            deltas[f"{subset} {direction}"] = pair
    header = ["model", *(f"{s} {d} R@1" for s, d in COLUMNS), "twin acc", "frames / video", "ms / video"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key, runs in rows.items():
        c = cost["teacher" if key == "teacher" else "student"]
        twin = np.array([r.twin_half for r in runs])
        twin_cell = f"{twin.mean():.1f}" if len(twin) == 1 else f"{twin.mean():.1f} ± {twin.std(ddof=1):.1f}"
        lines.append("| " + " | ".join([labels[key], *(cell(runs, s, d) for s, d in COLUMNS), twin_cell,
                                        str(c.frames), f"{c.ms_per_video:.1f}"]) + " |")
    short = {"distilled": "cosines", "distilled-logits": "logits"}
    gap_header = ["R@1", "teacher − student", *(f"{short[n]} − student (share of the gap)" for n in names[1:])]
    gap_lines = ["| " + " | ".join(gap_header) + " |", "|" + "---|" * len(gap_header)]
    for subset, pair in deltas.items():
        gap = pair["teacher - student"]
        cells = [subset, str(gap)]
        for name in names[1:]:
            gain = pair[f"{name} - student"]
            share = f"{100 * gain.delta / gap.delta:.0f} %" if gap.delta > 0 else "no gap"
            cells.append(f"{gain} ({share})")
        gap_lines.append("| " + " | ".join(cells) + " |")
    minutes = (time.time() - start) / 60
    ratio = cost["student"].ms_per_video / cost["teacher"].ms_per_video
    body = "\n".join([
        f"Produced by `python benchmarks/lab_video_distill.py {args.command}` in {minutes:.0f} min on {machine}. "
        f"Lab: {len(train_set.videos)} labelled train videos ({len(train_set.captions)} captions), the "
        f"{len(test.videos)}-video test split (one caption each, {len(temporal['t2v'])} temporal); cached frame "
        "features of the frozen lab CLIP. Recipes: configs/lab/video_teacher.yaml (teacher, seed "
        f"{args.teacher_seed}) and configs/lab/video_distill.yaml (student, seeds {', '.join(map(str, args.seeds))}; "
        "`teachtext=null` for the student alone), each run through `vitr.train.pipeline.train` as `vitr train` runs "
        f"it, {teacher_cfg.epochs} epochs. R@1 in %, mean ± std over seeds, final checkpoint of each run; `temporal` "
        "ranks the temporal captions (v2t: the temporal videos) against the whole split; twin acc as in the "
        "CLIP2Video section.",
        "",
        "\n".join(lines),
        "",
        f"Inference cost: frames decoded and encoded per video, and ms per video (decode + image tower + head, one "
        f"video at a time, {cost['student'].videos} test videos after 2 warm-up ones, {args.threads} threads); the "
        f"student costs {ratio:.2f} of the teacher's time (decode {cost['student'].decode_ms:.1f} vs "
        f"{cost['teacher'].decode_ms:.1f} ms, encode {cost['student'].encode_ms:.1f} vs "
        f"{cost['teacher'].encode_ms:.1f} ms).",
        "",
        "Paired bootstrap over the test queries (95 % intervals, 10,000 resamples; each query's top-1 hit averaged "
        "over the student's seeds):",
        "",
        "\n".join(gap_lines),
        "",
        f"Training wall time per run (mean over seeds): teacher {teacher_s:.0f} s; "
        + "; ".join(f"{labels[n].split(',')[0]} {np.mean(seconds[n]):.0f} s" for n in names)
        + " (the first distilled run also builds the teacher bank).",
    ])
    print(body)
    if not args.no_doc:
        write_results_section(SECTION, body)
        out = REPO_ROOT / "docs" / "results" / "video_distill.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({
            "runs": {k: [r.to_dict() for r in v] for k, v in rows.items()},
            "cost": {k: c.to_dict() for k, c in cost.items()},
            "deltas": {k: {n: vars(d) for n, d in v.items()} for k, v in deltas.items()},
            "seconds": {"teacher": teacher_s, **seconds},
            "machine": machine,
        }, indent=2))
    return 0


def temporal_queries(test) -> dict[str, list[int]]:  # noqa: ANN001
    """Rows of the temporal captions (t2v) and of their videos (v2t) in the split's order."""
    video_row = {v.video_id: i for i, v in enumerate(test.videos)}
    captions = [i for i, c in enumerate(test.captions) if "temporal" in c.tags]
    return {"t2v": captions, "v2t": sorted({video_row[test.captions[i].video_id] for i in captions})}


if __name__ == "__main__":
    raise SystemExit(main())
