import json
from pathlib import Path

import pytest

from vitr.errors import ConfigError
from vitr.pseudo.vocab import default_vocabulary_path, load_vocabulary, placeholders


def test_default_vocabulary_has_the_four_real_video_categories():
    vocab = load_vocabulary()
    assert [c.name for c in vocab.categories] == ["actions", "objects", "scenes", "attributes"]
    assert len(vocab.category("objects").concepts) > 100
    assert len(vocab.category("objects").templates) == 7  # CLIP's 7-template ImageNet subset
    assert all(not c.startswith("#") for cat in vocab.categories for c in cat.concepts)
    assert default_vocabulary_path().is_file()


def test_omit_list_drops_medium_words():
    vocab = load_vocabulary()
    concepts = {c for cat in vocab.categories for c in cat.concepts}
    assert not any("video" in c or "photo" in c for c in concepts)


def _copy_default(tmp_path: Path) -> Path:
    src = default_vocabulary_path().parent
    for f in src.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    return tmp_path


def test_a_concept_file_can_be_swapped(tmp_path):
    folder = _copy_default(tmp_path)
    (folder / "scenes.txt").write_text("# my scenes\nmoon base\n\nspace station\nmoon base\n")
    vocab = load_vocabulary(folder)  # a directory reads its vocabulary.json
    assert vocab.category("scenes").concepts == ("moon base", "space station")
    assert len(vocab.category("objects").concepts) > 100


def test_a_whole_vocabulary_can_be_swapped_with_inline_lists(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(
        json.dumps(
            {
                "categories": {"tools": {"concepts": ["hammer", "watermark tool"], "templates": ["a {}"]}},
                "omit": ["watermark"],
                "sentences": ["a {tools:2}"],
            }
        )
    )
    vocab = load_vocabulary(path)
    assert vocab.category("tools").concepts == ("hammer",)
    assert vocab.omitted == ("watermark tool",)


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"categories": {"a": {"concepts": [], "templates": ["{}"]}}}, "no concepts"),
        ({"categories": {"a": {"concepts": ["x"], "templates": ["no slot"]}}}, "exactly one"),
        ({"categories": {"a": {"concepts": ["x"]}}, "sentences": ["{b}"]}, "unknown categories"),
        ({"categories": {"a": {"concepts": "missing.txt"}}}, "does not exist"),
        ({"categories": {"a": {"concepts": ["x"], "temp": 1}}}, "unknown keys"),
    ],
)
def test_bad_vocabularies_are_rejected_with_a_reason(tmp_path, raw, message):
    path = tmp_path / "v.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ConfigError, match=message):
        load_vocabulary(path)


def test_placeholders_with_counts():
    assert placeholders("a {objects:2} in a {scenes}.") == ["objects", "scenes"]
