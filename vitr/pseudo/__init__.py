"""Pseudo-supervision from unlabelled videos: concept vocabularies, zero-shot tagging, pseudo-text writing."""

from vitr.pseudo.label import (
    LabelReport,
    PseudoLabel,
    PseudoLabeler,
    find_videos,
    pseudo_label_folder,
    read_pseudo_labels,
    write_pseudo_labels,
)
from vitr.pseudo.prompts import category_classifier, ensemble_embeddings, prompts_for
from vitr.pseudo.tagging import ConceptTagger, ScoredConcept, Transition, VideoConcepts
from vitr.pseudo.texts import FORMS, PseudoText, write_pseudo_texts
from vitr.pseudo.vocab import Category, Vocabulary, default_vocabulary_path, load_vocabulary, vocabulary_from_dict

__all__ = [
    "FORMS",
    "Category",
    "ConceptTagger",
    "LabelReport",
    "PseudoLabel",
    "PseudoLabeler",
    "PseudoText",
    "ScoredConcept",
    "Transition",
    "VideoConcepts",
    "Vocabulary",
    "category_classifier",
    "default_vocabulary_path",
    "ensemble_embeddings",
    "find_videos",
    "load_vocabulary",
    "prompts_for",
    "pseudo_label_folder",
    "read_pseudo_labels",
    "vocabulary_from_dict",
    "write_pseudo_labels",
    "write_pseudo_texts",
]
