"""TeachText teachers: frozen retrieval models with their own text encoders, and the bank of their embeddings."""

from vitr.teachers.bank import TeacherBank, build_teacher_bank, content_key
from vitr.teachers.base import Teacher
from vitr.teachers.model_teacher import ModelTeacher
from vitr.teachers.projection import ProjectionTeacher, SegmentPoolVideo, TeacherFitConfig, fit_teacher, segment_pool
from vitr.teachers.text_encoders import (
    BagOfWordsText,
    SentenceEncoderText,
    load_sentence_encoder,
    minilm_model_dir,
    tokenize_words,
)
from vitr.teachers.text_tracks import TextTrackExpert

__all__ = [
    "BagOfWordsText",
    "ModelTeacher",
    "ProjectionTeacher",
    "SegmentPoolVideo",
    "SentenceEncoderText",
    "Teacher",
    "TeacherBank",
    "TeacherFitConfig",
    "TextTrackExpert",
    "build_teacher_bank",
    "content_key",
    "fit_teacher",
    "load_sentence_encoder",
    "minilm_model_dir",
    "segment_pool",
    "tokenize_words",
]
