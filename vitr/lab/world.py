"""The lab's procedural world: coloured shapes on plain backgrounds whose state changes over time.

A `Scene` is fully described by a few numbers (background, objects, timed steps), so its ground truth is known
exactly, a static description of any single frame can be derived from it, and its time-reversed twin is a
`Scene` too (`reverse_scene`). Every temporal event is a change of one static attribute between two named
values ("moves from the left to the right" = x goes from the left zone to the right zone; "grows" = radius
goes from small to large; "appears" = visible goes from 0 to 1), which is what lets a CLIP pretrained on still
frames compose it (docs/lab.md §1).

Coordinates are normalised: x grows to the right, y grows downwards, both in [0, 1]; `radius` is a fraction of
the frame's shorter side. Time `u` runs over [0, 1]; frame t of T is sampled at u = (t + 0.5) / T.

This is vitr's one synthetic video generator: the lab's videos and stills, the benchmarks' videos and the test
suite's fixture videos (shapes in named colours, flat frames whose colour encodes their index) are all scenes
rendered here and written by `write_scenes` (vitr.video.writer); frames may be any even size, not only square.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from vitr.video.writer import write_video

# name -> RGB; object colours are chosen to stay distinct from each other and from the backgrounds.
OBJECT_COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 190, 70),
    "blue": (50, 110, 255),
    "yellow": (240, 210, 20),
    "purple": (150, 60, 200),
    "orange": (250, 130, 20),
}
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "black": (10, 10, 10),
    "white": (245, 245, 245),
    "gray": (128, 128, 128),
    "blue": (25, 45, 130),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "cross")
SIZES: dict[str, float] = {"small": 0.08, "large": 0.15}
COLUMNS: dict[str, float] = {"left": 0.2, "centre": 0.5, "right": 0.8}
ROWS: dict[str, float] = {"top": 0.2, "middle": 0.5, "bottom": 0.8}

# A value is only named when it is clearly inside a zone, so static captions of in-between frames stay true.
_COLUMN_ZONES = (("left", 0.0, 0.3), ("centre", 0.4, 0.6), ("right", 0.7, 1.0))
_ROW_ZONES = (("top", 0.0, 0.3), ("middle", 0.4, 0.6), ("bottom", 0.7, 1.0))
_SMALL_MAX, _LARGE_MIN = 0.1, 0.13

# The attribute each event changes, and the direction: (attribute, value increases).
EVENTS: dict[str, tuple[str, bool]] = {
    "move_right": ("x", True),
    "move_left": ("x", False),
    "move_down": ("y", True),
    "move_up": ("y", False),
    "grow": ("radius", True),
    "shrink": ("radius", False),
    "appear": ("visible", True),
    "disappear": ("visible", False),
}
STATIC_EVENT = "static"

RGB = tuple[int, int, int]
FrameSize = int | tuple[int, int]  # a square side, or (height, width)


@dataclass(frozen=True)
class SceneObject:
    """One shape and its state at u = 0 (attributes changed by a `Step` follow the step instead)."""

    colour: str
    shape: str
    x: float
    y: float
    radius: float
    visible: float = 1.0


@dataclass(frozen=True)
class Step:
    """Attribute `attribute` of object `obj` goes from `src` to `dst` during [start, end] (linearly; `visible`
    switches at the midpoint)."""

    obj: int
    attribute: str
    start: float
    end: float
    src: float
    dst: float

    @property
    def event(self) -> str:
        increases = self.dst > self.src
        return next(name for name, (attr, up) in EVENTS.items() if attr == self.attribute and up == increases)

    def progress(self, u: float) -> float:
        return float(np.clip((u - self.start) / (self.end - self.start), 0.0, 1.0))


@dataclass(frozen=True)
class Scene:
    """A whole video (or a still, when it has no steps); `noise_seed` fixes its colour tints and pixel noise.

    `background` is a name from BACKGROUNDS, or an RGB triple for fixtures that need an exact colour (the lab's
    captions name only named backgrounds)."""

    background: str | RGB
    objects: tuple[SceneObject, ...]
    steps: tuple[Step, ...]
    noise_seed: int

    @property
    def event(self) -> str:
        """ "static", one event name, or "<first>_then_<second>"."""
        if not self.steps:
            return STATIC_EVENT
        return "_then_".join(step.event for step in self.steps)

    @property
    def is_temporal(self) -> bool:
        return bool(self.steps)


@dataclass(frozen=True)
class ObjectState:
    """An object at one instant."""

    colour: str
    shape: str
    x: float
    y: float
    radius: float
    visible: bool


@dataclass(frozen=True)
class NamedState:
    """The static concepts true of an object at one instant; None where the value sits between two zones."""

    colour: str
    shape: str
    size: str | None
    column: str | None
    row: str | None


def scene_to_dict(scene: Scene) -> dict:
    """The scene as plain JSON data (ground truth files)."""
    return asdict(scene)


def scene_from_dict(data: dict) -> Scene:
    """Inverse of `scene_to_dict`."""
    background = data["background"]
    return Scene(
        background=background if isinstance(background, str) else tuple(background),
        objects=tuple(SceneObject(**obj) for obj in data["objects"]),
        steps=tuple(Step(**step) for step in data["steps"]),
        noise_seed=int(data["noise_seed"]),
    )


def frame_time(t: int, num_frames: int) -> float:
    return (t + 0.5) / num_frames


def state_at(scene: Scene, u: float) -> list[ObjectState]:
    """Every object's state at time u in [0, 1]."""
    states = []
    for i, obj in enumerate(scene.objects):
        values = {"x": obj.x, "y": obj.y, "radius": obj.radius, "visible": obj.visible}
        for step in scene.steps:
            if step.obj != i:
                continue
            p = step.progress(u)
            if step.attribute == "visible":
                values["visible"] = step.dst if p > 0.5 else step.src
            else:
                values[step.attribute] = step.src + (step.dst - step.src) * p
        states.append(
            ObjectState(obj.colour, obj.shape, values["x"], values["y"], values["radius"], values["visible"] > 0.5)
        )
    return states


def _zone(value: float, zones: tuple[tuple[str, float, float], ...]) -> str | None:
    return next((name for name, low, high in zones if low <= value <= high), None)


def name_state(state: ObjectState) -> NamedState:
    """The static concepts of one object state (what a caption of a still frame may say about it)."""
    size = "small" if state.radius <= _SMALL_MAX else "large" if state.radius >= _LARGE_MIN else None
    return NamedState(state.colour, state.shape, size, _zone(state.x, _COLUMN_ZONES), _zone(state.y, _ROW_ZONES))


def reverse_scene(scene: Scene) -> Scene:
    """The scene played backwards: u -> 1 - u, so every step swaps src/dst and mirrors its interval, and the
    steps come in reverse order ("A, then B" becomes "reverse B, then reverse A")."""
    steps = tuple(Step(s.obj, s.attribute, 1.0 - s.end, 1.0 - s.start, s.dst, s.src) for s in reversed(scene.steps))
    return _settle_initial_state(replace(scene, steps=steps))


# ---------------------------------------------------------------------------------------------------------------
# Rendering


_SUPERSAMPLE = 3  # sub-pixels per pixel side, for antialiased edges


def _shape_mask(shape: str, dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    """dx, dy: offsets from the centre (normalised units) -> boolean inside-mask of the same shape."""
    if shape == "circle":
        return dx * dx + dy * dy <= r * r
    if shape == "square":
        half = 0.86 * r  # about the circle's area, so "large square" and "large circle" look equally large
        return (np.abs(dx) <= half) & (np.abs(dy) <= half)
    if shape == "triangle":
        # apex up, base at +0.8 r, half-width at the base = r
        top, base = -r, 0.8 * r
        height = base - top
        half_width = r * (dy - top) / height
        return (dy >= top) & (dy <= base) & (np.abs(dx) <= half_width)
    if shape == "cross":
        arm = 0.32 * r
        return ((np.abs(dx) <= r) & (np.abs(dy) <= arm)) | ((np.abs(dx) <= arm) & (np.abs(dy) <= r))
    raise ValueError(f"unknown shape {shape!r}; known: {SHAPES}")


def _draw(canvas: np.ndarray, state: ObjectState, colour: np.ndarray) -> None:
    """Alpha-composite one object into canvas (H, W, 3) float32, in place, with supersampled coverage.

    Offsets are measured in units of the shorter side, so a circle stays round in a wide frame."""
    height, width = canvas.shape[:2]
    side = min(height, width)
    r = state.radius
    rx, ry = r * (side / width), r * (side / height)  # the radius as a fraction of each axis
    x0 = max(int(np.floor((state.x - rx) * width)) - 1, 0)
    x1 = min(int(np.ceil((state.x + rx) * width)) + 1, width)
    y0 = max(int(np.floor((state.y - ry) * height)) - 1, 0)
    y1 = min(int(np.ceil((state.y + ry) * height)) + 1, height)
    if x0 >= x1 or y0 >= y1:
        return
    s = _SUPERSAMPLE
    xs = ((np.arange(x0 * s, x1 * s) + 0.5) / (width * s) - state.x) * (width / side)  # (w*s,)
    ys = ((np.arange(y0 * s, y1 * s) + 0.5) / (height * s) - state.y) * (height / side)  # (h*s,)
    inside = _shape_mask(state.shape, xs[None, :], ys[:, None], r)  # (h*s, w*s)
    coverage = inside.reshape(y1 - y0, s, x1 - x0, s).mean(axis=(1, 3), dtype=np.float32)[..., None]  # (h, w, 1)
    patch = canvas[y0:y1, x0:x1]
    patch += coverage * (colour - patch)


def _colours(scene: Scene, tint: bool) -> tuple[np.ndarray, list[np.ndarray]]:
    """Background (3,) and object [(3,)] colours, with per-video jitter when `tint` (small enough that every colour
    keeps its name)."""
    rng = np.random.default_rng([scene.noise_seed, 0])
    named = BACKGROUNDS[scene.background] if isinstance(scene.background, str) else scene.background
    background = np.asarray(named, np.float32)
    if tint:
        background = background + rng.uniform(-8, 8, 3).astype(np.float32)
    objects = []
    for obj in scene.objects:
        colour = np.asarray(OBJECT_COLOURS[obj.colour], np.float32)
        objects.append(colour + rng.uniform(-10, 10, 3).astype(np.float32) if tint else colour)
    return background, objects


def render_frame(
    scene: Scene, t: int, num_frames: int, size: FrameSize = 64, noise: float = 2.5, tint: bool = True
) -> np.ndarray:
    """Frame t of the scene's video -> (H, W, 3) uint8 (`size`: a side or (H, W)), with light Gaussian pixel noise
    (std `noise`); `tint=False` and `noise=0` give exactly the named colours (fixtures that read colours back)."""
    height, width = (size, size) if isinstance(size, int) else size
    background, colours = _colours(scene, tint)
    canvas = np.empty((height, width, 3), np.float32)
    canvas[:] = background
    for state, colour in zip(state_at(scene, frame_time(t, num_frames)), colours, strict=True):
        if state.visible:
            _draw(canvas, state, colour)
    if noise > 0:
        canvas += np.random.default_rng([scene.noise_seed, 1, t]).normal(0.0, noise, canvas.shape).astype(np.float32)
    return np.clip(np.rint(canvas), 0, 255).astype(np.uint8)


def render_video(
    scene: Scene, num_frames: int, size: FrameSize = 64, noise: float = 2.5, tint: bool = True
) -> np.ndarray:
    """The scene as (num_frames, H, W, 3) uint8 frames (see `render_frame`)."""
    return np.stack([render_frame(scene, t, num_frames, size, noise, tint) for t in range(num_frames)])


def write_scenes(
    path: str | Path,
    scenes: Scene | Sequence[Scene],
    frames_each: int,
    fps: float = 8.0,
    size: FrameSize = 64,
    noise: float = 2.5,
    tint: bool = True,
    **writer_options: Any,
) -> Path:
    """An H.264 mp4 showing each scene in turn, `frames_each` frames of it (a cut between scenes); options such
    as `rotation`, `times` or `pix_fmt` go to `vitr.video.writer.write_video`."""
    scenes = [scenes] if isinstance(scenes, Scene) else list(scenes)
    frames = np.concatenate([render_video(scene, frames_each, size, noise, tint) for scene in scenes])
    return write_video(path, frames, fps, **writer_options)


# ---------------------------------------------------------------------------------------------------------------
# Sampling


@dataclass(frozen=True)
class SceneMix:
    """How often each kind of scene is drawn."""

    temporal_share: float = 0.5  # scenes with at least one event
    composed_share: float = 0.4  # of temporal scenes: two events in sequence ("A, then B")
    two_object_share: float = 0.4  # scenes with a second object
    cross_object_share: float = 0.4  # of composed two-object scenes: the events happen to different objects
    empty_share: float = 0.0  # scenes with no object at all (pretraining stills)


_SINGLE_SEGMENT = (0.15, 0.85)
_COMPOSED_SEGMENTS = ((0.05, 0.45), (0.55, 0.95))
_POSITION_JITTER = 0.04
_SIZE_JITTER = 0.008
_MIN_GAP = 0.03  # free space kept between two objects in every frame
_MAX_LAYOUT_TRIES = 1000


def _plan_events(rng: np.random.Generator, mix: SceneMix, n_objects: int) -> list[tuple[int, str]]:
    """[(object, event)] in time order, at most one event per attribute of an object."""
    if rng.random() >= mix.temporal_share:
        return []
    events = list(EVENTS)
    if rng.random() >= mix.composed_share:
        return [(0, str(rng.choice(events)))]
    if n_objects == 2 and rng.random() < mix.cross_object_share:
        return [(0, str(rng.choice(events))), (1, str(rng.choice(events)))]
    while True:
        first, second = (str(e) for e in rng.choice(events, size=2, replace=False))
        same_attribute = EVENTS[first][0] == EVENTS[second][0]
        # an object cannot act before it appears or after it disappears
        if not same_attribute and first != "disappear" and second != "appear":
            return [(0, first), (0, second)]


def _initial_object(rng: np.random.Generator, colour: str, shape: str) -> SceneObject:
    def jitter(value: float, amount: float) -> float:
        return value + float(rng.uniform(-amount, amount))

    return SceneObject(
        colour=colour,
        shape=shape,
        x=jitter(float(rng.choice(list(COLUMNS.values()))), _POSITION_JITTER),
        y=jitter(float(rng.choice(list(ROWS.values()))), _POSITION_JITTER),
        radius=jitter(float(rng.choice(list(SIZES.values()))), _SIZE_JITTER),
    )


def _event_step(rng: np.random.Generator, obj: int, event: str, segment: tuple[float, float]) -> Step:
    attribute, increases = EVENTS[event]
    if attribute == "visible":
        low, high = 0.0, 1.0
    else:
        named = {"x": (COLUMNS["left"], COLUMNS["right"]), "y": (ROWS["top"], ROWS["bottom"])}
        jitter = _POSITION_JITTER
        if attribute == "radius":
            named[attribute], jitter = (SIZES["small"], SIZES["large"]), _SIZE_JITTER
        low, high = (v + float(rng.uniform(-jitter, jitter)) for v in named[attribute])
    start = segment[0] + float(rng.uniform(0.0, 0.04))
    end = segment[1] - float(rng.uniform(0.0, 0.04))
    return Step(obj, attribute, start, end, *((low, high) if increases else (high, low)))


def _overlaps(scene: Scene, num_checks: int = 24) -> bool:
    """True when two visible objects come closer than their radii plus a gap at any sampled time."""
    if len(scene.objects) < 2:
        return False
    for t in range(num_checks):
        a, b = state_at(scene, frame_time(t, num_checks))[:2]
        if a.visible and b.visible and np.hypot(a.x - b.x, a.y - b.y) < a.radius + b.radius + _MIN_GAP:
            return True
    return False


def sample_scene(rng: np.random.Generator, mix: SceneMix = SceneMix()) -> Scene:
    """A random scene; objects never overlap, and a second object always differs from the first in colour or
    shape, so "the red circle" names one object."""
    background = str(rng.choice(list(BACKGROUNDS)))
    noise_seed = int(rng.integers(2**31))
    if rng.random() < mix.empty_share:
        return Scene(background, (), (), noise_seed)
    colours = [c for c in OBJECT_COLOURS if c != background]
    n_objects = 2 if rng.random() < mix.two_object_share else 1
    looks = [(str(rng.choice(colours)), str(rng.choice(SHAPES)))]
    while len(looks) < n_objects:
        look = (str(rng.choice(colours)), str(rng.choice(SHAPES)))
        if look != looks[0]:
            looks.append(look)
    for attempt in range(_MAX_LAYOUT_TRIES):
        if attempt % 20 == 0:  # some event plans leave little room; draw a new plan now and then
            plan = _plan_events(rng, mix, n_objects)
            segments = [_SINGLE_SEGMENT] if len(plan) == 1 else list(_COMPOSED_SEGMENTS)
        objects = tuple(_initial_object(rng, colour, shape) for colour, shape in looks)
        steps = tuple(_event_step(rng, obj, event, seg) for (obj, event), seg in zip(plan, segments, strict=False))
        scene = _settle_initial_state(Scene(background, objects, steps, noise_seed))
        if not _overlaps(scene):
            return scene
    raise RuntimeError(f"no overlap-free layout found in {_MAX_LAYOUT_TRIES} tries")  # unreachable in practice


def _settle_initial_state(scene: Scene) -> Scene:
    """Make each object's stored state its state at u = 0, so `objects` reads as the first frame."""
    objects = tuple(
        replace(obj, x=s.x, y=s.y, radius=s.radius, visible=float(s.visible))
        for obj, s in zip(scene.objects, state_at(scene, 0.0), strict=True)
    )
    return replace(scene, objects=objects)
