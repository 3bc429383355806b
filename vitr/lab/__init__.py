"""The generated benchmark world (docs/lab.md): scenes, their captions, and the lab folder on disk."""

from vitr.lab.captions import LabCaption, concept_vocabulary, still_caption, temporal_caption, video_captions
from vitr.lab.synth import LabConfig, LabManifest, generate_lab, plan_videos, pretrain_item
from vitr.lab.world import Scene, SceneMix, SceneObject, Step, render_frame, render_video, reverse_scene, sample_scene

__all__ = [
    "LabCaption",
    "LabConfig",
    "LabManifest",
    "Scene",
    "SceneMix",
    "SceneObject",
    "Step",
    "concept_vocabulary",
    "generate_lab",
    "plan_videos",
    "pretrain_item",
    "render_frame",
    "render_video",
    "reverse_scene",
    "sample_scene",
    "still_caption",
    "temporal_caption",
    "video_captions",
]
