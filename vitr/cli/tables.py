"""Plain tables for results, printed with rich."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from vitr.index.video_index import Hit

console = Console()


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
