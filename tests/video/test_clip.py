"""`vitr clip` and vitr.video.clip on generated videos whose frames say their own index: the clip decodes, holds
the asked frames, and lasts what was asked (re-encode: to one frame; stream copy: to one GOP). Videos with a tone
that sounds in the first half of every second show that the clip's sound lasts as long as its picture and stays in
step with it."""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np
import pytest

from tests.cli.test_fast_cli import run_probe
from tests.video.clips import (
    TONE_RATE,
    burst_starts,
    decoded_sound,
    frame_indices,
    remux_late,
    tone_bursts,
    write_encoded_video,
    write_indexed_video,
    write_undecodable_audio,
)
from vitr.cli.main import main
from vitr.errors import ConfigError, VideoDecodeError
from vitr.video.clip import cut_clip

FPS = 8
GOP = 8  # frames between keyframes of the B-frame video
AAC_FRAME_S = 1024 / TONE_RATE  # the samples of one AAC frame, in seconds


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """80 frames (10 s) each: one as write_video makes it (no B-frames), one with B-frames and a keyframe every
    GOP frames as most cameras and encoders write; both silent, and both again with `tone_bursts` as their sound.
    The B-frame videos also as Matroska, whose demuxer gives the first packets after a seek no decode time."""
    folder = tmp_path_factory.mktemp("clip-sources")
    bframes = {"codec": {"g": str(GOP), "bf": "3"}}
    tone = tone_bursts(10.0)
    return {
        "plain": write_indexed_video(folder / "plain.mp4", 80, FPS),
        "bframes": write_encoded_video(folder / "bframes.mp4", 80, FPS, **bframes),
        "sound": write_indexed_video(folder / "sound.mp4", 80, FPS, audio=tone, sample_rate=TONE_RATE),
        "sound-bframes": write_encoded_video(folder / "sound-bframes.mp4", 80, FPS, audio=tone, **bframes),
        "bframes-mkv": write_encoded_video(folder / "bframes.mkv", 80, FPS, "matroska", **bframes),
        "sound-bframes-mkv": write_encoded_video(folder / "sound-bframes.mkv", 80, FPS, "matroska", audio=tone,
                                                 **bframes),
    }


def decoded(path: Path) -> np.ndarray:
    """The frame index of every frame of `path`, decoding all of it (a clip that does not play raises here)."""
    with av.open(str(path)) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert frames, f"{path} holds no decodable frame"
    return frame_indices(np.stack(frames))


@pytest.mark.parametrize("kind", ["plain", "bframes"])
@pytest.mark.parametrize(("start", "end"), [(3.3, 6.1), (0.0, 1.0), (5.1, 5.3), (9.5, 20.0)])
def test_a_reencoded_clip_holds_exactly_the_asked_frames(videos, tmp_path, kind, start, end) -> None:  # noqa: ANN001
    clip = cut_clip(videos[kind], start, end, tmp_path / "clip.mp4")
    shown = decoded(clip.path)
    first, stop = int(np.ceil(start * FPS - 1e-6)), min(80, int(np.ceil(end * FPS - 1e-6)))
    assert shown.tolist() == list(range(first, stop))  # every frame of the moment once, in order
    asked = min(end, 10.0) - start
    assert abs(len(shown) / FPS - asked) < 1 / FPS  # within one frame of the asked duration
    with av.open(str(clip.path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert abs(float(stream.duration * stream.time_base) - asked) < 1 / FPS + 1e-6
    assert clip.frames == len(shown) and not clip.copied
    assert not clip.audio and clip.audio_error is None  # a silent source cuts to a silent clip, no complaint


@pytest.mark.parametrize("kind", ["bframes", "bframes-mkv"])
@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
@pytest.mark.parametrize(("start", "end"), [(3.3, 6.1), (0.0, 1.0), (1.0, 2.0), (5.1, 5.3), (9.5, 20.0)])
def test_a_copied_clip_starts_on_a_keyframe_at_most_one_gop_early(videos, tmp_path, kind, suffix, start, end) -> None:  # noqa: ANN001
    clip = cut_clip(videos[kind], start, end, tmp_path / f"copy{suffix}", copy=True)
    shown = decoded(clip.path)
    first_asked, last_asked = int(np.ceil(start * FPS - 1e-6)), min(80, int(np.ceil(end * FPS - 1e-6))) - 1
    assert shown[0] % GOP == 0 and first_asked - GOP < shown[0] <= first_asked  # the keyframe before the start
    assert set(range(shown[0], last_asked + 1)) <= set(shown.tolist())  # the whole moment plays
    asked = min(end, 10.0) - start
    assert asked <= len(shown) / FPS < asked + GOP / FPS  # within one GOP of the asked duration
    assert shown.max() <= last_asked + 3  # past the end only frames that one shown before it refers to
    with av.open(str(clip.path)) as container, av.open(str(videos[kind])) as source:
        assert container.streams.video[0].codec_context.extradata == source.streams.video[0].codec_context.extradata
    assert clip.copied and clip.start == shown[0] / FPS and clip.frames == len(shown)
    assert not clip.audio and clip.audio_error is None


@pytest.mark.parametrize(
    ("kind", "copy"),
    [("sound", False), ("sound-bframes", False), ("sound-bframes", True), ("sound-bframes-mkv", True)],
)
@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
@pytest.mark.parametrize(("start", "end"), [(2.3, 5.6), (0.4, 2.2), (7.7, 20.0)])
def test_a_clip_keeps_the_sound_in_step_with_the_picture(videos, tmp_path, kind, copy, suffix, start, end) -> None:  # noqa: ANN001
    clip = cut_clip(videos[kind], start, end, tmp_path / f"clip{suffix}", copy=copy)
    assert clip.audio and clip.audio_error is None
    with av.open(str(clip.path)) as container:
        pictures = list(container.decode(video=0))
    shown = frame_indices(np.stack([p.to_ndarray(format="rgb24") for p in pictures]))
    origin = shown[0] / FPS - pictures[0].time  # the source time at the clip's time 0
    sound = decoded_sound(clip.path)
    assert sound is not None
    samples, first = sound
    heard = len(samples) / TONE_RATE
    if copy:  # whole audio packets from the keyframe's time: within one GOP of the picture
        assert abs(heard - len(shown) / FPS) < GOP / FPS
    else:  # the frames' span, up to the padding of the encoder's last frame
        assert abs(first - pictures[0].time) < 1 / TONE_RATE
        assert 0 <= heard - len(shown) / FPS < AAC_FRAME_S
    bursts = [t + origin for t in burst_starts(samples, first)]  # in source seconds: whole ones
    assert np.allclose(bursts, np.round(bursts), atol=2e-3)  # in step to 2 ms (the tone's first rise: 0.1 ms)
    span = (shown[0] / FPS, (shown[-1] + 1) / FPS)
    assert [round(t) for t in bursts] == [s for s in range(11) if span[0] + 0.2 < s < span[1] - 0.01]


def test_without_audio_the_clip_is_silent(videos, tmp_path) -> None:  # noqa: ANN001
    for copy in (False, True):
        clip = cut_clip(videos["sound-bframes"], 2.3, 5.6, tmp_path / "clip.mp4", copy=copy, audio=False)
        assert not clip.audio and clip.audio_error is None and decoded_sound(clip.path) is None
        assert decoded(clip.path).size == clip.frames


def test_sound_that_does_not_decode_leaves_the_clip_video_only(tmp_path) -> None:  # noqa: ANN001
    source = write_undecodable_audio(tmp_path / "broken sound.mp4", 40, FPS)
    clip = cut_clip(source, 1.0, 3.0, tmp_path / "clip.mp4")
    assert decoded(clip.path).tolist() == list(range(8, 24))  # the picture is all there
    assert not clip.audio and decoded_sound(clip.path) is None
    assert clip.audio_error == "the audio stream could not be decoded: Invalid data found when processing input"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken sound.mp4", "clip.mp4"]  # no temporary left


def test_sound_the_output_container_cannot_hold_is_left_out_of_a_copy(tmp_path) -> None:  # noqa: ANN001
    """G.711 µ-law sound, which QuickTime files hold and MP4 files cannot: copied into .mov, left out of .mp4."""
    source = write_encoded_video(tmp_path / "phone.mov", 40, FPS, container_format="mov", audio=tone_bursts(5.0),
                                 audio_codec="pcm_mulaw", codec={"g": str(GOP)})
    kept = cut_clip(source, 1.0, 3.0, tmp_path / "clip.mov", copy=True)
    assert kept.audio and decoded_sound(kept.path) is not None
    clip = cut_clip(source, 1.0, 3.0, tmp_path / "clip.mp4", copy=True)
    assert decoded(clip.path).tolist() == list(range(8, 24)) and decoded_sound(clip.path) is None
    assert not clip.audio
    assert clip.audio_error == "the audio stream cannot be copied into the clip: 'mp4' format does not support " \
        "'pcm_mulaw' codec"


@pytest.mark.parametrize("copy", [False, True])
def test_a_cut_whose_sound_fails_to_be_written_is_made_again_without_it(videos, tmp_path, monkeypatch, copy) -> None:  # noqa: ANN001
    """Whatever part of writing the sound fails (here the muxer, for the first audio packet), the picture is kept."""
    import vitr.video.clip as clip_module

    refused = av.FFmpegError(22, "Invalid argument")

    def mux_refusing_sound(self: av.container.OutputContainer, packets: object) -> None:
        items = packets if isinstance(packets, list) else [packets]
        if any(p.stream.type == "audio" for p in items if p is not None):
            raise refused
        real_mux(self, packets)

    real_mux = av.container.OutputContainer.mux
    monkeypatch.setattr(clip_module.av.container.OutputContainer, "mux", mux_refusing_sound)
    clip = cut_clip(videos["sound-bframes"], 2.3, 5.6, tmp_path / "clip.mp4", copy=copy)
    monkeypatch.undo()
    assert not clip.audio and decoded_sound(clip.path) is None and decoded(clip.path).size == clip.frames
    assert clip.audio_error == "the audio stream cannot be written into the clip: Invalid argument"


def test_a_copy_of_a_matroska_files_last_gop_shorter_than_its_reordering_keeps_its_frames(tmp_path) -> None:  # noqa: ANN001
    """Two frames after the last keyframe: the Matroska demuxer dates none of the packets the copy takes."""
    source = write_encoded_video(tmp_path / "short end.mkv", 74, FPS, "matroska", codec={"g": str(GOP), "bf": "3"})
    clip = cut_clip(source, 9.1, 20.0, tmp_path / "clip.mp4", copy=True)
    assert decoded(clip.path).tolist() == [72, 73]
    assert (clip.start, clip.end, clip.frames) == (9.0, 9.25, 2)


def test_a_copy_of_a_video_without_b_frames_ends_on_the_asked_frame(videos, tmp_path) -> None:  # noqa: ANN001
    shown = decoded(cut_clip(videos["plain"], 3.3, 6.1, tmp_path / "copy.mkv", copy=True).path)
    assert shown[-1] == 48 and shown.tolist() == list(range(shown[0], 49))


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (2.0, 1.0, "--end 1 must be after --start 2"),
        (2.0, 2.0, "--end 2 must be after --start 2"),
        (-1.0, 2.0, "--start -1 is negative"),
        (10.0, 12.0, "--start 10 is past the end of the video (10.000 s long)"),
        (float("nan"), 2.0, "finite"),
    ],
)
def test_impossible_times_are_refused_and_nothing_is_written(videos, tmp_path, start, end, message) -> None:  # noqa: ANN001
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        cut_clip(videos["plain"], start, end, tmp_path / "clip.mp4")
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_is_not_a_video_is_a_decode_error(tmp_path) -> None:  # noqa: ANN001
    (tmp_path / "notes.mp4").write_text("not a video")
    with pytest.raises(VideoDecodeError):
        cut_clip(tmp_path / "notes.mp4", 0, 1, tmp_path / "clip.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.mp4"]


def test_the_command_writes_a_clip_that_plays(videos, tmp_path, capsys) -> None:  # noqa: ANN001
    out = tmp_path / "moment.mp4"
    assert main(["clip", str(videos["bframes"]), "--start", "2.5", "--end", "4", "-o", str(out)]) == 0
    assert decoded(out).tolist() == list(range(20, 32))
    assert f"wrote {out}: 12 frames" in capsys.readouterr().out
    assert main(["clip", str(videos["bframes"]), "--start", "2.5", "--end", "4", "-o", str(out), "--copy"]) == 0
    assert decoded(out)[0] == 16
    assert "without sound" in capsys.readouterr().out


def test_the_command_keeps_the_sound_unless_told_not_to(videos, tmp_path, capsys) -> None:  # noqa: ANN001
    out = tmp_path / "moment.mp4"
    assert main(["clip", str(videos["sound"]), "--start", "2.5", "--end", "4", "-o", str(out)]) == 0
    assert capsys.readouterr().out.strip().endswith("with sound") and decoded_sound(out) is not None
    assert main(["clip", str(videos["sound"]), "--start", "2.5", "--end", "4", "-o", str(out), "--no-audio"]) == 0
    assert capsys.readouterr().out.strip().endswith("without sound") and decoded_sound(out) is None
    assert decoded(out).tolist() == list(range(20, 32))


def test_the_command_says_in_one_line_why_the_sound_was_left_out(tmp_path, capsys) -> None:  # noqa: ANN001
    source, out = write_undecodable_audio(tmp_path / "v.mp4", 40, FPS), tmp_path / "moment.mp4"
    assert main(["clip", str(source), "--start", "1", "--end", "3", "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip().endswith("without sound") and decoded(out).size == 16
    assert captured.err.splitlines() == [
        "vitr clip: warning: the clip has no sound: the audio stream could not be decoded: Invalid data found when "
        "processing input"
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["clip", "v.mp4", "--start", "5", "--end", "2", "-o", "c.mp4"], "--end 2 must be after --start 5"),
        (["clip", "missing.mp4", "--start", "0", "--end", "2", "-o", "c.mp4"], "video missing.mp4 does not exist"),
        (["clip", "v.mp4", "--start", "0", "--end", "2", "-o", "c.avi"], "cannot tell the format of c.avi"),
        (["clip", "v.mp4", "--start", "0", "--end", "2", "-o", "no/such/c.mp4"],
         "cannot write no/such/c.mp4: the folder no/such does not exist"),
        (["clip", "v.mp4", "--start", "x", "--end", "2", "-o", "c.mp4"], "argument --start: invalid float value"),
    ],
)
def test_user_errors_are_one_line_before_heavy_imports(tmp_path, argv, message) -> None:  # noqa: ANN001
    (tmp_path / "v.mp4").write_bytes(b"")
    code, heavy, err = run_probe(*argv, cwd=tmp_path)
    assert code == 2 and heavy == []
    assert err.startswith("usage: vitr clip ") and err.splitlines()[-1].startswith(f"vitr clip: error: {message}")
    assert "Traceback" not in err


def test_an_unwritable_output_folder_is_a_one_line_error(tmp_path) -> None:  # noqa: ANN001
    (tmp_path / "v.mp4").write_bytes(b"")
    (tmp_path / "locked").mkdir(mode=0o500)
    if os.access(tmp_path / "locked", os.W_OK):
        pytest.skip("running as root: a read-only folder is still writable")
    code, heavy, err = run_probe("clip", "v.mp4", "--start", "0", "--end", "2", "-o", "locked/c.mp4", cwd=tmp_path)
    assert code == 2 and heavy == []
    assert err.splitlines()[-1] == "vitr clip: error: cannot write locked/c.mp4: the folder locked is not writable"


def test_a_start_past_the_end_is_a_one_line_error(videos, tmp_path, capsys) -> None:  # noqa: ANN001
    out = tmp_path / "clip.mp4"
    assert main(["clip", str(videos["plain"]), "--start", "11", "--end", "12", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == "vitr clip: error: --start 11 is past the end of the video (10.000 s long)"
    assert not out.exists()


@pytest.mark.parametrize("copy", [False, True])
def test_a_file_whose_timestamps_begin_late_is_cut_on_the_videos_own_clock(videos, tmp_path, copy) -> None:  # noqa: ANN001
    """An MPEG-TS recording's timestamps begin seconds in: the moment 3.3-6.1 s is its picture's, as vitr gives it."""
    late = remux_late(videos["sound-bframes"], tmp_path / "recording.ts", 10.0)
    clip = cut_clip(late, 3.3, 6.1, tmp_path / "clip.mp4", copy=copy)
    shown = decoded(clip.path)
    if copy:
        assert shown[0] % GOP == 0 and 27 - GOP < shown[0] <= 27 and clip.start == pytest.approx(shown[0] / FPS)
    else:
        assert shown.tolist() == list(range(27, 49)) and clip.start == pytest.approx(27 / FPS)
    assert clip.end == pytest.approx((shown.max() + 1) / FPS if copy else 6.1, abs=1e-3) and clip.audio
