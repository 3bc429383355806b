"""Pseudo-label videos: frames -> frozen CLIP -> concepts -> pseudo-texts scored by the same CLIP, as JSONL.

One JSON object per line, readable by eye and by `read_pseudo_labels`:

    {"video": "clips/a.mp4", "concepts": {"objects": [{"concept": "dog", "score": 0.75, "probability": 0.31}]},
     "transitions": {"scenes": {"early": "beach", "late": "ocean", "support": 1.0}},
     "texts": [{"text": "a video of someone surfing with a surfboard in a beach.", "form": "sentence",
                "score": 0.27}]}

`score` of a text is the frozen teacher's cosine between the video (mean of its unit frame embeddings) and the
text, the offline pair score r of ps_scl.md §6 (a), used by SeLeCT's teacher score and for text sampling.
"""

from __future__ import annotations

import json
import logging
import random
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from vitr.backbones.base import Backbone
from vitr.data.readers.files import VIDEO_EXTENSIONS
from vitr.errors import DatasetFormatError
from vitr.files import atomic_path, atomic_write
from vitr.inference.extract import encode_pixels, frame_spec_for
from vitr.pseudo.prompts import TemplateMode, encode_prompts
from vitr.pseudo.tagging import Aggregation, ConceptTagger, VideoConcepts
from vitr.pseudo.texts import FORMS, Changed, PseudoText, write_pseudo_texts
from vitr.pseudo.vocab import Vocabulary
from vitr.video.loader import DecodeFailure, iter_decoded

log = logging.getLogger(__name__)


@dataclass
class PseudoLabel:
    """One video's recognised concepts and pseudo-texts."""

    video: str
    concepts: dict[str, list[dict]] = field(default_factory=dict)  # category -> [{concept, score, probability}]
    transitions: dict[str, dict] = field(default_factory=dict)  # category -> {early, late, support}
    texts: list[dict] = field(default_factory=list)  # [{text, form, score}]

    def text_list(self, forms: Sequence[str] | None = None) -> list[str]:
        return [t["text"] for t in self.texts if forms is None or t["form"] in forms]

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)


@dataclass
class LabelReport:
    written: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # video path -> reason


class PseudoLabeler:
    """Tags frame embeddings against a vocabulary and writes scored pseudo-texts (teacher = `backbone`, frozen)."""

    def __init__(
        self,
        backbone: Backbone,
        vocabulary: Vocabulary,
        template_mode: TemplateMode = "ensemble",
        aggregation: Aggregation = "count",
        forms: tuple[str, ...] = FORMS,
        temporal: bool = True,
        num_frames: int = 8,
        paraphrases: int = 0,
        changed: Changed = "keep",
        autocast_precision: str = "fp32",
    ) -> None:
        self.backbone = backbone
        self.autocast_precision = autocast_precision  # the frame encoder's autocast ("fp32": none), see run_dtypes
        self.vocabulary = vocabulary
        self.forms = forms if temporal else tuple(f for f in forms if f != "temporal")
        self.num_frames = num_frames
        self.paraphrases = paraphrases
        self.changed = changed
        self.tagger = ConceptTagger(backbone, vocabulary, template_mode, aggregation, temporal=temporal)

    @torch.inference_mode()
    def label_features(self, names: Sequence[str], frames: torch.Tensor, mask: torch.Tensor) -> list[PseudoLabel]:
        """names (N,), frame embeddings (N, T, D), mask (N, T) -> one `PseudoLabel` per video."""
        found = self.tagger.tag(frames, mask)
        texts = [
            write_pseudo_texts(
                f,
                self.vocabulary,
                self.forms,
                self.paraphrases,
                random.Random(zlib.crc32(str(n).encode())),
                self.changed,
            )
            for n, f in zip(names, found, strict=True)
        ]  # paraphrases drawn from a generator seeded by the video's name: the same labels on every run
        scores = self._teacher_scores(frames, mask, texts)
        return [
            _to_label(name, f, [PseudoText(t.text, t.form, s) for t, s in zip(video_texts, video_scores, strict=True)])
            for name, f, video_texts, video_scores in zip(names, found, texts, scores, strict=True)
        ]

    def _teacher_scores(
        self, frames: torch.Tensor, mask: torch.Tensor, texts: list[list[PseudoText]]
    ) -> list[list[float]]:
        """cos(mean of unit frame embeddings, text embedding) for every text of every video."""
        flat = [t.text for video in texts for t in video]
        if not flat:
            return [[] for _ in texts]
        m = mask.float().unsqueeze(-1).cpu()
        video = F.normalize((F.normalize(frames.float().cpu(), dim=-1) * m).sum(1) / m.sum(1).clamp(min=1), dim=-1)
        text = F.normalize(encode_prompts(self.backbone, flat), dim=-1)  # (M, D)
        owner = torch.tensor([i for i, video_texts in enumerate(texts) for _ in video_texts])
        cos = (text * video[owner]).sum(-1).tolist()
        out, cursor = [], 0
        for video_texts in texts:
            out.append([round(c, 4) for c in cos[cursor : cursor + len(video_texts)]])
            cursor += len(video_texts)
        return out

    def label_videos(
        self, paths: Sequence[str | Path], batch_size: int = 16, workers: int = 2, progress: bool = True
    ) -> Iterator[PseudoLabel | DecodeFailure]:
        """Decode `num_frames` uniform frames per video, encode and label them; undecodable files come out
        as `DecodeFailure` and the rest go on."""
        spec = frame_spec_for(self.backbone, self.num_frames)
        batch = []
        bar = tqdm(total=len(paths), desc="pseudo-labelling", unit="video", disable=not progress)
        for decoded in iter_decoded([(str(p), p) for p in paths], spec, workers=workers):
            bar.update(1)
            if isinstance(decoded, DecodeFailure):
                yield decoded
                continue
            batch.append(decoded)
            if len(batch) == batch_size:
                yield from self._label_decoded(batch)
                batch = []
        if batch:
            yield from self._label_decoded(batch)
        bar.close()

    def _label_decoded(self, batch: list) -> list[PseudoLabel]:
        pixels = torch.stack([v.pixels for v in batch])  # (B, T, 3, S, S)
        mask = torch.stack([v.mask for v in batch])  # (B, T)
        frames = encode_pixels(self.backbone, pixels, self.autocast_precision)  # (B, T, D)
        return self.label_features([v.path for v in batch], frames, mask)


def _to_label(name: str, found: VideoConcepts, texts: list[PseudoText]) -> PseudoLabel:
    return PseudoLabel(
        video=str(name),
        concepts={cat: [asdict(c) for c in scored] for cat, scored in found.concepts.items()},
        transitions={cat: asdict(t) for cat, t in found.transitions.items()},
        texts=[asdict(t) for t in texts],
    )


def find_videos(folder: str | Path) -> list[Path]:
    """Every video file under `folder` (recursively), sorted, so labels come out in a stable order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetFormatError(f"{folder} is not a directory of videos")
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)


def pseudo_label_folder(
    labeler: PseudoLabeler,
    folder: str | Path,
    out: str | Path,
    batch_size: int = 16,
    workers: int = 2,
    progress: bool = True,
) -> LabelReport:
    """Label every video under `folder` into the JSONL file `out` (written under a temporary name, then
    renamed); video paths are stored relative to `folder`."""
    folder, out = Path(folder), Path(out)
    paths = find_videos(folder)
    report = LabelReport()
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp, tmp.open("w", encoding="utf-8") as f:
        for result in labeler.label_videos(paths, batch_size, workers, progress):
            if isinstance(result, DecodeFailure):
                report.failed[str(Path(result.path).relative_to(folder))] = result.error.reason
                continue
            result.video = str(Path(result.video).relative_to(folder))
            f.write(result.to_json() + "\n")
            report.written += 1
    if report.failed:
        log.warning("%d of %d videos could not be decoded and were skipped", len(report.failed), len(paths))
    return report


def write_pseudo_labels(labels: Sequence[PseudoLabel], out: str | Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, "".join(label.to_json() + "\n" for label in labels))
    return out


def read_pseudo_labels(path: str | Path) -> list[PseudoLabel]:
    """Read a pseudo-label JSONL file; a malformed line is an error naming its number."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DatasetFormatError(f"pseudo-label file {path} does not exist; write one with vitr pseudo-label") from None
    labels = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            labels.append(
                PseudoLabel(
                    video=record["video"],
                    concepts=record.get("concepts", {}),
                    transitions=record.get("transitions", {}),
                    texts=record["texts"],
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise DatasetFormatError(f"{path}:{number} is not a pseudo-label record ({e})") from None
    return labels
