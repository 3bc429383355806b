"""Training losses over score matrices and embeddings."""

from vitr.losses.infonce import multi_positive_infonce, per_pair_infonce, retrieval_loss, symmetric_infonce

__all__ = ["multi_positive_infonce", "per_pair_infonce", "retrieval_loss", "symmetric_infonce"]
