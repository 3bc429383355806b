"""Evaluate any model on the lab exactly as on a benchmark, plus what only the lab can measure.

The test split is read with the MSR-VTT reader from the lab's MSR-VTT-format files (the 1k-A code path); the
caption tags (temporal/static, event) come from the lab's generic `test.csv`. Twin accuracy (docs/lab.md §2)
compares each temporal caption's score for its own video with the score for the time-reversed twin, in both
pairings (original caption: original vs twin; twin caption: twin vs original).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vitr.data.readers import load_dataset
from vitr.data.types import Caption, RetrievalDataset, VideoItem
from vitr.errors import ConfigError
from vitr.eval.report import results_table
from vitr.eval.retrieval import RetrievalResult, chance_level, twin_accuracy
from vitr.eval.significance import top1_hits
from vitr.inference.evaluate import embed_dataset, embed_texts, evaluate_embeddings
from vitr.model.retrieval import VideoTextModel

SUBSETS = ("temporal", "static")
TABLE_COLUMNS = (
    "model",
    "subset",
    "t2v R1",
    "t2v R5",
    "t2v R10",
    "t2v MdR",
    "v2t R1",
    "v2t R5",
    "v2t R10",
    "v2t MdR",
    "twin acc",
)


@dataclass
class LabReport:
    results: dict[str, RetrievalResult]  # "all", "temporal", "static"
    twin_half: float  # % of twin comparisons won, ties count half
    twin_strict: float  # % won strictly
    chance: dict[str, float] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    # per caption ("t2v") and per video ("v2t") of the whole split: the chance its match ranks first, so two models
    # can be compared query by query (`vitr.eval.significance.paired_delta`)
    hits: dict[str, np.ndarray] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "results": {k: r.to_dict() for k, r in self.results.items()},
            "twin_accuracy_half": self.twin_half,
            "twin_accuracy_strict": self.twin_strict,
            "chance": self.chance,
            "failures": self.failures,
        }


def _read_generic_tags(path: Path) -> dict[str, tuple[str, frozenset[str], str | None]]:
    """video file stem -> (caption, tags, original's stem) from the lab's generic CSVs."""
    out = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            original = Path(row["original"]).stem if row.get("original") else None
            out[Path(row["video"]).stem] = (row["caption"], frozenset(t for t in row["tags"].split(";") if t), original)
    return out


def load_lab_test(root: str | Path) -> RetrievalDataset:
    """The 1,000-video test split through the MSR-VTT reader, captions tagged from the lab's ground truth."""
    root = Path(root)
    dataset = load_dataset("msrvtt", root / "annotations", "test", video_dir=root / "videos", check_files=True)
    tags = _read_generic_tags(root / "test.csv")
    captions = [Caption(c.video_id, c.text, tags[c.video_id][1]) for c in dataset.captions]
    return RetrievalDataset("lab", "test", dataset.videos, captions, dataset.paragraph)


def load_lab_train(root: str | Path, videos: int | None = None) -> RetrievalDataset:
    """The labelled split through the MSR-VTT reader; `videos` keeps only its first videos, with their captions (a
    smaller lab table is trained on such a prefix, written out as an annotation file a recipe can name)."""
    root = Path(root)
    dataset = load_dataset("msrvtt", root / "annotations", "train9k", video_dir=root / "videos", check_files=True)
    if videos is None:
        return dataset
    if not 0 < videos <= len(dataset.videos):
        raise ConfigError(f"the lab at {root} has {len(dataset.videos)} labelled videos; cannot train on {videos}")
    kept = dataset.videos[:videos]
    wanted = {v.video_id for v in kept}
    captions = [c for c in dataset.captions if c.video_id in wanted]
    return RetrievalDataset(dataset.name, dataset.split, kept, captions, dataset.paragraph)


def load_lab_validation(root: str | Path, videos: int = 1000) -> RetrievalDataset:
    """A validation split for choosing settings: the last `videos` labelled training videos, one caption each.

    The test split must not choose settings (ps_scl.md §8); the labelled split is the only other captioned one. A
    video's first caption is its query, tagged like the test captions, so a validation row reads like a test row.
    Runs that train on the labelled split see these videos, so only runs that never read labels should be chosen here.
    """
    root = Path(root)
    dataset = load_dataset("msrvtt", root / "annotations", "train9k", video_dir=root / "videos", check_files=True)
    meta = json.loads((root / "annotations" / "lab_meta.json").read_text())
    tags = {s["sen_id"]: frozenset(s["tags"]) for s in meta["sentences"]}
    chosen = dataset.videos[-videos:]
    wanted = {v.video_id for v in chosen}
    first: dict[str, Caption] = {}
    for s in json.loads((root / "annotations" / "MSRVTT_data.json").read_text())["sentences"]:
        if s["video_id"] in wanted and s["video_id"] not in first:
            first[s["video_id"]] = Caption(s["video_id"], s["caption"], tags.get(s["sen_id"], frozenset()))
    return RetrievalDataset("lab", "val", chosen, [first[v.video_id] for v in chosen])


def load_lab_twins(root: str | Path) -> tuple[RetrievalDataset, dict[str, str]]:
    """The twins as a dataset (each with its own caption) and twin id -> original id."""
    root = Path(root)
    rows = _read_generic_tags(root / "test_twins.csv")
    videos = [VideoItem(stem, str(root / "videos_twins" / f"{stem}.mp4")) for stem in rows]
    captions = [Caption(stem, caption, tags) for stem, (caption, tags, _orig) in rows.items()]
    return RetrievalDataset("lab", "test_twins", videos, captions), {s: o for s, (_c, _t, o) in rows.items()}


def load_pretrain_pairs(root: str | Path) -> tuple[np.ndarray, list[str]]:
    """The lab's still images (N, S, S, 3) uint8 and their static captions."""
    root = Path(root) / "pretrain"
    shards: dict[str, np.ndarray] = {}
    images, captions = [], []
    with open(root / "captions.jsonl") as f:
        for line in f:
            rec = json.loads(line)
            if rec["shard"] not in shards:
                shards[rec["shard"]] = np.load(root / rec["shard"], mmap_mode="r")
            images.append(shards[rec["shard"]][rec["index"]])
            captions.append(rec["caption"])
    return np.stack(images), captions


def evaluate_lab(
    model: VideoTextModel,
    root: str | Path,
    cache_root: str | Path,
    num_frames: int = 12,
    workers: int = 2,
    progress: bool = True,
    split: str = "test",
) -> LabReport:
    """Both directions on all captions and per subset, twin accuracy, and the chance level.

    `split` "val" scores the validation split (`load_lab_validation`) instead; it has no twins (twin accuracy NaN).
    """
    if split not in ("test", "val"):
        raise ValueError(f"unknown lab split {split!r}: use 'test' or 'val'")
    dataset = load_lab_test(root) if split == "test" else load_lab_validation(root)
    test = embed_dataset(model, dataset, cache_root, num_frames, workers=workers, progress=progress)
    results = evaluate_embeddings(test, tags=SUBSETS)
    hits = top1_hits(test.text, test.video, test.dataset.caption_video_index())
    if split == "val":
        nan = float("nan")
        return LabReport(results, nan, nan, chance_level(len(dataset.videos)), dict(test.failures), hits)
    twins_ds, original_of = load_lab_twins(root)
    twins = embed_dataset(model, twins_ds, cache_root, num_frames, workers=workers, progress=progress)
    test_row = {v.video_id: i for i, v in enumerate(test.dataset.videos)}
    caption_of = {c.video_id: c.text for c in test.dataset.captions}
    texts, own, other = [], [], []
    for j, twin in enumerate(twins.dataset.videos):
        orig = original_of[twin.video_id]
        if orig not in test_row:
            continue
        i = test_row[orig]
        texts += [caption_of[orig], twins.dataset.captions[j].text]
        own += [test.video[i], twins.video[j]]
        other += [twins.video[j], test.video[i]]
    if texts:
        text_emb = embed_texts(model, texts)
        own_emb, other_emb = np.stack(own), np.stack(other)
        half = twin_accuracy(text_emb, own_emb, other_emb, ties="half")
        strict = twin_accuracy(text_emb, own_emb, other_emb, ties="strict")
    else:
        half = strict = float("nan")
    failures = {**test.failures, **twins.failures}
    return LabReport(results, half, strict, chance_level(len(test.dataset.videos)), failures, hits)


def report_rows(name: str, report: LabReport) -> list[dict]:
    rows = []
    for subset, r in report.results.items():
        rows.append(
            {
                "model": name,
                "subset": subset,
                **{f"t2v {k}": r.t2v[k] for k in ("R1", "R5", "R10", "MdR")},
                **{f"v2t {k}": r.v2t[k] for k in ("R1", "R5", "R10", "MdR")},
                "twin acc": report.twin_half if subset in ("all", "temporal") else float("nan"),
            }
        )
    return rows


def chance_row(report: LabReport) -> dict:
    c = report.chance
    return {
        "model": "chance",
        "subset": "all",
        **{f"{d} {k}": c[k] for d in ("t2v", "v2t") for k in ("R1", "R5", "R10", "MdR")},
        "twin acc": 50.0,
    }


def lab_table(rows: list[dict], title: str) -> str:
    return results_table(rows, TABLE_COLUMNS, "clip4clip", title)
