"""SeLeCT: selective contrastive learning on weak (pseudo) pairs, as named options (ps_scl.md §5).

Every rule turns per-pair quantities into pair weights w (B,) for `selective_loss`. A pair's weight scales only
its positive terms: an unselected pair's video and text stay in every other pair's softmax denominator, so they
still serve as negatives.

- topk (option A, default; Co-teaching `rate_schedule`): per batch keep the ceil(rho_e * B) pairs with the
  highest selection score q, rho_e = 1 - tau * min(e / T_k, 1)^c; q = -loss (`loss`), the frozen teacher's
  cosine (`teacher`), or z(teacher) - z(loss) over the batch (`mix`);
- gmm (option B; NCR `eval_train`, `split_prob`): a 2-component Gaussian mixture on min-max normalised per-pair
  losses, fitted once per epoch; a pair is clean when the posterior of the low-mean component exceeds 0.5;
- soft (option C; NCR `soft_margin`): w = f(p) with p the clean posterior, f linear (alpha p), exponential
  (alpha (10^p - 1) / 9, NCR's default) or sine (alpha (1 - cos(pi p)) / 2);
- none: every pair counts (plain contrastive learning on the same pairs).
`soft_topk` combines A and C: the top-k mask times the soft weights ("selects and prioritises").
With `stratify`, topk keeps its share within each group of the batch (the pseudo-text's form) rather than over the
whole batch, as UPL keeps the best pseudo-labels per class (option D's idea): pairs of a form that is hard to
learn (temporal texts) are otherwise the high-loss ones and dropped together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from vitr.errors import ConfigError
from vitr.losses.infonce import ScoreTermHead, per_pair_infonce

Rule = Literal["none", "topk", "gmm", "soft", "soft_topk"]
Score = Literal["loss", "teacher", "mix"]
SoftForm = Literal["linear", "exponential", "sine"]


@dataclass
class SelectionConfig:
    """Which SeLeCT rule and its constants; `rule="none"` is the no-selection ablation (rho = 1)."""

    rule: Rule = "topk"
    score: Score = "loss"  # topk: what ranks pairs
    tau: float = 0.3  # topk: final forget rate (Co-teaching); swept over {0.2, 0.3, 0.5} in ps_scl.md §5
    t_k: float = 2.0  # topk: epochs over which the forget rate ramps up (Co-teaching 10; configs/lab/ps_scl.yaml)
    exponent: float = 1.0  # topk: c
    gmm_threshold: float = 0.5  # gmm: clean posterior needed
    warmup_epochs: int = 1  # gmm/soft: epochs of plain training before the first mixture fit (NCR warm-up)
    soft_form: SoftForm = "exponential"
    soft_alpha: float = 1.0
    stratify: bool = False  # topk: keep the share within each group (pseudo-text form), not over the batch

    def __post_init__(self) -> None:
        if not 0.0 <= self.tau < 1.0:
            raise ConfigError(f"selection tau (final forget rate) must be in [0, 1), got {self.tau}")
        if self.t_k <= 0 or self.exponent <= 0:
            raise ConfigError(f"selection t_k and exponent must be positive, got {self.t_k}, {self.exponent}")
        if not 0.0 < self.gmm_threshold < 1.0:
            raise ConfigError(f"gmm_threshold must be in (0, 1), got {self.gmm_threshold}")

    @property
    def needs_clean_probability(self) -> bool:
        return self.rule in ("gmm", "soft", "soft_topk")


def keep_ratio(epoch: float, tau: float, t_k: float = 10.0, exponent: float = 1.0) -> float:
    """rho_e = 1 - tau * min(e / T_k, 1)^c: the share of pairs kept in epoch e (may be fractional)."""
    return 1.0 - tau * min(max(epoch, 0.0) / t_k, 1.0) ** exponent


def select_top(scores: torch.Tensor, ratio: float) -> torch.Tensor:
    """scores (B,) -> (B,) bool, true on the ceil(ratio * B) highest scores (at least one)."""
    k = max(1, math.ceil(ratio * scores.numel() - 1e-9))
    keep = torch.zeros_like(scores, dtype=torch.bool)
    keep[scores.topk(min(k, scores.numel())).indices] = True
    return keep


def select_top_within(scores: torch.Tensor, ratio: float, groups: torch.Tensor) -> torch.Tensor:
    """`select_top` applied to each group of `groups` (B,) on its own: every group keeps its best share."""
    keep = torch.zeros_like(scores, dtype=torch.bool)
    for g in groups.unique():
        rows = groups == g
        keep[rows] = select_top(scores[rows], ratio)
    return keep


def _zscore(x: torch.Tensor) -> torch.Tensor:
    return (x - x.mean()) / x.std(unbiased=False).clamp(min=1e-8)


def selection_score(losses: torch.Tensor, teacher: torch.Tensor | None = None, mode: Score = "loss") -> torch.Tensor:
    """(B,) per-pair losses (and teacher cosines) -> (B,) score q, higher = more likely a true pair."""
    if mode == "loss":
        return -losses
    if teacher is None:
        raise ConfigError(f"selection score {mode!r} needs teacher scores of the pairs; use score=loss")
    if mode == "teacher":
        return teacher.to(losses.dtype)
    if mode == "mix":
        return _zscore(teacher.to(losses.dtype)) - _zscore(losses)
    raise ConfigError(f"unknown selection score {mode!r}; choose loss, teacher or mix")


@dataclass(frozen=True)
class GaussianMixture1D:
    means: torch.Tensor  # (2,)
    variances: torch.Tensor  # (2,)
    weights: torch.Tensor  # (2,)

    def log_joint(self, x: torch.Tensor) -> torch.Tensor:
        """(N,) -> (N, 2) log(weight_k N(x | mean_k, var_k))."""
        diff = x[:, None] - self.means[None, :]
        return (
            self.weights.log() - 0.5 * (math.log(2 * math.pi) + self.variances.log()) - 0.5 * diff**2 / self.variances
        )

    def posterior(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.log_joint(x), dim=1)


def fit_gmm_1d(x: torch.Tensor, max_iter: int = 10, tol: float = 1e-2, reg_covar: float = 5e-4) -> GaussianMixture1D:
    """EM for a 2-component 1-D Gaussian mixture (sklearn `GaussianMixture` with NCR's constants).

    Initialised from a split at the median (the 1-D k-means start up to its first step), so the fit is
    deterministic.
    """
    x = x.detach().double().flatten()
    if x.numel() < 2:
        raise ValueError("a two-component mixture needs at least two values")
    resp = torch.stack([(x <= x.median()).double(), (x > x.median()).double()], dim=1)  # (N, 2)
    if resp[:, 1].sum() == 0:  # all values equal the median
        resp[: x.numel() // 2] = torch.tensor([0.0, 1.0], dtype=torch.float64)
    previous = -math.inf
    gmm = _m_step(x, resp, reg_covar)
    for _ in range(max_iter):
        log_joint = gmm.log_joint(x)
        bound = float(torch.logsumexp(log_joint, dim=1).mean())
        resp = torch.softmax(log_joint, dim=1)
        gmm = _m_step(x, resp, reg_covar)
        if abs(bound - previous) < tol:
            break
        previous = bound
    return gmm


def _m_step(x: torch.Tensor, resp: torch.Tensor, reg_covar: float) -> GaussianMixture1D:
    n_k = resp.sum(dim=0) + 1e-10  # (2,)
    means = (resp * x[:, None]).sum(dim=0) / n_k
    variances = (resp * (x[:, None] - means) ** 2).sum(dim=0) / n_k + reg_covar
    return GaussianMixture1D(means, variances, n_k / n_k.sum())


def clean_probability(losses: torch.Tensor, **gmm_kwargs: float) -> torch.Tensor:
    """(N,) per-pair losses -> (N,) posterior of the low-mean component, after min-max normalisation (NCR)."""
    x = losses.detach().double().flatten()
    x = (x - x.min()) / (x.max() - x.min()).clamp(min=1e-12)
    gmm = fit_gmm_1d(x, **gmm_kwargs)
    return gmm.posterior(x)[:, int(gmm.means.argmin())].to(losses.dtype)


def split_clean(prob: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """(N,) clean posteriors -> (N,) bool; when none falls below the threshold, the lowest 1% are marked noisy
    (NCR `split_prob`)."""
    if float(prob.min()) > threshold:
        threshold = float(prob.sort().values[len(prob) // 100])
    return prob > threshold


def soft_weights(prob: torch.Tensor, form: SoftForm = "exponential", alpha: float = 1.0) -> torch.Tensor:
    """(N,) clean posteriors p in [0, 1] -> (N,) weights f(p), f(0) = 0 and f(1) = alpha."""
    if form == "linear":
        return alpha * prob
    if form == "exponential":
        return alpha * (torch.pow(10.0, prob) - 1.0) / 9.0
    if form == "sine":
        return alpha * (1.0 - torch.cos(math.pi * prob)) / 2.0
    raise ConfigError(f"unknown soft weighting {form!r}; choose linear, exponential or sine")


def pair_weights(
    config: SelectionConfig,
    epoch: float,
    losses: torch.Tensor,
    teacher: torch.Tensor | None = None,
    clean_prob: torch.Tensor | None = None,
    exempt: torch.Tensor | None = None,
    groups: torch.Tensor | None = None,
) -> torch.Tensor:
    """(B,) detached per-pair losses -> (B,) weights under `config` at (fractional) epoch `epoch`.

    `exempt` (B,) bool marks pairs that are never selected away (clean labelled pairs in a mixed batch): they
    get weight 1 and do not count towards the kept share. `clean_prob` (B,) is the epoch's mixture posterior
    (rules gmm, soft, soft_topk; before the first fit pass None and every pair counts). `groups` (B,) long are the
    strata of `config.stratify` (the pairs' pseudo-text forms).
    """
    losses = losses.detach()
    weights = torch.ones_like(losses)
    weak = torch.ones_like(losses, dtype=torch.bool) if exempt is None else ~exempt.bool()
    if config.rule == "none" or not weak.any():
        return weights
    if config.rule in ("topk", "soft_topk"):
        score = selection_score(losses[weak], None if teacher is None else teacher[weak], config.score)
        ratio = keep_ratio(epoch, config.tau, config.t_k, config.exponent)
        if config.stratify:
            if groups is None:
                raise ConfigError("stratified selection needs the group of every pair (its pseudo-text form)")
            kept = select_top_within(score, ratio, groups[weak])
        else:
            kept = select_top(score, ratio)
        weights[weak] = kept.to(weights.dtype)
    if config.needs_clean_probability and clean_prob is not None:
        p = clean_prob.to(losses.device, losses.dtype)
        if config.rule == "gmm":
            weights[weak] = (p[weak] > config.gmm_threshold).to(weights.dtype)
        else:
            weights[weak] = weights[weak] * soft_weights(p[weak], config.soft_form, config.soft_alpha)
    return weights


def per_pair_retrieval_loss(
    head: ScoreTermHead, text_emb: torch.Tensor, video_emb: torch.Tensor, logit_scale: torch.Tensor
) -> torch.Tensor:
    """(B, E) texts and videos, pair i = (text i, video i) -> (B,) sum over the head's score terms of
    weight * per-pair symmetric InfoNCE; its mean is `retrieval_loss`, so every head works with SeLeCT."""
    scale = logit_scale.exp()
    terms = head.score_terms(text_emb, video_emb)
    return sum(weight * per_pair_infonce(scale * cosines) for weight, cosines in terms.values())


def selective_loss(per_pair: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """sum_i w_i l_i / max(sum_i w_i, 1): the weighted mean over kept pairs (ps_scl.md §6 (b))."""
    weights = weights.detach().to(per_pair.dtype)
    return (weights * per_pair).sum() / weights.sum().clamp(min=1.0)
