"""`vitr synth`, `vitr pretrain` and `vitr quickstart`: the offline lab and the main job that runs it end to end."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from vitr.cli.choices import LAB_SCALES
from vitr.cli.validate import require_dir

LAB_ARCH = "vitr-lab-rn"  # a small CLIP ResNet: the tiny ViT (vitr-lab-tiny) never learnt shapes here (docs/lab.md)
NEGATIVES = ("swap", "none")  # hard-negative captions in pretraining: one swapped attribute (NegCLIP), or none
# Pretraining steps per lab scale: enough for the small CLIP to learn the static vocabulary on 2 cores.
PRETRAIN_STEPS = {"full": 1200, "tiny": 30}
KNOWLEDGE_STILLS = {"full": 2000, "tiny": 24}
EXAMPLE_QUERIES = ("a red circle on the left", "a blue square moves from the left to the right",
                   "a small green triangle grows")


def register(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("synth", help="generate the offline lab (videos, captions, MSR-VTT-format annotations)")
    s.add_argument("out", type=Path)
    s.add_argument("--scale", default="full", choices=LAB_SCALES)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--workers", type=int, default=2)
    s.set_defaults(func=run_synth)

    p = sub.add_parser("pretrain", help="pretrain the lab's small CLIP on the lab's still frames")
    p.add_argument("--lab", type=Path, required=True)
    p.add_argument("--out", type=Path, default=None, help="output directory (default LAB/clip)")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"],
                   help="fp32 (default) is the faster on CPUs: bf16 backward passes are slower there")
    p.add_argument("--arch", default=LAB_ARCH, help=f"open_clip config of the lab CLIP (default {LAB_ARCH})")
    p.add_argument("--negatives", default="swap", choices=NEGATIVES,
                   help="hard-negative captions: swap one attribute of each caption (default), or none")
    p.set_defaults(func=run_pretrain)

    q = sub.add_parser("quickstart", help="the offline main job: lab, pretraining, extraction, index, search, eval")
    q.add_argument("--out", type=Path, default=Path("lab"))
    q.add_argument("--scale", default="full", choices=LAB_SCALES)
    q.add_argument("--steps", type=int, default=None, help="pretraining steps (default depends on the scale)")
    q.add_argument("--workers", type=int, default=2)
    q.set_defaults(func=run_quickstart)


def run_synth(args: argparse.Namespace) -> int:
    from vitr.lab.synth import LabConfig, generate_lab

    manifest = generate_lab(args.out, LabConfig(scale=args.scale, seed=args.seed, workers=args.workers))
    counts = ", ".join(f"{k} {len(v)}" for k, v in manifest.split_ids.items())
    print(f"lab at {args.out}: {counts}; {manifest.config.n_pretrain} still images; wrote {manifest.written} files, "
          f"{manifest.skipped} already there")
    return 0


def pretrain_lab_clip(lab: Path, out: Path, steps: int, batch_size: int = 256, lr: float = 1e-3, seed: int = 0,
                      precision: str = "fp32", arch: str = LAB_ARCH, negatives: str = "swap") -> dict:
    """Pretrain (or reuse, when `out` holds a model made with the same settings) the lab CLIP, then score what it
    recognises on held-out stills (`vitr.lab.knowledge`)."""
    import torch

    from vitr.backbones import load_backbone, save_backbone
    from vitr.cli.tables import console
    from vitr.lab.captions import negative_caption
    from vitr.lab.experiment import load_pretrain_pairs
    from vitr.lab.knowledge import held_out_stills, recognition
    from vitr.lab.synth import LabConfig
    from vitr.train.pretrain import PretrainConfig, pretrain_clip

    config = LabConfig.read(lab)
    settings = {"arch": arch, "steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed,
                "precision": precision, "negatives": negatives, "lab": config.identity()}
    record = out / "pretrain.json"
    if record.exists() and (out / "model.safetensors").exists():
        previous = json.loads(record.read_text())
        if previous.get("settings") == settings:
            console.print(f"reusing the pretrained lab CLIP in {out}")
            return previous
    images, captions = load_pretrain_pairs(lab)
    torch.manual_seed(seed)
    backbone = load_backbone(arch, random_init=True)  # pretrained from scratch here
    start = time.time()
    losses = pretrain_clip(backbone, images, captions,
                           PretrainConfig(steps=steps, batch_size=batch_size, lr=lr, seed=seed, precision=precision),
                           negative_caption=negative_caption if negatives == "swap" else None)
    seconds = round(time.time() - start, 1)
    save_backbone(backbone, out)
    known = recognition(backbone, held_out_stills(config, KNOWLEDGE_STILLS.get(config.scale, 2000)))
    result = {"settings": settings, "seconds": seconds, "final_loss": losses[-1], "first_loss": losses[0],
              "recognition": {k: {"top1": a, "stills": n, "classes": c} for k, (a, n, c) in known.items()}}
    record.write_text(json.dumps(result, indent=2))
    console.print(f"pretrained in {seconds} s: loss {losses[0]:.3f} -> {losses[-1]:.3f}")
    console.print("zero-shot top-1 on held-out stills: " + ", ".join(
        f"{k} {100 * a:.1f} % (chance {100 / c:.0f})" for k, (a, _, c) in known.items()))
    return result


def run_pretrain(args: argparse.Namespace) -> int:
    require_dir(args.lab, "--lab")
    from vitr.lab.synth import LabConfig

    scale = LabConfig.read(args.lab).scale
    pretrain_lab_clip(args.lab, args.out or args.lab / "clip", args.steps or PRETRAIN_STEPS.get(scale, 1500),
                      args.batch_size, args.lr, args.seed, args.precision, args.arch, args.negatives)
    return 0


def run_quickstart(args: argparse.Namespace) -> int:
    from vitr.cli.tables import console, print_hits
    from vitr.index.indexer import update_index
    from vitr.index.video_index import VideoIndex
    from vitr.lab.experiment import chance_row, evaluate_lab, lab_table, report_rows
    from vitr.model.factory import ModelSpec, build_model

    out: Path = args.out
    t0 = time.time()
    console.rule("1/5 generate the lab")
    run_synth(argparse.Namespace(out=out, scale=args.scale, seed=0, workers=args.workers))
    console.rule("2/5 pretrain the lab CLIP on still frames")
    pretrain_lab_clip(out, out / "clip", args.steps or PRETRAIN_STEPS[args.scale])
    spec = ModelSpec(backbone=str(out / "clip"), head="meanP", precision="fp32")

    console.rule("3/5 index the test videos")
    index = VideoIndex.create(out / "index", spec)
    report = update_index(index, out / "videos", workers=args.workers)
    console.print(f"index: {report.summary()}")
    console.rule("4/5 example searches")
    for query in EXAMPLE_QUERIES:
        print_hits(query, index.search_text(query, k=5))

    console.rule("5/5 zero-shot evaluation on the test split (meanP over frames)")
    model = build_model(spec)
    lab_report = evaluate_lab(model, out, index.dir / "cache", workers=args.workers)  # reuses the index's features
    rows = report_rows("zero-shot CLIP (meanP)", lab_report) + [chance_row(lab_report)]
    table = lab_table(rows, f"lab test split ({lab_report.results['all'].num_videos} videos)")
    console.print(table, markup=False)
    (out / "results").mkdir(exist_ok=True)
    (out / "results" / "zero_shot.json").write_text(json.dumps(lab_report.to_dict(), indent=2))
    (out / "results" / "zero_shot.md").write_text(table)
    console.print(f"twin accuracy (ties count half): {lab_report.twin_half:.1f} %; strict: "
                  f"{lab_report.twin_strict:.1f} %")
    console.print(f"done in {time.time() - t0:.0f} s; results in {out / 'results'}")
    return 0
