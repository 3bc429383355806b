"""PS-SCL in the lab: pseudo-label the unlabelled pool with the lab CLIP, train every row from the recipe, compare.

    python benchmarks/lab_ps_scl.py --lab LAB [--quick] [key=value ...]

LAB is a folder made by `vitr synth`, LAB/clip the lab CLIP from `vitr pretrain`. Steps:
1. pseudo-texts for the pool, written by the function `vitr pseudo-label` calls (`pseudo_label_folder`) over OUT/pool
   (links to the pool's videos) with the lab vocabulary (`vitr.lab.pseudo.lab_vocabulary`, from LAB/concepts.json),
   tagging the frames the runs train on; their precision against the generator's ground truth (pool_truth.json) and
   the lab CLIP's zero-shot recognition of colour and shape (`vitr.lab.pseudo`);
2. zero-shot (lab CLIP + meanP) and every trained row through `vitr.train.pipeline.train`, the function `vitr train`
   calls, on the recipe (`--config`, configs/lab/ps_scl.yaml) with the command line's `key=value` overrides and the
   row's own (`plan_rows`): plain contrastive and SeLeCT on the pseudo pairs, SeLeCT + WiSE-FT, both with the
   zero-shot anchor (`--anchor`), a ceiling on the pool's withheld true captions, labelled only and labelled + pool;
   over seeds from the recipe's, both directions, on the test split (`--eval-split val` to choose settings).
The tables replace the "## PS-SCL" section of docs/results.md.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import get_args

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from common import write_results_section  # noqa: E402

from vitr.data.readers import load_dataset  # noqa: E402
from vitr.data.types import Caption, RetrievalDataset, VideoItem  # noqa: E402
from vitr.eval.significance import Delta, paired_delta  # noqa: E402
from vitr.inference.extract import extract_features, frame_spec_for, open_cache  # noqa: E402
from vitr.lab.experiment import evaluate_lab, load_lab_test, load_lab_validation  # noqa: E402
from vitr.lab.pseudo import (  # noqa: E402
    attribute_recognition,
    caption_labels,
    link_pool,
    pseudo_precision,
    read_concepts,
    read_pool_truth,
    write_lab_vocabulary,
)
from vitr.model.factory import ModelSpec, build_model  # noqa: E402
from vitr.model.retrieval import VideoTextModel  # noqa: E402
from vitr.pseudo import PseudoLabeler, load_vocabulary, pseudo_label_folder, read_pseudo_labels  # noqa: E402
from vitr.pseudo.label import write_pseudo_labels  # noqa: E402
from vitr.pseudo.texts import Changed  # noqa: E402
from vitr.train.config import TrainConfig, config_to_dict, load_config  # noqa: E402
from vitr.train.pipeline import train, training_model  # noqa: E402
from vitr.train.ps_scl import ANCHORS  # noqa: E402

SECTION = "## PS-SCL"
DIRECTIONS = ("t2v", "v2t")
METRICS = ("R1", "R5", "R10")
PSEUDO_FILE, POOL_DIR = "pool_pseudo.jsonl", "pool"  # under --out: what every pseudo row trains on
NO_SELECTION = "ps_scl.selection.rule=none"
TRUE_CAPTIONS = [NO_SELECTION, "ps_scl.forms=[]"]  # caption files hold form "caption", not a pseudo-text form


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lab", type=Path, default=REPO_ROOT / "lab")
    p.add_argument("--clip", type=Path, default=None, help="lab CLIP directory (default LAB/clip)")
    p.add_argument("--config", type=Path, default=REPO_ROOT / "configs" / "lab" / "ps_scl.yaml",
                   help="the recipe of every trained row")
    p.add_argument("overrides", nargs="*", help="recipe overrides for every row, as for `vitr train`: model.head=meanP")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "runs" / "lab_ps_scl")
    p.add_argument("--quick", action="store_true", help="1 seed, 2 epochs, 1,000 pool videos, no labelled runs")
    p.add_argument("--seeds", type=int, default=3, help="seeds of the headline rows (plain and SeLeCT)")
    p.add_argument("--extra-seeds", type=int, default=None, help="seeds of the other rows (WiSE-FT, ceiling, labelled)")
    p.add_argument("--anchor-seeds", type=int, default=None, help="seeds of the anchored rows (default: --extra-seeds)")
    p.add_argument("--anchor", type=float, default=0.0,
                   help="also run plain and SeLeCT with this zero-shot anchor weight (0: no)")
    p.add_argument("--anchor-kind", choices=ANCHORS, default=None,
                   help="the anchored rows' ps_scl.anchor (default: the recipe's); still: only videos without a "
                   "temporal pseudo-text")
    p.add_argument("--wise-alpha", type=float, default=0.5, help="WiSE-FT mixing weight of the drift-guard row")
    p.add_argument("--paraphrases", type=int, default=0,
                   help="synonym variants written per pseudo-text (`vitr pseudo-label --paraphrases`)")
    p.add_argument("--changed", choices=get_args(Changed), default="keep",
                   help="sentences of a video whose size or position changes (`vitr pseudo-label --changed`)")
    p.add_argument("--pool-videos", type=int, default=None, help="use only the first N pool videos")
    p.add_argument("--no-labelled", action="store_true", help="skip the labelled-only and combined runs")
    p.add_argument("--eval-split", choices=("test", "val"), default="test",
                   help="score on the test split, or on the validation split (1,000 labelled training videos) to "
                   "choose settings")
    p.add_argument("--features", type=Path, default=None, help="frame feature cache (default OUT/features)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-doc", action="store_true", help="do not touch docs/results.md")
    args = p.parse_args(argv)
    args.command = " ".join(sys.argv[1:] if argv is None else argv)
    if args.quick:
        args.seeds, args.no_labelled = 1, True
        args.pool_videos = args.pool_videos or 1000
    args.clip = args.clip or args.lab / "clip"
    args.features = args.features or args.out / "features"
    return args


# ------------------------------------------------------------------------------------------------- rows
@dataclass(frozen=True)
class Row:
    """One table row: its name, its overrides of the recipe, its seeds, and whether it also reads the lab's
    labelled split (`vitr train --dataset msrvtt`)."""

    name: str
    overrides: tuple[str, ...]
    seeds: int
    labelled: bool = False


def base_overrides(args: argparse.Namespace) -> list[str]:
    """Every row's overrides: `--quick`, the command line's, then the lab CLIP and the pool's files this script
    writes (last, so nothing moves them)."""
    return [
        *(["epochs=2"] if args.quick else []),
        *args.overrides,
        f"model.backbone={args.clip}",
        f"ps_scl.pseudo_labels={args.out / PSEUDO_FILE}",
        f"ps_scl.videos={args.out / POOL_DIR}",
    ]


def plan_rows(args: argparse.Namespace, recipe: TrainConfig) -> dict[str, Row]:
    """The trained rows by key (their run folders' names). The recipe itself is the SeLeCT row."""
    extra = args.seeds if args.extra_seeds is None else args.extra_seeds
    anchored = extra if args.anchor_seeds is None else args.anchor_seeds
    score = recipe.ps_scl.selection.score
    rows = {
        "plain": Row("pseudo pairs, plain contrastive (no selection)", (NO_SELECTION,), args.seeds),
        "select": Row(f"PS-SCL: pseudo pairs + SeLeCT (A, {score} score)", (), args.seeds),
        "wise": Row(f"PS-SCL + WiSE-FT drift guard (alpha {args.wise_alpha:g})", (f"wise_alpha={args.wise_alpha}",),
                    extra),
    }
    if args.anchor:
        kind = args.anchor_kind or recipe.ps_scl.anchor
        anchor = (f"ps_scl.anchor_weight={args.anchor:g}", f"ps_scl.anchor={kind}")
        named = f"zero-shot {kind} anchor (weight {args.anchor:g})"
        rows["plain-anchor"] = Row(f"plain contrastive + {named}", (NO_SELECTION, *anchor), anchored)
        rows["select-anchor"] = Row(f"PS-SCL + {named}", anchor, anchored)
    rows["ceiling"] = Row("ceiling: the same pool videos with their withheld true captions",
                          (*TRUE_CAPTIONS, f"ps_scl.pseudo_labels={args.out / 'pool_captions.jsonl'}"), extra)
    if not args.no_labelled:
        labelled = (f"ps_scl.pseudo_labels={args.out / 'train_captions.jsonl'}", f"ps_scl.videos={args.lab / 'videos'}")
        rows["labelled"] = Row("labelled split only (supervised)", (*TRUE_CAPTIONS, *labelled), extra)
        rows["labelled+pseudo"] = Row("labelled + pseudo pairs with SeLeCT", (), extra, labelled=True)
    return rows


def row_config(args: argparse.Namespace, key: str, row: Row, seed: int) -> TrainConfig:
    """The recipe with every row's overrides, this row's and its seed; a fresh run in OUT/runs/KEY-seedS."""
    run = [f"seed={seed}", f"output_dir={args.out / 'runs' / f'{key}-seed{seed}'}", "resume=false", "progress=false",
           "tensorboard=false"]
    return load_config(args.config, [*base_overrides(args), *row.overrides, *run])


def train_row(
    config: TrainConfig, labelled: RetrievalDataset | None, cache_root: Path
) -> tuple[VideoTextModel, list[float]]:
    """Train as `vitr train` does (`vitr.cli.train_cmd.run_recipe`); the model and its kept shares per batch."""
    model = training_model(config)
    trainer = train(model, config, labelled, cache_root)
    return model.eval(), trainer.selection.kept


# ------------------------------------------------------------------------------------------- evaluation
def evaluate(model: VideoTextModel, args: argparse.Namespace) -> dict:
    report = evaluate_lab(model, args.lab, args.features, progress=False, split=args.eval_split)
    result, temporal, static = report.results["all"], report.results["temporal"], report.results["static"]
    return {
        "t2v": dict(result.t2v),
        "v2t": dict(result.v2t),
        "temporal_t2v": dict(temporal.t2v),
        "static_t2v": dict(static.t2v),
        "twin": report.twin_half,
        # v2t R@1 of the videos whose caption is static / temporal, from the per-video hits (the subsets of
        # `report.results` rank within their own captions, so their v2t is not comparable)
        "static_v2t": {"R1": 100 * float(report.hits["v2t"][~temporal_videos(args)].mean())},
        "temporal_v2t": {"R1": 100 * float(report.hits["v2t"][temporal_videos(args)].mean())},
        "hits": report.hits,  # per query, for the paired bootstrap of the Δ columns; left out of report.json
    }


@functools.cache
def _temporal_videos(lab: Path, split: str) -> np.ndarray:
    dataset = load_lab_test(lab) if split == "test" else load_lab_validation(lab)
    temporal = {c.video_id for c in dataset.captions if "temporal" in c.tags}
    return np.array([v.video_id in temporal for v in dataset.videos])


def temporal_videos(args: argparse.Namespace) -> np.ndarray:
    """(videos,) bool, in the evaluated split's order: the video's caption is a temporal one."""
    return _temporal_videos(args.lab, args.eval_split)


def summary(run: dict) -> str:
    """One run's R@1 in a line: both directions, then split by static and temporal captions (videos for v2t)."""
    return (
        f"t2v R@1 {run['t2v']['R1']:.1f} v2t R@1 {run['v2t']['R1']:.1f}"
        f" (static t2v {run['static_t2v']['R1']:.1f}, temporal t2v {run['temporal_t2v']['R1']:.1f};"
        f" static v2t {run['static_v2t']['R1']:.1f}, temporal v2t {run['temporal_v2t']['R1']:.1f})"
    )


def mean_std(runs: list[dict], direction: str, metric: str) -> str:
    values = [r[direction][metric] for r in runs]
    return f"{np.mean(values):.1f} ± {np.std(values):.1f}" if len(values) > 1 else f"{values[0]:.1f}"


def delta_vs_zero_shot(runs: list[dict], zero_shot: dict, direction: str) -> Delta:
    """R@1 of a row (per query, averaged over its seeds) minus zero-shot, with a paired bootstrap over the queries."""
    hits = np.mean([r["hits"][direction] for r in runs], axis=0)
    return paired_delta(zero_shot["hits"][direction], hits)


def results_table(rows: dict[str, list[dict]], zero_shot: dict) -> str:
    header = ["method", "seeds"] + [f"{d} R@{m[1:]}" for d in DIRECTIONS for m in METRICS]
    header += ["Δ t2v R@1 [95 % CI]", "Δ v2t R@1 [95 % CI]", "temporal t2v R@1", "twin acc"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, runs in rows.items():
        cells = [name, str(len(runs))] + [mean_std(runs, d, m) for d in DIRECTIONS for m in METRICS]
        cells += [str(delta_vs_zero_shot(runs, zero_shot, d)) for d in DIRECTIONS]
        cells += [mean_std(runs, "temporal_t2v", "R1"), f"{np.mean([r['twin'] for r in runs]):.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def last_epoch_share(kept: list[float], epochs: int) -> float:
    """Mean share of pseudo pairs kept over the last epoch's batches."""
    return float(np.mean(kept[-max(1, len(kept) // epochs) :])) if kept else 1.0


# ------------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:  # noqa: PLR0915  (one linear experiment script)
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.time()
    if not (args.clip / "model.safetensors").exists():
        raise SystemExit(f"no lab CLIP in {args.clip}: run `vitr quickstart` or `vitr pretrain --lab {args.lab}`")
    recipe = load_config(args.config, base_overrides(args))  # a bad override fails here, before any work
    if recipe.ps_scl is None:
        raise SystemExit(f"{args.config} has no ps_scl section")
    backbone = build_model(ModelSpec(backbone=str(args.clip), head="meanP")).backbone

    # 1. pseudo-label the pool as `vitr pseudo-label` does; score the pseudo-texts against the generator's truth
    truth = read_pool_truth(args.lab)
    concepts = read_concepts(args.lab)
    pool_ids = list(truth)[: args.pool_videos]
    pool_dir = link_pool(args.lab, args.out / POOL_DIR, pool_ids)
    vocab_path = write_lab_vocabulary(args.lab, args.out / "lab_vocabulary.json")
    vocab = load_vocabulary(vocab_path)
    labeler = PseudoLabeler(backbone, vocab, num_frames=recipe.model.num_frames, paraphrases=args.paraphrases,
                            changed=args.changed)
    labelling = pseudo_label_folder(labeler, pool_dir, args.out / PSEUDO_FILE, progress=False)
    labels = {Path(label.video).stem: label for label in read_pseudo_labels(args.out / PSEUDO_FILE)}
    labelled_ids = [v for v in pool_ids if v in labels]
    precision_rows, transitions = pseudo_precision(
        [labels[v] for v in labelled_ids], [truth[v] for v in labelled_ids], concepts["position_phrases"], vocab
    )
    spec = frame_spec_for(backbone, recipe.model.num_frames)  # the runs' frames, in their cache: decoded once
    cache = open_cache(args.features, backbone, spec)
    items = [VideoItem(v, str(pool_dir / f"{v}.mp4")) for v in labelled_ids]
    keys = extract_features(backbone, items, cache, spec, progress=False).keys
    seen = [v for v in labelled_ids if v in keys]
    frames, mask = cache.stacked([keys[v] for v in seen])  # (N, T, D), (N, T)
    recognition = attribute_recognition(backbone, frames, mask, [truth[v] for v in seen], concepts)
    forms: dict[str, int] = {}
    for label in labels.values():
        for t in label.texts:
            forms[t["form"]] = forms.get(t["form"], 0) + 1
    trained_forms = recipe.ps_scl.forms or list(forms)
    trained_texts = sum(n for form, n in forms.items() if form in trained_forms)

    # true captions in the pseudo-label format: the ceiling (pool) and labelled-only rows train on them
    pool_set = RetrievalDataset("lab", "pool", [VideoItem(v, str(pool_dir / f"{v}.mp4")) for v in pool_ids],
                                [Caption(v, c["text"]) for v in pool_ids for c in truth[v]["captions"]])
    write_pseudo_labels(caption_labels(pool_set, pool_dir), args.out / "pool_captions.jsonl")
    train_set = None
    if not args.no_labelled:
        train_set = load_dataset("msrvtt", args.lab / "annotations", "train9k", video_dir=args.lab / "videos")
        write_pseudo_labels(caption_labels(train_set, args.lab / "videos"), args.out / "train_captions.jsonl")

    # 2. zero-shot, then every trained row through the recipe
    zero_shot = evaluate(build_model(ModelSpec(backbone=str(args.clip), head="meanP")), args)
    print(f"zero-shot ({args.eval_split}): {summary(zero_shot)}", flush=True)
    rows: dict[str, list[dict]] = {"zero-shot (lab CLIP + meanP)": [zero_shot]}
    plan = plan_rows(args, recipe)
    kept: dict[str, float] = {}
    for key, row in plan.items():
        runs = []
        for seed in range(recipe.seed, recipe.seed + row.seeds):
            config = row_config(args, key, row, seed)
            model, shares = train_row(config, train_set if row.labelled else None, args.features)
            runs.append(evaluate(model, args))
            kept[row.name] = last_epoch_share(shares, config.epochs)
            print(f"{row.name} seed {seed}: {summary(runs[-1])}", flush=True)
        if runs:
            rows[row.name] = runs

    minutes = (time.time() - start) / 60
    shown = {str(args.out): "OUT", str(args.lab): "LAB"}

    def show(override: str) -> str:
        for path, name in shown.items():
            override = override.replace(path, name)
        return f"`{override}`"

    row_lines = "; ".join(
        f"{row.name}: {' '.join(show(o) for o in row.overrides) or 'the recipe as it is'}"
        + (" with `--dataset msrvtt --root LAB/annotations --videos LAB/videos`" if row.labelled else "")
        for row in plan.values()
    )
    precision_table = "\n".join(
        [
            "| category | concepts | top-1 precision % | precision of all listed % | chance (top-1) % |",
            "|---|---|---|---|---|",
        ]
        + [f"| {r.category} | {r.concepts} | {r.top1:.1f} | {r.listed:.1f} | {r.chance:.1f} |" for r in precision_rows]
    )
    recognition_table = "\n".join(
        ["| attribute | classes | top-1 % | chance % |", "|---|---|---|---|"]
        + [f"| {r.attribute} | {r.classes} | {r.top1:.1f} | {r.chance:.1f} |" for r in recognition]
    )
    sel = recipe.ps_scl.selection
    config_path = args.config.resolve()
    recipe_name = config_path.relative_to(REPO_ROOT) if config_path.is_relative_to(REPO_ROOT) else config_path
    selection_scope = "kept within each pseudo-text form" if sel.stratify else "kept over the batch"
    tower_lr = f"text tower fine-tuned at lr {recipe.backbone_lr:g}"
    text_tower = "text tower frozen" if recipe.freeze == "all" else tower_lr
    split = (
        "Test: the lab's 1,000-video split (MSR-VTT 1k-A layout), one caption per video"
        if args.eval_split == "test"
        else "Validation: the last 1,000 labelled training videos, one caption each"
    )
    body = f"""Produced by `python benchmarks/lab_ps_scl.py {args.command}` ({minutes:.1f} min,
{args.threads} threads). Every trained row is `vitr train {recipe_name}` (`vitr.train.pipeline.train`) with the
row's overrides below, seeds from {recipe.seed}. Lab CLIP `{args.clip.name}`; trained models use head
{recipe.model.head} (lr {recipe.lr:g}), zero-shot meanP; frames cached ({recipe.model.num_frames} uniform),
{text_tower}; {recipe.epochs} epochs, batch {recipe.batch_size}; {args.paraphrases} synonym paraphrases per pseudo-text;
SeLeCT option A, tau {sel.tau}, T_k {sel.t_k} epochs, c {sel.exponent:g}, {sel.score} score, {selection_scope};
sentences of a video whose size or position changes: {args.changed}.
{len(labels)} unlabelled pool videos pseudo-labelled ({len(labelling.failed)} not decoded), {sum(forms.values())}
pseudo-texts ({", ".join(f"{k} {v}" for k, v in forms.items())}); trained on the {trained_texts} of forms
{", ".join(trained_forms)}, one text drawn per video per epoch ({recipe.ps_scl.text_sampling}). {split};
mean ± std over the seeds of each row; Δ = R@1 minus
zero-shot, with a 95 % interval from a paired bootstrap over the test queries (each query's top-1 hit averaged over
the row's seeds; 10,000 resamples; `vitr.eval.significance`): an interval that excludes 0 is a gain larger than the
test set's own noise. The lab shows mechanisms and directions, not the paper's numbers (its +8.2 / +12.2 / +10.9 v2t R@1
are on MSR-VTT / DiDeMo / ActivityNet).

Rows and their overrides of the recipe ({show(str(args.out / PSEUDO_FILE))} and {show(str(pool_dir))} are the
pool's pseudo-texts and videos; the caption files hold true captions in the pseudo-label format, so those rows run
the same loop, one caption drawn per video per epoch): {row_lines}.

### Retrieval on the {args.eval_split} split

{results_table(rows, zero_shot)}

Share of pseudo pairs kept in the last epoch: {", ".join(f"{k}: {v:.2f}" for k, v in kept.items())}.

### Pseudo-text precision against the generator's ground truth

A concept counts as correct when it is true of the video's first or last frame (pool_truth.json).

{precision_table}

### What the lab CLIP recognises zero-shot in the pool videos

Top-1 of a zero-shot classifier (3 prompts each, frames aggregated as for the pseudo-texts); correct when true of
the first or last frame.

{recognition_table}

Temporal pseudo-texts ("a red circle on the left, then on the right"): {transitions.written} written,
{transitions.correct} correct ({transitions.percent:.1f}%); {transitions.videos_with_change} pool
videos have a true change of size, column or row.
"""
    (args.out / "report.json").write_text(
        json.dumps(
            {
                "recipe": config_to_dict(recipe),
                "overrides": {key: list(row.overrides) for key, row in plan.items()},
                "rows": {k: [{m: v for m, v in r.items() if m != "hits"} for r in runs] for k, runs in rows.items()},
                "precision": [asdict(r) for r in precision_rows],
                "recognition": [asdict(r) for r in recognition],
                "transitions": asdict(transitions),
                "kept": kept,
            },
            indent=2,
        )
    )
    print(body)
    if not args.no_doc:
        write_results_section(SECTION, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
