"""Generate the lab on disk: pretraining stills, labelled/unlabelled/test videos, twins, and annotation files.

Layout under `root` (everything deterministic from `LabConfig.seed`):

    lab_config.json            the config that made this folder (a different config refuses to resume here)
    concepts.json              the concept vocabulary (colours, shapes, sizes, positions, backgrounds, events)
    pretrain/images_NNN.npy    (N, S, S, 3) uint8 stills; pretrain/captions.jsonl: one static caption per still,
                               {"image": "images_000.npy/17", "shard": ..., "index": ..., "caption": ..., "tags": [...]}
    videos/<video_id>.mp4      train, pool and test videos; ids "video<N>" are unique across all splits
    videos_twins/<video_id>.mp4  the time-reversed twin of every temporal test video (frames in reverse order)
    annotations/               MSR-VTT files: MSRVTT_data.json (train and test videos with all their captions),
                               MSRVTT_train.9k.csv (labelled train videos), MSRVTT_JSFUSION_test.csv (one caption
                               per test video); lab_pool.csv (video_id of the unlabelled pool); lab_meta.json
                               (ground truth of every train/test/twin video, tags of every caption, twin ids)
    test.csv, test_twins.csv   the test split and the twins in the generic format (video path relative to `root`,
                               caption, ";"-separated tags; test_twins.csv adds `original`, the original's path)
    pool_truth.json            ground truth and captions of the pool, kept apart so training never reads them

So `load_dataset("msrvtt", root / "annotations", "train9k" | "test", video_dir=root / "videos")` and
`load_dataset("generic", root, "test" | "test_twins")` read the lab as they read real data.

Writing is resumable: an mp4 or shard that exists is complete (both are written under a temporary name and
renamed) and is skipped; annotation files are cheap and rewritten every run.
"""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from vitr.errors import ConfigError
from vitr.files import atomic_path, atomic_write
from vitr.lab.captions import LabCaption, concept_vocabulary, still_caption, video_captions
from vitr.lab.speech import (
    TEXT_UPSCALE,
    TextTrackPlan,
    plan_text_tracks,
    require_espeak,
    write_query_sets,
    write_text_video,
)
from vitr.lab.world import (
    Scene,
    SceneMix,
    frame_time,
    name_state,
    render_frame,
    render_video,
    reverse_scene,
    sample_scene,
    scene_to_dict,
    state_at,
)
from vitr.video.writer import write_video

SCALES: dict[str, dict[str, int]] = {
    "full": {"n_pretrain": 20_000, "n_train": 3_000, "n_pool": 5_000, "n_test": 1_000},
    # the main job's default: full's 1,000 test scenes and captions (the splits draw independent streams), fewer
    # stills, a small labelled split and no pool, so the whole job fits ten minutes on a 2-core AVX2 CPU
    "quick": {"n_pretrain": 10_000, "n_train": 200, "n_pool": 0, "n_test": 1_000},
    "tiny": {"n_pretrain": 48, "n_train": 12, "n_pool": 8, "n_test": 10},
}
# Independent random streams, so that adding pool videos never changes a test video.
_STREAMS = {"pretrain": 0, "train": 1, "pool": 2, "test": 3, "test_twins": 4}
VIDEO_SPLITS = ("train", "pool", "test")


@dataclass(frozen=True)
class LabConfig:
    """What to generate. `scale` fills the counts left as None ("full": the lab of docs/lab.md and docs/results.md;
    "quick": the main job's default; "tiny": tests)."""

    scale: str = "full"
    seed: int = 0
    n_pretrain: int | None = None
    n_train: int | None = None
    n_pool: int | None = None
    n_test: int | None = None
    captions_per_video: int = 5
    image_size: int = 64
    num_frames: int = 24
    fps: float = 8.0
    noise: float = 2.5  # std of the per-pixel Gaussian noise, in 0..255 units
    temporal_share: float = 0.5  # of videos (exact per split); the rest are static
    composed_share: float = 0.4  # of temporal videos: "A, then B"
    two_object_share: float = 0.4
    pretrain_empty_share: float = 0.05  # stills of an empty background
    shard_size: int = 5_000
    workers: int = 2  # processes writing files; does not change any output
    text_track_share: float = 0.0  # of test videos: speech, a sidecar .srt and on-screen text (vitr.lab.speech)

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise ConfigError(f"unknown lab scale {self.scale!r}; choose one of {list(SCALES)}")
        for name, value in SCALES[self.scale].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        if self.image_size < 16 or self.image_size % 2:
            raise ConfigError(f"image_size must be even and >= 16 (H.264 needs even sides), got {self.image_size}")
        if self.num_frames < 2:
            raise ConfigError(f"num_frames must be >= 2 for events to happen over time, got {self.num_frames}")
        for name in ("n_pretrain", "n_train", "n_pool", "n_test", "captions_per_video", "shard_size", "workers"):
            least = 0 if name.startswith("n_") else 1
            if getattr(self, name) < least:
                raise ConfigError(f"{name} must be >= {least}, got {getattr(self, name)}")
        for name in ("temporal_share", "composed_share", "two_object_share", "pretrain_empty_share",
                     "text_track_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {getattr(self, name)}")

    @classmethod
    def read(cls, root: str | Path) -> LabConfig:
        """The config that generated the lab folder `root` (its lab_config.json)."""
        stamp = Path(root) / "lab_config.json"
        if not stamp.is_file():
            raise ConfigError(f"{root} is not a lab folder (no lab_config.json); make one with `vitr synth`")
        return cls(**json.loads(stamp.read_text(encoding="utf-8")))

    def identity(self) -> dict[str, object]:
        """Every field that changes the generated files (all but `workers`; `text_track_share` only when set, so
        labs made before it existed keep their identity)."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name != "workers" and (f.name != "text_track_share" or self.text_track_share)}

    def mix(self, temporal: bool) -> SceneMix:
        return SceneMix(
            temporal_share=1.0 if temporal else 0.0,
            composed_share=self.composed_share,
            two_object_share=self.two_object_share,
        )


@dataclass(frozen=True)
class LabVideo:
    """One generated video: its id, split, scene and captions; twins point at their original and vice versa."""

    video_id: str
    split: str
    scene: Scene
    captions: tuple[LabCaption, ...]
    twin: str | None = None
    original: str | None = None  # set on a twin: its frames are the original's frames in reverse order


@dataclass(frozen=True)
class LabManifest:
    """What `generate_lab` produced, and how much of it this run wrote (the rest existed already)."""

    root: Path
    config: LabConfig
    split_ids: dict[str, list[str]]
    written: int
    skipped: int

    @property
    def video_dir(self) -> Path:
        return self.root / "videos"

    @property
    def twin_dir(self) -> Path:
        return self.root / "videos_twins"

    @property
    def annotation_dir(self) -> Path:
        return self.root / "annotations"

    @property
    def pretrain_dir(self) -> Path:
        return self.root / "pretrain"


def _is_temporal(index: int, share: float) -> bool:
    """Spreads exactly round(share * n) temporal videos evenly over indices 0..n-1 (no luck of the draw)."""
    return int((index + 1) * share + 0.5) > int(index * share + 0.5)


def _rng(config: LabConfig, stream: str, index: int) -> np.random.Generator:
    return np.random.default_rng([config.seed, _STREAMS[stream], index])


def plan_videos(config: LabConfig) -> list[LabVideo]:
    """Every video of the lab (train, pool, test, then twins) with its scene and captions; no file is touched."""
    videos: list[LabVideo] = []
    for split in VIDEO_SPLITS:
        for i in range(getattr(config, f"n_{split}")):
            rng = _rng(config, split, i)
            scene = sample_scene(rng, config.mix(_is_temporal(i, config.temporal_share)))
            captions = tuple(video_captions(scene, rng, config.captions_per_video))
            videos.append(LabVideo(f"video{len(videos)}", split, scene, captions))
    twins = []
    for i, video in enumerate(v for v in videos if v.split == "test" and v.scene.is_temporal):
        scene = reverse_scene(video.scene)
        captions = tuple(video_captions(scene, _rng(config, "test_twins", i), config.captions_per_video))
        twin_id = f"video{len(videos) + len(twins)}"
        twins.append(LabVideo(twin_id, "test_twins", scene, captions, original=video.video_id))
    by_id = {twin.original: twin.video_id for twin in twins}
    videos = [replace(v, twin=by_id.get(v.video_id)) for v in videos]
    return videos + twins


def pretrain_item(config: LabConfig, index: int) -> tuple[Scene, int, LabCaption]:
    """Still number `index`: a frame t of a random static or temporal scene, captioned statically."""
    rng = _rng(config, "pretrain", index)
    mix = replace(config.mix(rng.random() < config.temporal_share), empty_share=config.pretrain_empty_share)
    scene = sample_scene(rng, mix)
    t = int(rng.integers(config.num_frames))
    return scene, t, still_caption(scene, frame_time(t, config.num_frames), rng)


# ---------------------------------------------------------------------------------------------------------------
# File writing (runs in worker processes)


@dataclass(frozen=True)
class _VideoJob:
    path: Path
    scene: Scene
    reversed_frames: bool
    num_frames: int
    size: int
    noise: float
    fps: float
    text: TextTrackPlan | None = None  # rendered TEXT_UPSCALE times larger, with speech, .srt and on-screen text


@dataclass(frozen=True)
class _ShardJob:
    path: Path
    items: tuple[tuple[Scene, int], ...]
    num_frames: int
    size: int
    noise: float


def _run_job(job: _VideoJob | _ShardJob) -> None:
    if isinstance(job, _VideoJob):
        size = job.size * (TEXT_UPSCALE if job.text else 1)
        frames = render_video(job.scene, job.num_frames, size, job.noise)  # (T, S, S, 3)
        if job.reversed_frames:
            frames = np.ascontiguousarray(frames[::-1])
        if job.text:
            write_text_video(job.path, frames, job.text, job.fps)
        else:
            write_video(job.path, frames, job.fps)
        return
    images = np.stack([render_frame(scene, t, job.num_frames, job.size, job.noise) for scene, t in job.items])
    with atomic_path(job.path) as tmp, open(tmp, "wb") as f:
        np.save(f, images)  # (N, S, S, 3) uint8


def _shard_complete(path: Path, count: int, size: int) -> bool:
    if not path.exists():
        return False
    try:
        return np.load(path, mmap_mode="r").shape == (count, size, size, 3)
    except (OSError, ValueError):
        return False


def _run_all(jobs: list[_VideoJob | _ShardJob], workers: int, progress: bool) -> None:
    # smoothing 0: the ETA is the average rate so far, steadier than tqdm's default over files of mixed cost
    bar = tqdm(total=len(jobs), desc="lab", unit="file", disable=not progress, smoothing=0)
    if workers == 1 or len(jobs) < 2:
        for job in jobs:
            _run_job(job)
            bar.update()
    else:
        # spawn, not fork: the caller may hold threads (torch, tqdm) that a forked child would inherit half-locked
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            for done, _ in enumerate(pool.imap_unordered(_run_job, jobs, chunksize=4)):
                if done == 0:  # the clock starts once a worker has started (imports take seconds), or the first
                    bar.reset(total=len(jobs))  # ETA extrapolates that start-up over every file: hours, not minutes
                bar.update()
    bar.close()


# ---------------------------------------------------------------------------------------------------------------
# Annotation files


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, text)


def _write_json(path: Path, data: object) -> None:
    _write_text(path, json.dumps(data))


def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    _write_text(path, buffer.getvalue())


def ground_truth(video: LabVideo, config: LabConfig) -> dict[str, object]:
    """A video's ground truth: its scene, its event, and the named static state of each object at start and end."""

    def named(u: float) -> list[dict[str, object]]:
        return [{**asdict(name_state(s)), "visible": s.visible} for s in state_at(video.scene, u)]

    return {
        "split": video.split,
        "event": video.scene.event,
        "temporal": video.scene.is_temporal,
        "twin": video.twin,
        "original": video.original,
        "duration": config.num_frames / config.fps,
        "scene": scene_to_dict(video.scene),
        "start": named(0.0),
        "end": named(1.0),
    }


def _msrvtt_files(videos: list[LabVideo], config: LabConfig, annotations: Path) -> None:
    labelled = [v for v in videos if v.split in ("train", "test")]
    entries, sentences, captions_meta = [], [], []
    for number, video in enumerate(labelled):
        entries.append(
            {
                "category": 0,
                "url": f"lab://{video.video_id}",
                "video_id": video.video_id,
                "start time": 0.0,
                "end time": config.num_frames / config.fps,
                "split": video.split,
                "id": number,
            }
        )
        for caption in video.captions:
            sen_id = len(sentences)
            sentences.append({"caption": caption.text, "video_id": video.video_id, "sen_id": sen_id})
            captions_meta.append({"sen_id": sen_id, "video_id": video.video_id, "tags": list(caption.tags)})
    _write_json(annotations / "MSRVTT_data.json", {"videos": entries, "sentences": sentences})
    _write_csv(annotations / "MSRVTT_train.9k.csv", ["video_id"], [[v.video_id] for v in videos if v.split == "train"])
    tests = [v for v in videos if v.split == "test"]
    _write_csv(
        annotations / "MSRVTT_JSFUSION_test.csv",
        ["key", "vid_key", "video_id", "sentence"],
        [[f"ret{i}", f"msr{v.video_id[5:]}", v.video_id, v.captions[0].text] for i, v in enumerate(tests)],
    )
    _write_csv(annotations / "lab_pool.csv", ["video_id"], [[v.video_id] for v in videos if v.split == "pool"])
    meta = {
        "config": config.identity(),
        "videos": {v.video_id: ground_truth(v, config) for v in videos if v.split != "pool"},
        "sentences": captions_meta,
        "test_queries": [
            {"key": f"ret{i}", "video_id": v.video_id, "caption": v.captions[0].text, "tags": list(v.captions[0].tags)}
            for i, v in enumerate(tests)
        ],
    }
    _write_json(annotations / "lab_meta.json", meta)


def _generic_files(videos: list[LabVideo], root: Path) -> None:
    def where(video: LabVideo) -> str:
        return f"{'videos_twins' if video.split == 'test_twins' else 'videos'}/{video.video_id}.mp4"

    tests = [v for v in videos if v.split == "test"]
    _write_csv(
        root / "test.csv",
        ["video", "caption", "tags"],
        [[where(v), v.captions[0].text, ";".join(v.captions[0].tags)] for v in tests],
    )
    twins = [v for v in videos if v.split == "test_twins"]
    _write_csv(
        root / "test_twins.csv",
        ["video", "caption", "tags", "original"],
        [[where(v), v.captions[0].text, ";".join(v.captions[0].tags), f"videos/{v.original}.mp4"] for v in twins],
    )


def _pretrain_captions(config: LabConfig, path: Path) -> list[tuple[Scene, int]]:
    """Writes captions.jsonl; returns (scene, frame index) of every still, in order."""
    lines = []
    items = []
    for i in range(config.n_pretrain):
        scene, t, caption = pretrain_item(config, i)
        shard, index = f"images_{i // config.shard_size:03d}.npy", i % config.shard_size
        record = {"image": f"{shard}/{index}", "shard": shard, "index": index, "caption": caption.text}
        lines.append(json.dumps({**record, "tags": list(caption.tags)}))
        items.append((scene, t))
    _write_text(path, "\n".join(lines) + ("\n" if lines else ""))
    return items


# ---------------------------------------------------------------------------------------------------------------


def _check_root(root: Path, config: LabConfig) -> None:
    stamp = root / "lab_config.json"
    if stamp.exists():
        existing = json.loads(stamp.read_text(encoding="utf-8"))
        if existing != json.loads(json.dumps(config.identity())):
            changed = sorted(k for k in config.identity() if existing.get(k) != config.identity()[k])
            raise ConfigError(
                f"{root} holds a lab made with a different config (differs in {changed}); "
                "generate into a new folder or delete this one"
            )
    _write_json(stamp, config.identity())


def generate_lab(root: str | Path, config: LabConfig, progress: bool = True) -> LabManifest:
    """Write (or complete) the lab under `root`; see the module docstring for the layout.

    With `config.workers > 1` files are written by spawned processes, so a script calling this needs the usual
    `if __name__ == "__main__":` guard.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    _check_root(root, config)
    videos = plan_videos(config)
    _write_json(root / "concepts.json", concept_vocabulary())
    _msrvtt_files(videos, config, root / "annotations")
    _generic_files(videos, root)
    _write_json(
        root / "pool_truth.json",
        {
            v.video_id: {**ground_truth(v, config), "captions": [asdict(c) for c in v.captions]}
            for v in videos
            if v.split == "pool"
        },
    )

    pretrain_dir = root / "pretrain"
    pretrain_dir.mkdir(exist_ok=True)
    items = _pretrain_captions(config, pretrain_dir / "captions.jsonl")
    jobs: list[_VideoJob | _ShardJob] = []
    skipped = 0
    for start in range(0, config.n_pretrain, config.shard_size):
        chunk = tuple(items[start : start + config.shard_size])
        path = pretrain_dir / f"images_{start // config.shard_size:03d}.npy"
        if _shard_complete(path, len(chunk), config.image_size):
            skipped += 1
        else:
            jobs.append(_ShardJob(path, chunk, config.num_frames, config.image_size, config.noise))
    scenes = {video.video_id: video.scene for video in videos}
    tests = [v for v in videos if v.split == "test"]
    plans = plan_text_tracks(config.seed, [v.video_id for v in tests], config.text_track_share, config.num_frames)
    if plans:
        require_espeak()
    for video in videos:
        twin = video.split == "test_twins"
        path = root / ("videos_twins" if twin else "videos") / f"{video.video_id}.mp4"
        if path.exists():
            skipped += 1
            continue
        scene = scenes[video.original] if twin else video.scene  # a twin is rendered from its original, reversed
        jobs.append(_VideoJob(path, scene, twin, config.num_frames, config.image_size, config.noise, config.fps,
                              None if twin else plans.get(video.video_id)))
    (root / "videos").mkdir(exist_ok=True)
    (root / "videos_twins").mkdir(exist_ok=True)
    _run_all(jobs, min(config.workers, os.cpu_count() or 1), progress)
    if plans:
        write_query_sets(root / "annotations", root, [(v.video_id, v.captions[0].text) for v in tests], plans,
                         config.fps, config.num_frames / config.fps)

    split_ids: dict[str, list[str]] = {}
    for video in videos:
        split_ids.setdefault(video.split, []).append(video.video_id)
    return LabManifest(root, config, split_ids, written=len(jobs), skipped=skipped)
