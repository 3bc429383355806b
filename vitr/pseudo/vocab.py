"""Concept vocabularies for zero-shot tagging: categories of concepts, their prompt templates, and text forms.

A vocabulary is a plain JSON file (default: `vitr/pseudo/vocab/vocabulary.json`) whose concept lists may live
in `.txt` files next to it, so a user swaps a list without touching code (ps_scl.md §4 #6, #7):

    {"categories": {"objects": {"concepts": "objects.txt" | ["dog", ...], "templates": ["a photo of the {}."],
                                "phrase": "a {}", "top_k": 5, "frame_top_k": 5,
                                "temporal": false, "temporal_template": "{early}, then {late}",
                                "events": {"small -> large": "grows"}, "event_template": "a {objects} {event}"},
                    ...},
     "sentences": ["a video of someone {actions} with {objects:2} in a {scenes}."],
     "single": ["actions", "objects"],
     "synonyms": {"dog": ["puppy"], "small": ["little", "tiny"]},
     "omit": "omit.txt" | ["video", ...]}

Concepts containing an omitted word are dropped at load time (VidIL's OMIT_KEYWORDS stop list). `synonyms` name
other words for a word or phrase of the vocabulary (WordNet-style synsets); pseudo-texts can be paraphrased with
them (`paraphrase`), so training texts say "a tiny dog" as real captions do, not only the one canonical name.
"""

from __future__ import annotations

import functools
import json
import random
import re
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from vitr.errors import ConfigError

VOCAB_FILE = "vocabulary.json"


def default_vocabulary_path() -> Path:
    """The shipped English vocabulary for real videos (objects, scenes, actions, attributes)."""
    return Path(str(resources.files("vitr.pseudo") / "vocab" / VOCAB_FILE))


@dataclass(frozen=True)
class Category:
    """One kind of concept (objects, scenes, ...) with the prompts that turn a concept into classifier text."""

    name: str
    concepts: tuple[str, ...]
    templates: tuple[str, ...]  # each with one "{}" where the concept goes
    phrase: str = "{}"  # how a concept reads inside a pseudo-text ("a {}": "a dog")
    top_k: int = 5  # concepts kept per video
    frame_top_k: int = 5  # concepts counted per frame (VidIL `topk_visualize`)
    temporal: bool = False  # write "A, then B" pseudo-texts when this category changes over the video
    temporal_template: str = "{early}, then {late}"
    # a change that has a name in the language ("early -> late": "event phrase"), e.g. "small -> large": "grows";
    # such a change also gets `event_template` with {event} and any category placeholder ("a red circle grows")
    events: dict[str, str] = field(default_factory=dict)
    event_template: str = "{event}"
    # classify this category about one thing: its templates' "{subject}" becomes the video's top concept of the
    # named (earlier) category, e.g. "a {subject} {}" -> "a red circle on the left"; with two objects in a frame,
    # "where is the red circle" has one answer, "where is a shape" two
    subject: str | None = None

    def about(self, subject: str) -> Category:
        """This category with "{subject}" in its templates replaced by `subject`."""
        templates = tuple(with_articles(t.replace("{subject}", subject)) for t in self.templates)
        return replace(self, templates=templates, subject=None)

    def __post_init__(self) -> None:
        if not self.concepts:
            raise ConfigError(f"vocabulary category {self.name!r} has no concepts")
        if not self.templates:
            raise ConfigError(
                f'vocabulary category {self.name!r} has no prompt templates; use ["{{}}"] for bare concept names'
            )
        bad = [t for t in self.templates if t.count("{}") != 1]
        if bad:
            raise ConfigError(f"templates of {self.name!r} must hold exactly one '{{}}', got {bad[:3]}")
        if self.top_k < 1 or self.frame_top_k < 1:
            raise ConfigError(f"top_k and frame_top_k of {self.name!r} must be >= 1")
        for change in self.events:
            early, arrow, late = change.partition(" -> ")
            if not arrow or early not in self.concepts or late not in self.concepts:
                raise ConfigError(
                    f"event {change!r} of {self.name!r} must read 'EARLY -> LATE' with two of its concepts"
                )

    def event(self, early: str, late: str) -> str | None:
        """The named event of a change from `early` to `late`, if the vocabulary names it."""
        return self.events.get(f"{early} -> {late}")

    def say(self, concept: str) -> str:
        return with_articles(self.phrase.format(concept))


@dataclass(frozen=True)
class Vocabulary:
    """Categories in a fixed order, the sentence templates of pseudo-texts, and where it was read from."""

    categories: tuple[Category, ...]
    sentences: tuple[str, ...] = ()
    single: tuple[str, ...] = ()  # categories whose top concept also becomes a text on its own
    synonyms: dict[str, tuple[str, ...]] = field(default_factory=dict)  # word or phrase -> other words for it
    source: str = ""
    omitted: tuple[str, ...] = field(default=(), compare=False)  # concepts dropped by the stop list

    def __post_init__(self) -> None:
        names = [c.name for c in self.categories]
        if not names:
            raise ConfigError(f"vocabulary {self.source or ''} has no categories")
        if len(set(names)) != len(names):
            raise ConfigError(f"vocabulary {self.source} repeats a category name: {names}")
        known = set(names)
        for template in self.sentences:
            unknown = sorted(set(placeholders(template)) - known)
            if unknown:
                raise ConfigError(f"sentence template {template!r} names unknown categories {unknown}; known: {names}")
        for i, c in enumerate(self.categories):
            earlier = names[:i]
            if c.subject is not None and c.subject not in earlier:
                raise ConfigError(f"subject {c.subject!r} of {c.name!r} must name an earlier category: {earlier}")
            if c.subject is not None and self.categories[names.index(c.subject)].subject is not None:
                raise ConfigError(f"subject {c.subject!r} of {c.name!r} must not itself be about a subject")
        unknown_single = sorted(set(self.single) - known)
        if unknown_single:
            raise ConfigError(f"'single' names unknown categories {unknown_single}; known: {names}")
        for word, others in self.synonyms.items():
            if not word.strip() or not others or not all(isinstance(o, str) and o.strip() for o in others):
                raise ConfigError(f"synonyms of {word!r} in {self.source} must be a non-empty list of words")

    def category(self, name: str) -> Category:
        for c in self.categories:
            if c.name == name:
                return c
        raise KeyError(f"no category {name!r} in vocabulary {self.source}; known: {[c.name for c in self.categories]}")


_ARTICLE = re.compile(r"\b([Aa])n? (?=(\w))")


def with_articles(text: str) -> str:
    """ "a orange circle" -> "an orange circle": a template's "a {}" agrees with the concept filled in (by the
    first letter, the usual rule; real captions say "an orange", and a pseudo-text should read like one)."""
    return _ARTICLE.sub(lambda m: m.group(1) + ("n " if m.group(2)[0].lower() in "aeiou" else " "), text)


_PLACEHOLDER = re.compile(r"\{(\w+)(?::(\d+))?\}")


def paraphrase(text: str, synonyms: dict[str, tuple[str, ...]], rng: random.Random) -> str:
    """`text` with every whole word or phrase that has synonyms replaced by one of its names (itself included),
    drawn uniformly; longer phrases first, so "plus sign" is not read as "plus". Articles are agreed again."""
    if not synonyms:
        return text
    pattern = _synonym_pattern(tuple(synonyms))
    return with_articles(pattern.sub(lambda m: rng.choice((m.group(1), *synonyms[m.group(1)])), text))


@functools.lru_cache(maxsize=8)
def _synonym_pattern(words: tuple[str, ...]) -> re.Pattern[str]:
    """One regex for a vocabulary's synonym keys, built once rather than for every text and draw."""
    longest_first = sorted(words, key=len, reverse=True)
    return re.compile(r"\b(" + "|".join(re.escape(w) for w in longest_first) + r")\b")


def placeholders(template: str) -> list[str]:
    """Category names a sentence template refers to: "{objects:2} in a {scenes}" -> ["objects", "scenes"]."""
    return [m.group(1) for m in _PLACEHOLDER.finditer(template)]


def load_vocabulary(path: str | Path | None = None) -> Vocabulary:
    """Read a vocabulary JSON file, or the `vocabulary.json` of a directory; None reads the shipped default."""
    path = default_vocabulary_path() if path is None else Path(path)
    if path.is_dir():
        path = path / VOCAB_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"vocabulary file {path} does not exist") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"vocabulary file {path} is not valid JSON: {e}") from None
    return vocabulary_from_dict(raw, base=path.parent, source=str(path))


def vocabulary_from_dict(raw: dict[str, Any], base: Path | None = None, source: str = "") -> Vocabulary:
    """Build a vocabulary from its JSON form; string concept lists name files relative to `base`."""
    if not isinstance(raw, dict) or not isinstance(raw.get("categories"), dict):
        raise ConfigError(f"vocabulary {source} must be a mapping with a 'categories' mapping")
    omit = [w.lower() for w in _read_list(raw.get("omit", []), base, source)]
    categories, omitted = [], []
    for name, spec in raw["categories"].items():
        if not isinstance(spec, dict):
            raise ConfigError(f"vocabulary {source}: category {name!r} must be a mapping")
        concepts = []
        for concept in _read_list(spec.get("concepts", []), base, source):
            words = set(re.findall(r"\w+", concept.lower()))
            if words & set(omit):
                omitted.append(concept)
            elif concept not in concepts:
                concepts.append(concept)
        options_keys = (
            "phrase",
            "top_k",
            "frame_top_k",
            "temporal",
            "temporal_template",
            "events",
            "event_template",
            "subject",
        )
        known = {"concepts", "templates", *options_keys}
        unknown = sorted(set(spec) - known)
        if unknown:
            raise ConfigError(
                f"vocabulary {source}: category {name!r} has unknown keys {unknown}; known: {sorted(known)}"
            )
        options = {k: spec[k] for k in options_keys if k in spec}
        templates = tuple(_read_list(spec.get("templates", ["{}"]), base, source))
        categories.append(Category(name=name, concepts=tuple(concepts), templates=templates, **options))
    return Vocabulary(
        categories=tuple(categories),
        sentences=tuple(raw.get("sentences", [])),
        single=tuple(raw.get("single", [])),
        synonyms=_read_synonyms(raw.get("synonyms", {}), source),
        source=source,
        omitted=tuple(omitted),
    )


def _read_synonyms(value: Any, source: str) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, dict):
        raise ConfigError(f"vocabulary {source}: 'synonyms' must map a word to a list of other words, got {value!r}")
    out = {}
    for word, others in value.items():
        if not isinstance(others, list):
            raise ConfigError(f"vocabulary {source}: synonyms of {word!r} must be a list, got {others!r}")
        names = tuple(str(o).strip() for o in others if str(o).strip() and str(o).strip() != word)
        if names:  # a word listed only as itself ("black": ["black"]) has no other name
            out[str(word)] = names
    return out


def _read_list(value: str | list[str], base: Path | None, source: str) -> list[str]:
    """A list as given, or the lines of a text file (blank lines and '#' comments skipped)."""
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    if not isinstance(value, str):
        raise ConfigError(f"vocabulary {source}: expected a list or a file name, got {value!r}")
    file = (base or Path.cwd()) / value
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ConfigError(f"vocabulary {source} refers to {file}, which does not exist") from None
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
