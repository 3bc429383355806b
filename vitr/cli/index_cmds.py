"""`vitr index`, `vitr index-merge` and `vitr search`: make a folder searchable, then query it."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from vitr.cli.choices import (
    ASR_ENGINES,
    DECODERS,
    DEFAULT_FUSION,
    FUSIONS,
    SEARCH_MODES,
    SEGMENT_KINDS,
    STORE_KINDS,
    WEAK_QUANTILE,
)
from vitr.cli.model_args import add_model_args, check_model_args, device_from_args, model_spec_from_args
from vitr.cli.validate import add_device_arg, int_range, require_dir, require_file, require_index
from vitr.errors import ConfigError

MAX_K = 1000  # results per search: a page of hits, not a dump of the index


def check_store(text: str) -> None:
    """The quick form of `vitr.index.store.parse_store_spec`, which runs again once FAISS is loaded."""
    kind, _, uri = text.partition(":")
    if kind not in STORE_KINDS or (uri and kind != "milvus"):
        raise ConfigError(f"unknown store {text!r}; choose one of {STORE_KINDS[:-1]}, 'milvus' or 'milvus:URI'")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("index", help="index a folder of videos (incremental and resumable)")
    p.add_argument("folder", type=Path)
    p.add_argument("--index", type=Path, default=Path("vitr-index"), help="index directory (created if missing)")
    p.add_argument("--store", default="flat",
                   help="flat (exact FAISS), hnsw or ivf (approximate FAISS), milvus (embedded Milvus Lite file) or "
                        "milvus:URI (a Milvus server)")
    p.add_argument("--window", type=float, default=None,
                   help="index overlapping windows of this many seconds, so results say where the match is")
    p.add_argument("--stride", type=float, default=None, help="seconds between window starts (default window/2)")
    p.add_argument("--segments", choices=SEGMENT_KINDS, default=None,
                   help="how videos are cut for moment search: windows (of --window seconds), shots (one segment "
                        "per detected shot) or shots+windows (shots longer than --window cut into windows); "
                        "default windows where --window is given; an existing index keeps its setting")
    p.add_argument("--shard", default=None,
                   help="RANK/WORLD: index only this rank's share into INDEX/shard-RANK-of-WORLD (under torchrun "
                        "the RANK and WORLD_SIZE variables are used); merge with `vitr index-merge`")
    p.add_argument("--workers", type=int_range(0, 256), default=None,
                   help="decoding threads, 0: decode in the main thread (default: the device's inference plan, 1 on "
                        "a CPU, up to 8 on a GPU)")
    p.add_argument("--batch-size", type=int_range(1, 4096), default=None,
                   help="videos per encoder batch (default: the device's inference plan, 8 on a CPU, 32 on a GPU)")
    p.add_argument("--decoder", choices=DECODERS, default="pyav",
                   help="video decoder: pyav (the reference, CPU) or torchcodec (on --device: NVDEC on a GPU; "
                        "needs vitr[torchcodec] and FFmpeg's shared libraries); its features are cached apart")
    p.add_argument("--text", default=None,
                   help="text sources to index beside the frames, comma separated: subtitles (sidecar .srt/.vtt "
                        "files such as movie.en.srt, and subtitle streams), ocr (on-screen text), asr (speech), or "
                        "none (default: the index's, subtitles for a new one); see docs/text-search.md for costs")
    p.add_argument("--ocr-interval", type=float, default=None,
                   help="seconds between the frames OCR reads (default: the index's, 1.0 for a new one)")
    p.add_argument("--asr-engine", choices=ASR_ENGINES, default=None,
                   help="speech engine: pocketsphinx (offline, bundled English model, weak) or faster-whisper "
                        "(needs the faster-whisper package and --asr-model; default: the index's, pocketsphinx)")
    p.add_argument("--asr-model", default=None,
                   help="faster-whisper model: a local model directory, or a name such as small to download")
    add_model_args(p, default_precision="auto")
    p.set_defaults(func=run_index)

    m = sub.add_parser("index-merge", help="merge shard indexes (from `vitr index --shard`) into one")
    m.add_argument("target", type=Path)
    m.add_argument("sources", type=Path, nargs="+")
    m.add_argument("--store", default=None,
                   help="the merged index's store, as for `vitr index` (default: the first shard's); milvus:URI "
                        "uploads the merged vectors to that server")
    m.set_defaults(func=run_merge)

    s = sub.add_parser("search", help="search an index by text or by video")
    s.add_argument("query", nargs="?", help="text query")
    s.add_argument("--video", type=Path, help="query by a video file (indexed or not)")
    s.add_argument("--index", type=Path, default=Path("vitr-index"))
    s.add_argument("-k", type=int_range(1, MAX_K), default=10, help=f"number of results (1 to {MAX_K})")
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.add_argument("--weak-quantile", type=float, default=WEAK_QUANTILE,
                   help="mark text hits weak below this quantile of the best scores that unrelated queries reach in "
                        "the index (see docs/deploy.md, 'Weak matches')")
    s.add_argument("--mode", choices=SEARCH_MODES, default=None,
                   help="visual (what is shown), text (what subtitles say) or hybrid (both, fused); default hybrid "
                        "where the index holds text, else visual")
    s.add_argument("--fusion", choices=FUSIONS, default=DEFAULT_FUSION,
                   help="how hybrid mode fuses the rankings: weighted (default: normalised scores, see "
                        "--text-weight) or rrf (reciprocal rank fusion, k=60)")
    s.add_argument("--text-weight", type=float, default=0.5,
                   help="weight of the text score in --fusion weighted, 0 to 1 (visual gets the rest)")
    s.add_argument("--refine", action="store_true",
                   help="sharpen each hit's moment: re-score the frames around it (4 a second) and tighten its start "
                        "and end to where the query matches (costs a decode and an encode per hit; docs/deploy.md)")
    add_device_arg(s, "embeds the query")
    s.set_defaults(func=run_search)


if TYPE_CHECKING:
    from vitr.index.text_tracks import TextOptions


def run_index(args: argparse.Namespace) -> int:
    check_store(args.store)  # a clear error before any work
    check_model_args(args)
    require_dir(args.folder, "video folder")
    from vitr.index.text_tracks import parse_sources

    try:
        text_sources = None if args.text is None else parse_sources(args.text)
    except ValueError as exc:
        raise ConfigError(f"--text: {exc}") from exc
    from vitr.index.indexer import make_windowing, update_index
    from vitr.index.shards import parse_shard, shard_dir, shard_from_env
    from vitr.index.video_index import VideoIndex, read_index_config
    from vitr.inference.plan import plan_inference

    shard = parse_shard(args.shard) if args.shard else shard_from_env()
    index_dir = shard_dir(args.index, shard) if shard else args.index
    windowing = None
    if args.window is not None or args.segments is not None or args.stride is not None:
        windowing = make_windowing(args.segments, args.window, args.stride)
    existing = read_index_config(index_dir)
    text_options = text_options_from_args(args, existing)
    if args.precision == "auto" and existing is not None:
        # an existing index keeps the precision it was built with (its vectors cannot be mixed with others)
        args.precision = existing["model"].get("precision", "fp32")
    device = device_from_args(args)
    spec = model_spec_from_args(args, device)
    plan = plan_inference(device, spec.precision)
    if args.decoder == "torchcodec":
        from vitr.video.decode import torchcodec_decoder

        torchcodec_decoder()  # a missing package or FFmpeg library is one clear error, not a failure per video
    index = VideoIndex.create(index_dir, spec, store=args.store, windowing=windowing, device=device)
    report = update_index(index, args.folder, batch_size=args.batch_size or plan.batch_videos,
                          workers=plan.decode_workers if args.workers is None else args.workers, shard=shard,
                          text_sources=text_sources, text_options=text_options,
                          decoder=args.decoder)
    print(f"{index_dir}: {report.summary()}; {index.stats()['videos']} videos indexed")
    for path, reason in sorted(report.failed.items()):
        print(f"  skipped {path}: {reason}")
    for path, reason in sorted(report.text_failed.items()):
        print(f"  subtitles not used from {path}: {reason}")
    for path, failed in sorted(report.source_failed.items()):
        for source, reason in failed.items():
            print(f"  {SOURCE_NAMES[source]} not read from {path}: {reason} (the next run retries it)")
    return 0


SOURCE_NAMES = {"ocr": "on-screen text", "asr": "speech"}


def text_options_from_args(args: argparse.Namespace, existing: dict | None) -> TextOptions | None:
    """The index's OCR and speech settings with `--ocr-interval/--asr-engine/--asr-model` applied, checked before
    any work (None where none is given: the index keeps its own)."""
    from vitr.index.text_tracks import TextOptions

    given = {k: v for k, v in (("ocr_interval", args.ocr_interval), ("asr_engine", args.asr_engine),
                               ("asr_model", args.asr_model)) if v is not None}
    if not given:
        return None
    try:
        options = replace(TextOptions(**(existing or {}).get("text_options", {})), **given)
    except ValueError as exc:
        raise ConfigError(str(exc).replace("the OCR interval", "--ocr-interval")) from exc
    if options.asr_engine == "faster-whisper":
        check_faster_whisper(options.asr_model)
    return options


def check_faster_whisper(model: str | None) -> None:
    """faster-whisper is optional: say so before any work, rather than once for every video."""
    import importlib.util

    if importlib.util.find_spec("faster_whisper") is None:
        raise ConfigError("--asr-engine faster-whisper needs the faster-whisper package: pip install faster-whisper")
    if model is not None and ("/" in model or model.startswith(".")) and not Path(model).is_dir():
        raise ConfigError(f"--asr-model {model} is not a directory (give a faster-whisper model directory or name)")


def run_merge(args: argparse.Namespace) -> int:
    if args.store is not None:
        check_store(args.store)
    for source in args.sources:
        require_index(source)
    from vitr.index.shards import merge_indexes

    index = merge_indexes(args.target, args.sources, store=args.store)
    print(f"{args.target}: {index.stats()['videos']} videos after merging {len(args.sources)} shard indexes")
    return 0


def run_search(args: argparse.Namespace) -> int:
    if (args.query is None) == (args.video is None):
        raise ConfigError("give either a text query or --video PATH")
    if args.query is not None and not args.query.strip():
        raise ConfigError("the query is empty; give some words to search for")
    if not 0 <= args.text_weight <= 1:
        raise ConfigError(f"--text-weight must lie between 0 and 1, got {args.text_weight}")
    if args.video is not None and args.mode not in (None, "visual"):
        raise ConfigError("--mode text and hybrid search by words; a --video query is visual only")
    if not 0 < args.weak_quantile < 1:
        raise ConfigError(f"--weak-quantile must lie strictly between 0 and 1, got {args.weak_quantile}")
    if args.video is not None:
        require_file(args.video, "query video")
    require_index(args.index)
    from vitr.cli.tables import hits_json, print_hits
    from vitr.index.calibration import WeakMatches
    from vitr.index.hybrid import default_mode, search
    from vitr.index.indexer import search_by_video
    from vitr.index.refine import Refinement
    from vitr.index.video_index import VideoIndex
    from vitr.precision import resolve_device

    index = VideoIndex(args.index, device=str(resolve_device(args.device)))
    refine = Refinement() if args.refine else None
    if args.video:
        hits, mode = search_by_video(index, args.video, k=args.k, refine=refine), "visual"
    else:
        mode = args.mode or default_mode(index)
        hits = search(index, args.query, k=args.k, mode=mode, fusion=args.fusion, text_weight=args.text_weight,
                      refine=refine)
    # the weak-match threshold is calibrated on visual scores: it says nothing about text or fused ones
    weak_below = WeakMatches(index, args.weak_quantile).threshold() if mode == "visual" and not args.video else None
    if args.json:
        print(hits_json(hits, weak_below))
    else:
        print_hits(args.query or str(args.video), hits, weak_below)
    return 0
