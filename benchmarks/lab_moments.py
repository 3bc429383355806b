"""docs/results.md's "Moments" table: how well moment search finds where in a long video a described clip is.

    python benchmarks/lab_moments.py --lab lab

Long videos of lab test clips played back to back (`vitr synth --long-videos`, vitr.lab.long_videos), each clip's
caption a query with its ground-truth start and end. Each way of cutting videos into segments gets its own index of
the long videos (its indexing time and size measured); for every query the best segment of its own video is the
predicted moment (the localisation protocol of Charades-STA: which video is given, where in it is asked), scored by
its temporal IoU with the truth, with and without `vitr.index.refine`. The lab CLIP is LAB/clip (from
`vitr quickstart` or `vitr pretrain`; `--clip` names another); with `--make-lab` a missing lab and CLIP are made
here first (quick scale: minutes of generation, then the pretraining the quickstart runs).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from common import ensure_videos, machine_line, markdown_table, write_results_section  # noqa: E402

from vitr.index.indexer import update_index  # noqa: E402
from vitr.index.refine import Refinement, refine_hits, refine_moment  # noqa: E402
from vitr.index.video_index import VideoIndex  # noqa: E402
from vitr.lab.long_videos import LongVideoSettings, write_long_videos  # noqa: E402
from vitr.lab.synth import LabConfig  # noqa: E402
from vitr.model.factory import ModelSpec  # noqa: E402
from vitr.video.shots import MIN_SHOT, SAMPLE_FPS, THRESHOLD  # noqa: E402


@dataclass(frozen=True)
class Method:
    name: str
    segments: str
    window: float | None = None
    stride: float | None = None

    @property
    def key(self) -> str:
        return self.name.replace(" ", "").replace("/", "-")


def iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0


def size_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20


def locate_clip(args: argparse.Namespace) -> Path:
    """The lab CLIP to use; with --make-lab, the quick lab and its CLIP are made where missing."""
    clip = args.clip or args.lab / "clip"
    if (clip / "model.safetensors").exists():
        return clip
    if not args.make_lab:
        raise SystemExit(f"no lab CLIP at {clip}: run `vitr quickstart --out {args.lab}`, name one with --clip, or "
                         "pass --make-lab")
    from vitr.cli.lab_cmds import PRETRAIN_BATCH, PRETRAIN_NEGATIVES, PRETRAIN_STEPS, pretrain_lab_clip
    from vitr.lab.synth import generate_lab

    config = LabConfig(scale="quick", workers=args.workers)
    generate_lab(args.lab, config)
    pretrain_lab_clip(args.lab, clip, PRETRAIN_STEPS["quick"], PRETRAIN_BATCH["quick"],
                      negatives=PRETRAIN_NEGATIVES["quick"])
    return clip


def measure(method: Method, spec: ModelSpec, work: Path, videos: list[dict], queries: list[dict],
            refinement: Refinement, workers: int) -> list[dict]:
    """Index the long videos cut by `method`, then localise every query with and without refinement."""
    index_dir = work / f"index-{method.key}"
    shutil.rmtree(index_dir, ignore_errors=True)
    index = VideoIndex.create(index_dir, spec)
    index.embed_texts(["warm up"])  # the model is built before the clock starts
    start = time.perf_counter()
    update_index(index, work / "long_videos", segments=method.segments, window=method.window, stride=method.stride,
                 workers=workers, progress=False)
    indexing_s = time.perf_counter() - start
    index.store()  # the search structure is part of the index's size
    segments = index.stats()["segments"]
    mb = size_mb(index_dir)
    paths = {v["video"]: str((work / v["video"]).resolve()) for v in videos}
    coarse, refined, refine_s = [], [], []
    for query in queries:
        path = paths[query["video"]]
        vector = index.embed_texts([query["caption"]])[0]
        hit = index.search_vectors(vector, 1, 0, lambda h, path=path: h.path == path)[0][0]
        truth = (query["start"], query["end"])
        coarse.append(iou((hit.start, hit.end), truth))
        clock = time.perf_counter()
        sharp = refine_hits(index, [hit], vector, refinement)[0]
        refine_s.append(time.perf_counter() - clock)
        refined.append(iou((sharp.start, sharp.end), truth))
    index.close()
    common = {"segments": segments, "indexing_s": round(indexing_s, 1), "index_mb": round(mb, 2)}
    return [
        {"method": method.name, **common, **summary(coarse)},
        {"method": f"{method.name} + refinement", **common, **summary(refined),
         "refine_ms_per_hit": round(1000 * float(np.mean(refine_s)), 1)},
    ]


def real_size_cost(work: Path, refinement: Refinement, model: str, repeats: int = 3) -> dict:
    """Refinement's cost per hit with a real-size CLIP (random weights: the cost does not depend on them) on a
    640x360 25 fps video, for moments of 4 and 8 s (their neighbourhoods give 32 frames either way)."""
    video = ensure_videos(work / "real_size", 1, 60.0, 25.0, 640, 360)[0]
    index_dir = work / "index-real-size"
    shutil.rmtree(index_dir, ignore_errors=True)
    index = VideoIndex.create(index_dir, ModelSpec(backbone=model, head="meanP", random_init=True))
    query = index.embed_texts(["a red circle"])[0]
    costs = {}
    for length in (4.0, 8.0):
        refine_moment(index, video, 20.0, 20.0 + length, query, refinement, 60.0)  # warm up
        start = time.perf_counter()
        for _ in range(repeats):
            refine_moment(index, video, 20.0, 20.0 + length, query, refinement, 60.0)
        costs[f"{length:g}"] = round(1000 * (time.perf_counter() - start) / repeats)
    index.close()
    return {"model": model, "ms_per_hit": costs, "load_average": round(os.getloadavg()[0], 1)}


def summary(ious: list[float]) -> dict:
    values = np.array(ious)
    return {"r1_iou05": round(100 * float((values >= 0.5).mean()), 1),
            "r1_iou07": round(100 * float((values >= 0.7).mean()), 1),
            "mean_iou": round(float(values.mean()), 3)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lab", type=Path, default=REPO_ROOT / "lab")
    p.add_argument("--clip", type=Path, default=None, help="the lab CLIP's folder (default LAB/clip)")
    p.add_argument("--make-lab", action="store_true", help="make the quick lab and its CLIP if they are missing")
    p.add_argument("--work", type=Path, default=None, help="where long videos and indexes go (default LAB/moments)")
    p.add_argument("--videos", type=int, default=20, help="long videos")
    p.add_argument("--clips-per-video", type=int, default=6)
    p.add_argument("--window", type=float, default=4.0, help="fixed windows' length, seconds (stride: half)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--cost-model", default="ViT-B-32",
                   help="a real-size CLIP architecture whose refinement cost per hit is measured too ('' skips it)")
    p.add_argument("--reuse", action="store_true",
                   help="keep the table rows of WORK/results.json when it was measured with the same settings")
    p.add_argument("--no-doc", action="store_true")
    args = p.parse_args(argv)

    machine = machine_line()
    clip = locate_clip(args)
    pretrain = json.loads((clip / "pretrain.json").read_text())
    config = LabConfig(**{**pretrain["settings"]["lab"], "workers": args.workers})  # the lab the CLIP learnt from
    work = args.work or args.lab / "moments"
    settings = LongVideoSettings(n_videos=args.videos, clips_per_video=args.clips_per_video)
    write_long_videos(work, config, settings, progress=False)
    manifest = json.loads((work / "long_videos" / "moments.json").read_text())
    spec = ModelSpec(backbone=str(clip.resolve()), head="meanP", precision="fp32")
    refinement = Refinement()
    methods = [
        Method(f"windows {args.window:g} s / {args.window / 2:g} s", "windows", args.window, args.window / 2),
        Method("shots", "shots"),
    ]
    saved = work / "results.json"
    previous = json.loads(saved.read_text()) if args.reuse and saved.exists() else {}
    same = (previous.get("long_videos"), previous.get("window"), previous.get("refinement")) == (
        asdict(settings), args.window, asdict(refinement))
    rows = previous["rows"] if same else []
    for method in methods if not same else []:
        rows += measure(method, spec, work, manifest["videos"], manifest["queries"], refinement, args.workers)
        print(json.dumps(rows[-2:]), flush=True)
    if same:
        machine = previous["machine"]
    cost = previous.get("real_size_cost") if same else None
    if args.cost_model and (cost or {}).get("model") != args.cost_model:
        cost = real_size_cost(work, refinement, args.cost_model)
    result = {"rows": rows, "queries": len(manifest["queries"]), "long_videos": asdict(settings),
              "window": args.window, "refinement": asdict(refinement), "clip": pretrain["settings"],
              "real_size_cost": cost, "machine": machine}
    saved.write_text(json.dumps(result, indent=2))
    if not args.no_doc:
        write_results_section("## Moments", doc_body(result, manifest, settings))
    return 0


def doc_body(result: dict, manifest: dict, settings: LongVideoSettings) -> str:
    rows = result["rows"]
    by_name = {r["method"]: r for r in rows}
    windows = next(r for r in rows if r["method"].startswith("windows") and "refinement" not in r["method"])
    best = by_name["shots + refinement"]
    gap = best["r1_iou07"] - windows["r1_iou07"]
    verdict = (f"shots + refinement beats fixed windows on R@1 IoU 0.7 by {gap:.1f} points" if gap > 0 else
               f"shots + refinement does not beat fixed windows on R@1 IoU 0.7: it is {-gap:.1f} points behind")
    deltas = "; ".join(
        f"{base['method']} {by_name[base['method'] + ' + refinement']['r1_iou05'] - base['r1_iou05']:+.1f} / "
        f"{by_name[base['method'] + ' + refinement']['r1_iou07'] - base['r1_iou07']:+.1f}"
        for base in rows if "refinement" not in base["method"]
    )
    r = result["refinement"]
    clip = result["clip"]
    durations = [c["end"] - c["start"] for v in manifest["videos"] for c in v["clips"]]
    table = markdown_table(
        ["segments", "R@1 IoU 0.5 %", "R@1 IoU 0.7 %", "mean IoU", "segments indexed", "indexing s", "index MB",
         "refinement ms / hit"],
        [[x["method"], f"{x['r1_iou05']:.1f}", f"{x['r1_iou07']:.1f}", f"{x['mean_iou']:.3f}", x["segments"],
          f"{x['indexing_s']:.1f}", f"{x['index_mb']:.2f}", x.get("refine_ms_per_hit", "")] for x in rows],
    )
    return "\n".join([
        f"Moment localisation in {settings.n_videos} long videos of {settings.clips_per_video} lab test clips each "
        f"(clips of {min(durations):.1f} to {max(durations):.1f} s, mean {np.mean(durations):.1f} s, drawn "
        f"uniformly from {settings.min_seconds:g} to {settings.max_seconds:g} s; `vitr synth --long-videos`), "
        f"{result['queries']} queries: each clip's caption, except where two clips of a video share one. For every "
        "query the top segment of its own video is the predicted moment (which video is given, where in it is "
        "asked); R@1 IoU θ is the share of queries whose moment overlaps the truth with temporal IoU ≥ θ. The lab "
        f"CLIP is the {clip['lab']['scale']}-scale one of `vitr quickstart` (`{clip['arch']}`, {clip['steps']} steps "
        f"of batch {clip['batch_size']}), meanP over 12 frames per segment.",
        "",
        table,
        "",
        f"**{verdict}.** Shots are detected with vitr's defaults (`vitr.video.shots`: histogram distance "
        f"{THRESHOLD:g}, shots of at least {MIN_SHOT:g} s, {SAMPLE_FPS:g} samples a second), set on generated "
        "videos of coloured shapes, not on this lab; clips that share a background and look alike are cut by "
        "nothing, so a shot can span two clips. Refinement (`--refine`, `vitr.index.refine`) re-decodes the moment "
        f"and half its length again on either side (at least 1 s) at {r['fps']:g} frames a second (at most "
        f"{r['max_frames']}), scores sub-windows of {r['context']} frames and keeps the run around the peak within "
        f"{r['margin']:g} of the neighbourhood's score range below it, inside the shot where segments are shots "
        f"(points of R@1 IoU 0.5 / 0.7 it adds: {deltas}); its cost per hit is the last column "
        f"(decode and encode of 64 px lab frames with the lab CLIP){real_size(result['real_size_cost'])}. "
        "Refinement changes moments only, never the ranking or the scores. Indexing time includes shot "
        "detection; index size is the whole index folder (feature cache included).",
        "",
        result["machine"],
    ])


def real_size(cost: dict | None) -> str:
    if not cost:
        return ""
    ms = cost["ms_per_hit"]
    return (f"; with a {cost['model']} (224 px) on a 640x360 25 fps video it cost {ms['4']:,} ms per hit for a 4 s "
            f"moment and {ms['8']:,} ms for an 8 s one at load average {cost['load_average']} (on a quiet machine "
            "the 32 encodings alone take about 1.2 s: 38 ms a frame, docs/performance.md)")


if __name__ == "__main__":
    sys.exit(main())
