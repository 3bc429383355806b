"""`vitr serve`: the search API and web page over an index, for a browser or other programs."""

from __future__ import annotations

import argparse
from pathlib import Path

from vitr.cli.choices import HEADER_TIMEOUT_S, WEAK_QUANTILE
from vitr.cli.validate import add_device_arg, require_index
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
    add_device_arg(p, "embeds queries")
    p.add_argument("--max-upload-mb", type=float, default=200.0, help="largest query clip accepted")
    p.add_argument(
        "--allowed-hosts",
        nargs="+",
        metavar="HOST",
        help="Host header values to answer (against DNS rebinding); default: the --host address and localhost "
        "(with a wildcard --host, also this machine's names); '*' answers any",
    )
    p.add_argument(
        "--header-timeout", type=float, default=HEADER_TIMEOUT_S, help="seconds a client has to send request headers"
    )
    p.add_argument(
        "--body-timeout",
        type=float,
        default=300.0,
        help="seconds a client has to send a request body (an upload); it must also never stall for 30 s",
    )
    p.add_argument(
        "--weak-quantile",
        type=float,
        default=WEAK_QUANTILE,
        help="a text hit is marked weak below this quantile of the best scores unrelated queries reach in the index",
    )
    p.add_argument("--max-clip-exports", type=int, default=2,
                   help="clips cut at once for /api/videos/{id}/clip (each re-encodes on the CPU); more get a 503")
    p.add_argument("--max-clip-seconds", type=float, default=600.0, help="longest moment a client may export as a clip")
    p.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    if args.max_upload_mb <= 0:
        raise ConfigError(f"--max-upload-mb must be positive, got {args.max_upload_mb}")
    if args.max_clip_exports < 1:
        raise ConfigError(f"--max-clip-exports must be at least 1, got {args.max_clip_exports}")
    for name in ("header_timeout", "body_timeout", "max_clip_seconds"):
        if not getattr(args, name) > 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if not 0 < args.weak_quantile < 1:
        raise ConfigError(f"--weak-quantile must lie strictly between 0 and 1, got {args.weak_quantile}")
    for root in args.root:
        if not root.is_dir():
            raise ConfigError(f"--root {root} is not a folder")
    require_index(args.index)
    import uvicorn

    from vitr.index.video_index import VideoIndex
    from vitr.precision import resolve_device
    from vitr.serve.app import ServeSettings, create_app
    from vitr.serve.server import default_allowed_hosts, server_config

    hosts = tuple(args.allowed_hosts) if args.allowed_hosts else default_allowed_hosts(args.host)
    index = VideoIndex(args.index, device=str(resolve_device(args.device)))
    settings = ServeSettings(
        max_upload_bytes=int(args.max_upload_mb * 2**20),
        allowed_hosts=None if "*" in hosts else hosts,
        body_timeout_s=args.body_timeout,
        weak_quantile=args.weak_quantile,
        max_clip_s=args.max_clip_seconds,
        max_clip_exports=args.max_clip_exports,
    )
    app = create_app(index, roots=args.root, settings=settings)
    index.embed_texts(["warm up"])  # load the model before the first request, not during it
    app.state.weak_matches.threshold()  # and calibrate weak matches (cached in the index when it is writable)
    print(f"vitr serve: answering Host {', '.join(hosts)} (change with --allowed-hosts)")
    uvicorn.Server(server_config(app, args.host, args.port, header_timeout_s=args.header_timeout)).run()
    return 0
