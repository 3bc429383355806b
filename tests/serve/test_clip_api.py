"""GET /api/videos/{id}/clip: a moment of an indexed video as an MP4 that plays, with its sound, with bounded,
validated times."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import av
import pytest

from tests.serve.conftest import Served, serve_folder
from tests.video.clips import TONE_RATE, decoded_sound


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Served:
    """The served folder, with red.mp4 sounding a tone."""
    result = serve_folder(tmp_path_factory.mktemp("served"), sound=True)
    yield result
    result.client.close()
    result.index.close()


def video_ids(served: Served) -> dict[str, int]:
    results = served.client.get("/api/search", params={"q": "a shape", "k": 10}).json()["results"]
    return {r["name"]: r["video_id"] for r in results}


def frame_count(data: bytes) -> tuple[int, float]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return frames, float(stream.duration * stream.time_base)


def seconds_of_sound(data: bytes, folder: Path) -> float | None:
    """How long the clip's decoded sound lasts; None when it has no audio stream."""
    (folder / "got.mp4").write_bytes(data)
    sound = decoded_sound(folder / "got.mp4")
    (folder / "got.mp4").unlink()
    return None if sound is None else len(sound[0]) / TONE_RATE


@pytest.fixture
def own_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Clips are cut into a temporary folder that is removed after the reply: make it one this test can see."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def test_a_moment_downloads_as_an_mp4_that_plays(served: Served, own_tmp: Path) -> None:
    red = video_ids(served)["red.mp4"]  # 4 s at 8 fps
    response = served.client.get(f"/api/videos/{red}/clip", params={"start": 1.0, "end": 2.5})
    assert response.status_code == 200 and response.headers["content-type"] == "video/mp4"
    assert response.headers["content-disposition"] == 'attachment; filename="red_1.0-2.5.mp4"'
    frames, duration = frame_count(response.content)
    assert frames == 12 and abs(duration - 1.5) < 1 / 8  # the asked 1.5 s, to one frame
    assert list(own_tmp.iterdir()) == []  # the cut is not left behind
    heard = seconds_of_sound(response.content, own_tmp)
    assert heard is not None and 0 <= heard - frames / 8 < 1024 / TONE_RATE  # the sound, to one AAC frame
    assert response.headers["x-clip-audio"] == "aac" and "x-clip-audio-error" not in response.headers


def test_an_end_past_the_video_is_cut_at_its_end(served: Served, tmp_path: Path) -> None:
    yellow = video_ids(served)["clips/yellow.mp4"]  # 2 s
    response = served.client.get(f"/api/videos/{yellow}/clip", params={"start": 1.5, "end": 60})
    assert response.status_code == 200
    assert response.headers["content-disposition"] == 'attachment; filename="yellow_1.5-2.0.mp4"'
    assert frame_count(response.content)[0] == 4
    assert seconds_of_sound(response.content, tmp_path) is None  # a silent video: a silent clip
    assert response.headers["x-clip-audio"] == "none" and "x-clip-audio-error" not in response.headers  # no fault


def test_why_the_sound_was_left_out_names_no_server_path_and_fits_a_header(
    served: Served, own_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reason may quote the video's path (a file name in any script) or another one: the header shows the file's
    name only, in printable ASCII."""
    import dataclasses

    import vitr.serve.app as app_module

    real_cut = app_module.cut_clip

    def cut_losing_sound(source, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        clip = real_cut(source, *args, **kwargs)
        reason = f"the audio stream could not be decoded: '{source}' (Grüße \u2014 /srv/private/x.aac)"
        return dataclasses.replace(clip, audio=False, audio_error=reason)

    monkeypatch.setattr(app_module, "cut_clip", cut_losing_sound)
    red = video_ids(served)["red.mp4"]
    response = served.client.get(f"/api/videos/{red}/clip", params={"start": 1.0, "end": 2.0})
    assert response.status_code == 200 and response.headers["x-clip-audio"] == "none"
    assert response.headers["x-clip-audio-error"] == (
        "the audio stream could not be decoded: 'red.mp4' (Gr??e ? <path>)")
    documented = served.client.get("/openapi.json").json()["paths"]["/api/videos/{video_id}/clip"]["get"]
    assert set(documented["responses"]["200"]["headers"]) == {"X-Clip-Audio", "X-Clip-Audio-Error"}


@pytest.mark.parametrize(
    ("params", "status", "detail"),
    [
        ({"start": 2, "end": 1}, 422, "end (1) must be after start (2)"),
        ({"start": 1, "end": 1}, 422, "end (1) must be after start (1)"),
        ({"start": 0, "end": 601}, 422, "a clip may last at most 600 s"),
        ({"start": 9, "end": 10}, 422, "start (9) is past the end of video"),
        ({"start": -1, "end": 1}, 422, "start: Input should be greater than or equal to 0"),
        ({"start": "nan", "end": 1}, 422, "start"),
        ({"end": 1}, 422, "start: Field required"),
    ],
)
def test_bad_times_are_refused_in_the_one_error_shape(served: Served, params, status, detail, own_tmp) -> None:  # noqa: ANN001
    red = video_ids(served)["red.mp4"]
    response = served.client.get(f"/api/videos/{red}/clip", params=params)
    assert response.status_code == status
    body = response.json()
    assert list(body) == ["detail"] and detail in body["detail"]
    assert str(served.root) not in body["detail"] and "/tmp" not in body["detail"]
    assert list(own_tmp.iterdir()) == []


@pytest.mark.parametrize(("video_id", "status"), [(999, 404), (0, 422), (2**63, 422), ("x", 422)])
def test_ids_are_bounded_like_the_other_video_routes(served: Served, video_id, status) -> None:  # noqa: ANN001
    response = served.client.get(f"/api/videos/{video_id}/clip", params={"start": 0, "end": 1})
    assert response.status_code == status and list(response.json()) == ["detail"]


def test_a_video_damaged_after_indexing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Sound that no longer decodes: the clip comes without it, and its headers (and the log) say why; a picture
    that no longer decodes: 422, without the video's path."""
    from tests.video.clips import write_undecodable_audio

    served = serve_folder(tmp_path)
    try:
        red = video_ids(served)["red.mp4"]
        write_undecodable_audio(served.root / "red.mp4", 32, 8)
        response = served.client.get(f"/api/videos/{red}/clip", params={"start": 1, "end": 2})
        assert response.status_code == 200 and frame_count(response.content)[0] == 8
        assert seconds_of_sound(response.content, tmp_path) is None
        assert response.headers["x-clip-audio"] == "none"
        assert response.headers["x-clip-audio-error"] == (
            "the audio stream could not be decoded: Invalid data found when processing input")
        assert f"clip of video {red} sent without sound: the audio stream could not be decoded" in caplog.text
        (served.root / "red.mp4").write_bytes(b"\x00" * 4096)
        response = served.client.get(f"/api/videos/{red}/clip", params={"start": 0, "end": 1})
        assert response.status_code == 422
        detail = response.json()["detail"]
        assert detail.startswith(f"cannot cut a clip of video {red}:") and str(tmp_path) not in detail
    finally:
        served.client.close()
        served.index.close()


def test_clips_beyond_the_concurrent_limit_get_a_503_and_the_slot_frees(
    served: Served, own_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from fastapi.testclient import TestClient

    import vitr.serve.app as app_module
    from vitr.errors import VideoDecodeError
    from vitr.serve.app import ServeSettings, create_app

    entered, release = threading.Event(), threading.Event()
    real_cut = app_module.cut_clip

    def slow_cut(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        entered.set()
        assert release.wait(30)
        return real_cut(*args, **kwargs)

    monkeypatch.setattr(app_module, "cut_clip", slow_cut)
    settings = ServeSettings(max_clip_exports=1, max_clip_s=2.0)
    app = create_app(served.index, [served.root], settings)
    first_client, second_client = TestClient(app), TestClient(app)  # two clients of one server
    limited = TestClient(create_app(served.index, [served.root], settings))  # another server, with its own slot
    red = video_ids(served)["red.mp4"]
    params = {"start": 0.0, "end": 1.0}
    replies = {}
    worker = threading.Thread(target=lambda: replies.update(first=first_client.get(f"/api/videos/{red}/clip",
                                                                                    params=params)))
    worker.start()
    try:
        assert entered.wait(30)
        busy = second_client.get(f"/api/videos/{red}/clip", params=params)
        assert busy.status_code == 503 and busy.headers["retry-after"] == "5"
        assert busy.json() == {"detail": "the server is already cutting 1 clips; try again in a few seconds"}
        too_long = second_client.get(f"/api/videos/{red}/clip", params={"start": 0.0, "end": 2.5})
        assert too_long.status_code == 422 and "at most 2 s" in too_long.json()["detail"]  # checked before a slot
    finally:
        release.set()
        worker.join(30)
    assert replies["first"].status_code == 200 and frame_count(replies["first"].content)[0] == 8
    again = second_client.get(f"/api/videos/{red}/clip", params=params)  # the slot was given back
    assert again.status_code == 200

    def failing_cut(source, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        raise VideoDecodeError(source, "damaged after indexing")

    monkeypatch.setattr(app_module, "cut_clip", failing_cut)
    assert limited.get(f"/api/videos/{red}/clip", params=params).status_code == 422
    monkeypatch.setattr(app_module, "cut_clip", real_cut)
    assert limited.get(f"/api/videos/{red}/clip", params=params).status_code == 200  # a failed cut frees its slot
    assert list(own_tmp.iterdir()) == []
    for client in (first_client, second_client, limited):
        client.close()
