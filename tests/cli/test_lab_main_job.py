"""The README's main job, end to end at the tiny scale, and `vitr train`/`vitr eval` on the lab it writes."""

import json

import pytest

from vitr.cli.main import main


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    out = tmp_path_factory.mktemp("quickstart") / "lab"
    assert main(["quickstart", "--out", str(out), "--scale", "tiny", "--steps", "4", "--workers", "1"]) == 0
    return out


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
    assert "added 0" in out and "unchanged 30" in out  # nothing re-indexed


def test_search_and_train_then_eval_the_checkpoint(lab, tmp_path, capsys):
    assert main(["search", "a red circle", "--index", str(lab / "index"), "-k", "3", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert len(hits) == 3 and hits[0]["score"] >= hits[1]["score"] >= hits[2]["score"]

    run = tmp_path / "run"
    args = ["train", "configs/lab_meanp.yaml", f"model.backbone={lab / 'clip'}", "model.head=seqTransf",
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
