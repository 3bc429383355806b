import pytest

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
