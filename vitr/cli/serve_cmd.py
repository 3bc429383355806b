"""`vitr serve`: the search API and web page over an index, for a browser or other programs."""

from __future__ import annotations

import argparse
from pathlib import Path

from vitr.cli.validate import require_index
from vitr.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve the search API and web page over an index")
    p.add_argument("--index", type=Path, default=Path("vitr-index"), help="index directory made by `vitr index`")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 exposes it to the network)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--root",
        type=Path,
        action="append",
        default=[],
        help="folder videos may be served from (repeatable; default: the folders that were indexed)",
    )
    p.add_argument("--device", default="cpu", help="device for embedding queries, e.g. cuda")
    p.add_argument("--max-upload-mb", type=float, default=200.0, help="largest query clip accepted")
    p.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    if args.max_upload_mb <= 0:
        raise ConfigError(f"--max-upload-mb must be positive, got {args.max_upload_mb}")
    for root in args.root:
        if not root.is_dir():
            raise ConfigError(f"--root {root} is not a folder")
    require_index(args.index)
    import uvicorn

    from vitr.index.video_index import VideoIndex
    from vitr.serve.app import ServeSettings, create_app

    index = VideoIndex(args.index, device=args.device)
    settings = ServeSettings(max_upload_bytes=int(args.max_upload_mb * 2**20))
    app = create_app(index, roots=args.root, settings=settings)
    index.embed_texts(["warm up"])  # load the model before the first request, not during it
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0
