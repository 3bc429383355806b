import numpy as np

from vitr.backbones import load_backbone
from vitr.lab.knowledge import PROMPTS, held_out_stills, recognition
from vitr.lab.synth import LabConfig, pretrain_item
from vitr.lab.world import frame_time, name_state, render_frame, state_at


def test_held_out_stills_come_after_the_pretraining_set_and_show_one_object():
    config = LabConfig(scale="tiny")
    stills = held_out_stills(config, 12)
    expected = []
    index = config.n_pretrain  # the first still not pretrained on
    while len(expected) < 3:
        scene, t, _ = pretrain_item(config, index)
        shown = [s for s in state_at(scene, frame_time(t, config.num_frames)) if s.visible]
        if len(shown) == 1:
            expected.append((render_frame(scene, t, config.num_frames, config.image_size), name_state(shown[0])))
        index += 1
    for still, (image, named) in zip(stills, expected, strict=False):
        np.testing.assert_array_equal(still.image, image)
        assert still.named == named
    assert len(stills) == 12


def test_recognition_scores_every_attribute_against_its_classes():
    stills = held_out_stills(LabConfig(scale="tiny"), 16)
    results = recognition(load_backbone("vitr-lab-tiny", random_init=True), stills)
    assert set(results) == set(PROMPTS)
    for attribute, (accuracy, scored, classes) in results.items():
        assert classes == len(PROMPTS[attribute])
        assert scored <= len(stills) and (scored == 0 or 0.0 <= accuracy <= 1.0)
    assert results["colour"][1] == results["shape"][1] == results["background"][1] == len(stills)
