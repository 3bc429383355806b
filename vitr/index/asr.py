"""Speech: a video's audio decoded with PyAV (16 kHz mono), transcribed by a speech engine into timestamped spans.

Two engines share one small interface (`SpeechEngine.transcribe`): `faster-whisper` for quality (a model
directory the user provides, offline, or a model name it downloads; optional, not a dependency), and
`pocketsphinx`, whose wheel bundles an English model, as the offline fallback. The fallback is weak: on espeak-ng
speech it got most words wrong (POCKETSPHINX_WER, measured by benchmarks/text_sources.py), and vitr says so
whenever it is used.
"""

from __future__ import annotations

import io
import logging
from typing import Protocol

import av
import numpy as np

from vitr.errors import ConfigError
from vitr.index.text_tracks import TextSourceError, TextSpan
from vitr.video.decode import timeline_origin

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
ENGINES = ("pocketsphinx", "faster-whisper")
# Word error rate of pocketsphinx 5.1.1's bundled en-us model on espeak-ng speech (the en-us voice at 160 words a
# minute, 40 everyday sentences, 236 words), measured with benchmarks/text_sources.py; docs/text-search.md has it.
POCKETSPHINX_WER = 0.805
_MAX_SPAN_WORDS = 16  # a long utterance is cut into spans of at most this many words, so a hit says where
_FRAME_RATE = 100  # pocketsphinx's frames per second


class SpeechEngine(Protocol):
    name: str

    def transcribe(self, audio: np.ndarray) -> list[TextSpan]:
        """audio: (N,) float32 in [-1, 1] at 16 kHz mono -> spans (source "asr") timed from its start."""
        ...


def make_engine(name: str, model: str | None = None) -> SpeechEngine:
    """The engine called `name`, loaded now; a missing package or model is one clear ConfigError (for the run,
    not for each video)."""
    if name == "pocketsphinx":
        if model is not None:
            raise ConfigError("pocketsphinx uses its bundled English model; --asr-model is for faster-whisper")
        return PocketSphinxEngine()
    if name == "faster-whisper":
        return FasterWhisperEngine(model or "small")
    raise ConfigError(f"unknown speech engine {name!r}; choose one of {', '.join(ENGINES)}")


class PocketSphinxEngine:
    """CMU pocketsphinx with its bundled en-us model: voice activity segments, each decoded in full, its words
    timed by the decoder's frames (10 ms)."""

    name = "pocketsphinx"

    def __init__(self) -> None:
        try:
            from pocketsphinx import Decoder  # noqa: PLC0415 - loads a 30 MB model, only when speech is indexed
        except ImportError as exc:
            raise ConfigError(
                "speech recognition needs pocketsphinx: pip install 'pocketsphinx==5.1.1' (the `text` extra)"
            ) from exc
        self._decoder = Decoder(samprate=SAMPLE_RATE, loglevel="FATAL")
        logger.warning(
            "speech is transcribed by pocketsphinx, the offline fallback: it got %.1f%% of words wrong on synthetic "
            "speech (see docs/text-search.md); use --asr-engine faster-whisper --asr-model DIR where you can",
            100 * POCKETSPHINX_WER,
        )

    def transcribe(self, audio: np.ndarray) -> list[TextSpan]:
        from pocketsphinx import Segmenter  # noqa: PLC0415

        pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()
        spans = []
        for speech in Segmenter(sample_rate=SAMPLE_RATE).segment(io.BytesIO(pcm)):
            self._decoder.start_utt()
            self._decoder.process_raw(speech.pcm, full_utt=True)
            self._decoder.end_utt()
            words = [
                (_word(seg.word), speech.start_time + seg.start_frame / _FRAME_RATE,
                 speech.start_time + (seg.end_frame + 1) / _FRAME_RATE)
                for seg in self._decoder.seg()
            ]
            words = [w for w in words if w[0]]
            for at in range(0, len(words), _MAX_SPAN_WORDS):
                group = words[at : at + _MAX_SPAN_WORDS]
                text = " ".join(w for w, _, _ in group)
                spans.append(TextSpan(round(group[0][1], 3), round(group[-1][2], 3), text, "asr"))
        return spans


def _word(token: str) -> str:
    """A decoder token as a word: fillers (<s>, <sil>, [NOISE]) dropped, alternate pronunciations ("the(2)") named
    by their word."""
    if token.startswith(("<", "[", "+")):
        return ""
    return token.split("(", 1)[0]


class FasterWhisperEngine:
    """faster-whisper (CTranslate2 Whisper) on the CPU in int8: one span per segment it returns, timed by it.

    `model` is a directory holding a converted model (offline) or a model name ("small", "large-v3") that it
    downloads from the Hugging Face hub.
    """

    name = "faster-whisper"

    def __init__(self, model: str) -> None:
        try:
            from faster_whisper import WhisperModel  # noqa: PLC0415 - optional: not a dependency of vitr
        except ImportError as exc:
            raise ConfigError(
                "--asr-engine faster-whisper needs the faster-whisper package: pip install faster-whisper"
            ) from exc
        try:
            self._model = WhisperModel(model, device="cpu", compute_type="int8")
        except Exception as exc:  # noqa: BLE001 - a missing directory, no network, a broken model: one line
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"cannot load the faster-whisper model {model!r}: {text}") from exc

    def transcribe(self, audio: np.ndarray) -> list[TextSpan]:
        segments, _info = self._model.transcribe(audio, vad_filter=True)
        spans = []
        for segment in segments:
            text = " ".join(segment.text.split())
            if text:
                spans.append(TextSpan(round(segment.start, 3), round(segment.end, 3), text, "asr"))
        return spans


def decode_audio(video: str) -> tuple[np.ndarray, float] | None:
    """The first audio stream of `video` as (N,) float32 at 16 kHz mono, and the time of its first sample on
    vitr's timeline (`timeline_origin`: sound may begin before or after the picture); None where there is no
    audio stream.

    A stream that cannot be decoded, or holds no audio at all, is a TextSourceError with the reason.
    """
    try:
        with av.open(str(video)) as container:
            if not container.streams.audio:
                return None
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            chunks = []
            begins = None
            for frame in container.decode(stream):
                if begins is None and frame.time is not None:
                    begins = frame.time - timeline_origin(container)
                chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
            chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
    except (av.FFmpegError, ValueError) as exc:
        text = getattr(exc, "strerror", None) or (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise TextSourceError(f"the audio stream could not be decoded: {text}") from exc
    if not chunks:
        raise TextSourceError("the audio stream holds no decodable audio")
    return np.concatenate(chunks).astype(np.float32, copy=False), begins or 0.0


def read_speech(video: str, engine: SpeechEngine) -> list[TextSpan]:
    """What is said in `video` as spans (source "asr") on vitr's timeline; a video without audio has none."""
    decoded = decode_audio(video)
    if decoded is None:
        return []
    audio, begins = decoded
    try:
        spans = engine.transcribe(audio)
    except TextSourceError:
        raise
    except Exception as exc:  # noqa: BLE001 - engine internals raise their own types
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TextSourceError(f"{engine.name} failed: {text}") from exc
    return [span.shifted(begins) for span in spans] if begins else spans
