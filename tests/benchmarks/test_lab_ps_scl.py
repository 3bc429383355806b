"""benchmarks/lab_ps_scl.py end to end on a tiny lab, and `vitr train` on its recipe training its SeLeCT row."""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file

from vitr.cli.main import main as vitr_main
from vitr.lab.synth import LabConfig, generate_lab

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "configs" / "lab" / "ps_scl.yaml"
TINY = ["batch_size=4", "epochs=1"]  # the tiny lab's 8 pool videos: 2 batches an epoch
ROWS = [
    "zero-shot (lab CLIP + meanP)",
    "pseudo pairs, plain contrastive (no selection)",
    "PS-SCL: pseudo pairs + SeLeCT (A, loss score)",
    "PS-SCL + WiSE-FT drift guard (alpha 0.5)",
    "plain contrastive + zero-shot still anchor (weight 3)",
    "PS-SCL + zero-shot still anchor (weight 3)",
    "ceiling: the same pool videos with their withheld true captions",
    "labelled split only (supervised)",
    "labelled + pseudo pairs with SeLeCT",
]


@pytest.fixture(scope="module")
def benchmark(tmp_path_factory):
    """The table's command on a tiny lab with a random lab CLIP: (its output folder, what it printed, the lab)."""
    root = tmp_path_factory.mktemp("ps_scl")
    lab = root / "lab"
    generate_lab(lab, LabConfig(scale="tiny", n_pretrain=0, workers=1), progress=False)
    from vitr.backbones import load_backbone, save_backbone

    save_backbone(load_backbone("vitr-lab-rn", random_init=True), lab / "clip")
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import lab_ps_scl
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    out = root / "out"
    args = ["--lab", str(lab), "--out", str(out), "--no-doc", "--threads", "1", "--seeds", "2", "--extra-seeds", "1",
            "--anchor-seeds", "1", "--anchor", "3", "--anchor-kind", "still", *TINY]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert lab_ps_scl.main(args) == 0
    return out, printed.getvalue(), lab


def _table_rows(printed: str, header: str) -> dict[str, list[str]]:
    """The markdown table starting at `header`: first cell -> the other cells."""
    rows = {}
    for line in printed[printed.index(header):].splitlines()[2:]:
        if not line.startswith("| "):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = cells[1:]
    return rows


def test_the_benchmark_writes_every_row_of_the_table_and_its_two_side_tables(benchmark):
    out, printed, _ = benchmark
    rows = _table_rows(printed, "| method | seeds |")
    assert list(rows) == ROWS
    assert [rows[name][0] for name in ROWS] == ["1", "2", "2", "1", "1", "1", "1", "1", "1"]  # --seeds 2 on headline
    assert rows["zero-shot (lab CLIP + meanP)"][7] == "+0.0 [+0.0, +0.0]"  # Δ t2v against itself
    assert all("±" in rows[name][1] and "[" in rows[name][8] for name in ROWS[1:3])  # 2 seeds: mean ± std; Δ v2t
    precision = _table_rows(printed, "| category | concepts |")
    assert list(precision)[:5] == ["objects", "sizes", "columns", "rows", "backgrounds"]
    assert precision["objects"][0] == "24" and precision["objects"][3] == "4.2"
    recognition = _table_rows(printed, "| attribute | classes |")
    classes = {"colour alone": "6", "shape alone": "4", "colour + shape": "24"}
    assert {k: v[0] for k, v in recognition.items()} == classes
    report = json.loads((out / "report.json").read_text())
    assert list(report["rows"]) == ROWS and report["overrides"]["plain"] == ["ps_scl.selection.rule=none"]
    assert report["recipe"]["model"]["head"] == "tdb" and report["recipe"]["epochs"] == 1  # recipe + command line


def test_the_pool_file_is_what_vitr_pseudo_label_writes_and_every_row_ran_from_the_recipe(benchmark):
    out, printed, lab = benchmark
    labels = [json.loads(line) for line in (out / "pool_pseudo.jsonl").read_text().splitlines()]
    pool = json.loads((lab / "pool_truth.json").read_text())
    assert sorted(label["video"] for label in labels) == sorted(f"{v}.mp4" for v in pool)  # relative to OUT/pool
    for key in ("plain", "select", "wise", "plain-anchor", "select-anchor", "ceiling", "labelled", "labelled+pseudo"):
        config = yaml.safe_load((out / "runs" / f"{key}-seed0" / "config.yaml").read_text())
        assert config["model"]["head"] == "tdb" and config["backbone_lr"] == 1e-5  # the recipe's
        assert config["ps_scl"]["selection"]["stratify"] is True
    plain = yaml.safe_load((out / "runs" / "plain-seed0" / "config.yaml").read_text())
    assert plain["ps_scl"]["selection"]["rule"] == "none"
    anchored = yaml.safe_load((out / "runs" / "select-anchor-seed0" / "config.yaml").read_text())
    assert (anchored["ps_scl"]["anchor_weight"], anchored["ps_scl"]["anchor"]) == (3.0, "still")
    assert "`vitr train configs/lab/ps_scl.yaml` (`vitr.train.pipeline.train`)" in printed


def test_vitr_train_on_the_recipe_is_the_benchmarks_selection_row(benchmark, tmp_path, capsys):
    out, _, lab = benchmark
    run = tmp_path / "cli"
    args = ["train", str(RECIPE), f"model.backbone={lab / 'clip'}", f"ps_scl.pseudo_labels={out / 'pool_pseudo.jsonl'}",
            f"ps_scl.videos={out / 'pool'}", *TINY, f"output_dir={run}", "progress=false", "tensorboard=false",
            "--cache", str(out / "features"), "--workers", "1"]
    assert vitr_main(args) == 0
    row = out / "runs" / "select-seed0"
    cli_config, row_config = (yaml.safe_load((d / "config.yaml").read_text()) for d in (run, row))
    for config in (cli_config, row_config):
        for key in ("output_dir", "resume", "progress", "tensorboard"):
            config.pop(key)
    assert cli_config == row_config
    trained = [load_file(d / "checkpoints" / (d / "checkpoints" / "latest").read_text().strip() / "model.safetensors")
               for d in (run, row)]
    assert trained[0].keys() == trained[1].keys()
    assert all(trained[0][k].equal(trained[1][k]) for k in trained[0])  # the same start, batches and steps
