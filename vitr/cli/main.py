"""`vitr` command line: the only place that parses arguments; each subcommand lives in its own module."""

from __future__ import annotations

import argparse
import logging
import sys

from vitr.cli import convert_cmd, eval_cmd, index_cmds, lab_cmds, ps_scl_cmd, pseudo_cmd, serve_cmd, train_cmd
from vitr.errors import VitrError

COMMANDS = [lab_cmds, index_cmds, train_cmd, eval_cmd, serve_cmd, pseudo_cmd, ps_scl_cmd, convert_cmd]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vitr", description="Text-video retrieval on CLIP: index, search, train and evaluate.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    try:
        return int(args.func(args) or 0)
    except VitrError as e:
        print(f"vitr: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vitr: interrupted; committed work is kept and a re-run resumes it", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
