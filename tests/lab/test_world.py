import numpy as np
import pytest

from vitr.lab.world import (
    EVENTS,
    OBJECT_COLOURS,
    Scene,
    SceneMix,
    SceneObject,
    Step,
    frame_time,
    name_state,
    render_video,
    reverse_scene,
    sample_scene,
    scene_from_dict,
    scene_to_dict,
    state_at,
    write_scenes,
)

TEMPORAL = SceneMix(temporal_share=1.0, two_object_share=0.6)
OPPOSITE = {
    "move_right": "move_left",
    "move_left": "move_right",
    "move_up": "move_down",
    "move_down": "move_up",
    "grow": "shrink",
    "shrink": "grow",
    "appear": "disappear",
    "disappear": "appear",
}


def _scenes(seed: int, n: int, mix: SceneMix = SceneMix()) -> list[Scene]:
    rng = np.random.default_rng(seed)
    return [sample_scene(rng, mix) for _ in range(n)]


def test_same_seed_gives_identical_scenes_and_frames_and_another_seed_differs():
    a, b, c = _scenes(3, 5), _scenes(3, 5), _scenes(4, 5)
    assert a == b
    assert a != c
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(render_video(x, 8), render_video(y, 8))
    assert not np.array_equal(render_video(a[0], 8), render_video(c[0], 8))


def test_frames_have_the_configured_shape_and_static_frames_differ_only_by_light_noise():
    scene = _scenes(0, 1, SceneMix(temporal_share=0.0))[0]
    frames = render_video(scene, num_frames=6, size=32)
    assert frames.shape == (6, 32, 32, 3) and frames.dtype == np.uint8
    assert not np.array_equal(frames[0], frames[1])
    assert np.abs(frames[0].astype(int) - frames[1].astype(int)).mean() < 4


def test_a_still_scene_draws_each_object_in_its_colour_where_it_is():
    scene = Scene("black", (SceneObject("red", "square", x=0.2, y=0.8, radius=0.15),), (), noise_seed=1)
    frame = render_video(scene, 1, size=64, noise=0.0)[0].astype(int)
    assert frame[51, 13, 0] > 180 and frame[51, 13, 1:].max() < 80  # inside the square: red
    assert frame[13, 51].max() < 30  # top right: black background


def test_reversed_scene_reverses_every_event_and_the_order_of_composed_events():
    for scene in _scenes(1, 300, TEMPORAL):
        twin = reverse_scene(scene)
        expected = [OPPOSITE[step.event] for step in reversed(scene.steps)]
        assert [step.event for step in twin.steps] == expected
        assert twin.event == "_then_".join(expected)
        assert [s.event for s in reverse_scene(twin).steps] == [s.event for s in scene.steps]


def test_rendering_the_reversed_scene_gives_the_reversed_frames():
    """The twin's ground truth (and so its caption) describes exactly the frames played backwards."""
    for scene in _scenes(2, 40, TEMPORAL):
        frames = render_video(scene, 12, noise=0.0).astype(int)
        reversed_frames = render_video(reverse_scene(scene), 12, noise=0.0).astype(int)
        assert np.abs(frames[::-1] - reversed_frames).max() <= 1


def test_events_change_the_named_static_attribute_from_one_value_to_the_other():
    expected = {
        "move_right": ("column", "left", "right"),
        "move_left": ("column", "right", "left"),
        "move_down": ("row", "top", "bottom"),
        "move_up": ("row", "bottom", "top"),
        "grow": ("size", "small", "large"),
        "shrink": ("size", "large", "small"),
    }
    for event, (attribute, before, after) in expected.items():
        obj = SceneObject("blue", "circle", 0.5, 0.5, 0.08)
        src = {"column": 0.2, "row": 0.2, "size": 0.08}[attribute]
        dst = {"column": 0.8, "row": 0.8, "size": 0.15}[attribute]
        if before in ("right", "bottom", "large"):
            src, dst = dst, src
        step = Step(0, {"column": "x", "row": "y", "size": "radius"}[attribute], 0.2, 0.8, src, dst)
        scene = Scene("white", (obj,), (step,), 0)
        assert step.event == event
        assert getattr(name_state(state_at(scene, 0.0)[0]), attribute) == before
        assert getattr(name_state(state_at(scene, 1.0)[0]), attribute) == after
        halfway = {"column": "centre", "row": "middle", "size": None}[attribute]  # between small and large: unnamed
        assert getattr(name_state(state_at(scene, 0.5)[0]), attribute) == halfway


def test_appearing_object_is_absent_early_and_present_late():
    scene = Scene(
        "gray", (SceneObject("green", "cross", 0.5, 0.5, 0.15, 0.0),), (Step(0, "visible", 0.2, 0.8, 0, 1),), 5
    )
    assert scene.event == "appear"
    frames = render_video(scene, 8, noise=0.0).astype(int)
    background = frames[0, 0, 0]
    assert np.abs(frames[0] - background).max() <= 1
    assert np.abs(frames[-1, 32, 32] - background).max() > 60


def test_objects_never_overlap_and_are_told_apart_by_colour_or_shape():
    for scene in _scenes(5, 300, SceneMix(temporal_share=0.5, two_object_share=1.0)):
        a, b = scene.objects
        assert (a.colour, a.shape) != (b.colour, b.shape)
        assert a.colour != scene.background and b.colour != scene.background
        for t in range(24):
            sa, sb = state_at(scene, frame_time(t, 24))
            if sa.visible and sb.visible:
                assert np.hypot(sa.x - sb.x, sa.y - sb.y) > sa.radius + sb.radius


def test_scene_mix_controls_events_and_every_event_occurs():
    static = _scenes(6, 50, SceneMix(temporal_share=0.0))
    assert all(not s.is_temporal and s.event == "static" for s in static)
    temporal = _scenes(6, 400, TEMPORAL)
    seen = {step.event for s in temporal for step in s.steps}
    assert seen == set(EVENTS)
    assert any(len(s.steps) == 2 and s.steps[0].obj != s.steps[1].obj for s in temporal)
    assert any(len(s.steps) == 2 and s.steps[0].obj == s.steps[1].obj for s in temporal)


def test_scene_round_trips_through_plain_data():
    for scene in _scenes(7, 20, TEMPORAL):
        assert scene_from_dict(scene_to_dict(scene)) == scene


@pytest.mark.parametrize("event", ["appear", "disappear"])
def test_an_object_never_acts_while_it_is_invisible(event):
    for scene in _scenes(8, 400, SceneMix(temporal_share=1.0, composed_share=1.0, two_object_share=0.0)):
        events = [s.event for s in scene.steps]
        if event in events:
            assert events.index(event) == (0 if event == "appear" else len(events) - 1)


def test_a_wide_frame_keeps_shapes_round_and_exact_colours_when_asked():
    circle = SceneObject("red", "circle", x=0.5, y=0.5, radius=0.25)
    frame = render_video(Scene((20, 40, 60), (circle,), (), noise_seed=3), 1, (48, 96), noise=0.0, tint=False)[0]
    assert frame.shape == (48, 96, 3)
    assert tuple(frame[0, 0]) == (20, 40, 60)  # tint=False, noise=0: the colours as given
    red = np.all(frame == OBJECT_COLOURS["red"], axis=-1)
    rows, cols = np.flatnonzero(red.any(axis=1)), np.flatnonzero(red.any(axis=0))
    assert abs(len(rows) - len(cols)) <= 1 and abs(len(rows) - 0.5 * 48) <= 2  # a radius of the shorter side


def test_write_scenes_shows_each_scene_in_turn(tmp_path):
    import av

    scenes = [Scene(colour, (), (), noise_seed=0) for colour in ((200, 30, 30), (30, 30, 200))]
    path = write_scenes(tmp_path / "two.mp4", scenes, 3, fps=8.0, size=(32, 48), noise=0.0, tint=False)
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert [f.shape for f in frames] == [(32, 48, 3)] * 6
    means = np.array([f.reshape(-1, 3).mean(axis=0) for f in frames])
    assert np.all(np.abs(means[:3] - (200, 30, 30)) < 6) and np.all(np.abs(means[3:] - (30, 30, 200)) < 6)
