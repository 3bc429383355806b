"""benchmarks/lab_teachtext.py end to end on a tiny lab, with the lab recipes shrunk to it: every table row comes
out, the annotation files it trains on are written, and `vitr train` run as the recipe's comment says trains the
student row's model weight for weight."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
import yaml

from vitr.backbones import load_backbone, save_backbone
from vitr.backbones.weights import read_state_dict
from vitr.cli.main import main as vitr_main
from vitr.data.readers import load_dataset
from vitr.lab.synth import LabConfig, generate_lab
from vitr.train.checkpoint import LATEST, MODEL_FILE, resolve_checkpoint

REPO = Path(__file__).resolve().parents[2]
TINY = {"epochs": 1, "batch_size": 8}  # 12 labelled videos, 60 captions: 7 steps a run


def _tiny_recipes(out: Path) -> tuple[Path, Path]:
    """configs/lab/teachtext.yaml and supervised.yaml at the tiny scale; the bag-of-words teacher only (MiniLM
    would load a sentence encoder for nothing a tiny lab can show)."""
    student = yaml.safe_load((REPO / "configs" / "lab" / "teachtext.yaml").read_text()) | TINY
    student["teachtext"]["teachers"] = [
        spec | {"epochs": 2} for spec in student["teachtext"]["teachers"] if spec["kind"] == "bow"
    ]
    teacher = yaml.safe_load((REPO / "configs" / "lab" / "supervised.yaml").read_text()) | TINY
    (out / "teachtext.yaml").write_text(yaml.safe_dump(student))
    (out / "supervised.yaml").write_text(yaml.safe_dump(teacher))
    return out / "teachtext.yaml", out / "supervised.yaml"


def _table_rows(printed: str) -> dict[str, list[str]]:
    return {cells[0]: cells[1:] for line in printed.splitlines() if line.startswith("| ") and "---" not in line
            for cells in [[c.strip() for c in line.strip("|").split("|")]]}


@pytest.fixture
def restore_threads():
    """The benchmark sets --threads 1 for the process, so `vitr train` after it sums over the same threads."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
@pytest.mark.usefixtures("restore_threads")
def test_the_teachtext_table_comes_out_of_the_recipes_and_vitr_train_reproduces_its_student(tmp_path, capsys):
    lab = tmp_path / "lab"
    generate_lab(lab, LabConfig(scale="tiny", n_pretrain=0, n_pool=0, workers=1), progress=False)
    save_backbone(load_backbone("vitr-lab-tiny", random_init=True), lab / "clip")
    student_recipe, teacher_recipe = _tiny_recipes(tmp_path)
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import lab_teachtext
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    run = tmp_path / "run"
    assert lab_teachtext.main(["--lab", str(lab), "--out", str(run), "--config", str(student_recipe),
                               "--teacher-config", str(teacher_recipe), "--train-videos", "12", "--seeds", "0",
                               "--threads", "1", "--no-doc"]) == 0
    rows = _table_rows(capsys.readouterr().out)

    for name in ("CLIP+seqTransf", "bag-of-words", "seqTransf", "seqTransf + TeachText (cosine)",
                 "seqTransf + TeachText (logits)", "clean split", "noisy split", "noisy split, captions removed"):
        assert len(rows[name]) == 7 and all(0 <= float(v) <= 100 for v in rows[name]), name
    for name in ("all teachers (mean)", "CLIP+seqTransf alone", "bag-of-words alone"):
        precision, recall, flagged = rows[name]
        assert 0 <= float(precision) <= 1 and 0 <= float(recall) <= 1 and int(flagged) >= 0
    assert rows["clean split"] == rows["seqTransf"]

    train = load_dataset("generic", run / "train.jsonl", "train")
    noisy = load_dataset("generic", run / "train_noisy.jsonl", "train")
    filtered = load_dataset("generic", run / "train_filtered.jsonl", "train")
    assert (len(train.videos), len(train.captions)) == (12, 60)
    assert sum(a.text != b.text for a, b in zip(train.captions, noisy.captions, strict=True)) == 12  # 20 %
    report = json.loads((run / "train_filtered.removed.json").read_text())
    assert len(filtered.captions) == 60 - report["removed"]
    assert json.loads((run / "report.json").read_text())["filter"]["all"]["noisy"] == 12

    # the student row of seed 0, as the recipe's comment runs it from the command line
    cli_run = tmp_path / "cli_student"
    assert vitr_main(["train", str(student_recipe), f"model.backbone={lab / 'clip'}", "teachtext=null", "seed=0",
                      f"output_dir={cli_run}", "progress=false", "tensorboard=false", "--dataset", "generic",
                      "--root", str(run / "train.jsonl"), "--split", "train", "--cache", str(run / "features"),
                      "--workers", "0"]) == 0
    ours = read_state_dict(resolve_checkpoint(run / "student_0" / "checkpoints", LATEST) / MODEL_FILE)
    theirs = read_state_dict(resolve_checkpoint(cli_run / "checkpoints", LATEST) / MODEL_FILE)
    assert ours.keys() == theirs.keys()
    differ = [k for k in ours if not torch.equal(ours[k], theirs[k])]
    assert not differ, differ[:5]
