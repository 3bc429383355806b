"""Plain tables for results, printed with rich.

On a terminal rich fits tables to its width; written to a file or a pipe (a log, `| less`) a table is never wrapped
mid-row: the console is as wide as the widest line needs, and plain text is not re-wrapped."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.rule import Rule
from rich.table import Table

if TYPE_CHECKING:
    from vitr.index.video_index import Hit

UNWRAPPED_WIDTH = 10_000  # wider than any row; tables take the width their cells need, not this
RULE_WIDTH = 100  # section rules in a log file stay this wide


class _Console(Console):
    def rule(self, title: str = "", **kwargs: Any) -> None:
        """A rule as wide as the terminal, or RULE_WIDTH characters where there is no terminal."""
        if self.is_terminal:
            super().rule(title, **kwargs)
        else:
            self.print(Rule(title, **kwargs), width=RULE_WIDTH)


def make_console(file=None) -> Console:  # noqa: ANN001
    """A console for `file` (default stdout): terminal width on a terminal, no wrapping anywhere else."""
    stream = file or sys.stdout
    if stream.isatty():
        return _Console(file=file)
    return _Console(file=file, width=UNWRAPPED_WIDTH, soft_wrap=True)


console = make_console()


def print_hits(query: str, hits: list[Hit]) -> None:
    table = Table(title=f"results for {query!r}")
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    table.add_column("video")
    table.add_column("moment")
    for i, h in enumerate(hits, 1):
        moment = "" if h.start is None else f"{h.start:.1f}-{h.end:.1f} s"
        table.add_row(str(i), f"{h.score:.3f}", h.path, moment)
    console.print(table)
