"""`vitr synth`, `vitr pretrain` and `vitr quickstart`: the offline lab and the main job that runs it end to end."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vitr.cli.choices import LAB_SCALES
from vitr.cli.tables import console
from vitr.cli.validate import add_device_arg, add_training_precision_arg, require_dir
from vitr.errors import ConfigError

LAB_ARCH = "vitr-lab-rn"  # a small CLIP ResNet: the tiny ViT (vitr-lab-tiny) never learnt shapes here (docs/lab.md)
NEGATIVES = ("swap", "none")  # hard-negative captions in pretraining: one swapped attribute (NegCLIP), or none
# Pretraining steps and batch per lab scale: "full" is the lab CLIP of docs/results.md; "quick" what ten minutes of
# the main job on a 2-core AVX2 CPU allow (docs/lab.md, "The main job"); "tiny" only exercises the code.
# A step costs in proportion to its batch (about 1.7 s for 256 with hard negatives on a 2-core AVX2 CPU), so "quick"
# takes more, smaller steps, and no hard negatives: in its budget they cost a fifth of the steps and bought nothing.
PRETRAIN_STEPS = {"full": 1200, "quick": 450, "tiny": 30}
PRETRAIN_BATCH = {"full": 256, "quick": 128, "tiny": 256}
PRETRAIN_NEGATIVES = {"full": "swap", "quick": "none", "tiny": "swap"}
KNOWLEDGE_STILLS = {"full": 2000, "quick": 500, "tiny": 24}
EXAMPLE_QUERIES = ("a red circle on the left", "a blue square moves from the left to the right",
                   "a small green triangle grows")


def register(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("synth", help="generate the offline lab (videos, captions, MSR-VTT-format annotations)")
    s.add_argument("out", type=Path)
    s.add_argument("--scale", default="full", choices=LAB_SCALES)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--workers", type=int, default=2)
    s.add_argument("--long-videos", type=int, default=0, metavar="N",
                   help="also write N long videos of test clips with known boundaries, and a query per clip, for "
                        "measuring moment search (OUT/long_videos; see vitr.lab.long_videos)")
    s.add_argument("--text-tracks", type=float, default=0.0, metavar="FRACTION",
                   help="give this fraction of the test videos espeak-ng speech with a sidecar .srt and on-screen "
                        "text, and write the visual, spoken and on-screen query sets (docs/text-search.md)")
    s.set_defaults(func=run_synth)

    p = sub.add_parser("pretrain", help="pretrain the lab's small CLIP on the lab's still frames")
    p.add_argument("--lab", type=Path, required=True)
    p.add_argument("--out", type=Path, default=None, help="output directory (default LAB/clip)")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None, help="default depends on the lab's scale")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    add_device_arg(p, "pretrains")
    add_training_precision_arg(p)
    p.add_argument("--arch", default=LAB_ARCH, help=f"open_clip config of the lab CLIP (default {LAB_ARCH})")
    p.add_argument("--negatives", default=None, choices=NEGATIVES,
                   help="hard-negative captions: swap one attribute of each caption, or none (default depends on the "
                        "lab's scale: swap for full)")
    p.set_defaults(func=run_pretrain)

    q = sub.add_parser("quickstart", help="the offline main job: lab, pretraining, extraction, index, search, eval")
    q.add_argument("--out", type=Path, default=Path("lab"))
    q.add_argument("--scale", default="quick", choices=LAB_SCALES,
                   help="quick (default): about ten minutes on 2 cores; full: the lab of docs/results.md")
    q.add_argument("--steps", type=int, default=None, help="pretraining steps (default depends on the scale)")
    q.add_argument("--workers", type=int, default=2)
    add_device_arg(q, "pretrains, indexes and evaluates")
    q.set_defaults(func=run_quickstart)


def run_synth(args: argparse.Namespace) -> int:
    if args.long_videos < 0:
        raise ConfigError(f"--long-videos must be 0 or more, got {args.long_videos}")
    from vitr.lab.synth import LabConfig, generate_lab

    manifest = generate_lab(args.out, LabConfig(scale=args.scale, seed=args.seed, workers=args.workers,
                                                text_track_share=args.text_tracks))
    counts = ", ".join(f"{k} {len(v)}" for k, v in manifest.split_ids.items())
    print(f"lab at {args.out}: {counts}; {manifest.config.n_pretrain} still images; wrote {manifest.written} files, "
          f"{manifest.skipped} already there")
    if args.long_videos:
        from vitr.lab.long_videos import LongVideoSettings, write_long_videos

        write_long_videos(args.out, manifest.config, LongVideoSettings(n_videos=args.long_videos))
        print(f"{args.long_videos} long videos and their moments in {args.out / 'long_videos'}")
    return 0


def pretrain_lab_clip(lab: Path, out: Path, steps: int, batch_size: int = 256, lr: float = 1e-3, seed: int = 0,
                      precision: str = "fp32", arch: str = LAB_ARCH, negatives: str = "swap",
                      device: str = "cpu") -> dict:
    """Pretrain (or reuse, when `out` holds a model made with the same settings) the lab CLIP, then score what it
    recognises on held-out stills (`vitr.lab.knowledge`)."""
    import torch

    from vitr.backbones import load_backbone, save_backbone
    from vitr.files import atomic_write
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
    backbone = load_backbone(arch, random_init=True, device=device)  # pretrained from scratch here
    start = time.time()
    losses = pretrain_clip(backbone, images, captions,
                           PretrainConfig(steps=steps, batch_size=batch_size, lr=lr, seed=seed, precision=precision),
                           negative_caption=negative_caption if negatives == "swap" else None)
    seconds = round(time.time() - start, 1)
    save_backbone(backbone, out)
    known = recognition(backbone, held_out_stills(config, KNOWLEDGE_STILLS.get(config.scale, 2000)))
    result = {"settings": settings, "seconds": seconds, "final_loss": losses[-1], "first_loss": losses[0],
              "recognition": {k: {"top1": a, "stills": n, "classes": c} for k, (a, n, c) in known.items()}}
    atomic_write(record, json.dumps(result, indent=2))
    console.print(f"pretrained in {seconds} s: loss {losses[0]:.3f} -> {losses[-1]:.3f}")
    console.print("zero-shot top-1 on held-out stills: " + ", ".join(
        f"{k} {100 * a:.1f} % (chance {100 / c:.0f})" for k, (a, _, c) in known.items()))
    return result


def run_pretrain(args: argparse.Namespace) -> int:
    require_dir(args.lab, "--lab")
    from vitr.lab.synth import LabConfig
    from vitr.precision import resolve_autocast, resolve_device

    device = str(resolve_device(args.device))
    scale = LabConfig.read(args.lab).scale
    precision = resolve_autocast(args.precision, device)
    pretrain_lab_clip(args.lab, args.out or args.lab / "clip", args.steps or PRETRAIN_STEPS[scale],
                      args.batch_size or PRETRAIN_BATCH[scale], args.lr, args.seed, precision, args.arch,
                      args.negatives or PRETRAIN_NEGATIVES[scale], device=device)
    return 0


class _Stages:
    """Numbered stage headers, and the wall time of each: printed as the stage ends and summed up at the close."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done: list[tuple[str, str, float]] = []  # (title, what it covers, seconds)

    @contextmanager
    def stage(self, title: str, detail: str) -> Iterator[None]:
        number = len(self.done) + 1
        console.rule(f"{number}/{self.total} {title}")
        console.print(detail, markup=False, highlight=False, soft_wrap=True)  # never cut, in a terminal or a file
        start = time.perf_counter()
        yield
        seconds = time.perf_counter() - start
        self.done.append((title, detail, seconds))
        console.print(f"{number}/{self.total} took {_clock(seconds)}", highlight=False)

    def summary(self) -> str:
        width = max(len(title) for title, _, _ in self.done) + 6
        lines = [f"  {f'{i}/{self.total} {title}':<{width}} {_clock(s):>9}" for i, (title, _, s) in
                 enumerate(self.done, 1)]
        lines.append(f"  {'total':<{width}} {_clock(self.seconds):>9}")
        return "\n".join(lines)

    @property
    def seconds(self) -> float:
        return sum(s for _, _, s in self.done)


def _cpu_capability() -> str:
    import torch

    return torch.backends.cpu.get_cpu_capability()  # AVX2, AVX512, ...: what the pretraining time depends on


def _clock(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 60 else f"{int(seconds // 60)} min {seconds % 60:02.0f} s"


def _shown(path: Path) -> str:
    """A path as the user can paste it here: relative when under the working directory, else absolute."""
    path = path.resolve()
    return shlex.quote(str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path))


def _vitr_command() -> str:
    """How this user calls vitr: plain `vitr` when that is on PATH and is this install, else the script's path
    beside this Python (a venv's bin/vitr, not on PATH until the venv is activated)."""
    beside = Path(sys.executable).parent / "vitr"
    on_path = shutil.which("vitr")
    if on_path and (not beside.exists() or Path(on_path).resolve() == beside.resolve()):
        return "vitr"
    return _shown(beside) if beside.exists() else f"{_shown(Path(sys.executable))} -m vitr"


def next_steps(out: Path, example_video: Path) -> str:
    """The closing block: the exact commands that search and serve what the main job built, and index a folder."""
    vitr, index = _vitr_command(), _shown(out / "index")
    return "\n".join([
        "next: search the lab's test videos, serve them, or index your own",
        f"  {vitr} search {shlex.quote(EXAMPLE_QUERIES[0])} --index {index} -k 5",
        f"  {vitr} search --video {_shown(example_video)} --index {index} -k 5",
        f"  {vitr} serve --index {index}    # then open http://127.0.0.1:8000",
        f"  {vitr} index ~/Videos --index ~/Videos-index --model ViT-B-32 --pretrained openai"
        "    # downloads CLIP once; offline: --weights FILE",
        f"  {vitr} search \"a dog catches a frisbee\" --index ~/Videos-index -k 5",
    ])


def run_quickstart(args: argparse.Namespace) -> int:
    from vitr.cli.tables import print_hits
    from vitr.files import atomic_write
    from vitr.index.indexer import update_index
    from vitr.index.video_index import VideoIndex
    from vitr.lab.experiment import chance_row, evaluate_lab, lab_table, load_lab_test, report_rows
    from vitr.lab.synth import LabConfig
    from vitr.model.factory import ModelSpec, build_model
    from vitr.precision import resolve_device

    out: Path = args.out
    device = str(resolve_device(args.device))
    config = LabConfig(scale=args.scale, workers=args.workers)
    steps, batch, negatives = args.steps or PRETRAIN_STEPS[args.scale], PRETRAIN_BATCH[args.scale], \
        PRETRAIN_NEGATIVES[args.scale]
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if load > cores:
        console.print(f"note: the machine is busy (load average {load:.1f} on {cores} cores); every stage will take "
                      "longer than on an idle machine", markup=False, highlight=False, soft_wrap=True)
    stages = _Stages(5)
    with stages.stage(f"generate the {args.scale} lab", f"{config.n_pretrain:,} still images; {config.n_train:,} "
                      f"train, {config.n_pool:,} pool and {config.n_test:,} test videos, and a time-reversed twin of "
                      f"each temporal test video, in {_shown(out)}"):
        run_synth(argparse.Namespace(out=out, scale=args.scale, seed=0, workers=args.workers, long_videos=0,
                                       text_tracks=0.0))
    with stages.stage("pretrain the lab CLIP on still frames",
                      f"{steps:,} steps of batch {batch}, hard negatives: {negatives}; then zero-shot "
                      "recognition on held-out stills"):
        pretrain_lab_clip(out, out / "clip", steps, batch, negatives=negatives, device=device)
    # absolute: the index then works from any directory
    spec = ModelSpec(backbone=str((out / "clip").resolve()), head="meanP", precision="fp32")

    test = load_lab_test(out)
    with stages.stage("index the test split", f"the {len(test.videos):,} test videos (train and pool videos are "
                      f"not indexed) into {_shown(out / 'index')}"):
        made = out / "index" / "index.json"
        if made.exists() and (out / "clip" / "model.safetensors").stat().st_mtime_ns > made.stat().st_mtime_ns:
            console.print("the lab CLIP is newer than the index: rebuilding the index", highlight=False)
            shutil.rmtree(out / "index")  # its vectors (same model path, other weights) would be kept as "unchanged"
        index = VideoIndex.create(out / "index", spec, device=device)
        report = update_index(index, out / "videos", workers=args.workers, only=[v.path for v in test.videos])
        console.print(f"index: {report.summary()}", highlight=False)
    with stages.stage("example searches", "text queries against the index, top 5 each"):
        for query in EXAMPLE_QUERIES:
            print_hits(query, index.search_text(query, k=5))
    with stages.stage("zero-shot evaluation on the test split", "meanP over 12 frames, both directions; the "
                      "test videos' features come from the index, the time-reversed twins are extracted now"):
        model = build_model(spec, device)
        lab_report = evaluate_lab(model, out, index.dir / "cache", workers=args.workers)  # reuses the index's features
        rows = report_rows("zero-shot CLIP (meanP)", lab_report) + [chance_row(lab_report)]
        table = lab_table(rows, f"lab test split ({lab_report.results['all'].num_videos} videos)")
        console.print(table, markup=False)
        (out / "results").mkdir(exist_ok=True)
        atomic_write(out / "results" / "zero_shot.json", json.dumps(lab_report.to_dict(), indent=2))
        atomic_write(out / "results" / "zero_shot.md", table)
        console.print(f"twin accuracy (ties count half): {lab_report.twin_half:.1f} %; strict: "
                      f"{lab_report.twin_strict:.1f} %")
    timings = {"scale": args.scale, "cpu_threads": cores, "cpu_capability": _cpu_capability(),
               "stages": [{"stage": t, "detail": d, "seconds": round(s, 1)} for t, d, s in stages.done],
               "total_seconds": round(stages.seconds, 1),
               "load_average": {"start": round(load, 2), "end": round(os.getloadavg()[0], 2)}}
    atomic_write(out / "results" / "timings.json", json.dumps(timings, indent=2))
    console.print(f"stage times (1-minute load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end):",
                  markup=False, highlight=False, soft_wrap=True)
    console.print(stages.summary(), markup=False, highlight=False, soft_wrap=True)
    console.print(f"results in {_shown(out / 'results')}", markup=False)
    console.print(next_steps(out, Path(test.videos[0].path)), markup=False, highlight=False, soft_wrap=True)
    return 0
