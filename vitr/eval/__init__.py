"""Retrieval metrics (official CLIP4Clip/CLIP2Video and tie-averaged protocols), chunked evaluation, reports."""

from vitr.eval.metrics import (
    compute_metrics,
    multi_caption_t2v,
    multi_caption_v2t,
    tie_averaged_metrics,
    tie_averaged_v2t,
)
from vitr.eval.report import results_table, write_json
from vitr.eval.retrieval import (
    PROTOCOLS,
    RetrievalResult,
    chance_level,
    evaluate,
    evaluate_similarity,
    twin_accuracy,
)

__all__ = [
    "PROTOCOLS",
    "RetrievalResult",
    "chance_level",
    "compute_metrics",
    "evaluate",
    "evaluate_similarity",
    "multi_caption_t2v",
    "multi_caption_v2t",
    "results_table",
    "tie_averaged_metrics",
    "tie_averaged_v2t",
    "twin_accuracy",
    "write_json",
]
