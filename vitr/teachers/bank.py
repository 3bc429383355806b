"""Teacher embeddings of every training caption and video, computed once and cached (as the official code does).

The official trainer reads each teacher's text and video embeddings from pickles and forms the batch matrix
S^(n) = T^(n)[captions] @ V^(n)[videos]^T (teachtext.md §1.3, §1.4). A bank holds the same thing per teacher:
text (C, E_n) in the dataset's caption order and video (V, E_n) in its video order, stored as safetensors.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from vitr.backbones.fingerprint import hash_tensor
from vitr.errors import CheckpointError
from vitr.files import read_safetensors, read_safetensors_metadata, save_safetensors
from vitr.teachers.base import Teacher


def content_key(texts: Sequence[str], video_ids: Sequence[str]) -> str:
    """A hash of the captions and videos a bank was computed for, so a stale cache is never used."""
    digest = hashlib.sha256()
    for item in [*texts, "\x00", *video_ids]:
        digest.update(item.encode() + b"\x1f")
    return digest.hexdigest()[:24]


def tensors_digest(*tensors: torch.Tensor) -> str:
    """A hash of tensors' dtypes, shapes and bytes: a bank computed from other inputs (frame features) is stale.
    Hashing reads every byte once (about 0.3 s for 200 MB)."""
    digest = hashlib.sha256()
    for tensor in tensors:
        hash_tensor(digest, tensor)
    return digest.hexdigest()[:24]


@dataclass
class TeacherBank:
    """Per teacher: text (C, E_n) and video (V, E_n) unit vectors and the teacher's exp(logit_scale).

    `caption_ids` (C,) and `video_ids` (V,) name the rows, so training looks rows up by id, not position.
    """

    names: list[str]
    text: list[torch.Tensor]
    video: list[torch.Tensor]
    scales: list[float]
    key: str = ""
    caption_ids: list[str] = field(default_factory=list)
    video_ids: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not (len(self.names) == len(self.text) == len(self.video) == len(self.scales)) or not self.names:
            raise ValueError("a teacher bank needs one name, text matrix, video matrix and scale per teacher (>= 1)")
        if len({t.shape[0] for t in self.text}) != 1 or len({v.shape[0] for v in self.video}) != 1:
            raise ValueError("every teacher must embed the same captions and the same videos")
        if self.caption_ids and len(self.caption_ids) != self.num_captions:
            raise ValueError(f"{len(self.caption_ids)} caption ids for {self.num_captions} caption rows")
        if self.video_ids and len(self.video_ids) != self.num_videos:
            raise ValueError(f"{len(self.video_ids)} video ids for {self.num_videos} video rows")

    @property
    def num_captions(self) -> int:
        return self.text[0].shape[0]

    @property
    def num_videos(self) -> int:
        return self.video[0].shape[0]

    @classmethod
    def concat(cls, banks: Sequence[TeacherBank], key: str = "") -> TeacherBank:
        """The teachers of several banks of the same captions and videos, in order, as one bank (teachers that read
        different frames are embedded apart, then joined)."""
        first = banks[0]
        if any(b.caption_ids != first.caption_ids or b.video_ids != first.video_ids for b in banks):
            raise ValueError("only banks with the same caption and video ids can be joined")
        return cls(
            [n for b in banks for n in b.names],
            [t for b in banks for t in b.text],
            [v for b in banks for v in b.video],
            [s for b in banks for s in b.scales],
            key,
            list(first.caption_ids),
            list(first.video_ids),
        )

    def matrices(
        self, caption_index: torch.Tensor, video_index: torch.Tensor, logits: bool = False
    ) -> list[torch.Tensor]:
        """One (B_t, B_v) score matrix per teacher for a batch; rows = its captions, columns = its videos."""
        caption_index, video_index = caption_index.long().cpu(), video_index.long().cpu()
        out = []
        for text, video, scale in zip(self.text, self.video, self.scales, strict=True):
            scores = text[caption_index] @ video[video_index].T  # (B_t, B_v)
            out.append(scores * scale if logits else scores)
        return out

    def scores_against_all(self, caption_index: torch.Tensor) -> list[torch.Tensor]:
        """(b,) captions -> per teacher (b, V): each caption scored against every video of the split."""
        return [text[caption_index.long().cpu()] @ video.T for text, video in zip(self.text, self.video, strict=True)]

    def save(self, path: str | Path) -> None:
        """Write the bank as one safetensors file (atomically: a killed run never leaves half a bank)."""
        tensors = {}
        for i, (text, video) in enumerate(zip(self.text, self.video, strict=True)):
            tensors[f"{i}.text"], tensors[f"{i}.video"] = text.contiguous(), video.contiguous()
        meta = {
            "names": json.dumps(self.names),
            "scales": json.dumps(self.scales),
            "key": self.key,
            "caption_ids": json.dumps(self.caption_ids),
            "video_ids": json.dumps(self.video_ids),
        }
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        save_safetensors(path, tensors, metadata=meta)

    @classmethod
    def load(cls, path: str | Path, expected_key: str | None = None) -> TeacherBank:
        """Read a saved bank; `expected_key` (from `content_key`) rejects a bank built for other data. A damaged
        file, or one whose tensors and metadata disagree, is a one-line CheckpointError naming the file."""
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"teacher bank {path} does not exist; build it with build_teacher_bank")
        tensors, meta = read_safetensors(path), read_safetensors_metadata(path)
        try:
            names, scales = json.loads(meta["names"]), json.loads(meta["scales"])
            caption_ids, video_ids = json.loads(meta.get("caption_ids", "[]")), json.loads(meta.get("video_ids", "[]"))
            text = [tensors[f"{i}.text"] for i in range(len(names))]
            video = [tensors[f"{i}.video"] for i in range(len(names))]
        except (KeyError, TypeError, json.JSONDecodeError) as e:
            raise CheckpointError(f"{path} is not a vitr teacher bank: missing or unreadable entry {e}") from None
        key = meta.get("key", "")
        if expected_key is not None and key != expected_key:
            raise CheckpointError(
                f"teacher bank {path} was computed for other captions/videos (key {key!r}, "
                f"expected {expected_key!r}); delete it to rebuild"
            )
        try:
            return cls(names, text, video, scales, key, caption_ids, video_ids)
        except ValueError as e:
            raise CheckpointError(f"teacher bank {path} is inconsistent ({e}); delete it to rebuild") from None


@torch.inference_mode()
def build_teacher_bank(
    teachers: Sequence[Teacher],
    texts: Sequence[str],
    frames: torch.Tensor,
    mask: torch.Tensor,
    video_ids: Sequence[str] | None = None,
    batch_size: int = 512,
    caption_ids: Sequence[str] | None = None,
) -> TeacherBank:
    """Embed all captions (C) and videos (V, from frames (V, T, D), mask (V, T)) with every teacher."""
    if video_ids is not None and len(video_ids) != len(frames):
        raise ValueError(f"{len(video_ids)} video ids for {len(frames)} videos")
    text_out, video_out = [], []
    for teacher in teachers:
        text_out.append(
            torch.cat([teacher.embed_texts(texts[i : i + batch_size]) for i in range(0, len(texts), batch_size)])
            .float()
            .cpu()
        )
        video_out.append(
            torch.cat(
                [
                    teacher.embed_videos(frames[i : i + batch_size], mask[i : i + batch_size])
                    for i in range(0, len(frames), batch_size)
                ]
            )
            .float()
            .cpu()
        )
    key = content_key(texts, video_ids) if video_ids is not None else ""
    scales = [t.temperature_scale() for t in teachers]
    return TeacherBank(
        [t.name for t in teachers], text_out, video_out, scales, key, list(caption_ids or []), list(video_ids or [])
    )
