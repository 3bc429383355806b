"""Weak matches: is a hit better than what this index gives a query about nothing in particular?

A retrieval model always returns its top k, and the raw scores of one model and one collection say little on
their own (CLIP's cosines crowd into a narrow band that differs by model and by collection). So each index gets
its own null distribution: the best score each of `NULL_QUERIES` (generic captions of everyday scenes, about a
hundred subjects, one or two captions each) reaches in this index. A collection matches few of them, so that
distribution is what the best hit of a query about something absent looks like. A text hit is **weak** when its
score is below the `quantile` (default `WEAK_QUANTILE` = 0.95) of that distribution: at most about 5 % of
queries about nothing in particular reach it.

The calibration is cheap (one batch of text embeddings and one k=1 search each) and is computed on the first
search of an index generation, then kept in `calibration.json` beside `index.json`, tied to the model and the
generation; an index that cannot be written keeps it in memory. Video queries (upload, similar) score on
another scale and are not marked.
"""

from __future__ import annotations

import contextlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vitr.files import atomic_write

if TYPE_CHECKING:
    from vitr.index.video_index import Hit, VideoIndex

CALIBRATION_FILE = "calibration.json"
CALIBRATION_VERSION = 1
WEAK_QUANTILE = 0.95

# Generic captions in the style of MSR-VTT, spread over many subjects so that no one collection matches more
# than a few. Changing this list changes every index's threshold: bump CALIBRATION_VERSION with it.
NULL_QUERIES: tuple[str, ...] = (
    "a chef chops onions in a restaurant kitchen",
    "a woman stirs soup in a pot on the stove",
    "a man grills burgers in his backyard",
    "someone pours coffee into a white mug",
    "a baker kneads dough on a floured table",
    "a football player scores a goal in a stadium",
    "a basketball player dunks the ball",
    "two boxers fight in a ring",
    "a tennis player serves the ball on a clay court",
    "a swimmer dives into a pool",
    "a skier races down a snowy slope",
    "a surfer rides a big wave",
    "a cyclist rides up a mountain road",
    "runners cross the finish line of a marathon",
    "a golfer putts on the green",
    "a cat sleeps on a sofa",
    "a puppy chases its tail on the grass",
    "a horse gallops across a field",
    "a flock of birds flies over the sea",
    "an elephant sprays water with its trunk",
    "a lion walks through tall grass",
    "fish swim around a coral reef",
    "a cow grazes in a green pasture",
    "a monkey eats a banana in a tree",
    "cars drive on a busy highway at night",
    "a train pulls into a station",
    "an airplane takes off from a runway",
    "a boat sails across a calm lake",
    "a motorcycle speeds along a coastal road",
    "a truck unloads boxes at a warehouse",
    "a helicopter lands on a rooftop",
    "a bus stops to pick up passengers",
    "a news anchor reads the evening news",
    "a politician gives a speech at a podium",
    "a reporter interviews a man on the street",
    "a teacher writes on a blackboard in a classroom",
    "students take notes during a lecture",
    "a doctor examines a patient in a hospital",
    "a nurse takes a child's temperature",
    "a scientist looks through a microscope",
    "a woman applies makeup in front of a mirror",
    "a hairdresser cuts a customer's hair",
    "a model walks down a fashion runway",
    "a man shaves his beard in the bathroom",
    "a child builds a sand castle on the beach",
    "kids play on a playground swing",
    "a baby laughs in a high chair",
    "a family eats dinner around a table",
    "a couple dances at a wedding",
    "friends toast with glasses at a party",
    "a man types on a laptop in an office",
    "a woman talks on the phone while walking",
    "a programmer explains code on a screen",
    "someone plays a video game with a controller",
    "a person unboxes a new smartphone",
    "a mechanic repairs a car engine",
    "workers build a house with bricks",
    "a carpenter saws a wooden plank",
    "a farmer drives a tractor across a field",
    "a gardener waters flowers in a garden",
    "rain falls on a city street",
    "snow covers a quiet forest",
    "waves crash against rocky cliffs",
    "the sun sets over the ocean",
    "lightning flashes in a stormy sky",
    "a waterfall flows into a river",
    "clouds move over a mountain range",
    "a volcano erupts with lava",
    "a crowd walks through a shopping mall",
    "people wait in line at an airport",
    "a street market sells fresh vegetables",
    "fireworks explode over a city skyline",
    "a parade marches down the main street",
    "soldiers march in formation",
    "firefighters spray water on a burning building",
    "police officers direct traffic at an intersection",
    "a woman does yoga on a mat",
    "a man lifts weights at the gym",
    "a group of people jog in a park",
    "a dancer performs ballet in a studio",
    "a painter paints a portrait on a canvas",
    "a potter shapes clay on a wheel",
    "a woman knits a scarf",
    "a man reads a newspaper on a bench",
    "an old man feeds pigeons in a square",
    "a cartoon character jumps over a wall",
    "an animated robot talks to a girl",
    "a video game character fights a monster",
    "a movie trailer shows an explosion",
    "a person gives a tour of an apartment",
    "a real estate agent shows a kitchen",
    "a woman reviews a lipstick for the camera",
    "a man explains how to tie a tie",
    "hands fold an origami crane",
    "a person solves a rubik's cube",
    "a drone flies over a forest",
    "a rocket launches into space",
    "astronauts float inside a space station",
    "a map shows the weather forecast",
    "a slideshow of holiday photos",
)


@dataclass(frozen=True)
class Calibration:
    """This index's null distribution of best scores, for one model and one index generation."""

    generation: int
    model: dict
    null_scores: tuple[float, ...]  # best score of each null query, ascending

    def threshold(self, quantile: float = WEAK_QUANTILE) -> float:
        """Scores below this are weak: only a fraction 1 - `quantile` of null queries reach it."""
        return float(np.quantile(np.asarray(self.null_scores), quantile))

    def to_dict(self) -> dict:
        return {
            "version": CALIBRATION_VERSION,
            "generation": self.generation,
            "model": self.model,
            "queries": len(self.null_scores),
            "null_scores": list(self.null_scores),
        }


def calibrate(index: VideoIndex) -> Calibration | None:
    """Score `NULL_QUERIES` against `index` (None for an empty index: nothing to compare with)."""
    generation = index.meta.generation()
    if index.meta.count()[1] == 0:
        return None
    hits = index.search_vectors(index.embed_texts(list(NULL_QUERIES)), k=1)
    scores = sorted(h[0].score for h in hits if h)
    return Calibration(generation, index.model_spec.to_dict(), tuple(scores)) if scores else None


class WeakMatches:
    """Marks weak text hits of one open index, recalibrating when the index moves to a new generation."""

    def __init__(self, index: VideoIndex, quantile: float = WEAK_QUANTILE) -> None:
        if not 0.0 < quantile < 1.0:
            raise ValueError(f"the weak-match quantile must lie strictly between 0 and 1, got {quantile}")
        self.index = index
        self.quantile = quantile
        self._calibration: Calibration | None = None
        self._lock = threading.Lock()

    def threshold(self) -> float | None:
        """The weak-match score threshold of the index as it is now (None when it holds nothing)."""
        calibration = self.calibration()
        return None if calibration is None else calibration.threshold(self.quantile)

    def calibration(self) -> Calibration | None:
        generation = self.index.meta.generation()
        model = self.index.model_spec.to_dict()
        with self._lock:
            have = self._calibration
            if have is None or have.generation != generation or have.model != model:
                have = _load(self.index.dir, generation, model)
                if have is None:
                    have = calibrate(self.index)
                    if have is not None:
                        _save(self.index.dir, have)
                self._calibration = have
            return have


def is_weak(hit: Hit, threshold: float | None) -> bool | None:
    """True when `hit` scores below `threshold`; None when there is no threshold (nothing to say)."""
    return None if threshold is None else bool(hit.score < threshold)


def _load(index_dir: Path, generation: int, model: dict) -> Calibration | None:
    try:
        data = json.loads((index_dir / CALIBRATION_FILE).read_text())
    except (OSError, ValueError):
        return None
    if (
        not isinstance(data, dict)
        or data.get("version") != CALIBRATION_VERSION
        or data.get("generation") != generation
        or data.get("model") != model
        or not data.get("null_scores")
    ):
        return None
    return Calibration(generation, model, tuple(float(s) for s in data["null_scores"]))


def _save(index_dir: Path, calibration: Calibration) -> None:
    """Kept beside index.json; a read-only index simply recomputes it once per process."""
    with contextlib.suppress(OSError):
        atomic_write(index_dir / CALIBRATION_FILE, json.dumps(calibration.to_dict(), indent=1))
