"""Every recipe in configs/ loads, validates and names a model vitr can build; a misspelt key fails in one line."""

from pathlib import Path

import pytest

from vitr.backbones.registry import backbone_directory, names_architecture
from vitr.errors import ConfigError
from vitr.heads.base import available_heads, create_head
from vitr.train.config import TrainConfig, load_config

CONFIGS = sorted((Path(__file__).parents[2] / "configs").rglob("*.yaml"))


def test_the_repository_ships_recipes():
    assert CONFIGS, "configs/ holds the recipes"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_recipe_loads_and_names_a_buildable_model(path):
    config = load_config(path)
    assert isinstance(config, TrainConfig)
    assert path.read_text().lstrip().startswith("#"), f"{path.name} opens with a comment saying what it reproduces"
    spec = config.model
    assert spec.head in available_heads()
    create_head(spec.head, 64, num_frames=spec.num_frames, **spec.head_kwargs)  # the head accepts its options
    if names_architecture(spec.backbone):
        # An architecture name alone has no weights: build_model would refuse it (CheckpointError).
        assert spec.pretrained or spec.weights or spec.checkpoint, f"{path.name}: {spec.backbone} needs weights"
    else:
        directory = backbone_directory(spec.backbone)
        assert directory is not None and not directory.is_absolute(), f"{path.name}: a relative saved backbone"
        assert spec.pretrained is None and spec.weights is None, "a saved backbone directory holds its own weights"


def test_a_misspelt_key_in_a_recipe_is_one_line_naming_key_and_file(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(CONFIGS[0].read_text().replace("\nepochs:", "\nepoch:", 1))
    assert "epoch:" in recipe.read_text()
    with pytest.raises(ConfigError) as caught:
        load_config(recipe)
    message = str(caught.value)
    assert "\n" not in message
    assert "'epoch'" in message and str(recipe) in message and "'epochs'" in message


def test_a_misspelt_nested_key_names_the_valid_keys_nearby(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("model:\n  backbone: lab/clip\n  num_frame: 8\n")
    with pytest.raises(ConfigError, match=r"unknown key 'model.num_frame' in config file .*recipe.yaml; "
                                          r"did you mean 'model.num_frames'"):
        load_config(recipe)


def test_lab_recipes_hold_the_lab_methods():
    root = Path(__file__).parents[2] / "configs" / "lab"
    assert load_config(root / "supervised.yaml").ps_scl is None
    teachtext = load_config(root / "teachtext.yaml")
    assert [t.kind for t in teachtext.teachtext.teachers] == ["minilm", "bow"] and teachtext.teachtext.weight == 1.0
    ps_scl = load_config(root / "ps_scl.yaml")
    # the PS-SCL table's SeLeCT row (docs/results.md): TDB at 1e-3, text tower 1e-5, 5 epochs, stratified SeLeCT
    assert (ps_scl.model.head, ps_scl.lr, ps_scl.backbone_lr, ps_scl.epochs) == ("tdb", 1e-3, 1e-5, 5)
    assert ps_scl.ps_scl.forms == ["sentence", "temporal"] and ps_scl.ps_scl.anchor_weight == 0.0
    selection = ps_scl.ps_scl.selection
    assert (selection.rule, selection.tau, selection.stratify) == ("topk", 0.3, True)
    assert selection.t_k == 2.0  # the lab's T_k, also the CLI default


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("ps_scl:\n  selection:\n    tua: 0.5\n", r"unknown key 'ps_scl.selection.tua' .*'ps_scl.selection.tau'"),
        ("ps_scl:\n  forms: [sentences]\n", r"ps_scl.forms must be one of \['sentence', 'list'"),
        ("teachtext:\n  teachers:\n    - {kind: gpt}\n", r"teachtext.teachers\[0\].kind must be one of"),
        ("teachtext:\n  scores: logit\n", r"teachtext.scores must be one of \['cosine', 'logits'\]"),
        ("teachtext:\n  filter: {rule: rank, max_rnk: 5}\n", r"unknown key 'teachtext.filter.max_rnk'"),
    ],
)
def test_a_mistake_in_a_method_section_is_one_line_naming_the_key(tmp_path, section, message):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("model:\n  backbone: lab/clip\n" + section)
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(recipe)
    assert "\n" not in str(caught.value) and str(recipe) in str(caught.value)


def test_ps_scl_and_teachtext_combine_and_overrides_reach_into_sections(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("ps_scl: {pseudo_labels: p.jsonl}\nteachtext:\n  teachers: [{kind: bow}]\n")
    config = load_config(recipe, ["ps_scl.selection.tau=0.5", "teachtext.weight=2"])
    assert config.ps_scl.selection.tau == 0.5 and config.teachtext.weight == 2.0
    with pytest.raises(ConfigError, match="cached frame features"):
        load_config(recipe, ["freeze=none"])
