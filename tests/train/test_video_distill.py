"""TeachText's video-side distillation from a recipe: a teacher reading more frames teaches a cheap student."""

import json

import pytest
import torch
import yaml

from tests.train.fakes import write_labelled_csv
from vitr.cli.main import main
from vitr.data.readers import load_dataset
from vitr.errors import ConfigError
from vitr.model.factory import ModelSpec, build_model
from vitr.teachers import ModelTeacher, TeacherBank
from vitr.train.checkpoint import LATEST, MODEL_FILE, resolve_checkpoint
from vitr.train.config import TeacherSpec, load_config
from vitr.train.video_distill import teacher_frames

BACKBONE = {"backbone": "vitr-lab-tiny", "random_init": True}
SETTINGS = {"epochs": 1, "batch_size": 4, "progress": False, "tensorboard": False, "lr": 1e-3, "backbone_lr": 1e-3}
STUDENT_FRAMES, TEACHER_FRAMES = 2, 8


pytestmark = pytest.mark.usefixtures("single_thread")  # tests/conftest.py


@pytest.fixture
def labelled(tmp_path):
    """Four 8-frame videos whose frames all differ, two captions each (generic CSV)."""
    return write_labelled_csv(tmp_path)


def _train(tmp_path, ann, name, **sections):
    recipe = tmp_path / f"{name}.yaml"
    recipe.write_text(yaml.safe_dump({**SETTINGS, "output_dir": str(tmp_path / name), **sections}))
    args = ["train", str(recipe), "--dataset", "generic", "--root", str(ann), "--split", "train", "--workers", "0"]
    return main([*args, "--cache", str(tmp_path / "cache")])


def _teacher_checkpoint(tmp_path, ann) -> str:
    """A CLIP2Video-style teacher (TDB+TAB) over 8 frames, trained by `vitr train` itself."""
    model = {**BACKBONE, "head": "clip2video", "num_frames": TEACHER_FRAMES}
    assert _train(tmp_path, ann, "teacher", model=model) == 0
    return str(resolve_checkpoint(tmp_path / "teacher" / "checkpoints", LATEST) / MODEL_FILE)


def _video_teachtext(checkpoint: str, weight: float = 1.0) -> dict:
    teacher = {**BACKBONE, "head": "clip2video", "num_frames": TEACHER_FRAMES, "checkpoint": checkpoint}
    return {"teachers": [{"kind": "video", "name": "slow", "model": teacher}], "weight": weight}


def test_the_video_teachers_bank_is_built_from_its_own_frames_and_the_student_trains_with_its_term(
    tmp_path, labelled, capsys
):
    checkpoint = _teacher_checkpoint(tmp_path, labelled)
    student = {**BACKBONE, "head": "meanP", "num_frames": STUDENT_FRAMES}
    run_dir = str(tmp_path / "teacher")  # the recipe names the teacher's run; its latest checkpoint teaches
    assert _train(tmp_path, labelled, "distilled", model=student, teachtext=_video_teachtext(run_dir)) == 0
    assert "trained 2 steps" in capsys.readouterr().out

    bank = TeacherBank.load(tmp_path / "distilled" / "teacher_bank.safetensors")
    dataset = load_dataset("generic", labelled, "train")
    assert bank.names == ["slow"] and bank.video_ids == [v.video_id for v in dataset.videos]
    assert bank.caption_ids == dataset.caption_ids()
    spec = ModelSpec(**BACKBONE, head="clip2video", num_frames=TEACHER_FRAMES, checkpoint=checkpoint)
    teacher = ModelTeacher(build_model(spec), "slow")
    own, own_mask = teacher_frames(teacher, TEACHER_FRAMES, dataset, tmp_path / "cache", workers=0)
    assert own.shape[1] == TEACHER_FRAMES and bool(own_mask.all())
    torch.testing.assert_close(bank.video[0], teacher.embed_videos(own, own_mask), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(bank.text[0], teacher.embed_texts([c.text for c in dataset.captions]))
    cheap, cheap_mask = teacher_frames(teacher, STUDENT_FRAMES, dataset, tmp_path / "cache", workers=0)
    assert not torch.allclose(bank.video[0], teacher.embed_videos(cheap, cheap_mask), atol=1e-3)


def test_the_students_loss_includes_the_video_term_at_its_weight(tmp_path, labelled):
    from vitr.train.pipeline import train

    checkpoint = _teacher_checkpoint(tmp_path, labelled)
    dataset = load_dataset("generic", labelled, "train")
    first_losses, weights = [], []
    for weight in (0.0, 1.0, 3.0):
        overrides = [f"{key}={value}" for key, value in SETTINGS.items()] + [
            f"model={json.dumps({**BACKBONE, 'num_frames': STUDENT_FRAMES})}",
            f"teachtext={json.dumps(_video_teachtext(checkpoint, weight))}",
            f"output_dir={tmp_path / f'w{weight}'}",
            "seed=3",
        ]
        config = load_config(None, overrides)
        model = build_model(config.model)
        trainer = train(model, config, dataset, tmp_path / "cache", workers=0)
        first_losses.append(trainer.history[0])
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    plain, once, thrice = first_losses  # the same first batch from the same weights: L_r + w * L_d
    assert once - plain > 0
    assert thrice - plain == pytest.approx(3 * (once - plain), rel=1e-4)
    assert not torch.equal(weights[0], weights[1])


def test_a_bad_video_teacher_is_one_line(tmp_path, labelled, capsys):
    teacher = {**BACKBONE, "head": "clip2video", "num_frames": 1, "checkpoint": "teacher.safetensors"}
    fewer = {"teachers": [{"kind": "video", "model": teacher}]}
    student = {**BACKBONE, "num_frames": STUDENT_FRAMES}
    assert _train(tmp_path, labelled, "fewer", model=student, teachtext=fewer) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "video teacher 'video' reads 1 frames, fewer than the student's 2" in err

    untrained = {"teachers": [{"kind": "video", "model": {**teacher, "num_frames": 8, "checkpoint": None}}]}
    assert _train(tmp_path, labelled, "untrained", model=student, teachtext=untrained) == 2
    assert "kind 'video' needs model.checkpoint" in capsys.readouterr().err.strip().splitlines()[-1]

    with pytest.raises(ConfigError, match="needs a `model:` spec"):
        TeacherSpec(kind="video")
