"""Plain tables for results, printed with rich.

On a terminal rich fits tables to its width; written to a file or a pipe (a log, `| less`) a table is never wrapped
mid-row: the console is as wide as the widest line needs, and plain text is not re-wrapped."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

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


def print_hits(query: str, hits: list[Hit], weak_below: float | None = None) -> None:
    """The ranked hits; with this index's weak-match threshold, weak ones are marked and a weak best hit said."""
    from vitr.index.calibration import is_weak

    table = Table(title=f"results for {query!r}")
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    table.add_column("video")
    table.add_column("moment")
    said = any(e.snippet is not None for h in hits for e in h.evidence)
    if said:
        table.add_column("sources")
        table.add_column("evidence")
    if weak_below is not None:
        table.add_column("match")
    for i, h in enumerate(hits, 1):
        moment = "" if h.start is None else f"{h.start:.1f}-{h.end:.1f} s"
        row: list[str | Text] = [str(i), f"{h.score:.3f}", h.path, moment]
        if said:
            row += [", ".join(h.sources), _snippet(h)]
        if weak_below is not None:
            row.append("weak" if is_weak(h, weak_below) else "")
        table.add_row(*row)
    console.print(table)
    if hits and is_weak(hits[0], weak_below):
        console.print(
            f"weak matches: even the best result scores below {weak_below:.3f}, which unrelated queries reach in "
            "this index; it likely holds nothing like this query",
            soft_wrap=True,  # one line, also in a pipe or a log file
        )


def _snippet(hit: Hit) -> Text:
    """The best text evidence, its matched words in bold (a Text, so brackets in subtitles stay literal)."""
    evidence = next((e for e in hit.evidence if e.snippet is not None), None)
    if evidence is None:
        return Text("")
    text = Text(f"{evidence.start:.1f} s  {evidence.snippet}")
    shift = len(text) - len(evidence.snippet)
    for start, end in evidence.highlights:
        text.stylize("bold", shift + start, shift + end)
    return text


def hits_json(hits: list[Hit], weak_below: float | None = None) -> str:
    """`vitr search --json`: one object per hit, with its sources and evidence (text spans: snippet, highlighted
    character ranges, start/end) and `weak` (null when the index gave no threshold)."""
    from vitr.index.calibration import is_weak

    return json.dumps([h.to_dict() | {"weak": is_weak(h, weak_below)} for h in hits], indent=2)
