"""docs/results.md's "Search what is said and shown": visual, text and hybrid search on the lab's three query sets.

    python benchmarks/lab_text_search.py --clip lab/clip --text subtitles,ocr,asr

Builds (or reuses) a text-track lab (`vitr synth --text-tracks`: test videos only, a share of them speaking one
phrase and showing another), indexes its test videos with the lab CLIP, visual vectors first, then each text source
on a copy of that index (so each source's cost and results are its own), and measures t2v R@1/R@5 and moment
recall (the top hit is the true video and its moment overlaps the truth span) for visual, text and hybrid search on
the visual, spoken and on-screen query sets. A source this vitr cannot index is printed as not run. Replaces the
section in docs/results.md unless --no-doc.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from common import machine_line, markdown_table, write_results_section  # noqa: E402

from vitr.index.hybrid import DEFAULT_FUSION, FUSIONS, search  # noqa: E402
from vitr.index.indexer import update_index  # noqa: E402
from vitr.index.text_tracks import TEXT_SOURCES  # noqa: E402
from vitr.index.video_index import VideoIndex  # noqa: E402
from vitr.lab.speech import QUERY_SETS, Query, read_query_set  # noqa: E402
from vitr.lab.synth import LabConfig, generate_lab  # noqa: E402
from vitr.model.factory import ModelSpec  # noqa: E402

SECTION = "## Search what is said and shown"


@dataclass
class Scores:
    r1: float
    r5: float
    moment_r1: float
    queries: int


def build_lab(root: Path, videos: int, share: float, workers: int) -> Path:
    """The text-track lab: `videos` test videos (the quick lab's first ones), no stills, no training videos."""
    config = LabConfig(scale="quick", n_pretrain=0, n_train=0, n_pool=0, n_test=videos, text_track_share=share,
                       workers=workers)
    generate_lab(root, config, progress=False)
    return root


def ensure_clip(clip: Path, workers: int) -> Path:
    """A pretrained lab CLIP at `clip`; pretrained there with the quick lab's settings when missing."""
    if (clip / "model.safetensors").exists():
        return clip
    from vitr.cli.lab_cmds import PRETRAIN_BATCH, PRETRAIN_NEGATIVES, PRETRAIN_STEPS, pretrain_lab_clip

    stills = clip.parent / "pretrain-lab"
    generate_lab(stills, LabConfig(scale="quick", n_train=0, n_pool=0, n_test=0, workers=workers), progress=False)
    pretrain_lab_clip(stills, clip, PRETRAIN_STEPS["quick"], PRETRAIN_BATCH["quick"],
                      negatives=PRETRAIN_NEGATIVES["quick"])
    return clip


def overlaps(start: float | None, end: float | None, truth: Query) -> bool:
    """A moment of None is the whole video."""
    return (start is None or start < truth.end) and (end is None or end > truth.start)


def evaluate(index: VideoIndex, lab: Path, queries: list[Query], mode: str, fusion: str) -> Scores:
    r1 = r5 = moment = 0
    for q in queries:
        truth = str((lab / q.video).resolve())
        hits = search(index, q.query, k=5, mode=mode, fusion=fusion)
        paths = [h.path for h in hits]
        r1 += bool(paths) and paths[0] == truth
        r5 += truth in paths
        moment += bool(hits) and paths[0] == truth and overlaps(hits[0].start, hits[0].end, q)
    n = max(1, len(queries))
    return Scores(100 * r1 / n, 100 * r5 / n, 100 * moment / n, len(queries))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=REPO_ROOT / "lab-text", help="lab, indexes (and a CLIP if needed)")
    p.add_argument("--clip", type=Path, default=None,
                   help="a pretrained lab CLIP (vitr quickstart's LAB/clip); default OUT/clip, pretrained if missing")
    p.add_argument("--videos", type=int, default=500, help="test videos in the lab")
    p.add_argument("--share", type=float, default=0.5, help="of them with speech, subtitles and on-screen text")
    p.add_argument("--text", default="subtitles,ocr,asr", help="text sources to measure, comma separated")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--no-doc", action="store_true")
    args = p.parse_args(argv)
    machine = machine_line()
    lab = build_lab(args.out / "lab", args.videos, args.share, args.workers)
    clip = ensure_clip((args.clip or args.out / "clip").resolve(), args.workers)
    sets = {name: read_query_set(lab, name) for name in QUERY_SETS}
    videos = [lab / q.video for q in sets["visual"]]
    minutes = sum(q.end - q.start for q in sets["visual"]) / 60  # the visual set spans each whole test video

    visual_dir = args.out / "index-visual"
    shutil.rmtree(visual_dir, ignore_errors=True)
    index = VideoIndex.create(visual_dir, ModelSpec(backbone=str(clip), head="meanP", precision="fp32"))
    start = time.perf_counter()
    update_index(index, lab / "videos", workers=args.workers, progress=False, only=videos, text_sources=())
    costs = [["visual (decode, CLIP, store)", len(videos), time.perf_counter() - start]]
    rows = [[name, "visual", "-", *_cells(evaluate(index, lab, sets[name], "visual", "rrf"))] for name in QUERY_SETS]

    wanted = [s.strip() for s in args.text.split(",") if s.strip()]
    runs = [[s] for s in wanted] + ([wanted] if len(wanted) > 1 else [])
    for sources in runs:
        label = "+".join(sources)
        missing = [s for s in sources if s not in TEXT_SOURCES]
        if missing:
            note = f"not run: {', '.join(missing)} not available in this vitr (it indexes {', '.join(TEXT_SOURCES)})"
            rows.append(["all", "text, hybrid", label, note, "", "", ""])
            if len(sources) == 1:
                costs.append([label, len(videos), note])
            continue
        copy = args.out / f"index-{label}"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(visual_dir, copy)
        index = VideoIndex(copy)
        start = time.perf_counter()
        report = update_index(index, lab / "videos", workers=args.workers, progress=False, only=videos,
                              text_sources=sources)
        if len(sources) == 1:
            costs.append([label, report.text_read, time.perf_counter() - start])
        for name in QUERY_SETS:
            rows.append([name, "text", label, *_cells(evaluate(index, lab, sets[name], "text", "rrf"))])
            for fusion in FUSIONS:
                rows.append([name, f"hybrid ({fusion})", label,
                             *_cells(evaluate(index, lab, sets[name], "hybrid", fusion))])

    rows.sort(key=lambda r: QUERY_SETS.index(r[0]) if r[0] in QUERY_SETS else len(QUERY_SETS))
    table = markdown_table(["query set", "mode", "text sources", "R@1 %", "R@5 %", "moment R@1 %", "queries"], rows)
    cost_table = markdown_table(
        ["indexing stage", "videos read", "seconds", "seconds per minute of video"],
        [[stage, n, s, s / minutes if isinstance(s, float) else ""] for stage, n, s in costs],
    )
    counts = {name: len(q) for name, q in sets.items()}
    summary = _summary(rows)
    body = "\n".join([
        f"The text-track lab: the quick lab's first {args.videos} test videos ({minutes:.1f} minutes of video), "
        f"{counts['spoken']} of them speaking one phrase (espeak-ng, with a sidecar .srt) and showing another "
        "(rendered into about half of the frames), in words the frames never depict (`vitr synth --text-tracks`, "
        f"docs/text-search.md). Query sets: visual (each video's first caption, {counts['visual']} queries), spoken "
        f"({counts['spoken']}) and on-screen ({counts['onscreen']}), each with its true video and span. Moment R@1: "
        "the top hit is the true video and its moment overlaps the truth span (a visual hit's moment is the whole "
        "3-second clip). Lab CLIP: zero-shot, meanP over 12 frames; text: FTS5 BM25 over the spans. Hybrid rows "
        f"give both fusions; {DEFAULT_FUSION} is the default (docs/text-search.md, \"Search modes and fusion\", "
        "says why).",
        "",
        table,
        "",
        summary,
        "",
        cost_table,
        "",
        f"Machine: {machine}.",
        "",
        f"Produced by `python benchmarks/lab_text_search.py --videos {args.videos} --share {args.share:g} "
        f"--text {args.text}`.",
    ])
    print(body)
    if not args.no_doc:
        write_results_section(SECTION, body)
    return 0


def _summary(rows: list[list[object]]) -> str:
    """One line per text-source run: R@1 of visual search -> hybrid search with the default fusion, per set."""
    visual = {r[0]: r[3] for r in rows if r[1] == "visual"}
    runs: dict[str, list[str]] = {}
    for r in rows:
        if r[1] == f"hybrid ({DEFAULT_FUSION})":
            runs.setdefault(str(r[2]), []).append(f"{r[0]} {visual[r[0]]} -> {r[3]}")
    return "\n".join(f"R@1 %, visual -> hybrid ({DEFAULT_FUSION}, the default) with {label}: {'; '.join(parts)}."
                     for label, parts in runs.items())


def _cells(scores: Scores) -> list[object]:
    return [round(scores.r1, 1), round(scores.r5, 1), round(scores.moment_r1, 1), scores.queries]


if __name__ == "__main__":
    sys.exit(main())
