from vitr.pseudo.tagging import ScoredConcept, Transition, VideoConcepts
from vitr.pseudo.texts import fill, write_pseudo_texts


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
