"""`vitr index` and `vitr search`: make a folder searchable, then query it by text or by video."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vitr.cli.model_args import add_model_args, model_spec_from_args
from vitr.cli.tables import print_hits
from vitr.index.indexer import search_by_video, update_index
from vitr.index.video_index import VideoIndex


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("index", help="index a folder of videos (incremental and resumable)")
    p.add_argument("folder", type=Path)
    p.add_argument("--index", type=Path, default=Path("vitr-index"), help="index directory (created if missing)")
    p.add_argument("--store", default="flat", choices=["flat", "hnsw", "ivf"],
                   help="FAISS structure: exact (flat) or approximate for large collections")
    p.add_argument("--workers", type=int, default=2, help="decoding threads")
    p.add_argument("--batch-size", type=int, default=16)
    add_model_args(p)
    p.set_defaults(func=run_index)

    s = sub.add_parser("search", help="search an index by text or by video")
    s.add_argument("query", nargs="?", help="text query")
    s.add_argument("--video", type=Path, help="query by a video file (indexed or not)")
    s.add_argument("--index", type=Path, default=Path("vitr-index"))
    s.add_argument("-k", type=int, default=10, help="number of results")
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.set_defaults(func=run_search)


def run_index(args: argparse.Namespace) -> int:
    index = VideoIndex.create(args.index, model_spec_from_args(args), store=args.store)
    report = update_index(index, args.folder, batch_size=args.batch_size, workers=args.workers)
    print(f"{args.index}: {report.summary()}; {index.stats()['videos']} videos indexed")
    for path, reason in sorted(report.failed.items()):
        print(f"  skipped {path}: {reason}")
    return 0


def run_search(args: argparse.Namespace) -> int:
    if (args.query is None) == (args.video is None):
        raise SystemExit("vitr search: give either a text query or --video PATH")
    index = VideoIndex(args.index)
    hits = search_by_video(index, args.video, k=args.k) if args.video else index.search_text(args.query, k=args.k)
    if args.json:
        print(json.dumps([h.to_dict() for h in hits], indent=2))
    else:
        print_hits(args.query or str(args.video), hits)
    return 0
