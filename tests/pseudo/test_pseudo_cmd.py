import argparse
import json
import re

import numpy as np
import torch

from tests.pseudo.conftest import TINY_VOCAB
from vitr.cli import pseudo_cmd
from vitr.pseudo.label import read_pseudo_labels
from vitr.video.writer import write_video


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vitr")
    pseudo_cmd.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def _folder(tmp_path):
    folder = tmp_path / "videos"
    rng = np.random.default_rng(0)
    for name in ("a.mp4", "sub/b.mp4", "c.mp4"):
        write_video(folder / name, rng.integers(0, 255, (8, 64, 64, 3), dtype=np.uint8))
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video")
    return folder


def test_pseudo_label_writes_a_readable_file_and_skips_a_corrupt_video(tmp_path, capsys):
    folder = _folder(tmp_path)
    vocab_file = tmp_path / "vocab.json"
    vocab_file.write_text(json.dumps(TINY_VOCAB))
    out = tmp_path / "pseudo.jsonl"
    rc = _run(
        [
            "pseudo-label",
            str(folder),
            "--out",
            str(out),
            "--model",
            "vitr-lab-tiny",
            "--random-init",
            "--vocab",
            str(vocab_file),
            "--tag-frames",
            "4",
            "--workers",
            "0",
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "3 videos; 1 skipped" in printed and "broken.mp4" in printed
    labels = read_pseudo_labels(out)
    assert [label.video for label in labels] == ["a.mp4", "c.mp4", "sub/b.mp4"]
    for label in labels:
        assert set(label.concepts) == {"objects", "columns", "backgrounds"}
        assert label.concepts["objects"][0]["concept"] in ("red circle", "blue square", "green triangle")
        assert label.texts and all(t["text"] and t["form"] and -1.0 <= t["score"] <= 1.0 for t in label.texts)
    assert not list(tmp_path.glob(".pseudo.jsonl*"))  # no temporary left behind


def test_default_vocabulary_through_the_command(tmp_path):
    folder = tmp_path / "one"
    write_video(folder / "x.mp4", np.zeros((4, 32, 32, 3), dtype=np.uint8))
    out = tmp_path / "p.jsonl"
    assert (
        _run(
            [
                "pseudo-label",
                str(folder),
                "--out",
                str(out),
                "--model",
                "vitr-lab-tiny",
                "--random-init",
                "--tag-frames",
                "2",
                "--forms",
                "sentence,list",
                "--workers",
                "0",
            ]
        )
        == 0
    )
    (label,) = read_pseudo_labels(out)
    assert set(label.concepts) == {"actions", "objects", "scenes", "attributes"}
    assert {t["form"] for t in label.texts} <= {"sentence", "list"}
    assert len(label.concepts["objects"]) == 5


def test_paraphrases_through_the_command_use_synonyms_and_repeat_exactly(tmp_path):
    folder = _folder(tmp_path)
    vocab_file = tmp_path / "vocab.json"
    names = {"circle": ["ball"], "square": ["box"], "triangle": ["wedge"], "black": ["dark"], "white": ["pale"]}
    vocab_file.write_text(json.dumps({**TINY_VOCAB, "synonyms": names}))
    outs = [tmp_path / "one.jsonl", tmp_path / "two.jsonl"]
    for out in outs:
        torch.manual_seed(0)  # the same random tiny CLIP for both runs
        args = [
            "pseudo-label",
            str(folder),
            "--out",
            str(out),
            "--model",
            "vitr-lab-tiny",
            "--random-init",
            "--vocab",
            str(vocab_file),
        ]
        assert _run([*args, "--tag-frames", "4", "--workers", "0", "--paraphrases", "2", "--forms", "single"]) == 0
    assert outs[0].read_text() == outs[1].read_text()  # paraphrases drawn with the video's name as seed
    for label in read_pseudo_labels(outs[0]):
        texts = label.text_list()
        assert len(texts) == 2 and re.fullmatch(r"an? \w+ (circle|ball|square|box|triangle|wedge)", texts[1])
