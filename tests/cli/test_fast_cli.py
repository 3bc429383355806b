"""`vitr` parses and checks its arguments before importing torch, and every user error is one line with the
subcommand's usage and exit code 2."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.table import Table

from vitr.cli import choices
from vitr.cli.index_cmds import check_store
from vitr.cli.main import configure_logging, main
from vitr.cli.tables import make_console
from vitr.errors import ConfigError

HEAVY = ("torch", "numpy", "faiss", "open_clip", "fastapi", "vitr.model", "vitr.index")
PROBE = f"""
import json, sys
from vitr.cli.main import main
try:
    code = main(sys.argv[1:])
except SystemExit as e:
    code = e.code
print(json.dumps({{"code": code, "heavy": sorted(m for m in {HEAVY!r} if m in sys.modules)}}), file=sys.stderr)
"""


def run_probe(*argv: str, cwd: Path) -> tuple[int, list[str], str]:
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=cwd, env=os.environ.copy(),
                          capture_output=True, text=True, timeout=120)
    *printed, last = done.stderr.strip().splitlines()
    probe = json.loads(last)
    return probe["code"], probe["heavy"], "\n".join(printed)


@pytest.mark.parametrize(
    "argv", [["--help"], ["search", "--help"], ["index", "--help"], ["quickstart", "--help"], ["filter-captions", "-h"]]
)
def test_help_imports_no_heavy_library(argv, tmp_path):
    code, heavy, _ = run_probe(*argv, cwd=tmp_path)
    assert code == 0 and heavy == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["search", "a dog", "--index", "missing"], "vitr search: error: no index at missing"),
        (["search", "  ", "--index", "missing"], "vitr search: error: the query is empty"),
        (["search", "a dog", "-k", "0"], "vitr search: error: argument -k: must be between 1 and 1000, got 0"),
        (["index", "no-such-folder"], "vitr index: error: video folder no-such-folder does not exist"),
        (["index", ".", "--head-kwargs", "{bad"], "vitr index: error: --head-kwargs is not valid JSON"),
        (["eval", "--dataset", "msrvtt", "--root", ".", "--head", "foo"], "vitr eval: error: argument --head: invalid"),
        (["train", "nope.yaml", "--dataset", "msrvtt", "--root", "."], "vitr train: error: config nope.yaml does not"),
        (
            ["filter-captions", "nope.yaml", "--dataset", "msrvtt", "--root", ".", "--out", "clean.jsonl"],
            "vitr filter-captions: error: config nope.yaml does not",
        ),
    ],
)
def test_user_errors_are_answered_before_heavy_imports(argv, message, tmp_path):
    code, heavy, err = run_probe(*argv, cwd=tmp_path)
    assert code == 2 and heavy == []
    assert err.startswith(f"usage: vitr {argv[0]} ") and err.splitlines()[-1].startswith(message)
    assert "Traceback" not in err


def test_errors_show_the_subcommand_usage_and_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        main(["search", "--k", "0"])  # not an option of search: its usage, not the top-level one
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: vitr search ") and "vitr search: error: unrecognized arguments: --k" in err
    assert main(["search", ""]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: vitr search ") and err.count("error:") == 1 and "Traceback" not in err


@pytest.mark.parametrize("argv", [["-v", "convert", "missing.bin", "out"], ["convert", "missing.bin", "out", "-v"]])
def test_verbose_shows_the_traceback_of_a_user_error(argv, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root_level = logging.getLogger().level
    try:
        assert main(argv) == 2
    finally:
        configure_logging(False)
        logging.getLogger().setLevel(root_level)
    err = capsys.readouterr().err
    assert "Traceback" in err and "ConfigError" in err
    assert err.strip().splitlines()[-1] == "vitr convert: error: checkpoint missing.bin does not exist"


def test_filesystem_errors_are_one_line(tmp_path, capsys, monkeypatch):
    """A read-only or full target is the user's machine, not a vitr bug: the path, no traceback."""
    from vitr.cli import lab_cmds

    def refuse(args):  # noqa: ANN001, ANN202
        raise PermissionError(13, "Permission denied", str(tmp_path / "lab" / "x.partial"))

    monkeypatch.setattr(lab_cmds, "run_synth", refuse)
    assert main(["synth", str(tmp_path / "lab")]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == f"vitr synth: error: Permission denied: {tmp_path / 'lab' / 'x.partial'}"


def test_bugs_still_show_a_traceback(tmp_path, monkeypatch):
    from vitr.cli import lab_cmds

    def broken(args):  # noqa: ANN001, ANN202
        raise AttributeError("a bug")

    monkeypatch.setattr(lab_cmds, "run_synth", broken)
    with pytest.raises(AttributeError):
        main(["synth", str(tmp_path / "lab")])


def test_only_vitr_logs_info_unless_verbose():
    root_level = logging.getLogger().level
    try:
        configure_logging(False)
        assert logging.getLogger("vitr.index").isEnabledFor(logging.INFO)
        assert not logging.getLogger("open_clip").isEnabledFor(logging.INFO)
        assert not logging.getLogger().isEnabledFor(logging.INFO)  # open_clip logs on the root logger
        configure_logging(True)
        assert logging.getLogger().isEnabledFor(logging.INFO) and logging.getLogger("vitr").isEnabledFor(logging.DEBUG)
    finally:
        configure_logging(False)
        logging.getLogger().setLevel(root_level)


def test_choices_equal_their_sources():
    from typing import get_args

    from vitr.data.readers import DATASETS
    from vitr.eval.retrieval import PROTOCOLS
    from vitr.heads import available_heads
    from vitr.index.store import STORE_KINDS
    from vitr.inference.plan import PRECISION_CHOICES
    from vitr.lab.synth import SCALES
    from vitr.losses.selection import Rule, Score
    from vitr.pseudo.texts import CHANGED, FORMS
    from vitr.train.ps_scl import ANCHORS
    from vitr.video.loader import SAMPLERS

    assert choices.DATASETS == tuple(DATASETS)
    assert choices.PROTOCOLS == PROTOCOLS and choices.SAMPLERS == SAMPLERS
    assert choices.LAB_SCALES == tuple(sorted(SCALES))
    assert choices.PSEUDO_FORMS == FORMS and choices.CHANGED == CHANGED
    assert choices.SELECTION_RULES == get_args(Rule) and choices.SELECTION_SCORES == get_args(Score)
    assert choices.ANCHORS == ANCHORS and choices.HEADS == tuple(available_heads())
    assert choices.STORE_KINDS == STORE_KINDS and choices.PRECISIONS == PRECISION_CHOICES
    from vitr.index.asr import ENGINES
    from vitr.index.calibration import WEAK_QUANTILE
    from vitr.serve.server import HEADER_TIMEOUT_S

    assert choices.ASR_ENGINES == ENGINES

    assert choices.WEAK_QUANTILE == WEAK_QUANTILE and choices.HEADER_TIMEOUT_S == HEADER_TIMEOUT_S


@pytest.mark.parametrize("text", ["flat", "hnsw", "ivf", "milvus", "milvus:http://h:19530", "faiss", "flat:x", ""])
def test_the_quick_store_check_agrees_with_the_store(text):
    from vitr.index.store import parse_store_spec

    def accepted(check) -> bool:  # noqa: ANN001
        try:
            check(text)
        except ConfigError:
            return False
        return True

    assert accepted(check_store) == accepted(parse_store_spec)


def test_tables_do_not_wrap_when_written_to_a_file():
    out = io.StringIO()
    console = make_console(out)
    table = Table(title="results")
    for name in ("#", "score", "video", "moment"):
        table.add_column(name)
    long_path = "/videos/" + "a-rather-long-folder-name/" * 8 + "clip.mp4"
    table.add_row("1", "0.312", long_path, "1.0-3.0 s")
    console.print(table)
    console.print("| zero-shot CLIP (meanP) | " + " | ".join(["12.3"] * 30) + " |", markup=False)
    lines = out.getvalue().splitlines()
    assert any(long_path in line and "0.312" in line for line in lines)  # the whole row on one line
    assert any(line.count("12.3") == 30 for line in lines)
    console.rule("1/5 generate the lab")
    assert len(out.getvalue().splitlines()[-1]) <= 100  # section rules stay readable in a log
