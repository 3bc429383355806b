import json

import numpy as np
import yaml

from tests.pseudo.conftest import TINY_VOCAB
from vitr.cli.main import main
from vitr.model.factory import ModelSpec, build_model
from vitr.pseudo.label import PseudoLabel
from vitr.video.writer import write_video


def _pseudo_labelled_folder(tmp_path):
    folder = tmp_path / "videos"
    rng = np.random.default_rng(0)
    for name in ("a.mp4", "b.mp4", "sub/c.mp4", "d.mp4"):
        write_video(folder / name, rng.integers(0, 255, (8, 64, 64, 3), dtype=np.uint8))
    vocab = tmp_path / "vocab.json"
    vocab.write_text(json.dumps(TINY_VOCAB))
    out = tmp_path / "pseudo.jsonl"
    args = [
        "pseudo-label",
        str(folder),
        "--out",
        str(out),
        "--model",
        "vitr-lab-tiny",
        "--random-init",
        "--vocab",
        str(vocab),
    ]
    assert main([*args, "--tag-frames", "4", "--workers", "0"]) == 0
    return folder, out


def test_train_pseudo_trains_on_a_labelled_folder_and_leaves_out_a_video_that_is_gone(tmp_path, capsys):
    folder, pseudo = _pseudo_labelled_folder(tmp_path)
    gone = PseudoLabel("gone.mp4", texts=[{"text": "a red circle", "form": "sentence", "score": 0.2}])
    with pseudo.open("a") as f:
        f.write(gone.to_json() + "\n")
    run = tmp_path / "run"
    config = tmp_path / "ps_scl.yaml"
    model = {"backbone": "vitr-lab-tiny", "head": "tdb", "num_frames": 4, "random_init": True}
    settings = {"epochs": 2, "batch_size": 2, "progress": False, "tensorboard": False, "output_dir": str(run)}
    config.write_text(yaml.safe_dump({"model": model, **settings}))
    args = ["train-pseudo", str(config), "--pseudo", str(pseudo), "--videos", str(folder), "--workers", "0"]
    args += ["--cache", str(tmp_path / "cache"), "--forms", "sentence,temporal", "--t-k", "1"]
    args += ["--stratify", "--anchor", "3", "--anchor-kind", "still"]  # the lab's recipe
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "trained 4 steps" in printed  # 4 readable videos, batch 2, 2 epochs: gone.mp4 left out, nothing else
    (step,) = (run / "checkpoints").glob("step_*")
    assert str(step) in printed and json.loads((step / "trainer.json").read_text())["step"] == 4
    spec = ModelSpec("vitr-lab-tiny", head="tdb", num_frames=4, checkpoint=str(step / "model.safetensors"))
    trained = build_model(spec)  # loads as any trained model does (vitr eval / index --checkpoint)
    assert all(p.isfinite().all() for p in trained.head.parameters())


def test_train_pseudo_refuses_unknown_forms_and_half_a_labelled_split(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"model": {"backbone": "vitr-lab-tiny"}}))
    base = ["train-pseudo", str(config), "--pseudo", str(tmp_path / "p.jsonl"), "--videos", str(tmp_path)]
    assert main([*base, "--forms", "sentence,poem"]) == 2
    assert "vitr train-pseudo: error: unknown forms ['poem']" in capsys.readouterr().err
    assert main([*base, "--labelled-dataset", "msrvtt"]) == 2
    assert "vitr train-pseudo: error: --labelled-dataset and --labelled-root go together" in capsys.readouterr().err
    assert main(base) == 2
    assert f"vitr train-pseudo: error: --pseudo {tmp_path / 'p.jsonl'} does not exist" in capsys.readouterr().err
