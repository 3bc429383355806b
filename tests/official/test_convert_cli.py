"""End to end: a random official-layout checkpoint through `vitr convert`, `eval`, `index` and `search`."""

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.official.builders import write_official_checkpoint
from vitr.cli import convert_cmd, eval_cmd, index_cmds
from vitr.errors import CheckpointError
from vitr.video.writer import write_video

COLOURS = {"red": (230, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 230)}


def main(argv: list[str]) -> int:
    """The `vitr` commands this feature touches, parsed and run as the `vitr` entry point does."""
    parser = argparse.ArgumentParser(prog="vitr")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (convert_cmd, eval_cmd, index_cmds):
        module.register(sub)
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


def write_videos(folder: Path) -> list[Path]:
    """Three 2-second clips of a coloured square drifting right."""
    paths = []
    for name, colour in COLOURS.items():
        frames = np.full((16, 64, 64, 3), 20, dtype=np.uint8)
        for t in range(16):
            frames[t, 16:48, 2 * t : 2 * t + 28] = colour
        paths.append(write_video(folder / f"{name}.mp4", frames, fps=8))
    return paths


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("official_e2e")
    write_videos(root / "videos")
    csv = root / "test.csv"
    csv.write_text("video,caption\n" + "".join(f"videos/{c}.mp4,a {c} square moves right\n" for c in COLOURS))
    checkpoint = write_official_checkpoint(root / "pytorch_model.bin.2", "clip2video", center_k=7, layers=2)
    return {"root": root, "csv": csv, "checkpoint": checkpoint}


def run_eval(world: dict[str, Path], checkpoint: Path, name: str, *extra: str) -> dict:
    out = world["root"] / f"{name}.json"
    args = ["eval", "--dataset", "generic", "--root", str(world["csv"]), "--checkpoint", str(checkpoint)]
    args += ["--frames", "4", "--workers", "1", "--cache", str(world["root"] / "cache"), "--json-out", str(out)]
    assert main([*args, *extra]) == 0
    return json.loads(out.read_text())


def test_convert_then_eval_gives_the_same_results_as_the_original_file(world, capsys):
    converted = world["root"] / "converted"
    assert main(["convert", str(world["checkpoint"]), str(converted), "--frames", "4"]) == 0
    printed = capsys.readouterr().out
    assert (
        "clip2video checkpoint" in printed
        and '"center_k": 7' in printed
        and '"mask_tiling": "clip2video_repeat"' in printed
    )
    config = json.loads((converted / "config.json").read_text())
    assert config["model_spec"]["head"] == "clip2video" and (converted / "model.safetensors").is_file()

    from_dir = run_eval(world, converted, "from_dir")
    from_file = run_eval(world, world["checkpoint"], "from_file")
    assert from_dir["results"] == from_file["results"]
    assert from_dir["failures"] == {}
    metrics = from_dir["results"]["all"]
    assert json.dumps(metrics)  # a full result record, whatever its layout
    assert "R@1" in json.dumps(metrics) or "r1" in json.dumps(metrics).lower()


def test_eval_with_clip2videos_own_frame_sampler_and_caption_length(world):
    uniform = run_eval(world, world["checkpoint"], "uniform")
    c2v = run_eval(world, world["checkpoint"], "c2v", "--sampler", "c2v_jpeg5fps", "--feature-framerate", "2")
    assert (uniform["sampler"], c2v["sampler"]) == ("uniform", "c2v_jpeg5fps")
    assert uniform["max_words"] == c2v["max_words"] == 32  # the official protocol's caption length
    assert c2v["failures"] == {} and c2v["results"]["all"]


def test_index_and_search_with_the_converted_checkpoint(world, capsys):
    converted = world["root"] / "converted_for_index"
    assert main(["convert", str(world["checkpoint"]), str(converted)]) == 0
    index = world["root"] / "index"
    args = ["index", str(world["root"] / "videos"), "--index", str(index), "--checkpoint", str(converted)]
    assert main([*args, "--workers", "1", "--frames", "4"]) == 0
    capsys.readouterr()
    assert main(["search", "a red square", "--index", str(index), "-k", "5", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert sorted(Path(h["path"]).name for h in hits) == sorted(f"{c}.mp4" for c in COLOURS)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"garbage" * 100, r"bin\.0.*(not a PyTorch weights file|corrupt)"), (None, r"not an official .*conv1\.weight")],
)
def test_convert_reports_bad_files_clearly(tmp_path, content, message):
    source = tmp_path / "pytorch_model.bin.0"
    if content is None:
        torch.save({"conv1.weight": torch.zeros(4, 3, 3, 3), "fc.weight": torch.zeros(2, 4)}, source)
    else:
        source.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        main(["convert", str(source), str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()
