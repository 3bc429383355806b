"""Training losses over score matrices and embeddings."""

from vitr.losses.infonce import (
    infonce_with_hard_negatives,
    multi_positive_infonce,
    per_pair_infonce,
    retrieval_loss,
    symmetric_infonce,
)

__all__ = [
    "infonce_with_hard_negatives",
    "multi_positive_infonce",
    "per_pair_infonce",
    "retrieval_loss",
    "symmetric_infonce",
]
