"""`vitr synth --text-tracks`: lab videos that speak (an AAC track and a sidecar .srt timed to the voice) and show a
phrase on screen (in the frames the plan names), in words no visual caption uses, with three query sets."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import av
import numpy as np
import pytest

from vitr.errors import ConfigError
from vitr.lab import speech
from vitr.lab.speech import QUERY_SETS, TEXT_UPSCALE, content_words, plan_text_tracks, read_query_set, spoken_span
from vitr.lab.synth import LabConfig, generate_lab, plan_videos
from vitr.lab.world import render_video
from vitr.video.writer import write_video

CONFIG = LabConfig(scale="tiny", n_pretrain=0, n_train=0, n_pool=0, n_test=4, text_track_share=0.5, workers=1)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    root = tmp_path_factory.mktemp("textlab")
    generate_lab(root, CONFIG, progress=False)
    return root


def _plans() -> dict[str, speech.TextTrackPlan]:
    tests = [v.video_id for v in plan_videos(CONFIG) if v.split == "test"]
    return plan_text_tracks(CONFIG.seed, tests, CONFIG.text_track_share, CONFIG.num_frames)


def _audio(path: Path) -> tuple[np.ndarray, int] | None:
    """(N,) float samples of the first audio stream and its rate; None when the file has none."""
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return None
        rate = container.streams.audio[0].rate
        return np.concatenate([f.to_ndarray()[0] for f in container.decode(audio=0)]), rate


def test_speaking_videos_have_an_audio_track_whose_voice_sits_inside_the_srt_cue(lab: Path) -> None:
    plans = _plans()
    assert len(plans) == 2  # half of the four test videos, exactly
    for video_id in plans:
        decoded = _audio(lab / "videos" / f"{video_id}.mp4")
        assert decoded is not None, f"{video_id} has no audio track"
        samples, rate = decoded
        loud = np.flatnonzero(np.abs(samples) > 0.05 * np.abs(samples).max())
        voice = (loud[0] / rate, loud[-1] / rate)
        start, end = spoken_span(lab / "videos" / f"{video_id}.srt")
        assert 0.0 < start < end < CONFIG.num_frames / CONFIG.fps
        assert abs(voice[0] - start) < 0.1 and abs(voice[1] - end) < 0.1, (voice, (start, end))
    silent = [v.video_id for v in plan_videos(CONFIG) if v.split == "test" and v.video_id not in plans]
    for video_id in silent:
        assert _audio(lab / "videos" / f"{video_id}.mp4") is None
        assert not (lab / "videos" / f"{video_id}.srt").exists()


def test_the_shown_phrase_is_in_the_planned_frames_only(lab: Path) -> None:
    scenes = {v.video_id: v.scene for v in plan_videos(CONFIG)}
    for video_id, plan in _plans().items():
        with av.open(str(lab / "videos" / f"{video_id}.mp4")) as container:
            frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])  # (T, S, S, 3)
        size = CONFIG.image_size * TEXT_UPSCALE
        assert frames.shape == (CONFIG.num_frames, size, size, 3)
        plain = render_video(scenes[video_id], CONFIG.num_frames, size, CONFIG.noise)
        band = slice(size // 2, size)  # the phrase is written in the lower half, a word a line
        change = np.abs(frames[:, band].astype(int) - plain[:, band].astype(int)).mean(axis=(1, 2, 3))
        shown = np.zeros(CONFIG.num_frames, bool)
        shown[plan.screen_start : plan.screen_end] = True
        assert change[shown].min() > 3 * change[~shown].max(), change  # letters vs compression noise


def test_query_sets_name_each_video_once_with_its_span(lab: Path) -> None:
    plans = _plans()
    sets = {name: read_query_set(lab, name) for name in QUERY_SETS}
    assert len(sets["visual"]) == CONFIG.n_test
    assert {q.video_id for q in sets["spoken"]} == {q.video_id for q in sets["onscreen"]} == set(plans)
    for q in sets["spoken"]:
        assert q.query == plans[q.video_id].spoken_query
        assert (q.start, q.end) == spoken_span(lab / q.video.replace(".mp4", ".srt"))
    for q in sets["onscreen"]:
        plan = plans[q.video_id]
        assert (q.start, q.end) == (plan.screen_start / CONFIG.fps, plan.screen_end / CONFIG.fps)
        assert q.query.split() == plan.screen.lower().split()
    meta = json.loads((lab / "annotations" / "lab_meta.json").read_text())
    assert [q.query for q in sets["visual"]] == [t["caption"] for t in meta["test_queries"]]


def test_spoken_and_shown_words_are_never_in_a_visual_caption() -> None:
    config = LabConfig(scale="tiny", seed=3)
    caption_words = {w for v in plan_videos(config) for c in v.captions for w in re.findall(r"[a-z]+", c.text.lower())}
    assert not content_words() & caption_words
    plans = plan_text_tracks(0, [f"v{i}" for i in range(400)], 1.0, 24)
    assert len({p.spoken_query for p in plans.values()}) == len({p.onscreen_query for p in plans.values()}) == 400
    for plan in plans.values():  # each query's content words are all said (or shown) by its video
        assert set(plan.spoken_query.split()) - {"in"} <= set(plan.speech.lower().split())
        assert set(plan.onscreen_query.split()) <= set(plan.screen.lower().split())


def test_plans_are_deterministic_and_keep_earlier_videos_when_more_are_added() -> None:
    ids = [f"v{i}" for i in range(20)]
    assert plan_text_tracks(0, ids, 0.5, 24) == plan_text_tracks(0, ids, 0.5, 24)
    more = plan_text_tracks(0, ids + ["v20", "v21"], 0.5, 24)
    assert all(more[k] == v for k, v in plan_text_tracks(0, ids, 0.5, 24).items())
    assert plan_text_tracks(0, ids, 0.0, 24) == {}


def test_a_lab_without_text_tracks_keeps_its_identity_and_one_with_them_needs_espeak(tmp_path: Path,
                                                                                    monkeypatch) -> None:  # noqa: ANN001
    assert "text_track_share" not in LabConfig(scale="tiny").identity()
    assert LabConfig(scale="tiny", text_track_share=0.5).identity()["text_track_share"] == 0.5
    with pytest.raises(ConfigError, match="text_track_share"):
        LabConfig(scale="tiny", text_track_share=1.5)
    monkeypatch.setattr(speech.shutil, "which", lambda name: None)
    with pytest.raises(ConfigError, match="apt-get install espeak-ng"):
        generate_lab(tmp_path / "lab", CONFIG, progress=False)
    assert not list((tmp_path / "lab").glob("videos/*.mp4"))  # refused before any video was written


def test_write_video_rejects_audio_that_is_not_mono_int16(tmp_path: Path) -> None:
    frames = np.zeros((2, 16, 16, 3), np.uint8)
    with pytest.raises(ValueError, match="int16 mono"):
        write_video(tmp_path / "x.mp4", frames, audio=np.zeros((2, 100), np.int16))
    assert not list(tmp_path.iterdir())


def test_query_set_files_are_plain_csv(lab: Path) -> None:
    with open(lab / "annotations" / "queries_spoken.csv", newline="", encoding="utf-8") as f:
        assert next(csv.reader(f)) == ["video_id", "video", "query", "start", "end"]
    with pytest.raises(ConfigError, match="--text-tracks"):
        read_query_set(lab / "videos", "spoken")
