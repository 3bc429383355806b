"""What the per-hit timelines add to a search: reading each hit's segment vectors and scoring them.

A page of 24 hits reads every segment of 24 videos from the metadata store (SQLite) and takes one dot product
per segment; the cost grows with the videos' length in segments (1 s windows every 0.5 s: 120 a minute). The
index here is synthetic (random unit 512-d vectors, written as `vitr index` writes them), so no model is needed
(the query's own vector is the ranking's: a text query is encoded once). Writes the `timeline` section of
docs/performance.md.

    python benchmarks/timeline_cost.py
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from common import machine_line, markdown_table, write_doc_section

from vitr.index.timeline import MAX_POINTS, timeline
from vitr.index.video_index import VideoIndex
from vitr.model.factory import ModelSpec

HITS = 24  # the web page's page size
DIM = 512
REPEATS = 15


def _index(directory: Path, segments: int, spec: ModelSpec) -> VideoIndex:
    index = VideoIndex.create(directory, spec)
    rng = np.random.default_rng(segments)
    rows = []
    for v in range(HITS):
        vectors = rng.standard_normal((segments, DIM)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        windows = [(i * 0.5, i * 0.5 + 1.0, vectors[i]) for i in range(segments)]
        rows.append((str(directory / f"v{v}.mp4"), 1, 1, f"d{v}", segments * 0.5 + 0.5, windows))
    index.meta.commit_batch(rows)
    return index


def _page_ms(index: VideoIndex, query: np.ndarray) -> tuple[float, int]:
    """median ms to build the timelines of one page of hits, and the JSON bytes they add to the response"""
    ids = [r.id for r in index.meta.videos().values()]
    times, points = [], []
    for _ in range(REPEATS):
        start = time.perf_counter()
        points = [timeline(index, i, query) for i in ids]
        times.append(1000 * (time.perf_counter() - start))
    payload = json.dumps([[{"start": p.start, "end": p.end, "score": p.score} for p in ps] for ps in points])
    return statistics.median(times), len(payload)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--segments", default="8,120,1200,3600", help="segments per video to try")
    parser.add_argument("--no-doc", action="store_true")
    args = parser.parse_args()

    spec = ModelSpec(backbone="vitr-lab-tiny", head="meanP", num_frames=4, random_init=True)
    query = np.random.default_rng(0).standard_normal(DIM).astype(np.float32)
    query /= np.linalg.norm(query)
    rows = []
    for segments in (int(s) for s in args.segments.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            index = _index(Path(tmp) / "index", segments, spec)
            try:
                ms, size = _page_ms(index, query)
            finally:
                index.close()
        minutes = (segments * 0.5 + 0.5) / 60
        rows.append([segments, f"{minutes:.1f}", f"{ms:.1f}", f"{size / HITS / 1024:.1f}"])
        print(rows[-1], flush=True)
    table = markdown_table(
        ["segments per video", "video length (min, 1 s windows every 0.5 s)", f"timelines of {HITS} hits (ms)",
         "JSON per hit (KiB)"],
        rows,
    )
    print(table)
    if not args.no_doc:
        body = (
            f"{machine_line()}; median of {REPEATS} pages of {HITS} hits, each timeline pooled to at most "
            f"{MAX_POINTS} points.\n\n{table}\n"
        )
        write_doc_section("timeline", body)


if __name__ == "__main__":
    main()
