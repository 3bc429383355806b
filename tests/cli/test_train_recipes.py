"""`vitr train RECIPE.yaml` runs every method from its recipe sections; `vitr filter-captions` cleans a split."""

import csv
import json
import logging

import numpy as np
import yaml

from vitr.cli.main import main
from vitr.data.readers import load_dataset
from vitr.video.writer import write_video

COLOURS = ["red", "blue", "green", "white"]
MODEL = {"backbone": "vitr-lab-tiny", "head": "meanP", "num_frames": 4, "random_init": True}
SETTINGS = {"epochs": 2, "batch_size": 4, "progress": False, "tensorboard": False, "lr": 1e-3, "backbone_lr": 1e-3}


def _labelled(tmp_path, broken: bool = False):
    """Four tiny videos with two captions each (generic CSV); optionally a fifth file that cannot be decoded."""
    folder = tmp_path / "videos"
    rng = np.random.default_rng(0)
    rows = []
    for i, colour in enumerate(COLOURS):
        write_video(folder / f"v{i}.mp4", rng.integers(0, 255, (8, 32, 32, 3), dtype=np.uint8))
        rows += [(f"videos/v{i}.mp4", f"a {colour} circle"), (f"videos/v{i}.mp4", f"something {colour} moves")]
    if broken:
        (folder / "broken.mp4").write_bytes(b"not a video at all")
        rows += [("videos/broken.mp4", "a broken clip"), ("videos/broken.mp4", "another broken clip")]
    ann = tmp_path / "train.csv"
    with ann.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["video", "caption"])
        writer.writerows(rows)
    return ann, folder


def _recipe(tmp_path, name, **sections):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"model": MODEL, **SETTINGS, "output_dir": str(tmp_path / name), **sections}))
    return path


TEACHTEXT = {"teachers": [{"kind": "bow", "embed_dim": 8, "epochs": 2}], "weight": 1.0}


def test_teachtext_recipe_trains_and_a_video_that_fails_to_decode_takes_its_rows(tmp_path, capsys, caplog):
    ann, _ = _labelled(tmp_path, broken=True)
    recipe = _recipe(tmp_path, "tt", teachtext=TEACHTEXT)
    args = ["train", str(recipe), "--dataset", "generic", "--root", str(ann), "--split", "train", "--workers", "0"]
    args += ["--cache", str(tmp_path / "cache")]
    with caplog.at_level(logging.WARNING, logger="vitr"):
        assert main(args) == 0
    assert "trained 4 steps" in capsys.readouterr().out  # 8 captions of the 4 readable videos, batch 4, 2 epochs
    lost = [r.getMessage() for r in caplog.records if "could not be decoded" in r.getMessage()]
    assert len(lost) == 1 and "with their 2 captions (and teacher rows)" in lost[0]
    assert (tmp_path / "tt" / "teacher_bank.safetensors").is_file()


def test_a_combined_recipe_trains_labelled_and_pseudo_pairs_with_teachtext(tmp_path, capsys):
    ann, folder = _labelled(tmp_path)
    pseudo = tmp_path / "pseudo.jsonl"
    texts = [{"text": f"a {c} circle", "form": "sentence", "score": 0.3} for c in COLOURS]
    pseudo.write_text("".join(json.dumps({"video": f"v{i}.mp4", "texts": [t]}) + "\n" for i, t in enumerate(texts)))
    ps_scl = {"pseudo_labels": str(pseudo), "videos": str(folder), "selection": {"rule": "topk", "tau": 0.5}}
    recipe = _recipe(tmp_path, "both", ps_scl=ps_scl, teachtext=TEACHTEXT)
    args = ["train", str(recipe), "--dataset", "generic", "--root", str(ann), "--split", "train", "--workers", "0"]
    assert main([*args, "--cache", str(tmp_path / "cache")]) == 0
    printed = capsys.readouterr().out
    assert "trained 4 steps" in printed  # 4 pseudo + 4 labelled videos, batch 4 videos, 2 epochs
    assert "pseudo pairs kept in the last step" in printed


def test_a_combined_recipe_refuses_a_video_id_both_labelled_and_pseudo_labelled_before_decoding(tmp_path, capsys):
    """The pool pseudo-labelled from the labelled folder itself: the teacher bank could not tell the two apart."""
    ann, _ = _labelled(tmp_path)
    pseudo = tmp_path / "pseudo.jsonl"
    rows = [{"video": f"videos/v{i}.mp4", "texts": [{"text": f"a {c} shape", "form": "sentence"}]}
            for i, c in enumerate(COLOURS[:2])]
    pseudo.write_text("".join(json.dumps(row) + "\n" for row in rows))
    ps_scl = {"pseudo_labels": str(pseudo), "videos": str(tmp_path)}  # ids relative to tmp_path: videos/v0.mp4
    recipe = _recipe(tmp_path, "clash", ps_scl=ps_scl, teachtext=TEACHTEXT)
    args = ["train", str(recipe), "--dataset", "generic", "--root", str(ann), "--split", "train", "--workers", "0"]
    assert main([*args, "--cache", str(tmp_path / "cache")]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith(f"vitr train: error: 2 videos are both pseudo-labelled ({pseudo}) and labelled")
    assert "['videos/v0.mp4', 'videos/v1.mp4']" in error
    assert f"{tmp_path / 'videos' / 'v0.mp4'} and {tmp_path / 'videos' / 'v0.mp4'}" in error
    assert not (tmp_path / "cache").exists()  # refused before any video was decoded


def test_ps_scl_recipe_alone_needs_no_dataset_and_a_dataset_recipe_needs_one(tmp_path, capsys):
    recipe = _recipe(tmp_path, "plain")
    assert main(["train", str(recipe)]) == 2
    assert "give --dataset and --root, or a recipe with a ps_scl section" in capsys.readouterr().err


def test_filter_captions_writes_the_cleaned_file_and_a_report(tmp_path, capsys):
    ann, _ = _labelled(tmp_path)
    recipe = _recipe(tmp_path, "filter", teachtext={**TEACHTEXT, "filter": {"rule": "fraction", "fraction": 0.25}})
    out = tmp_path / "clean" / "train.jsonl"
    args = ["filter-captions", str(recipe), "--dataset", "generic", "--root", str(ann), "--split", "train"]
    assert main([*args, "--out", str(out), "--workers", "0", "--cache", str(tmp_path / "cache")]) == 0
    report = json.loads((out.parent / "train.removed.json").read_text())
    removed = report["removed"]  # the 2 worst-ranked, less any that is its video's last caption
    assert 1 <= removed <= 2 and report["filter"]["rule"] == "fraction"
    assert f"removed {removed} of 8 captions (fraction rule)" in capsys.readouterr().out
    cleaned = load_dataset("generic", out, "train")
    assert len(cleaned.captions) == 8 - removed and len(cleaned.videos) == 4  # every video keeps a caption
    gone = {r["caption"] for r in report["removed_captions"]}
    assert len(gone) == removed and not gone & {c.text for c in cleaned.captions}
    assert all(r["rank"] >= 0 for r in report["removed_captions"])
    rows = list(csv.DictReader((out.parent / "train.removed.csv").open()))
    assert {r["caption"] for r in rows} == gone and all(r["removed"] == "True" for r in rows)
