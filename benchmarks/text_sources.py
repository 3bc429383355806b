"""What OCR and speech recognition cost per minute of video, and how well the offline speech fallback hears.

- OCR: a minute of 640x360 video with a caption (two words) that changes every `--caption-s` seconds, read at one
  frame a second by `vitr.index.ocr` (repeated frames reuse the last result); then the same minute with a new
  caption every second, so every frame is read. Word accuracy is over the captions drawn.
- Speech: `--sentences` sentences of common words spoken by espeak-ng (en-us voice, 160 words a minute), each
  transcribed by pocketsphinx as `vitr index --text asr` does (voice activity segments, bundled en-us model); word
  error rate by word-level edit distance over all sentences, and seconds per minute of speech.

    python benchmarks/text_sources.py [--sentences 30] [--json out.json]

Needs espeak-ng (apt) and the `text` extra. The machine's load average is printed: on a shared machine the
seconds are an upper bound.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vitr.index.asr import decode_audio, make_engine  # noqa: E402
from vitr.index.ocr import OcrEngine, read_onscreen_text  # noqa: E402
from vitr.video.writer import write_video  # noqa: E402

WORDS = ("harbour lighthouse keeper ferry morning evening river garden window kitchen market station "
         "bridge mountain village forest winter summer yellow purple orange silver golden quiet").split()
SENTENCES = [
    "the ferry leaves the harbour at seven", "please open the kitchen window", "we walked along the river",
    "the market is closed on sunday", "my brother lives in a small village", "it was raining all morning",
    "turn left after the old bridge", "the children played in the garden", "she bought fresh bread and milk",
    "the train to the city is late", "one two three four five", "the lighthouse keeper lit the lamp",
    "we need more time to finish", "the mountain road is very steep", "can you call me tomorrow",
    "the coffee is too hot to drink", "he reads the paper every evening", "the door was painted green",
    "there are six eggs in the box", "the dog is sleeping by the fire", "the meeting starts at nine",
    "put the books on the table", "the winter was long and cold", "we had fish for dinner",
    "the station is next to the park", "the water in the lake is clear", "my phone battery is empty",
    "the shop sells shoes and hats", "the sun sets behind the hills", "open the box and look inside",
    "the baby is crying again", "we will meet at the market", "the music was far too loud",
    "the teacher wrote on the board", "they live in a yellow house", "the cat jumped over the wall",
    "the bus stops near the school", "i lost my keys yesterday", "the soup needs more salt",
    "the boat sailed across the bay",
]


def word_errors(reference: list[str], hypothesis: list[str]) -> int:
    """Word-level Levenshtein distance: substitutions + deletions + insertions."""
    row = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        previous, row[0] = row[0], i
        for j, hyp in enumerate(hypothesis, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ref != hyp))
    return row[-1]


def caption_video(path: Path, captions: list[str], seconds_each: float, fps: float = 4.0) -> Path:
    font = ImageFont.truetype("DejaVuSans-Bold.ttf", 40)
    frames = []
    for caption in captions:
        image = Image.new("RGB", (640, 360), (20, 30, 60))
        ImageDraw.Draw(image).text((40, 150), caption, fill=(255, 255, 255), font=font)
        frames.extend([np.asarray(image)] * round(seconds_each * fps))
    return write_video(path, np.stack(frames), fps=fps)


def bench_ocr(tmp: Path, caption_s: float) -> dict:
    engine = OcrEngine()
    rng = np.random.default_rng(0)
    result = {}
    for name, every in (("captions", caption_s), ("every_frame_new", 1.0)):
        captions = [f"{a.capitalize()} {b}" for a, b in rng.choice(WORDS, size=(round(60 / every), 2))]
        video = caption_video(tmp / f"{name}.mp4", captions, every)
        start, cpu = time.perf_counter(), time.process_time()
        spans = read_onscreen_text(str(video), engine, interval=1.0)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        read = " ".join(s.text for s in spans).casefold().split()
        drawn = " ".join(captions).casefold().split()
        found = sum(min(read.count(w), drawn.count(w)) for w in set(drawn))
        result[name] = {"caption_every_s": every, "s_per_video_minute": round(seconds, 1),
                        "cpu_s_per_video_minute": round(cpu, 1),
                        "word_accuracy": round(found / len(drawn), 3), "spans": len(spans)}
    return result


def bench_asr(tmp: Path, count: int) -> dict:
    engine = make_engine("pocketsphinx")
    errors = words = 0
    audio_s = compute_s = cpu_s = 0.0
    samples = []
    for i, sentence in enumerate(SENTENCES[:count]):
        wav = tmp / f"s{i}.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(wav), sentence], check=True)
        audio = decode_audio(str(wav))
        start, cpu = time.perf_counter(), time.process_time()
        spans = engine.transcribe(audio)
        compute_s, cpu_s = compute_s + time.perf_counter() - start, cpu_s + time.process_time() - cpu
        audio_s += len(audio) / 16000
        heard = " ".join(s.text for s in spans)
        errors += word_errors(sentence.split(), heard.split())
        words += len(sentence.split())
        samples.append((sentence, heard))
    return {"engine": "pocketsphinx 5.1.1 (bundled en-us)", "voice": "espeak-ng en-us, 160 wpm",
            "sentences": count, "words": words, "wer": round(errors / words, 3),
            "s_per_speech_minute": round(compute_s / audio_s * 60, 1),
            "cpu_s_per_speech_minute": round(cpu_s / audio_s * 60, 1), "examples": samples[:5]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=30)
    parser.add_argument("--caption-s", type=float, default=5.0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report = {
            "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores, "
                       f"load average {os.getloadavg()[0]:.1f} at start",
            "ocr": bench_ocr(Path(tmp), args.caption_s),
            "asr": bench_asr(Path(tmp), min(args.sentences, len(SENTENCES))),
        }
    report["machine"] += f", {os.getloadavg()[0]:.1f} at end"
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
