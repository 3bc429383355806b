"""The CLIP2Video table in the lab: zero-shot, meanP, seqTransf, TDB only, TAB only, TDB+TAB (issue: training).

Each head is trained from the pretrained lab CLIP on the labelled train split (cached frame features, text
tower fine-tuned, configs/lab/supervised.yaml with the head swapped), for several seeds, and evaluated on the test
split: all captions, the temporal and static subsets, both directions, and twin accuracy (docs/lab.md §2).
The final checkpoint of each run is evaluated (no selection on the test split). Tables replace the
"## CLIP2Video" section of docs/results.md; per-run numbers go to docs/results/clip2video.json.

    python benchmarks/lab_clip2video.py --lab lab            # 3 seeds, all heads
    python benchmarks/lab_clip2video.py --lab lab --quick    # 1 seed, 2 epochs
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

from common import write_results_section  # noqa: E402

from vitr.data.readers import load_dataset  # noqa: E402
from vitr.lab.experiment import LabReport, evaluate_lab  # noqa: E402
from vitr.model.factory import ModelSpec, build_model  # noqa: E402
from vitr.train.config import load_config  # noqa: E402
from vitr.train.pipeline import train, training_model  # noqa: E402

SECTION = "## CLIP2Video"
HEADS = {  # table row -> registered head (default options: docs/methods/clip2video.md)
    "meanP": "meanP",
    "seqTransf": "seqTransf",
    "TDB only": "tdb",
    "TAB only (seqTransf + TAB)": "tab",
    "TDB+TAB (CLIP2Video)": "clip2video",
}
COLUMNS = [
    ("all", "t2v", "R1"),
    ("all", "t2v", "R5"),
    ("all", "v2t", "R1"),
    ("all", "v2t", "R5"),
    ("temporal", "t2v", "R1"),
    ("temporal", "v2t", "R1"),
    ("static", "t2v", "R1"),
    ("static", "v2t", "R1"),
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lab", type=Path, default=REPO_ROOT / "lab")
    p.add_argument("--clip", type=Path, default=None, help="pretrained lab CLIP (default LAB/clip)")
    p.add_argument("--config", type=Path, default=REPO_ROOT / "configs" / "lab" / "supervised.yaml")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=None, help="override the config's epochs")
    p.add_argument("--heads", nargs="+", default=list(HEADS), choices=list(HEADS))
    p.add_argument("--quick", action="store_true", help="1 seed, 2 epochs")
    p.add_argument("--runs", type=Path, default=REPO_ROOT / "runs" / "lab_clip2video")
    p.add_argument("--no-doc", action="store_true", help="print only; leave docs/results.md alone")
    return p.parse_args(argv)


def row_values(report: LabReport) -> dict[str, float]:
    values = {f"{s} {d} {m}": report.results[s].to_dict()[d][m] for s, d, m in COLUMNS}
    values["twin"] = report.twin_half
    return values


def mean_std(runs: list[dict[str, float]], key: str) -> str:
    xs = np.array([r[key] for r in runs], dtype=float)
    return f"{xs.mean():.1f}" if len(xs) == 1 else f"{xs.mean():.1f} ± {xs.std(ddof=1):.1f}"


def table(rows: dict[str, list[dict[str, float]]]) -> str:
    header = ["model", *(f"{s} {d} R@{m[1:]}" for s, d, m in COLUMNS), "twin acc"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, runs in rows.items():
        keys = [f"{s} {d} {m}" for s, d, m in COLUMNS] + ["twin"]
        lines.append("| " + " | ".join([name, *(mean_std(runs, k) for k in keys)]) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.quick:
        args.seeds, args.epochs = args.seeds[:1], args.epochs or 2
    clip = args.clip or args.lab / "clip"
    if not (clip / "model.safetensors").exists():
        raise SystemExit(f"no pretrained lab CLIP in {clip}: run `vitr quickstart` or `vitr pretrain --lab {args.lab}`")
    cache_root = args.lab / "index" / "cache"  # shared with the quickstart's index: features are extracted once
    train_set = load_dataset("msrvtt", args.lab / "annotations", "train9k", video_dir=args.lab / "videos")
    start = time.time()
    rows: dict[str, list[dict[str, float]]] = {}
    per_run: dict[str, list[dict]] = {}

    zero_shot = evaluate_lab(
        build_model(ModelSpec(backbone=str(clip), head="meanP")), args.lab, cache_root, progress=False
    )
    rows["zero-shot CLIP (meanP)"] = [row_values(zero_shot)]
    per_run["zero-shot"] = [zero_shot.to_dict()]
    for name in args.heads:
        head = HEADS[name]
        for seed in args.seeds:
            overrides = [
                f"model.backbone={clip}",
                f"model.head={head}",
                f"seed={seed}",
                "progress=false",
                "tensorboard=false",
                f"output_dir={args.runs / f'{head}-seed{seed}'}",
            ]
            if args.epochs:
                overrides.append(f"epochs={args.epochs}")
            config = load_config(args.config, overrides)
            model = training_model(config)  # as `vitr train` builds it
            t0 = time.time()
            train(model, config, train_set, cache_root)
            report = evaluate_lab(model.eval(), args.lab, cache_root, progress=False)
            rows.setdefault(name, []).append(row_values(report))
            per_run.setdefault(name, []).append({"seed": seed, **report.to_dict()})
            print(
                f"{name} seed {seed}: {time.time() - t0:.0f} s; t2v R@1 {rows[name][-1]['all t2v R1']:.1f}, "
                f"temporal t2v R@1 {rows[name][-1]['temporal t2v R1']:.1f}, twin {report.twin_half:.1f}",
                flush=True,
            )

    n_test = zero_shot.results["all"].num_videos
    body = "\n".join(
        [
            f"Lab test split: {n_test} videos, one caption each (MSR-VTT 1k-A layout), protocol `clip4clip` "
            "(tie-expanded ranks); `temporal` and `static` are the tagged caption subsets ranked against all test "
            "videos; twin acc = % of temporal captions scoring their own video above its time-reversed twin, both "
            f"pairings, ties count half (chance 50). Chance R@1 = {100 / n_test:.1f}. Mean ± std over seeds "
            f"{args.seeds}; final checkpoint of each run; config `{args.config.relative_to(REPO_ROOT)}` "
            f"(mask_tiling per_sample, difference_mask strict), lr {config.lr:g} head / {config.backbone_lr:g} "
            f"text tower, {config.epochs} epochs. Produced by `python benchmarks/lab_clip2video.py "
            f"{' '.join(sys.argv[1:] if argv is None else argv)}`.",
            "",
            table(rows),
            "",
            f"Total time {time.time() - start:.0f} s on {torch.get_num_threads()} threads.",
        ]
    )
    print(body)
    if not args.no_doc:
        write_results_section(SECTION, body)
        out = REPO_ROOT / "docs" / "results" / "clip2video.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(per_run, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
