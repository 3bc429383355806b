"""Results as Markdown tables and JSON files: one decimal, and the protocol named with every table.

Numbers from different protocols (tie-expanded vs tie-averaged ranks, single- vs multi-caption) are not
comparable, so a table that does not say which protocol produced it invites wrong comparisons (clip2video.md §9).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vitr.files import atomic_write

COLUMN_LABELS = {"R1": "R@1", "R5": "R@5", "R10": "R@10", "MdR": "MdR", "MnR": "MnR", "n": "n"}


def format_cell(value: Any) -> str:
    """Floats with one decimal, integers as they are, missing values as a dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) or (hasattr(value, "dtype") and getattr(value.dtype, "kind", "") in "iu"):
        return str(int(value))
    if isinstance(value, float) or hasattr(value, "dtype"):
        return f"{float(value):.1f}"
    return str(value).replace("|", "\\|")


def results_table(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str], protocol: str, title: str | None = None
) -> str:
    """Markdown table of `rows` (dicts) restricted to `columns`, headed by the title and the protocol name."""
    if not protocol:
        raise ValueError("a results table must name its evaluation protocol")
    heading = f"**{title}** — protocol: `{protocol}`" if title else f"Protocol: `{protocol}`"
    header = "| " + " | ".join(COLUMN_LABELS.get(c, c) for c in columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(format_cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join([heading, "", header, rule, *body]) + "\n"


def _plain(value: Any) -> Any:
    """numpy scalars and arrays -> Python numbers and lists, so `json` can write them."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def write_json(path: str | Path, results: Any) -> Path:
    """Write results as indented JSON, via a temporary file so a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, json.dumps(_plain(results), indent=2, ensure_ascii=False) + "\n")
