"""The PS-SCL lab's own measurements: its vocabulary, pseudo-text precision against the truth, caption files."""

import json
import math

import pytest
import torch

from vitr.data.types import Caption, RetrievalDataset, VideoItem
from vitr.errors import DatasetFormatError
from vitr.lab.captions import concept_vocabulary
from vitr.lab.pseudo import (
    caption_labels,
    lab_vocabulary,
    link_pool,
    pseudo_precision,
    read_pool_truth,
    write_lab_vocabulary,
)
from vitr.pseudo import PseudoLabel, load_vocabulary, read_pseudo_labels, vocabulary_from_dict, write_pseudo_labels
from vitr.train.ps_scl import pool_from_pseudo_labels

PHRASES = concept_vocabulary()["position_phrases"]
VOCAB = vocabulary_from_dict(lab_vocabulary(concept_vocabulary()))


def _state(colour="red", shape="circle", size="small", column="left", row="top", visible=True) -> dict:
    return {"colour": colour, "shape": shape, "size": size, "column": column, "row": row, "visible": visible}


def _truth(start: list[dict], end: list[dict], background="black") -> dict:
    return {"start": start, "end": end, "scene": {"background": background}}


def _label(concepts: dict[str, list[str]], transitions: dict[str, tuple[str, str]] | None = None) -> PseudoLabel:
    return PseudoLabel(
        "v.mp4",
        concepts={c: [{"concept": n, "score": 1.0, "probability": 0.5} for n in ns] for c, ns in concepts.items()},
        transitions={c: {"early": e, "late": late, "support": 1.0} for c, (e, late) in (transitions or {}).items()},
    )


def test_the_lab_vocabulary_is_one_the_pseudo_labeller_loads_with_the_lab_concepts(tmp_path):
    (tmp_path / "concepts.json").write_text(json.dumps(concept_vocabulary()))
    vocab = load_vocabulary(write_lab_vocabulary(tmp_path, tmp_path / "out" / "vocab.json"))
    categories = {c.name: c for c in vocab.categories}
    assert list(categories) == ["objects", "sizes", "columns", "rows", "backgrounds"]
    assert len(categories["objects"].concepts) == 6 * 4 and "red circle" in categories["objects"].concepts
    assert categories["columns"].concepts == ("on the left", "in the centre", "on the right")
    # a change of column is named by the lab's own event phrase, as the lab's captions name it
    assert categories["columns"].events["on the left -> on the right"] == "moves from the left to the right"
    assert categories["sizes"].events["large -> small"] == "shrinks from large to small"
    assert categories["columns"].temporal and not categories["backgrounds"].temporal
    assert lab_vocabulary(concept_vocabulary())["synonyms"]["circle"] == ["circle", "ball", "disc"]


def test_precision_counts_a_concept_true_of_the_first_or_last_frame():
    # video 0: a red circle moves left -> right; video 1: a blue square, still, on a white background
    truths = [
        _truth([_state(column="left")], [_state(column="right")]),
        _truth([_state("blue", "square", "large", "centre", "middle")], [_state("blue", "square", "large", "centre",
                                                                                "middle")], "white"),
    ]
    labels = [
        _label({"objects": ["red circle", "blue circle"], "columns": ["on the right"], "backgrounds": ["white"]},
               {"columns": ("on the left", "on the right")}),  # the change is right; the background is wrong
        _label({"objects": ["red square", "blue square"], "columns": ["in the centre"], "backgrounds": ["white"]},
               {"columns": ("on the left", "in the centre")}),  # a change that did not happen
    ]
    rows, transitions = pseudo_precision(labels, truths, PHRASES, VOCAB)
    by = {r.category: r for r in rows}
    assert (by["objects"].top1, by["objects"].listed) == (50.0, 50.0)  # top-1: red circle yes, red square no
    assert by["objects"].chance == pytest.approx(100 / 24) and by["objects"].concepts == 24
    assert by["columns"].top1 == 100.0 and by["backgrounds"].top1 == 50.0
    assert math.isnan(by["sizes"].top1)  # no label names a size: NaN, not a made-up 0
    assert (transitions.written, transitions.correct, transitions.videos_with_change) == (2, 1, 1)
    assert transitions.percent == 50.0


def test_an_invisible_object_counts_for_nothing_and_sizes_compare_in_their_own_words():
    truths = [_truth([_state("green", "cross", "small", visible=False)], [_state("green", "cross", "large")])]
    labels = [_label({"objects": ["green cross"], "sizes": ["small"]}, {"sizes": ("small", "large")})]
    rows, transitions = pseudo_precision(labels, truths, PHRASES, VOCAB)
    by = {r.category: r for r in rows}
    assert by["objects"].top1 == 100.0  # visible at the end
    assert by["sizes"].top1 == 0.0  # small only while invisible
    assert (transitions.written, transitions.correct) == (1, 1)  # the start state still says where it began


def test_precision_refuses_labels_and_truths_that_do_not_pair_up():
    with pytest.raises(DatasetFormatError, match="2 pseudo-labels for 1 ground-truth"):
        pseudo_precision([_label({}), _label({})], [_truth([], [])], PHRASES, VOCAB)


def test_true_captions_become_a_pseudo_label_file_the_pair_pool_reads(tmp_path):
    folder = tmp_path / "videos"
    dataset = RetrievalDataset(
        "lab", "pool",
        [VideoItem("video3", str(folder / "video3.mp4")), VideoItem("video1", str(folder / "video1.mp4")),
         VideoItem("video9", str(folder / "video9.mp4"))],
        [Caption("video1", "a red circle"), Caption("video3", "a blue square"), Caption("video1", "a red ball")],
    )
    path = write_pseudo_labels(caption_labels(dataset, folder), tmp_path / "captions.jsonl")
    labels = read_pseudo_labels(path)
    assert [label.video for label in labels] == ["video3.mp4", "video1.mp4"]  # video9 has no caption: left out
    assert labels[1].text_list() == ["a red circle", "a red ball"]
    pool = pool_from_pseudo_labels(labels, torch.zeros(2, 3, 4), torch.ones(2, 3), lambda t: torch.ones(len(t), 5))
    assert pool.text_video.tolist() == [0, 1, 1] and pool.teacher.tolist() == [0.0, 0.0, 0.0]


def test_the_pool_folder_links_exactly_the_chosen_videos_and_never_removes_a_file(tmp_path):
    lab = tmp_path / "lab"
    (lab / "videos").mkdir(parents=True)
    for n in (2, 10, 7):
        (lab / "videos" / f"video{n}.mp4").write_bytes(b"x" * n)
    (lab / "pool_truth.json").write_text(json.dumps({"video10": {}, "video2": {}, "video7": {}}))
    assert list(read_pool_truth(lab)) == ["video2", "video7", "video10"]  # by number, not as text
    folder = link_pool(lab, tmp_path / "pool", ["video2", "video7", "video10"])
    assert sorted(p.name for p in folder.iterdir()) == ["video10.mp4", "video2.mp4", "video7.mp4"]
    link_pool(lab, folder, ["video2"])  # a smaller pool replaces the larger one
    assert [p.name for p in folder.iterdir()] == ["video2.mp4"] and (folder / "video2.mp4").read_bytes() == b"xx"
    with pytest.raises(DatasetFormatError, match="missing"):
        link_pool(lab, folder, ["video5"])
    with pytest.raises(DatasetFormatError, match="not only pool links"):
        link_pool(lab, lab / "videos", ["video2"])
    assert len(list((lab / "videos").iterdir())) == 3

