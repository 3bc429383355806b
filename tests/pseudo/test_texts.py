import random
import re

import pytest

from tests.pseudo.conftest import TINY_VOCAB
from vitr.errors import ConfigError
from vitr.pseudo.tagging import ScoredConcept, Transition, VideoConcepts
from vitr.pseudo.texts import fill, write_pseudo_texts
from vitr.pseudo.vocab import vocabulary_from_dict


def _found() -> VideoConcepts:
    return VideoConcepts(
        concepts={
            "objects": [ScoredConcept("red circle", 0.8, 0.5), ScoredConcept("blue square", 0.4, 0.3)],
            "columns": [ScoredConcept("on the left", 0.5, 0.5)],
            "backgrounds": [ScoredConcept("black", 1.0, 0.9)],
        },
        transitions={"columns": Transition("on the left", "on the right", 1.0)},
    )


def test_every_form_is_written(tiny_vocab):
    texts = {t.form: t.text for t in write_pseudo_texts(_found(), tiny_vocab)}
    assert texts["sentence"] == "a red circle and blue square on the left on a black background"
    assert texts["list"] == "objects: red circle, blue square. columns: on the left. backgrounds: black."
    assert texts["single"] == "a red circle"
    assert texts["temporal"] == "a red circle on the left, then on the right"


def test_sentences_may_leave_out_or_skip_a_category_that_changes_over_the_video(tiny_vocab):
    def sentences(found: VideoConcepts, changed: str) -> list[str]:
        return [t.text for t in write_pseudo_texts(found, tiny_vocab, ("sentence",), changed=changed)]

    moving = _found()  # the circle goes from the left to the right: "on the left" holds for half of it
    assert sentences(moving, "keep") == ["a red circle and blue square on the left on a black background"]
    assert sentences(moving, "omit") == ["a red circle and blue square on a black background"]
    assert sentences(moving, "drop") == []
    still = _found()
    still.transitions.clear()
    assert sentences(still, "omit") == sentences(still, "drop") == sentences(still, "keep")
    assert [t.form for t in write_pseudo_texts(moving, tiny_vocab, changed="drop")] == ["list", "single", "temporal"]
    with pytest.raises(ValueError, match="changed"):
        write_pseudo_texts(moving, tiny_vocab, changed="never")


def test_forms_can_be_chosen_and_templates_with_empty_categories_are_skipped(tiny_vocab):
    found = _found()
    del found.concepts["backgrounds"]
    texts = write_pseudo_texts(found, tiny_vocab, forms=("sentence", "single"))
    assert [t.form for t in texts] == ["single"]
    assert fill("{backgrounds}", found, tiny_vocab) is None


def test_a_change_the_vocabulary_names_is_also_written_as_its_event(tiny_vocab):
    raw = {
        "categories": {
            "objects": {"concepts": ["red circle", "blue square"], "phrase": "a {}"},
            "columns": {
                "concepts": ["on the left", "on the right"],
                "temporal": True,
                "temporal_template": "a {objects} {early}, then {late}",
                "events": {"on the left -> on the right": "moves from the left to the right"},
                "event_template": "a {objects} {event}",
            },
        }
    }
    vocab = vocabulary_from_dict(raw)
    texts = [t.text for t in write_pseudo_texts(_found(), vocab, forms=("temporal",))]
    assert texts == ["a red circle on the left, then on the right", "a red circle moves from the left to the right"]
    found = _found()
    found.transitions["columns"] = Transition("on the right", "on the left", 1.0)  # a change with no name
    assert [t.text for t in write_pseudo_texts(found, vocab, forms=("temporal",))] == [
        "a red circle on the right, then on the left"
    ]


def test_an_event_must_name_a_change_between_two_concepts_of_its_category():
    raw = {"categories": {"columns": {"concepts": ["on the left", "on the right"], "events": {"left -> right": "x"}}}}
    with pytest.raises(ConfigError, match="EARLY -> LATE"):
        vocabulary_from_dict(raw)


def test_the_article_agrees_with_the_concept_filled_in():
    found = _found()
    found.concepts["objects"] = [ScoredConcept("orange circle", 0.8, 0.5)]
    raw = {"categories": {"objects": {"concepts": ["orange circle"], "phrase": "a {}"}}, "single": ["objects"]}
    vocab = vocabulary_from_dict(raw)
    assert fill("a {objects} and a red box", found, vocab) == "an orange circle and a red box"
    assert [t.text for t in write_pseudo_texts(found, vocab, forms=("single",))] == ["an orange circle"]


def test_paraphrases_use_the_vocabularys_synonyms_and_keep_the_canonical_text_first():
    vocab = vocabulary_from_dict(
        {**TINY_VOCAB, "synonyms": {"circle": ["ball", "disc"], "black": ["dark"], "on the left": ["at the left"]}}
    )
    texts = write_pseudo_texts(_found(), vocab, forms=("sentence", "list"), paraphrases=2, rng=random.Random(0))
    sentences = [t.text for t in texts if t.form == "sentence"]
    assert sentences[0] == "a red circle and blue square on the left on a black background"
    assert len(sentences) == 3 and len(set(sentences)) == 3  # two distinct variants
    for variant in sentences[1:]:
        assert re.fullmatch(
            r"a red (circle|ball|disc) and blue square (on|at) the left on a (black|dark) background", variant
        )
    assert [t.form for t in texts].count("list") == 1  # a concept list is never paraphrased


def test_a_text_without_synonyms_has_no_paraphrases_and_articles_are_agreed_again():
    vocab = vocabulary_from_dict({**TINY_VOCAB, "synonyms": {"red": ["orange"]}})
    texts = write_pseudo_texts(_found(), vocab, forms=("single",), paraphrases=3, rng=random.Random(0))
    assert {t.text for t in texts} == {"a red circle", "an orange circle"}
    found = _found()
    found.concepts["objects"] = [ScoredConcept("blue square", 1.0, 1.0)]
    assert [t.text for t in write_pseudo_texts(found, vocab, forms=("single",), paraphrases=3)] == ["a blue square"]


def test_synonyms_must_be_lists_of_words():
    with pytest.raises(ConfigError, match="synonyms"):
        vocabulary_from_dict({**TINY_VOCAB, "synonyms": {"circle": "ball"}})
    vocab = vocabulary_from_dict({**TINY_VOCAB, "synonyms": {"black": ["black"], "circle": ["ball", "circle"]}})
    assert vocab.synonyms == {"circle": ("ball",)}  # a word listed as itself has no other name
