"""What the PS-SCL lab table measures besides retrieval, and the files its runs train on.

- `lab_vocabulary`: a vocabulary for the lab's concepts in the shipped vocabulary's JSON format, so
  `vitr pseudo-label POOL --vocab FILE` labels the lab's pool as it labels any folder of videos;
- `pseudo_precision`: how often the pseudo-texts' concepts and changes are true, against the generator's ground
  truth (`pool_truth.json`), which training never reads;
- `attribute_recognition`: what the lab CLIP recognises zero-shot in the pool videos (colour, shape, both);
- `caption_labels`: true captions in the pseudo-label format, so the rows that train on true captions (the
  ceiling, labelled only) run the same PS-SCL loop as the pseudo rows: one caption drawn per video per epoch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vitr.backbones.base import Backbone
from vitr.data.types import RetrievalDataset
from vitr.errors import DatasetFormatError
from vitr.files import atomic_write
from vitr.pseudo.label import PseudoLabel
from vitr.pseudo.tagging import ConceptTagger
from vitr.pseudo.vocab import Vocabulary, vocabulary_from_dict

CAPTION_FORM = "caption"  # the form of a true caption in a pseudo-label file (not one of vitr.pseudo.FORMS)
TEMPORAL_KEYS = {"sizes": "size", "columns": "column", "rows": "row"}  # vocabulary category -> ground-truth field


def lab_vocabulary(concepts: Mapping[str, Any]) -> dict[str, Any]:
    """A vitr vocabulary (the JSON mapping) for the lab's concepts (its concepts.json), in the words the lab CLIP
    was pretrained on. Objects are colour + shape; size, column and row are classified about the video's top object,
    and a change of one is also named by the lab's event phrase, the way a real vocabulary names actions: the static
    CLIP cannot recognise the event itself, only the states before and after."""
    shapes, phrases, events = concepts["shapes"], concepts["position_phrases"], concepts["event_phrases"]

    def placed(names: Sequence[str], early_late: Sequence[tuple[str, str, str]]) -> dict[str, Any]:
        return {
            "concepts": [phrases[n] for n in names],
            "templates": ["a {subject} {}"],
            "subject": "objects",
            "top_k": 1,
            "frame_top_k": 1,
            "temporal": True,
            "temporal_template": "a {objects} {early}, then {late}",
            "events": {f"{phrases[a]} -> {phrases[b]}": events[e] for a, b, e in early_late},
            "event_template": "a {objects} {event}",
        }

    return {
        "description": "lab concepts (vitr.lab.pseudo.lab_vocabulary, from the lab's concepts.json)",
        "categories": {
            "objects": {
                "concepts": [f"{c} {s}" for c in concepts["colours"] for s in shapes],
                "templates": ["a {}", "there is a {}", "a picture of a {}"],
                "phrase": "a {}",
                "top_k": 2,
                "frame_top_k": 1,
            },
            "sizes": {
                "concepts": list(concepts["sizes"]),
                "templates": ["a {} {subject}"],
                "subject": "objects",
                "top_k": 1,
                "frame_top_k": 1,
                "temporal": True,
                "temporal_template": "a {objects} that is {early}, then {late}",
                "events": {"small -> large": events["grow"], "large -> small": events["shrink"]},
                "event_template": "a {objects} {event}",
            },
            "columns": placed(concepts["columns"], [("left", "right", "move_right"), ("right", "left", "move_left")]),
            "rows": placed(concepts["rows"], [("top", "bottom", "move_down"), ("bottom", "top", "move_up")]),
            "backgrounds": {
                "concepts": list(concepts["backgrounds"]),
                "templates": ["on a {} background", "an empty {} background", "a circle on a {} background"],
                "top_k": 1,
                "frame_top_k": 1,
            },
        },
        "sentences": [
            "a {sizes} {objects} {columns} {rows} on a {backgrounds} background",
            "a {objects:2} on a {backgrounds} background",
        ],
        "single": ["objects"],
        # the lab publishes other words for its shapes, sizes and backgrounds ("ball", "tiny", "grey")
        "synonyms": {word: list(names) for kind in concepts["synonyms"].values() for word, names in kind.items()},
    }


def read_concepts(lab: str | Path) -> dict[str, Any]:
    """The lab's concepts.json (what `vitr synth` wrote)."""
    return _read_json(Path(lab) / "concepts.json")


def write_lab_vocabulary(lab: str | Path, path: str | Path) -> Path:
    """Write `lab_vocabulary` of the lab folder `lab` to `path` (a file `vitr pseudo-label --vocab` reads)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, json.dumps(lab_vocabulary(read_concepts(lab)), indent=2))


def read_pool_truth(lab: str | Path) -> dict[str, dict[str, Any]]:
    """The pool's ground truth (pool_truth.json), video id -> record, in the order of the videos' numbers."""
    truth = _read_json(Path(lab) / "pool_truth.json")
    return dict(sorted(truth.items(), key=lambda item: int(item[0].removeprefix("video"))))


def link_pool(lab: str | Path, folder: str | Path, video_ids: Sequence[str]) -> Path:
    """`folder` holding exactly the pool videos `video_ids` (links to LAB/videos/<id>.mp4), the folder that
    `vitr pseudo-label` labels: the lab keeps every split's videos in one folder. Links a previous call made are
    replaced; a folder holding anything else is refused, so no video file is ever removed."""
    source, folder = Path(lab).resolve() / "videos", Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    other = [p for p in folder.iterdir() if not p.is_symlink()]
    if other:
        raise DatasetFormatError(f"{folder} holds {other[0].name}, not only pool links; choose an empty folder")
    for old in folder.iterdir():  # a previous run's pool may have been larger
        old.unlink()
    for video_id in video_ids:
        target = source / f"{video_id}.mp4"
        if not target.is_file():
            raise DatasetFormatError(f"pool video {target} is missing; regenerate the lab with `vitr synth`")
        os.symlink(target, folder / target.name)
    return folder


def truth_sets(truth: Mapping[str, Any], phrases: Mapping[str, str]) -> dict[str, set[str]]:
    """Concepts true of a pool video at its start or end, in the lab vocabulary's words."""
    states = [s for s in truth["start"] + truth["end"] if s["visible"]]
    return {
        "objects": {f"{s['colour']} {s['shape']}" for s in states},
        "sizes": {s["size"] for s in states if s["size"]},
        "columns": {phrases[s["column"]] for s in states if s["column"]},
        "rows": {phrases[s["row"]] for s in states if s["row"]},
        "backgrounds": {truth["scene"]["background"]},
    }


def true_transitions(truth: Mapping[str, Any], phrases: Mapping[str, str]) -> dict[str, set[tuple[str, str]]]:
    """(early, late) changes of size, column or row that some object of the video makes, in the vocabulary's words."""
    out: dict[str, set[tuple[str, str]]] = {category: set() for category in TEMPORAL_KEYS}
    for a, b in zip(truth["start"], truth["end"], strict=True):
        for category, key in TEMPORAL_KEYS.items():
            if a[key] and b[key] and a[key] != b[key]:
                word = (lambda v: v) if key == "size" else phrases.__getitem__
                out[category].add((word(a[key]), word(b[key])))
    return out


@dataclass(frozen=True)
class ConceptPrecision:
    """One vocabulary category's pseudo-label precision, in %."""

    category: str
    concepts: int
    top1: float  # the video's first concept of the category is true of it
    listed: float  # every concept listed for the video
    chance: float  # top-1 by a uniform guess


@dataclass(frozen=True)
class TransitionPrecision:
    """Temporal pseudo-concepts: changes written, how many some object really makes, and the videos with one."""

    written: int
    correct: int
    videos_with_change: int

    @property
    def percent(self) -> float:
        return 100 * self.correct / self.written if self.written else float("nan")


def pseudo_precision(
    labels: Sequence[PseudoLabel],
    truths: Sequence[Mapping[str, Any]],
    phrases: Mapping[str, str],
    vocabulary: Vocabulary,
) -> tuple[list[ConceptPrecision], TransitionPrecision]:
    """labels[i] against truths[i]: a concept is correct when true of the video's first or last frame, a change
    when some object's start and end values are its early and late ones."""
    if len(labels) != len(truths):
        raise DatasetFormatError(f"{len(labels)} pseudo-labels for {len(truths)} ground-truth records")
    sets = [truth_sets(t, phrases) for t in truths]
    rows = []
    for category in vocabulary.categories:
        name = category.name
        pairs = list(zip(labels, sets, strict=True))
        top1 = [label.concepts[name][0]["concept"] in s[name] for label, s in pairs if label.concepts.get(name)]
        listed = [c["concept"] in s[name] for label, s in pairs for c in label.concepts.get(name, [])]
        n = len(category.concepts)
        rows.append(ConceptPrecision(name, n, _percent(top1), _percent(listed), 100 / n))
    real = [true_transitions(t, phrases) for t in truths]
    written = correct = 0
    for label, changes in zip(labels, real, strict=True):
        for category, change in label.transitions.items():
            written += 1
            correct += (change["early"], change["late"]) in changes.get(category, set())
    with_change = sum(any(changes.values()) for changes in real)
    return rows, TransitionPrecision(written, correct, with_change)


@dataclass(frozen=True)
class Recognition:
    """Top-1 zero-shot recognition of one attribute, in %."""

    attribute: str
    classes: int
    top1: float
    chance: float


@torch.inference_mode()
def attribute_recognition(
    backbone: Backbone,
    frames: torch.Tensor,
    mask: torch.Tensor,
    truths: Sequence[Mapping[str, Any]],
    concepts: Mapping[str, Any],
) -> list[Recognition]:
    """Top-1 of zero-shot classifiers of colour alone, shape alone and colour + shape (what a pseudo-text can know)
    over frames (N, T, D) with mask (N, T) of the videos of `truths`, aggregated over frames as the tagger does;
    correct when true of the video's first or last frame."""
    shapes, colours = concepts["shapes"], concepts["colours"]
    tasks = {
        "colour alone": (colours, ["a {} shape", "a {} object", "something {}"], lambda s: s["colour"]),
        "shape alone": (shapes, ["a {}", "a picture of a {}", "there is a {}"], lambda s: s["shape"]),
        "colour + shape": (
            [f"{c} {h}" for c in colours for h in shapes],
            ["a {}", "there is a {}", "a picture of a {}"],
            lambda s: f"{s['colour']} {s['shape']}",
        ),
    }
    categories = {name: {"concepts": c, "templates": t, "top_k": 1} for name, (c, t, _) in tasks.items()}
    tagger = ConceptTagger(backbone, vocabulary_from_dict({"categories": categories, "sentences": [], "single": []}))
    found = tagger.tag(frames, mask)
    rows = []
    for name, (names, _, true_of) in tasks.items():
        hits = [
            r.concepts[name][0].concept in {true_of(s) for s in t["start"] + t["end"] if s["visible"]}
            for r, t in zip(found, truths, strict=True)
            if r.concepts.get(name)
        ]
        rows.append(Recognition(name, len(names), _percent(hits), 100 / len(names)))
    return rows


def caption_labels(dataset: RetrievalDataset, folder: str | Path) -> list[PseudoLabel]:
    """Each video of `dataset` with its captions as a pseudo-label record (form "caption", no teacher score), its
    path relative to `folder` (the file's `ps_scl.videos`)."""
    captions: dict[str, list[dict[str, Any]]] = {v.video_id: [] for v in dataset.videos}
    for c in dataset.captions:
        captions[c.video_id].append({"text": c.text, "form": CAPTION_FORM})
    return [
        PseudoLabel(os.path.relpath(v.path, folder), texts=captions[v.video_id])
        for v in dataset.videos
        if captions[v.video_id]
    ]


def _percent(hits: Sequence[bool]) -> float:
    return 100 * float(np.mean(hits)) if len(hits) else float("nan")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetFormatError(f"{path} does not exist: is {path.parent} a lab made by `vitr synth`?") from None
