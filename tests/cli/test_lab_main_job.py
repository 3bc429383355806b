"""The README's main job, end to end at the tiny scale, and `vitr train`/`vitr eval` on the lab it writes."""

import contextlib
import csv
import io
import json
import re
from pathlib import Path

import pytest

from vitr.cli.main import build_parser, main
from vitr.index.video_index import VideoIndex
from vitr.lab.synth import SCALES


@pytest.fixture(scope="module")
def main_job(tmp_path_factory):
    """The tiny main job, run once: its lab folder and what it printed (stdout, as in a log file)."""
    out = tmp_path_factory.mktemp("quickstart") / "lab"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["quickstart", "--out", str(out), "--scale", "tiny", "--steps", "4", "--workers", "1"])
    assert code == 0
    return out, printed.getvalue()


@pytest.fixture(scope="module")
def lab(main_job):
    return main_job[0]


def test_the_main_job_defaults_to_the_quick_scale_and_full_stays_one_flag_away():
    assert build_parser().parse_args(["quickstart"]).scale == "quick"
    assert build_parser().parse_args(["quickstart", "--scale", "full"]).scale == "full"
    assert SCALES["full"] == {"n_pretrain": 20_000, "n_train": 3_000, "n_pool": 5_000, "n_test": 1_000}
    assert SCALES["quick"]["n_test"] == SCALES["full"]["n_test"]  # the same test split: the tables compare


def test_the_main_job_prints_each_stage_with_its_time_and_a_next_block(main_job):
    out, printed = main_job
    for number in range(1, 6):
        assert re.search(rf"^{number}/5 took (\d+ min )?\d+ s$", printed, re.M), f"no time for stage {number}"
    assert re.search(r"^  total +(\d+ min )?\d+ s$", printed, re.M)
    timings = json.loads((out / "results" / "timings.json").read_text())
    assert [s["stage"].split(" (")[0] for s in timings["stages"]] == [
        "generate the tiny lab", "pretrain the lab CLIP on still frames", "index the test split",
        "example searches", "zero-shot evaluation on the test split"]
    next_block = printed[printed.index("next: "):].splitlines()
    commands = [line.split("#")[0].split() for line in next_block[1:] if line.strip()]
    index = str((out / "index").resolve())  # tmp is outside the working directory: absolute paths
    assert ["search", "--index", index, "-k", "5"] == [w for w in commands[0][1:] if w in
                                                       ("search", "--index", index, "-k", "5")]
    assert commands[1][1:3] == ["search", "--video"] and Path(commands[1][3]).is_file()
    assert commands[2][1:] == ["serve", "--index", index]
    assert commands[3][1] == "index" and "--index" in commands[3]
    assert all(Path(c[0]).name == "vitr" or c[0] == "vitr" for c in commands)
    index_line = f"the {SCALES['tiny']['n_test']} test videos (train and pool videos are not indexed) into {index}"
    assert index_line in printed.splitlines()  # a long line is never cut or wrapped, in a file as in a terminal


def test_the_index_holds_the_test_split_only(lab):
    with open(lab / "test.csv", newline="") as f:
        test = {str((lab / row["video"]).resolve()) for row in csv.DictReader(f)}
    index = VideoIndex(lab / "index")
    assert set(index.meta.videos()) == test and len(test) == SCALES["tiny"]["n_test"]
    hits = index.search_text("a red circle on the left", k=len(test) + 5)
    assert {h.path for h in hits} <= test


def test_quickstart_writes_the_zero_shot_table_and_an_index(lab, capsys):
    report = json.loads((lab / "results" / "zero_shot.json").read_text())
    assert set(report["results"]) == {"all", "temporal", "static"}
    assert report["results"]["all"]["num_videos"] == 10  # the tiny lab's test split, every video decoded
    assert 0.0 <= report["twin_accuracy_half"] <= 100.0 and report["chance"]["R1"] == 10.0
    table = (lab / "results" / "zero_shot.md").read_text()
    assert "protocol: `clip4clip`" in table and "| chance |" in table
    assert (lab / "clip" / "model.safetensors").is_file() and (lab / "index" / "index.json").is_file()


def test_pretraining_records_what_the_lab_clip_recognises_on_held_out_stills(lab):
    record = json.loads((lab / "clip" / "pretrain.json").read_text())
    assert record["settings"]["negatives"] == "swap" and record["settings"]["arch"] == "vitr-lab-rn"
    assert set(record["recognition"]) == {"colour", "shape", "size", "column", "row", "background"}
    assert record["recognition"]["shape"]["classes"] == 4 and record["recognition"]["shape"]["stills"] == 24


def test_quickstart_reuses_its_work_when_run_again(lab, capsys):
    assert main(["quickstart", "--out", str(lab), "--scale", "tiny", "--steps", "4", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "reusing the pretrained lab CLIP" in out
    assert "added 0" in out and "unchanged 10" in out  # nothing re-indexed: the 10 test videos


def test_search_and_train_then_eval_the_checkpoint(lab, tmp_path, capsys):
    assert main(["search", "a red circle", "--index", str(lab / "index"), "-k", "3", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert len(hits) == 3 and hits[0]["score"] >= hits[1]["score"] >= hits[2]["score"]

    run = tmp_path / "run"
    args = ["train", "configs/lab/supervised.yaml", f"model.backbone={lab / 'clip'}", "model.head=seqTransf",
            "epochs=1", "batch_size=8", f"output_dir={run}", "progress=false", "tensorboard=false",
            "--dataset", "msrvtt", "--root", str(lab / "annotations"), "--videos", str(lab / "videos"),
            "--split", "train9k", "--cache", str(tmp_path / "cache"), "--workers", "1"]
    assert main(args) == 0
    checkpoint = (run / "checkpoints" / "latest").read_text().strip()
    step_dir = run / "checkpoints" / checkpoint
    assert (step_dir / "model.safetensors").is_file()

    out_json = tmp_path / "eval.json"
    assert main(["eval", "--dataset", "msrvtt", "--root", str(lab / "annotations"), "--videos", str(lab / "videos"),
                 "--split", "test", "--model", str(lab / "clip"), "--head", "seqTransf",
                 "--checkpoint", str(step_dir / "model.safetensors"), "--cache", str(tmp_path / "cache"),
                 "--json-out", str(out_json)]) == 0
    result = json.loads(out_json.read_text())["results"]["all"]
    assert result["num_videos"] == 10 and 0 <= result["t2v"]["R1"] <= 100


def test_a_rerun_that_retrains_the_lab_clip_rebuilds_the_index(lab, capsys):
    # same model path, new weights: keeping the old vectors as "unchanged" would search with the wrong model
    assert main(["quickstart", "--out", str(lab), "--scale", "tiny", "--steps", "5", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "rebuilding the index" in out and "added 10" in out
