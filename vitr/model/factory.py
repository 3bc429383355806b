"""Build a `VideoTextModel` from a plain, serialisable description (stored with every index and checkpoint)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from vitr.backbones.registry import backbone_directory, is_backbone_directory, load_backbone
from vitr.backbones.weights import read_state_dict
from vitr.data.cache import file_digest
from vitr.errors import CheckpointError, ConfigError
from vitr.files import load_state_strict
from vitr.heads.base import create_head
from vitr.model.official import CONFIG_NAME, WEIGHTS_NAME, is_model_dir, load_described_model
from vitr.model.retrieval import VideoTextModel
from vitr.precision import run_dtypes


@dataclass
class ModelSpec:
    """Which backbone, which head and which fine-tuned weights; enough to rebuild the model anywhere."""

    backbone: str = "ViT-B-32"
    pretrained: str | None = None  # open_clip tag such as "openai" (downloads when online)
    weights: str | None = None  # local backbone weights: file or directory
    head: str = "meanP"
    head_kwargs: dict[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None  # vitr model weights, a `vitr convert` directory or an official CLIP4Clip/C2V file
    num_frames: int = 12
    precision: str = "fp32"
    random_init: bool = False  # an architecture with no weights gets seeded random ones (tests, smoke runs)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelSpec:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def build_model(spec: ModelSpec, device: str | torch.device = "cpu") -> VideoTextModel:
    """The model on `device`, its weights in the dtype `vitr.inference.plan.run_dtypes` gives for `spec.precision`
    there (fp32 under autocast on a GPU; the precision itself on a CPU)."""
    weights_precision, _ = run_dtypes(spec.precision, device)
    if spec.checkpoint:
        # A converted directory or an official file defines backbone and head itself; a non-default head forces one.
        forced_head = None if spec.head == ModelSpec.head else spec.head
        described = load_described_model(spec.checkpoint, forced_head, spec.head_kwargs, spec.num_frames,
                                          weights_precision)
        if described is not None:
            if spec.pretrained or spec.weights:
                raise ConfigError(f"{spec.checkpoint} holds its own CLIP weights; drop --pretrained/--weights")
            return described.to(device).eval()
    # A vitr checkpoint replaces every weight (strictly), so its backbone may start random.
    with _seeded(spec.random_init):
        backbone = load_backbone(spec.backbone, pretrained=spec.pretrained, weights=spec.weights, device=device,
                                 precision=weights_precision, random_init=spec.random_init or bool(spec.checkpoint))
        try:
            head = create_head(spec.head, backbone.embed_dim, num_frames=spec.num_frames, **spec.head_kwargs)
        except (KeyError, TypeError) as exc:  # an unknown head, or options it does not take
            raise ConfigError(f"cannot build head {spec.head!r} with options {spec.head_kwargs}: {exc}") from exc
    model = VideoTextModel(backbone, head.to(device))
    if spec.checkpoint:
        load_model_weights(model, spec.checkpoint)
    return model.eval()


def weights_identity(spec: ModelSpec) -> dict[str, Any]:
    """`spec` as a dict whose local paths are replaced by the sha256 of the bytes `build_model` reads there: the
    checkpoint (in a directory, the files it loads), `weights`, a backbone directory and a `pretrained` file.

    The same weights anywhere give the same identity and a file rewritten in place (a teacher retrained into the
    same run directory) another, so a cache of the model's outputs (TeachText's teacher bank) is keyed by what the
    model is, not where it lies. It reads every such byte once (about 0.4 s for a ViT-B/32 checkpoint's 600 MB
    in the page cache on a CPU with SHA instructions; a cold disk reads at its own speed); tags and hub names stand
    for themselves."""
    identity = spec.to_dict()
    if spec.checkpoint:
        path = Path(spec.checkpoint)
        read = ([CONFIG_NAME, WEIGHTS_NAME] if is_model_dir(path) else [WEIGHTS_NAME]) if path.is_dir() else None
        identity["checkpoint"] = _digest(path, read)
    if spec.weights:
        identity["weights"] = _digest(Path(spec.weights))
    directory = backbone_directory(spec.backbone)
    if directory is not None and directory.is_dir():
        identity["backbone"] = _digest(directory)
    if spec.pretrained and Path(spec.pretrained).is_file():
        identity["pretrained"] = _digest(Path(spec.pretrained))
    return identity


def _digest(path: Path, names: Sequence[str] | None = None) -> str:
    """`file_digest` of a file; of a directory, a sha256 over its files `names` (default: every file under it)
    with their relative names, so a renamed part changes it too."""
    if not path.is_dir():
        if not path.is_file():
            raise CheckpointError(f"weights file {str(path)!r} does not exist")
        return file_digest(path)
    files = [path / name for name in names] if names is not None else sorted(f for f in path.rglob("*") if f.is_file())
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.relative_to(path).as_posix()}\0{_digest(file)}\0".encode())
    return digest.hexdigest()


@contextmanager
def _seeded(random_init: bool) -> Iterator[None]:
    """Random weights asked for by `random_init` are the same in every process (an index built over several
    runs must not mix models); the caller's random state is left as it was."""
    if not random_init:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        yield


def load_model_weights(model: VideoTextModel, path: str | Path) -> None:
    """Load a trained model's state dict strictly (`vitr.files.load_state_strict`); a directory means its
    model.safetensors."""
    path = Path(path)
    if path.is_dir():
        if is_backbone_directory(path):
            raise ConfigError(
                f"{str(path)!r} holds a CLIP on its own (a backbone directory, as `vitr pretrain` writes), not a "
                f"trained vitr model: give it as the backbone (--model {path}, a recipe's model.backbone)"
            )
        path = path / WEIGHTS_NAME
    load_state_strict(model, read_state_dict(path), path)
