import csv
import json
import re
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest

from vitr.errors import ConfigError
from vitr.lab.captions import TEMPORAL_WORDS
from vitr.lab.synth import LabConfig, generate_lab, plan_videos

TINY = LabConfig(scale="tiny", seed=0, workers=1)
OPPOSITE = {
    "move_right": "move_left",
    "move_left": "move_right",
    "move_up": "move_down",
    "move_down": "move_up",
    "grow": "shrink",
    "shrink": "grow",
    "appear": "disappear",
    "disappear": "appear",
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    return generate_lab(root, TINY, progress=False)


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def _decode(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_tiny_preset_fills_counts_and_bad_configs_are_refused():
    assert (TINY.n_pretrain, TINY.n_train, TINY.n_pool, TINY.n_test) == (48, 12, 8, 10)
    assert LabConfig(scale="full").n_test == 1000
    assert LabConfig(scale="tiny", n_test=4).n_test == 4
    with pytest.raises(ConfigError, match="scale"):
        LabConfig(scale="huge")
    with pytest.raises(ConfigError, match="even"):
        LabConfig(scale="tiny", image_size=63)


def test_the_test_split_does_not_depend_on_the_other_splits_sizes():
    # why the quick lab's zero-shot table is measured on the full lab's 1,000 test scenes and captions
    def tests(config: LabConfig) -> list:
        return [(v.scene, v.captions) for v in plan_videos(config) if v.split in ("test", "test_twins")]

    assert tests(replace(TINY, n_train=0, n_pool=0, n_pretrain=5)) == tests(TINY)
    assert tests(replace(TINY, n_train=0, n_pool=0, seed=1)) != tests(TINY)


def test_splits_have_unique_ids_and_every_video_file_exists(lab):
    ids = [vid for split in ("train", "pool", "test", "test_twins") for vid in lab.split_ids[split]]
    assert len(ids) == len(set(ids))
    assert [len(lab.split_ids[s]) for s in ("train", "pool", "test")] == [12, 8, 10]
    for split, folder in (("train", lab.video_dir), ("pool", lab.video_dir), ("test", lab.video_dir)):
        assert all((folder / f"{vid}.mp4").is_file() for vid in lab.split_ids[split])
    assert all((lab.twin_dir / f"{vid}.mp4").is_file() for vid in lab.split_ids["test_twins"])
    frames = _decode(lab.video_dir / f"{lab.split_ids['train'][0]}.mp4")
    assert frames.shape == (24, 64, 64, 3)


def test_msrvtt_annotation_files_parse_and_agree(lab):
    data = _json(lab.annotation_dir / "MSRVTT_data.json")
    videos = {v["video_id"]: v for v in data["videos"]}
    assert set(videos) == set(lab.split_ids["train"]) | set(lab.split_ids["test"])
    assert all({"category", "url", "start time", "end time", "split", "id"} <= set(v) for v in videos.values())
    assert all(re.fullmatch(r"video\d+", vid) for vid in videos)
    sentences = data["sentences"]
    assert all(s["video_id"] in videos for s in sentences)
    assert len({s["sen_id"] for s in sentences}) == len(sentences) == 5 * len(videos)
    train = [row["video_id"] for row in _csv(lab.annotation_dir / "MSRVTT_train.9k.csv")]
    assert train == lab.split_ids["train"]
    test = _csv(lab.annotation_dir / "MSRVTT_JSFUSION_test.csv")
    assert list(test[0]) == ["key", "vid_key", "video_id", "sentence"]
    assert [row["video_id"] for row in test] == lab.split_ids["test"]
    captions_of = {}
    for s in sentences:
        captions_of.setdefault(s["video_id"], []).append(s["caption"])
    assert all(row["sentence"] in captions_of[row["video_id"]] for row in test)
    assert test[0]["key"] == "ret0" and test[0]["vid_key"] == "msr" + test[0]["video_id"][5:]


def test_pool_captions_are_kept_out_of_the_training_annotations(lab):
    pool = set(lab.split_ids["pool"])
    assert [row["video_id"] for row in _csv(lab.annotation_dir / "lab_pool.csv")] == lab.split_ids["pool"]
    meta = _json(lab.annotation_dir / "lab_meta.json")
    data = _json(lab.annotation_dir / "MSRVTT_data.json")
    assert not pool & set(meta["videos"]) and not pool & {s["video_id"] for s in data["sentences"]}
    truth = _json(lab.root / "pool_truth.json")
    assert set(truth) == pool and all(len(t["captions"]) == 5 for t in truth.values())


def test_test_split_is_half_temporal_with_tagged_queries_and_a_twin_per_temporal_video(lab):
    meta = _json(lab.annotation_dir / "lab_meta.json")
    queries = meta["test_queries"]
    temporal = [q for q in queries if "temporal" in q["tags"]]
    assert len(temporal) == 5 and all("static" in q["tags"] for q in queries if q not in temporal)
    assert all(any(t.startswith("event:") for t in q["tags"]) for q in queries)
    twins = {meta["videos"][q["video_id"]]["twin"] for q in temporal}
    assert twins == set(lab.split_ids["test_twins"])
    for q in temporal:
        original = meta["videos"][q["video_id"]]
        twin = meta["videos"][original["twin"]]
        assert twin["original"] == q["video_id"] and twin["split"] == "test_twins"
        events = original["event"].split("_then_")
        assert twin["event"].split("_then_") == [OPPOSITE[e] for e in reversed(events)]
        assert original["start"] == twin["end"] and original["end"] == twin["start"]


def test_twin_videos_are_the_reversed_frames_with_their_own_captions(lab):
    rows = _csv(lab.root / "test_twins.csv")
    assert len(rows) == len(lab.split_ids["test_twins"])
    queries = {f"videos/{r['video_id']}.mp4": r for r in _csv(lab.annotation_dir / "MSRVTT_JSFUSION_test.csv")}
    for row in rows:
        assert "temporal" in row["tags"].split(";")
        assert row["caption"] != queries[row["original"]]["sentence"]
        twin, original = _decode(lab.root / row["video"]), _decode(lab.root / row["original"])
        assert twin.shape == original.shape
        assert np.abs(twin.astype(int) - original[::-1].astype(int)).mean() < 2.0
        assert np.abs(twin.astype(int) - original.astype(int)).mean() > 2.0  # events make the order visible
    generic_test = _csv(lab.root / "test.csv")
    assert [r["video"] for r in generic_test] == list(queries)


def test_pretrain_stills_are_uint8_shards_with_static_captions(lab):
    images = np.load(lab.pretrain_dir / "images_000.npy")
    assert images.shape == (48, 64, 64, 3) and images.dtype == np.uint8
    records = [json.loads(line) for line in (lab.pretrain_dir / "captions.jsonl").read_text().splitlines()]
    assert len(records) == 48
    assert records[5]["image"] == "images_000.npy/5" and records[5]["index"] == 5
    for record in records:
        assert record["tags"][0] == "static"
        assert not set(re.findall(r"[a-z]+", record["caption"])) & TEMPORAL_WORDS
    empty = [r["index"] for r in records if "empty" in r["tags"]]
    for i in empty:  # an empty still is one flat background plus noise
        assert images[i].astype(float).std(axis=(0, 1)).max() < 10


def test_concepts_file_lists_the_vocabulary(lab):
    concepts = _json(lab.root / "concepts.json")
    assert {"colours", "shapes", "sizes", "columns", "rows", "backgrounds", "events"} <= set(concepts)


def test_same_seed_gives_identical_files_and_another_seed_differs(lab, tmp_path):
    again = generate_lab(tmp_path / "again", TINY, progress=False)
    assert _files(again.root) == _files(lab.root)
    other = generate_lab(tmp_path / "other", LabConfig(scale="tiny", seed=1, n_pretrain=4, workers=1), progress=False)
    first = _json(lab.annotation_dir / "MSRVTT_data.json")["sentences"][0]
    assert _json(other.annotation_dir / "MSRVTT_data.json")["sentences"][0] != first


def test_resume_writes_only_missing_files_and_refuses_another_config(tmp_path):
    config = LabConfig(scale="tiny", n_pretrain=10, shard_size=4, n_train=3, n_pool=2, n_test=4, workers=1)
    first = generate_lab(tmp_path, config, progress=False)
    assert first.written == 3 + 3 + 2 + 4 + 2 and first.skipped == 0  # 3 shards, videos, 2 twins
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.mp4")}
    removed_video = tmp_path / "videos" / "video1.mp4"
    removed_video.unlink()
    (tmp_path / "pretrain" / "images_001.npy").unlink()
    second = generate_lab(tmp_path, config, progress=False)
    assert (second.written, second.skipped) == (2, first.written - 2)
    assert removed_video.is_file() and (tmp_path / "pretrain" / "images_001.npy").is_file()
    assert all(p.stat().st_mtime_ns == t for p, t in before.items() if p != removed_video)
    with pytest.raises(ConfigError, match="different config"):
        generate_lab(tmp_path, LabConfig(scale="tiny", seed=9, workers=1), progress=False)


def test_parallel_writing_gives_the_same_files_as_one_process(tmp_path):
    config = LabConfig(scale="tiny", n_pretrain=6, shard_size=3, n_train=2, n_pool=1, n_test=2, workers=1)
    serial = generate_lab(tmp_path / "serial", config, progress=False)
    parallel = generate_lab(tmp_path / "parallel", LabConfig(**{**config.identity(), "workers": 2}), progress=False)
    assert _files(serial.root) == _files(parallel.root)


def test_validation_split_is_labelled_training_videos_with_one_tagged_caption_each(lab):
    from vitr.lab.experiment import load_lab_test, load_lab_validation

    val = load_lab_validation(lab.root, videos=5)
    train_ids = {r["video_id"] for r in _csv(lab.root / "annotations" / "MSRVTT_train.9k.csv")}
    test_ids = {v.video_id for v in load_lab_test(lab.root).videos}
    assert len(val.videos) == 5 and {v.video_id for v in val.videos} <= train_ids
    assert not {v.video_id for v in val.videos} & test_ids
    assert [c.video_id for c in val.captions] == [v.video_id for v in val.videos]
    first = {}
    for s in _json(lab.root / "annotations" / "MSRVTT_data.json")["sentences"]:
        first.setdefault(s["video_id"], s["caption"])
    assert [c.text for c in val.captions] == [first[v.video_id] for v in val.videos]
    assert all(("temporal" in c.tags) != ("static" in c.tags) for c in val.captions)
