"""Plain tables for results, printed with rich."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from vitr.index.calibration import is_weak

if TYPE_CHECKING:
    from vitr.index.video_index import Hit

console = Console()


def print_hits(query: str, hits: list[Hit], weak_below: float | None = None) -> None:
    """The ranked hits; with this index's weak-match threshold, weak ones are marked and a weak best hit said."""
    table = Table(title=f"results for {query!r}")
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    table.add_column("video")
    table.add_column("moment")
    if weak_below is not None:
        table.add_column("match")
    for i, h in enumerate(hits, 1):
        moment = "" if h.start is None else f"{h.start:.1f}-{h.end:.1f} s"
        row = [str(i), f"{h.score:.3f}", h.path, moment]
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


def hits_json(hits: list[Hit], weak_below: float | None = None) -> str:
    """`vitr search --json`: one object per hit, with `weak` (null when the index gave no threshold)."""
    return json.dumps([h.to_dict() | {"weak": is_weak(h, weak_below)} for h in hits], indent=2)
