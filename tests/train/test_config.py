"""Config loading: YAML + typed dotted overrides; every mistake is a ConfigError naming the key."""

import pytest

from vitr.errors import ConfigError
from vitr.train.config import TrainConfig, load_config, save_config


def test_yaml_and_overrides_are_typed(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("model:\n  head: seqTransf\n  head_kwargs: {num_layers: 4}\nlr: 1e-4\nepochs: 3\n")
    cfg = load_config(
        path,
        [
            "lr=3e-4",
            "model.head_kwargs.num_layers=2",
            "betas=[0.9, 0.999]",
            "output_dir=2024",
            "model.pretrained=null",
            "loss_weights.tab=0.7",
            "precision=bf16",
        ],
    )
    assert cfg.model.head == "seqTransf"
    assert cfg.model.head_kwargs == {"num_layers": 2}
    assert cfg.lr == pytest.approx(3e-4) and isinstance(cfg.lr, float)
    assert cfg.epochs == 3
    assert cfg.betas == (0.9, 0.999)
    assert cfg.output_dir == "2024"  # a string field keeps the text as written
    assert cfg.model.pretrained is None
    assert cfg.loss_weights == {"tab": 0.7}
    assert cfg.precision == "bf16"
    assert cfg.weight_decay == 0.2  # untouched defaults stay


def test_defaults_without_a_file():
    cfg = load_config(None)
    assert cfg == TrainConfig()
    assert cfg.backbone_lr == pytest.approx(cfg.lr * 1e-3)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("lrr=1e-3", "unknown key 'lrr' in override 'lrr=1e-3'; did you mean 'lr'"),
        ("model.haed=meanP", "model.haed"),
        ("epochs=two", "epochs must be an integer"),
        ("epochs=2.5", "epochs must be an integer"),
        ("lr=fast", "lr must be a number"),
        ("precision=fp64", "precision must be one of"),
        ("distinct_videos=maybe", "distinct_videos must be true or false"),
        ("betas=[0.9]", "betas must have 2 items"),
        ("lr", "key=value"),
        ("lr.x=1", "lr must be a number"),
        ("batch_size=10", "not divisible by grad_accum"),
        ("warmup=1.5", "warmup"),
        ("lr=0", "lr must be positive"),
        ("model=meanP", "model must be a mapping"),
        ("loss_weights.tab=high", "loss_weights.tab must be a number"),
        ("epochs=true", "epochs must be an integer, got True"),  # lax pydantic would train 1 epoch
        ("wise_alpha=false", "wise_alpha must be a number"),
        ("distinct_videos=1", "distinct_videos must be true or false, got 1"),
        ("ps_scl.selection.stratify=0", "ps_scl.selection.stratify must be true or false"),
    ],
)
def test_bad_overrides_raise_config_error(override, message):
    overrides = [override, "grad_accum=4"] if override.startswith("batch_size") else [override]
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")) as caught:
        load_config(None, overrides)
    assert "\n" not in str(caught.value)


def test_file_errors_name_the_key_and_the_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("epochs: 3\nmodel:\n  num_frames: many\n")
    expected = r"model.num_frames must be an integer, got 'many' \(in config file .*run.yaml\)"
    with pytest.raises(ConfigError, match=expected):
        load_config(path)
    # The same key fixed on the command line: the override wins and the file loads.
    assert load_config(path, ["model.num_frames=8"]).model.num_frames == 8
    path.write_text("epochs: 3\nfreez: all\n")
    with pytest.raises(ConfigError, match=r"unknown key 'freez' in config file .*run.yaml; did you mean 'freeze'"):
        load_config(path, ["epochs=4"])
    path.write_text("batch_size: 10\ngrad_accum: 4\n")
    with pytest.raises(ConfigError, match=r"not divisible by grad_accum 4 \(in config file .*run.yaml\)"):
        load_config(path)


def test_bad_files_raise_config_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    listing = tmp_path / "list.yaml"
    listing.write_text("- lr\n- epochs\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(listing)
    broken = tmp_path / "broken.yaml"
    broken.write_text("lr: [1e-4\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)


def test_saved_config_loads_back_equal(tmp_path):
    cfg = load_config(None, ["model.head=tdb", "freeze_patterns=['*token_embedding*']", "epochs=7"])
    save_config(cfg, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == cfg
