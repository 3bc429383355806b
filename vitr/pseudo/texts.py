"""Pseudo-texts from recognised concepts: several weak captions per video (ps_scl.md §4 #10).

Forms, each a named option:
- sentence: the vocabulary's sentence templates filled with the top concepts ("{objects:2}" = the top two,
  joined by "and"); a template is skipped when a category it names found nothing;
- list: VidIL-style concept list "objects: dog, ball. scenes: park." (top three per category);
- single: the top concept of each of the vocabulary's `single` categories, alone ("someone surfing");
- temporal (beyond the paper, lab.md §4): for each category whose leading concept changes over the video, its
  `temporal_template` with {early}, {late} and any category placeholder ("a red circle on the left, then on the
  right"); when the vocabulary names that change as an event, also its `event_template` with {event} ("a red
  circle moves from the left to the right"), as a real vocabulary names actions.
A changed category in a sentence (an option, `changed`): a sentence names one value per category, but a category
whose value changes over the video has none that holds throughout. `keep` writes its majority value ("a red circle
on the left" for a circle that moves left to right), `omit` leaves that category out of the sentence ("a red
circle on a black background"), `drop` writes no sentence for a video with a change, so its only descriptions are the
temporal ones. Every sentence of a still video is kept under all three.
Paraphrases (an option, `paraphrases` > 0): each sentence, single and temporal text is also written again with the
vocabulary's synonyms drawn at random ("a tiny red ball"), up to that many distinct variants, so a text tower
trained on pseudo-texts keeps the words that real captions use instead of learning one name per concept.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Literal, get_args

from vitr.pseudo.tagging import VideoConcepts
from vitr.pseudo.vocab import Vocabulary, paraphrase, with_articles

FORMS = ("sentence", "list", "single", "temporal")
LIST_TOP = 3
_PLACEHOLDER = re.compile(r"\{(\w+)(?::(\d+))?\}")
Changed = Literal["keep", "omit", "drop"]
CHANGED: tuple[str, ...] = get_args(Changed)


@dataclass(frozen=True)
class PseudoText:
    text: str
    form: str  # one of FORMS
    score: float | None = None  # frozen-teacher cosine of (video, text), filled in by the labeller


def fill(
    template: str, found: VideoConcepts, vocabulary: Vocabulary, extra: dict[str, str] | None = None
) -> str | None:
    """Replace "{category}" / "{category:n}" by that category's top 1 / top n concepts; None if one is empty."""
    extra = extra or {}
    missing = False

    def replace(match: re.Match[str]) -> str:
        nonlocal missing
        name, count = match.group(1), int(match.group(2) or 1)
        if name in extra:
            return extra[name]
        concepts = found.top(name, count)
        if not concepts:
            missing = True
            return ""
        return " and ".join(concepts)

    text = _PLACEHOLDER.sub(replace, template)
    return None if missing else with_articles(" ".join(text.split()))


PARAPHRASE_TRIES = 4  # draws per wanted variant before giving up (a text with few synonyms has few variants)


def write_pseudo_texts(
    found: VideoConcepts,
    vocabulary: Vocabulary,
    forms: tuple[str, ...] = FORMS,
    paraphrases: int = 0,
    rng: random.Random | None = None,
    changed: Changed = "keep",
) -> list[PseudoText]:
    """All pseudo-texts of one video in the requested forms, without duplicates, in form order; with
    `paraphrases`, each text's synonym variants follow it (drawn from `rng`, seed it for repeatable labels);
    `changed` says how sentences treat a category whose value changes over the video (module docstring)."""
    unknown = sorted(set(forms) - set(FORMS))
    if unknown:
        raise ValueError(f"unknown pseudo-text forms {unknown}; choose from {FORMS}")
    if paraphrases < 0:
        raise ValueError(f"paraphrases must be >= 0, got {paraphrases}")
    if changed not in CHANGED:
        raise ValueError(f"unknown treatment of changed categories {changed!r}; choose from {CHANGED}")
    rng = rng or random.Random(0)
    texts: list[PseudoText] = []
    seen: set[str] = set()
    for form in forms:
        for text in _texts_of_form(form, found, vocabulary, changed):
            variants = [text]
            if paraphrases and form != "list":  # a concept list names the vocabulary's own concepts
                for _ in range(paraphrases * PARAPHRASE_TRIES):
                    if len(variants) > paraphrases:
                        break
                    variant = paraphrase(text, vocabulary.synonyms, rng)
                    if variant not in variants:
                        variants.append(variant)
            for variant in variants:
                if variant and variant not in seen:
                    seen.add(variant)
                    texts.append(PseudoText(variant, form))
    return texts


def _texts_of_form(form: str, found: VideoConcepts, vocabulary: Vocabulary, changed: Changed = "keep") -> list[str]:
    if form == "sentence":
        if changed == "drop" and found.transitions:
            return []
        unsaid = {name: "" for name in found.transitions} if changed == "omit" else None
        return [t for t in (fill(s, found, vocabulary, unsaid) for s in vocabulary.sentences) if t]
    if form == "list":
        parts = [
            f"{c.name}: {', '.join(found.top(c.name, LIST_TOP))}." for c in vocabulary.categories if found.top(c.name)
        ]
        return [" ".join(parts)] if parts else []
    if form == "single":
        return [vocabulary.category(name).say(found.top(name)[0]) for name in vocabulary.single if found.top(name)]
    texts = []
    for name, change in found.transitions.items():
        category = vocabulary.category(name)
        text = fill(category.temporal_template, found, vocabulary, {"early": change.early, "late": change.late})
        event = category.event(change.early, change.late)
        named = fill(category.event_template, found, vocabulary, {"event": event}) if event else None
        texts += [t for t in (text, named) if t]
    return texts
