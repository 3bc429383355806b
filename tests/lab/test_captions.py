import re

import numpy as np

from vitr.lab.captions import (
    BACKGROUND_WORDS,
    COLUMN_PHRASES,
    ROW_PHRASES,
    SHAPE_WORDS,
    SIZE_WORDS,
    TEMPORAL_WORDS,
    concept_vocabulary,
    negative_caption,
    still_caption,
    temporal_caption,
    video_captions,
)
from vitr.lab.world import OBJECT_COLOURS, Scene, SceneMix, SceneObject, Step, reverse_scene, sample_scene

ANY_MIX = SceneMix(temporal_share=0.5, two_object_share=0.5, empty_share=0.05)
TEMPORAL = SceneMix(temporal_share=1.0, two_object_share=0.5)


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text))


def _stills(seed: int, n: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [still_caption(sample_scene(rng, ANY_MIX), float(rng.random()), rng).text for _ in range(n)]


def _mentions(text: str, phrases) -> bool:
    return any(re.search(rf"\b{re.escape(p)}\b", text) for p in phrases)


def test_still_captions_never_use_a_temporal_word():
    for text in _stills(0, 600):
        assert not _words(text) & TEMPORAL_WORDS, text


def test_still_captions_cover_colour_size_position_background_and_emptiness():
    captions = _stills(1, 600)
    position = [p for phrases in (*COLUMN_PHRASES.values(), *ROW_PHRASES.values()) for p in phrases]
    shares = {
        "colour": np.mean([_mentions(c, OBJECT_COLOURS) for c in captions]),
        "size": np.mean([_mentions(c, [w for ws in SIZE_WORDS.values() for w in ws]) for c in captions]),
        "position": np.mean([_mentions(c, position) for c in captions]),
        "background": np.mean(["background" in c for c in captions]),
        "empty": np.mean(["empty" in c or "nothing" in c for c in captions]),
    }
    assert shares["colour"] > 0.6 and shares["position"] > 0.4 and shares["size"] > 0.25, shares
    assert shares["background"] > 0.3 and 0.01 < shares["empty"] < 0.2, shares


def test_temporal_captions_are_tagged_temporal_and_use_temporal_words():
    rng = np.random.default_rng(2)
    for _ in range(300):
        scene = sample_scene(rng, TEMPORAL)
        for caption in video_captions(scene, rng, 5):
            assert caption.tags[0] == "temporal" and f"event:{scene.event}" in caption.tags
            assert ("composed" in caption.tags) == (len(scene.steps) == 2)
            assert _words(caption.text) & TEMPORAL_WORDS, caption.text


def test_static_videos_get_static_detailed_captions():
    rng = np.random.default_rng(3)
    for _ in range(100):
        scene = sample_scene(rng, SceneMix(temporal_share=0.0, two_object_share=0.5))
        for caption in video_captions(scene, rng, 5):
            assert caption.tags == ("static", "event:static")
            assert not _words(caption.text) & TEMPORAL_WORDS
            assert _mentions(caption.text, [o.colour for o in scene.objects]), caption.text


def _move(src: float, dst: float) -> Scene:
    obj = SceneObject("red", "circle", src, 0.5, 0.08)
    return Scene("black", (obj,), (Step(0, "x", 0.15, 0.85, src, dst),), noise_seed=0)


def test_a_move_and_its_twin_are_described_in_opposite_directions():
    rng = np.random.default_rng(4)
    scene = _move(0.2, 0.8)
    for caption, twin_caption in zip(
        video_captions(scene, rng, 5), video_captions(reverse_scene(scene), rng, 5), strict=True
    ):
        for text, first, last in ((caption.text, "left", "right"), (twin_caption.text, "right", "left")):
            assert last in text
            if first in text:
                assert text.index(first) < text.index(last), text
        assert "event:move_right" in caption.tags and "event:move_left" in twin_caption.tags


def test_subject_never_names_an_attribute_that_changes():
    """A growing object is not called small or large before its verb: that would be false half of the time."""
    rng = np.random.default_rng(5)
    obj = SceneObject("green", "square", 0.2, 0.2, 0.08)
    scene = Scene("white", (obj,), (Step(0, "radius", 0.15, 0.85, 0.08, 0.15),), noise_seed=0)
    size_words = [w for ws in SIZE_WORDS.values() for w in ws]
    verbs = ("grows", "becomes", "gets", "turns", "is small", "starts")
    for _ in range(100):
        text = temporal_caption(scene, rng).text
        subject = text[: min(text.index(v) for v in verbs if v in text)]
        assert not _mentions(subject, size_words), text


def test_composed_captions_name_events_in_order():
    rng = np.random.default_rng(6)
    a = SceneObject("red", "circle", 0.2, 0.2, 0.08)
    b = SceneObject("blue", "square", 0.8, 0.8, 0.08)
    steps = (Step(0, "visible", 0.05, 0.45, 0.0, 1.0), Step(1, "visible", 0.55, 0.95, 1.0, 0.0))
    scene = Scene("gray", (a, b), steps, noise_seed=0)
    for _ in range(50):
        text = temporal_caption(scene, rng).text
        assert text.index("red") < text.index("blue"), text
        twin_text = temporal_caption(reverse_scene(scene), rng).text
        assert twin_text.index("blue") < twin_text.index("red"), twin_text


def test_captions_are_deterministic_given_the_generator_and_distinct_per_video():
    scene = sample_scene(np.random.default_rng(7), TEMPORAL)
    first = video_captions(scene, np.random.default_rng(8), 5)
    assert first == video_captions(scene, np.random.default_rng(8), 5)
    assert len({c.text for c in first}) == 5


def test_concept_vocabulary_lists_every_concept_kind():
    vocabulary = concept_vocabulary()
    assert set(vocabulary["colours"]) == set(OBJECT_COLOURS)
    assert set(vocabulary["backgrounds"]) == set(BACKGROUND_WORDS)
    assert "move_right" in vocabulary["events"] and "static" in vocabulary["events"]
    assert vocabulary["sizes"] == ["small", "large"]


def _swapped(before: str, after: str) -> tuple[str, str]:
    """The one phrase `after` changed in `before` (word level; "plus sign" is one phrase)."""
    a, b = before.split(), after.split()
    start = next(i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y)
    end = next(i for i, (x, y) in enumerate(zip(reversed(a), reversed(b), strict=False)) if x != y)
    return " ".join(a[start : len(a) - end]), " ".join(b[start : len(b) - end])


def test_a_hard_negative_swaps_one_attribute_phrase_for_another_concept_of_that_attribute():
    tables = {
        "colour": {c: (c,) for c in OBJECT_COLOURS},
        "shape": SHAPE_WORDS,
        "size": SIZE_WORDS,
        "column": {"left": ("left",), "right": ("right",)},
        "row": {"top": ("top", "upper"), "bottom": ("bottom", "lower")},
    }
    concept_of = {p: (a, c) for a, t in tables.items() for c, ps in t.items() for p in ps}
    rng = np.random.default_rng(5)
    swapped_attributes = set()
    for text in _stills(3, 800):
        negative = negative_caption(text, rng)
        if negative is None:
            assert "empty" in text or "nothing" in text, text
            continue
        old, new = _swapped(text, negative)
        old, new = (re.sub(r"^(a|an) ", "", p) for p in (old, new))  # the article may change with the word
        assert old in concept_of and new in concept_of, (text, negative)
        (attribute, concept), (new_attribute, new_concept) = concept_of[old], concept_of[new]
        assert attribute == new_attribute and concept != new_concept, (text, negative)
        assert not re.search(r"\ba [aeiou]|\ban [^aeiou ]", negative), negative  # no grammar betrays it
        swapped_attributes.add(attribute)
    assert swapped_attributes == set(tables)


def test_a_hard_negative_leaves_background_words_alone():
    rng = np.random.default_rng(0)
    for _ in range(50):
        assert negative_caption("an empty blue background", rng) is None
        assert negative_caption("a red circle on a blue background", rng) in {
            f"{'an' if c == 'orange' else 'a'} {c} circle on a blue background" for c in OBJECT_COLOURS if c != "red"
        } | {f"a red {w} on a blue background" for s, ws in SHAPE_WORDS.items() if s != "circle" for w in ws}
