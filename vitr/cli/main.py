"""`vitr` command line: the only place that parses arguments; each subcommand lives in its own module.

Parsing imports nothing heavy: the command modules import torch, FAISS and the model code inside their `run_*`
functions, so `vitr --help` and every argument or path error answer at once (benchmarks/cli_startup.py).
"""

from __future__ import annotations

import argparse
import errno
import logging
import sys
import traceback

from vitr.cli import (
    clip_cmd,
    convert_cmd,
    eval_cmd,
    filter_cmd,
    index_cmds,
    lab_cmds,
    ps_scl_cmd,
    pseudo_cmd,
    serve_cmd,
    train_cmd,
)
from vitr.errors import VitrError

COMMANDS = [
    lab_cmds, index_cmds, train_cmd, filter_cmd, eval_cmd, serve_cmd, pseudo_cmd, ps_scl_cmd, convert_cmd, clip_cmd
]
# Failures of the machine or the user's files rather than of vitr: a one-line error that names the path.
USER_ERRNOS = {errno.ENOENT, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EISDIR,
               errno.ENOTDIR}
VERBOSE_HELP = "debug logging, other libraries' messages and the traceback of an error"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vitr", description="Text-video retrieval on CLIP: index, search, train and evaluate.")
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    for command in sub.choices.values():
        # `vitr search ... -v` works too (SUPPRESS keeps a `vitr -v` given first)
        command.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP)
        # a user error prints this subcommand's usage and `vitr COMMAND: error:`
        command.set_defaults(command_parser=command)
    return parser


def configure_logging(verbose: bool) -> None:
    """vitr's own messages at INFO (DEBUG with -v); other libraries' INFO chatter (open_clip's tokenizer lines) only
    with -v."""
    logging.basicConfig(format="%(levelname)s %(message)s")
    logging.getLogger().setLevel(logging.INFO if verbose else logging.WARNING)
    logging.getLogger("vitr").setLevel(logging.DEBUG if verbose else logging.INFO)


def user_error(parser: argparse.ArgumentParser, message: str, verbose: bool) -> int:
    """Print what `parser.error` prints (usage, then `vitr COMMAND: error: message`) and return its exit code."""
    if verbose:
        traceback.print_exc()
    parser.print_usage(sys.stderr)
    print(f"{parser.prog}: error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    subparser: argparse.ArgumentParser = args.command_parser
    if extra:  # e.g. `vitr search --k 0`: the subcommand's usage helps, the top-level one does not
        subparser.error(f"unrecognized arguments: {' '.join(extra)}")
    configure_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except VitrError as e:
        return user_error(subparser, str(e), args.verbose)
    except OSError as e:
        if e.errno not in USER_ERRNOS:
            raise
        where = " -> ".join(str(f) for f in (e.filename, e.filename2) if f is not None)
        return user_error(subparser, f"{e.strerror or e}: {where}" if where else str(e), args.verbose)
    except KeyboardInterrupt:
        print("vitr: interrupted; committed work is kept and a re-run resumes it", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
