"""Text tracks of the lab: some test videos say one phrase (espeak-ng speech in an AAC track, with a sidecar .srt of
its timing) and show another (rendered into part of the frames), both about things the frames never depict.

The words come from vocabularies disjoint from the visual captions (cities, fruit and numbers are spoken; animals,
countries and two-digit numbers are shown), so a visual model cannot answer a query about them and every gain of
text search on these queries is the text's. Phrases keep natural function words ("from", "the"), which the visual
captions share, so fusion must not reward a match on them alone.

Three query sets per lab, next to its annotations (`annotations/queries_<set>.csv`: video_id, video, query, start,
end; the span is where the evidence is): `visual` (each test video's first caption, the whole clip), `spoken` (the
content words of the speech, the .srt cue's span) and `onscreen` (the shown phrase, the frames that show it).

A video with text is rendered at `TEXT_UPSCALE` times the lab's frame size so that its words stay legible to OCR;
the scene is the same scene at a finer resolution, and the index resizes it as it resizes every video.
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import wave
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import srt

from vitr.errors import ConfigError
from vitr.files import atomic_write

CITIES = ("lisbon", "oslo", "cairo", "lima", "dublin", "vienna", "madrid", "nairobi", "quito", "hanoi", "warsaw",
          "athens", "havana", "seoul", "prague", "berlin", "manila", "dakar", "kyoto", "zurich")
FRUITS = ("mangoes", "lemons", "apples", "pears", "plums", "cherries", "melons", "peaches", "figs", "grapes",
          "bananas", "apricots", "limes", "coconuts", "kiwis", "papayas")
NUMBER_WORDS = ("three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "fifteen",
                "twenty", "thirty", "forty", "fifty", "sixty", "ninety", "hundred")
ANIMALS = ("otter", "falcon", "badger", "walrus", "heron", "lynx", "beaver", "panda", "jackal", "moose", "koala",
           "tiger", "camel", "zebra", "parrot", "salmon")
COUNTRIES = ("norway", "peru", "kenya", "chile", "nepal", "japan", "ghana", "poland", "mexico", "egypt", "canada",
             "iceland", "brazil", "spain", "morocco", "finland")
SPEECH_TEMPLATES = ("{number} {fruit} from {city}", "we sold {number} {fruit} in {city}",
                    "the {city} order is {number} {fruit}", "{city} wants {number} {fruit}")
SPOKEN_QUERY = "{number} {fruit} in {city}"
SCREEN_TEXT = "{animal}\n{code}\n{country}"  # a word a line: PP-OCR reads caps words on one line as one
ONSCREEN_QUERY = "{animal} {code} {country}"
QUERY_SETS = ("visual", "spoken", "onscreen")
TEXT_UPSCALE = 4  # frames of a video with text: 4 x 64 = 256 pixels square
SAMPLE_RATE = 22_050  # espeak-ng's output rate
_SPEEDS = (175, 210, 250, 300)  # words per minute, tried in turn until the speech fits in the clip
_MARGIN = 0.1  # seconds of silence kept before and after the speech
_STREAM = 5  # the lab's random stream for text tracks (synth uses 0..4)
SPEECH_CAPACITY = len(NUMBER_WORDS) * len(FRUITS) * len(CITIES)  # distinct spoken phrases (fewer than shown ones)


@dataclass(frozen=True)
class TextTrackPlan:
    """What one video says and shows: the spoken sentence and its query, the shown phrase, its query and the
    frames [screen_start, screen_end) that show it, and where in the clip (a fraction of the free time) the speech
    starts."""

    video_id: str
    speech: str
    spoken_query: str
    screen: str
    onscreen_query: str
    screen_start: int
    screen_end: int
    speech_place: float


def content_words() -> set[str]:
    """Every word the spoken and shown phrases are built from (the function words of the templates aside)."""
    return {*CITIES, *FRUITS, *NUMBER_WORDS, *ANIMALS, *COUNTRIES}


def _chosen(index: int, share: float) -> bool:
    """Spreads exactly round(share * n) chosen videos evenly over indices 0..n-1."""
    return int((index + 1) * share + 0.5) > int(index * share + 0.5)


def plan_text_tracks(seed: int, video_ids: list[str], share: float, num_frames: int) -> dict[str, TextTrackPlan]:
    """Text tracks for round(share * n) of `video_ids` (spread evenly), each with a spoken and a shown phrase whose
    content words no other video shares all of, so each query has one true video. Deterministic from `seed`;
    adding videos at the end never changes an earlier video's plan."""
    chosen = sum(_chosen(i, share) for i in range(len(video_ids)))
    if chosen > SPEECH_CAPACITY:
        raise ConfigError(f"{chosen} videos with text tracks asked for; the vocabularies give {SPEECH_CAPACITY} "
                          "distinct spoken phrases")
    rng = np.random.default_rng([seed, _STREAM])
    plans: dict[str, TextTrackPlan] = {}
    used_speech: set[tuple[str, str, str]] = set()
    used_screen: set[tuple[str, str, str]] = set()
    for i, video_id in enumerate(video_ids):
        if not _chosen(i, share):
            continue
        number, fruit, city = _fresh(used_speech, lambda: (_pick(rng, NUMBER_WORDS), _pick(rng, FRUITS),
                                                            _pick(rng, CITIES)))
        animal, code, country = _fresh(used_screen, lambda: (_pick(rng, ANIMALS), str(rng.integers(10, 100)),
                                                              _pick(rng, COUNTRIES)))
        template = SPEECH_TEMPLATES[int(rng.integers(len(SPEECH_TEMPLATES)))]
        length = max(1, int(round(num_frames * rng.uniform(0.35, 0.55))))  # shown for about half the clip
        start = int(rng.integers(0, num_frames - length + 1))
        plans[video_id] = TextTrackPlan(
            video_id=video_id,
            speech=_sentence(template.format(number=number, fruit=fruit, city=city.title())),
            spoken_query=SPOKEN_QUERY.format(number=number, fruit=fruit, city=city),
            screen=SCREEN_TEXT.format(animal=animal, code=code, country=country).upper(),
            onscreen_query=ONSCREEN_QUERY.format(animal=animal, code=code, country=country),
            screen_start=start,
            screen_end=start + length,
            speech_place=float(rng.uniform()),
        )
    return plans


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _pick(rng: np.random.Generator, words: tuple[str, ...]) -> str:
    return words[int(rng.integers(len(words)))]


def _fresh(used: set[tuple[str, str, str]], draw: Callable[[], tuple[str, str, str]]) -> tuple[str, str, str]:
    """Draw until the triple is new (so its query has one true video), and remember it."""
    while (item := draw()) in used:
        pass
    used.add(item)
    return item


def require_espeak() -> str:
    """The espeak-ng executable, or a ConfigError that says how to install it."""
    found = shutil.which("espeak-ng")
    if found is None:
        raise ConfigError("lab videos with speech need espeak-ng: install it (Debian/Ubuntu: apt-get install "
                          "espeak-ng) or generate the lab without --text-tracks")
    return found


def synthesize(text: str, words_per_minute: int = 175) -> np.ndarray:
    """espeak-ng's speech of `text` -> (N,) int16 samples at SAMPLE_RATE, trimmed to where the voice is."""
    result = subprocess.run([require_espeak(), "--stdout", "-s", str(words_per_minute), text],
                            capture_output=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"espeak-ng failed on {text!r}: {result.stderr.decode(errors='replace').strip()}")
    with wave.open(io.BytesIO(result.stdout)) as wav:
        if wav.getframerate() != SAMPLE_RATE or wav.getnchannels() != 1 or wav.getsampwidth() != 2:
            raise RuntimeError(f"espeak-ng gave {wav.getframerate()} Hz x {wav.getnchannels()} channels; "
                               f"expected {SAMPLE_RATE} Hz mono 16-bit")
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), np.int16)
    voiced = np.flatnonzero(np.abs(pcm.astype(np.int32)) > 0.02 * max(1, int(np.abs(pcm.astype(np.int32)).max())))
    return pcm[voiced[0] : voiced[-1] + 1] if voiced.size else pcm


def speech_track(plan: TextTrackPlan, duration: float) -> tuple[np.ndarray, float, float]:
    """The clip's audio ((N,) int16 for `duration` seconds: silence, the speech, silence) and the speech's
    [start, end) in seconds. Spoken faster when the default pace does not fit."""
    room = duration - 2 * _MARGIN
    for speed in _SPEEDS:
        voice = synthesize(plan.speech, speed)
        if len(voice) / SAMPLE_RATE <= room:
            break
    else:
        raise ConfigError(f"the speech {plan.speech!r} does not fit a {duration:g} s clip even at {_SPEEDS[-1]} "
                          "words per minute; use longer lab videos")
    total = int(round(duration * SAMPLE_RATE))
    first = int(round((_MARGIN + plan.speech_place * (room - len(voice) / SAMPLE_RATE)) * SAMPLE_RATE))
    audio = np.zeros(total, np.int16)
    audio[first : first + len(voice)] = voice
    return audio, first / SAMPLE_RATE, (first + len(voice)) / SAMPLE_RATE


def draw_screen_text(frames: np.ndarray, plan: TextTrackPlan) -> np.ndarray:
    """frames: (T, S, S, 3) uint8 -> the same with the plan's phrase written near the bottom of frames
    [screen_start, screen_end): a word a line, centred, white letters with a dark outline, each line up to a tenth
    of the frame high."""
    from PIL import Image, ImageDraw, ImageFont

    size = frames.shape[1]
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    for points in range(max(8, size // 10), 5, -1):  # the largest font whose line fits in 94 % of the width
        font = ImageFont.load_default(size=points)
        left, top, right, bottom = measure.textbbox((0, 0), plan.screen, font=font, stroke_width=2, align="center")
        if right - left <= 0.94 * size:
            break
    out = frames.copy()
    for t in range(plan.screen_start, plan.screen_end):
        image = Image.fromarray(out[t])
        draw = ImageDraw.Draw(image)
        x, y = (size - (right - left)) // 2 - left, size - (bottom - top) - size // 20 - top
        draw.text((x, y), plan.screen, font=font, fill=(255, 255, 255), stroke_width=2, stroke_fill=(0, 0, 0),
                  align="center")
        out[t] = np.asarray(image)
    return out


def write_srt(path: Path, start: float, end: float, text: str) -> None:
    """One-cue SubRip file, written under a temporary name and renamed."""
    cue = srt.Subtitle(1, timedelta(seconds=start), timedelta(seconds=end), text)
    atomic_write(path, srt.compose([cue]))


def write_text_video(path: Path, frames: np.ndarray, plan: TextTrackPlan, fps: float) -> None:
    """A lab video with text tracks: the frames (already at the text resolution) with the shown phrase drawn in,
    the speech as its audio track, and `<stem>.srt` beside it (written first: an existing mp4 means a complete
    pair)."""
    from vitr.video.writer import write_video

    audio, start, end = speech_track(plan, len(frames) / fps)
    write_srt(path.with_suffix(".srt"), start, end, plan.speech)
    write_video(path, draw_screen_text(frames, plan), fps, audio=audio, sample_rate=SAMPLE_RATE)


def spoken_span(srt_path: Path) -> tuple[float, float]:
    """[start, end) of the speech, as the video's sidecar says."""
    cues = list(srt.parse(srt_path.read_text(encoding="utf-8")))
    return cues[0].start.total_seconds(), cues[-1].end.total_seconds()


def write_query_sets(annotations: Path, root: Path, tests: list[tuple[str, str]], plans: dict[str, TextTrackPlan],
                     fps: float, duration: float) -> dict[str, int]:
    """The three query sets as annotations/queries_<set>.csv. tests: (video_id, first caption) of every test video.
    Spoken spans come from the .srt files, so this runs after the videos are written. Returns rows per set."""
    rows: dict[str, list[list[object]]] = {name: [] for name in QUERY_SETS}
    for video_id, caption in tests:
        rows["visual"].append([video_id, f"videos/{video_id}.mp4", caption, 0.0, duration])
        plan = plans.get(video_id)
        if plan is None:
            continue
        start, end = spoken_span(root / "videos" / f"{video_id}.srt")
        rows["spoken"].append([video_id, f"videos/{video_id}.mp4", plan.spoken_query, start, end])
        rows["onscreen"].append([video_id, f"videos/{video_id}.mp4", plan.onscreen_query,
                                 round(plan.screen_start / fps, 3), round(plan.screen_end / fps, 3)])
    for name, lines in rows.items():
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["video_id", "video", "query", "start", "end"])
        writer.writerows(lines)
        atomic_write(annotations / f"queries_{name}.csv", buffer.getvalue())
    return {name: len(lines) for name, lines in rows.items()}


@dataclass(frozen=True)
class Query:
    """One query of a set and its truth: the video and the span where the evidence is."""

    video_id: str
    video: str
    query: str
    start: float
    end: float


def read_query_set(root: str | Path, name: str) -> list[Query]:
    """annotations/queries_<name>.csv of the lab at `root`."""
    path = Path(root) / "annotations" / f"queries_{name}.csv"
    if not path.is_file():
        raise ConfigError(f"{path} not found; generate the lab with `vitr synth --text-tracks FRACTION`")
    with open(path, encoding="utf-8", newline="") as f:
        return [Query(r["video_id"], r["video"], r["query"], float(r["start"]), float(r["end"]))
                for r in csv.DictReader(f)]
