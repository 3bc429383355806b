"""Captions of lab scenes: a small grammar with synonyms and paraphrases, driven by a seeded generator.

Two kinds of caption, kept apart on purpose (docs/lab.md §1):
- static captions describe one instant with the static vocabulary only (colour, shape, size, position,
  background, presence); they are the only text the small CLIP sees in pretraining, and they never contain a
  temporal word (`TEMPORAL_WORDS`).
- temporal captions describe a scene's events as compositions of those static concepts over time
  ("moves from the left to the right", "grows from small to large", "appears", "A, then B"); only they carry
  the tag "temporal".
Every caption is true of its scene by construction: an attribute that changes during the video is never used to
name the object, and a still is only described by values that sit clearly inside a named zone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from vitr.lab.world import (
    BACKGROUNDS,
    COLUMNS,
    EVENTS,
    OBJECT_COLOURS,
    ROWS,
    SHAPES,
    SIZES,
    STATIC_EVENT,
    NamedState,
    Scene,
    Step,
    name_state,
    state_at,
)

SHAPE_WORDS: dict[str, tuple[str, ...]] = {
    "circle": ("circle", "ball", "disc"),
    "square": ("square", "box", "block"),
    "triangle": ("triangle",),
    "cross": ("cross", "plus sign"),
}
SIZE_WORDS: dict[str, tuple[str, ...]] = {"small": ("small", "little", "tiny"), "large": ("large", "big")}
BACKGROUND_WORDS: dict[str, tuple[str, ...]] = {
    "black": ("black",),
    "white": ("white",),
    "gray": ("gray", "grey"),
    "blue": ("blue",),
}
COLUMN_PHRASES: dict[str, tuple[str, ...]] = {
    "left": ("on the left", "on the left side", "at the left"),
    "centre": ("in the centre", "in the middle"),
    "right": ("on the right", "on the right side", "at the right"),
}
ROW_PHRASES: dict[str, tuple[str, ...]] = {
    "top": ("at the top", "near the top", "in the upper part"),
    "middle": ("in the middle",),
    "bottom": ("at the bottom", "near the bottom", "in the lower part"),
}
EMPTY_TEMPLATES: tuple[str, ...] = (
    "an empty {bg} background",
    "an empty scene on a {bg} background",
    "a plain {bg} background with nothing on it",
    "nothing on a {bg} background",
    "an empty {bg} scene",
)

# Verb phrases per event. The first phrase is the canonical one (concepts.json); `_ONLY_ALONE` phrases already
# contain "then" and are used only when the event is the caption's single event.
EVENT_PHRASES: dict[str, tuple[str, ...]] = {
    "move_right": (
        "moves from the left to the right",
        "moves to the right",
        "goes from the left to the right",
        "slides from the left to the right",
        "moves from the left side to the right side",
    ),
    "move_left": (
        "moves from the right to the left",
        "moves to the left",
        "goes from the right to the left",
        "slides from the right to the left",
        "moves from the right side to the left side",
    ),
    "move_down": (
        "moves from the top to the bottom",
        "moves down",
        "goes down",
        "falls from the top to the bottom",
        "moves downwards",
    ),
    "move_up": (
        "moves from the bottom to the top",
        "moves up",
        "goes up",
        "rises from the bottom to the top",
        "moves upwards",
    ),
    "grow": ("grows from small to large", "grows", "becomes large", "gets bigger", "turns from small to big"),
    "shrink": ("shrinks from large to small", "shrinks", "becomes small", "gets smaller", "turns from big to small"),
    "appear": ("appears", "comes into view", "shows up"),
    "disappear": ("disappears", "vanishes", "leaves the scene", "disappears from view"),
}
_ONLY_ALONE: dict[str, tuple[str, ...]] = {
    "move_right": ("is on the left, then on the right", "starts on the left and ends on the right"),
    "move_left": ("is on the right, then on the left", "starts on the right and ends on the left"),
    "move_down": ("is at the top, then at the bottom", "starts at the top and ends at the bottom"),
    "move_up": ("is at the bottom, then at the top", "starts at the bottom and ends at the top"),
    "grow": ("is small, then large", "starts small and ends large"),
    "shrink": ("is large, then small", "starts large and ends small"),
    "appear": (),
    "disappear": (),
}

# Words that only temporal captions use; a static caption containing one would leak time into pretraining.
TEMPORAL_WORDS: frozenset[str] = frozenset(
    "then first after before while from starts ends stays moves goes slides falls rises grows shrinks becomes "
    "gets turns appears comes shows disappears vanishes leaves view up down upwards downwards".split()
)


@dataclass(frozen=True)
class LabCaption:
    """A caption and its tags: "static" or "temporal", "event:<scene event>", and "composed" for "A, then B"."""

    text: str
    tags: tuple[str, ...]


def _pick(rng: np.random.Generator, options: tuple[str, ...] | list[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _with_article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def position_phrase(column: str | None, row: str | None, rng: np.random.Generator) -> str | None:
    """A phrase for the named position; either axis may be None (unnamed) or left out at random."""
    if column is not None and row is not None and rng.random() < 0.3:
        column, row = (column, None) if rng.random() < 0.5 else (None, row)
    if column == "centre" and row == "middle":
        return _pick(rng, COLUMN_PHRASES["centre"])
    if column in ("left", "right") and row in (None, "middle"):
        return _pick(rng, COLUMN_PHRASES[column])
    if row in ("top", "bottom") and column in (None, "centre"):
        return _pick(rng, ROW_PHRASES[row])
    if column in ("left", "right") and row in ("top", "bottom"):
        return _pick(
            rng,
            (
                f"in the {row} {column} corner",
                f"at the {row} {column}",
                f"{_pick(rng, ROW_PHRASES[row])} {_pick(rng, COLUMN_PHRASES[column])}",
            ),
        )
    return None  # only one axis is named and it is the middle one: "in the middle" would claim the other too


def noun_phrase(
    named: NamedState, rng: np.random.Generator, size: bool = True, colour: bool = True, shape: bool = True
) -> str:
    """ "a small red circle" with the given attributes (size only when it is named), without position."""
    words = []
    if size and named.size is not None:
        words.append(_pick(rng, SIZE_WORDS[named.size]))
    if colour:
        words.append(named.colour)
    words.append(_pick(rng, SHAPE_WORDS[named.shape]) if shape else _pick(rng, ("shape", "object")))
    return _with_article(" ".join(words))


def _background_phrase(background: str, rng: np.random.Generator) -> str:
    word = _pick(rng, BACKGROUND_WORDS[background])
    return _pick(rng, (f"on a {word} background", f"against a {word} background"))


def _static_object(named: NamedState, rng: np.random.Generator, detailed: bool) -> str:
    """One object in a still with a random subset of its attributes: colour or shape at least, both and most
    often the position when `detailed`."""
    colour = detailed or rng.random() < 0.85
    shape = detailed or rng.random() < 0.85
    if not (colour or shape):
        colour, shape = (True, False) if rng.random() < 0.5 else (False, True)
    phrase = noun_phrase(named, rng, size=rng.random() < 0.55, colour=colour, shape=shape)
    where = position_phrase(named.column, named.row, rng) if rng.random() < (0.9 if detailed else 0.75) else None
    return f"{phrase} {where}" if where else phrase


def still_caption(scene: Scene, u: float, rng: np.random.Generator, detailed: bool = False) -> LabCaption:
    """A static caption of the scene at time u: what a single frame shows, with no word about time.

    Pretraining stills leave out attributes freely, so each concept is also seen alone; `detailed` captions
    (of static videos, used as retrieval queries) always name colour and shape.
    """
    visible = [name_state(s) for s in state_at(scene, u) if s.visible]
    if not visible:
        bg = _pick(rng, BACKGROUND_WORDS[scene.background])
        return LabCaption(_pick(rng, EMPTY_TEMPLATES).format(bg=bg), ("static", "empty"))
    order = list(rng.permutation(len(visible)))
    both = rng.random() < (0.7 if detailed else 0.6)
    described = [visible[i] for i in order[: 2 if both else 1]]
    body = " and ".join(_static_object(named, rng, detailed) for named in described)
    if rng.random() < 0.25:
        body = f"there is {body}" if rng.random() < 0.5 else f"a picture of {body}"
    if rng.random() < 0.5:
        body = f"{body} {_background_phrase(scene.background, rng)}"
    return LabCaption(body, ("static",))


def _changing(scene: Scene, obj: int) -> set[str]:
    return {step.attribute for step in scene.steps if step.obj == obj}


def _subject(scene: Scene, obj: int, rng: np.random.Generator) -> str:
    """Names object `obj` by colour and shape (unique in the scene), plus size or position only where they do
    not change during the video."""
    changing = _changing(scene, obj)
    named = name_state(state_at(scene, 0.0)[obj])
    phrase = noun_phrase(named, rng, size="radius" not in changing and rng.random() < 0.4)
    if not changing & {"x", "y"} and rng.random() < 0.3:
        where = position_phrase(named.column, named.row, rng)
        phrase = f"{phrase} {where}" if where else phrase
    return phrase


def _verb_phrase(scene: Scene, step: Step, rng: np.random.Generator, alone: bool) -> str:
    options = EVENT_PHRASES[step.event] + (_ONLY_ALONE[step.event] if alone else ())
    phrase = _pick(rng, options)
    if step.attribute == "visible" and phrase in ("appears", "disappears") and rng.random() < 0.5:
        # where it is while visible: at the end of an appearance, at the start of a disappearance
        u = step.end if step.event == "appear" else step.start
        named = name_state(state_at(scene, u)[step.obj])
        where = position_phrase(named.column, named.row, rng)
        if where and step.event == "appear":
            phrase = f"{phrase} {where}"
        elif where and alone:
            phrase = f"is {where}, then disappears"
    return phrase


def _single_event_caption(scene: Scene, rng: np.random.Generator) -> str:
    (step,) = scene.steps
    subject = _subject(scene, step.obj, rng)
    lone = len(scene.objects) == 1
    if step.event in ("appear", "disappear") and lone and rng.random() < 0.25:
        bg = _pick(rng, BACKGROUND_WORDS[scene.background])
        if step.event == "appear":
            return f"the {bg} background is empty, then {subject} appears"
        return f"{subject} disappears and the {bg} background becomes empty"
    text = f"{subject} {_verb_phrase(scene, step, rng, alone=True)}"
    others = [i for i in range(len(scene.objects)) if i != step.obj]
    if others and rng.random() < 0.3:
        other = name_state(state_at(scene, 0.0)[others[0]])
        where = position_phrase(other.column, other.row, rng) or "still"
        text = f"{text} while {noun_phrase(other, rng, size=rng.random() < 0.4)} stays {where}"
    return text


def _composed_caption(scene: Scene, rng: np.random.Generator) -> str:
    first, second = scene.steps
    vp1 = _verb_phrase(scene, first, rng, alone=False)
    vp2 = _verb_phrase(scene, second, rng, alone=False)
    s1 = _subject(scene, first.obj, rng)
    if first.obj == second.obj:
        template = _pick(
            rng,
            (
                "{s1} {vp1}, then {vp2}",
                "{s1} {vp1} and then {vp2}",
                "{s1} first {vp1}, then {vp2}",
                "first {s1} {vp1}, then it {vp2}",
                "{s1} {vp1}; after that it {vp2}",
            ),
        )
        return template.format(s1=s1, vp1=vp1, vp2=vp2)
    s2 = _subject(scene, second.obj, rng)
    template = _pick(
        rng,
        (
            "{s1} {vp1}, then {s2} {vp2}",
            "first {s1} {vp1}, then {s2} {vp2}",
            "{s1} {vp1} and then {s2} {vp2}",
            "{s1} {vp1}; after that {s2} {vp2}",
            "{s1} {vp1} before {s2} {vp2}",
        ),
    )
    return template.format(s1=s1, vp1=vp1, s2=s2, vp2=vp2)


def temporal_caption(scene: Scene, rng: np.random.Generator) -> LabCaption:
    """A caption of the scene's events in order; needs a scene with one or two steps."""
    if not scene.steps:
        raise ValueError("a temporal caption needs a scene with events")
    if len(scene.steps) == 1:
        text = _single_event_caption(scene, rng)
    else:
        text = _composed_caption(scene, rng)
    if rng.random() < 0.4:
        bg = _background_phrase(scene.background, rng)
        text = f"{bg}, {text}" if len(scene.steps) > 1 or rng.random() < 0.3 else f"{text} {bg}"
    tags = ("temporal", f"event:{scene.event}") + (("composed",) if len(scene.steps) > 1 else ())
    return LabCaption(text, tags)


def video_captions(scene: Scene, rng: np.random.Generator, n: int) -> list[LabCaption]:
    """n captions of a video, distinct where the grammar allows: temporal ones for a scene with events, static
    ones (tagged "static", "event:static") for a scene without."""
    captions: list[LabCaption] = []
    for _ in range(n * 20):
        if scene.is_temporal:
            caption = temporal_caption(scene, rng)
        else:
            caption = LabCaption(
                still_caption(scene, 0.5, rng, detailed=True).text, ("static", f"event:{STATIC_EVENT}")
            )
        if caption not in captions:
            captions.append(caption)
        if len(captions) == n:
            return captions
    distinct = len(captions)  # a grammar too small for n distinct captions repeats them
    return [captions[i % distinct] for i in range(n)]


# Phrases that swap for one another in a hard-negative caption: another concept of the same attribute. The middle
# column/row is left alone (its phrases overlap), and so are background words (the CLIP tells them apart already).
_SWAPPABLE: dict[str, dict[str, tuple[str, ...]]] = {
    "colour": {colour: (colour,) for colour in OBJECT_COLOURS},
    "shape": SHAPE_WORDS,
    "size": SIZE_WORDS,
    "column": {"left": ("left",), "right": ("right",)},
    "row": {"top": ("top", "upper"), "bottom": ("bottom", "lower")},
}
_PHRASE_CONCEPT = {
    phrase: (attribute, concept)
    for attribute, concepts in _SWAPPABLE.items()
    for concept, phrases in concepts.items()
    for phrase in phrases
}
_SWAP_PATTERN = re.compile(r"\b(" + "|".join(sorted(map(re.escape, _PHRASE_CONCEPT), key=len, reverse=True)) + r")\b")


def negative_caption(text: str, rng: np.random.Generator) -> str | None:
    """A hard negative of a static caption: one attribute phrase (of an attribute drawn uniformly among those the
    caption names) swapped for another concept of the same attribute
    ("a red circle on the left" -> "a red square on the left"), so the caption is false of its image and differs
    from the truth in one concept only (NegCLIP, Yuksekgonul et al., ICLR 2023). None when nothing can be swapped.

    Why the lab needs it: a batch of 256 stills is told apart by colour, size and background alone, so plain
    in-batch contrast gives shape and position almost no gradient; CLIP's real batches of 32k hold such near
    misses by chance. The article before the swapped word is fixed, so no negative is betrayed by its grammar.
    """
    by_attribute: dict[str, list[re.Match[str]]] = {}
    for m in _SWAP_PATTERN.finditer(text):
        if not _names_background(text, m):
            by_attribute.setdefault(_PHRASE_CONCEPT[m.group(1)][0], []).append(m)
    if not by_attribute:
        return None
    matches = by_attribute[_pick(rng, sorted(by_attribute))]  # each named attribute equally often
    match = matches[int(rng.integers(len(matches)))]
    attribute, concept = _PHRASE_CONCEPT[match.group(1)]
    others = [c for c in _SWAPPABLE[attribute] if c != concept]
    phrase = _pick(rng, _SWAPPABLE[attribute][_pick(rng, others)])
    before, after = text[: match.start()], text[match.end() :]
    article = re.search(r"\b(an?) $", before)
    if article:
        before, phrase = before[: article.start()], _with_article(phrase)
    return before + phrase + after


def _names_background(text: str, match: re.Match[str]) -> bool:
    """True when a colour word names the background ("on a blue background", "an empty gray scene")."""
    return re.match(r" (background|scene)\b", text[match.end() :]) is not None


def concept_vocabulary() -> dict[str, object]:
    """The lab's concepts, their synonyms and canonical phrases: what pseudo-labelling may name."""
    return {
        "colours": list(OBJECT_COLOURS),
        "shapes": list(SHAPES),
        "sizes": list(SIZES),
        "columns": list(COLUMNS),
        "rows": list(ROWS),
        "backgrounds": list(BACKGROUNDS),
        "events": [STATIC_EVENT, *EVENTS],
        "synonyms": {"shapes": SHAPE_WORDS, "sizes": SIZE_WORDS, "backgrounds": BACKGROUND_WORDS},
        "position_phrases": {
            **{k: v[0] for k, v in COLUMN_PHRASES.items()},
            **{k: v[0] for k, v in ROW_PHRASES.items()},
        },
        "event_phrases": {event: phrases[0] for event, phrases in EVENT_PHRASES.items()},
        "temporal_words": sorted(TEMPORAL_WORDS),
    }
