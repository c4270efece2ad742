"""Language identification: Cavg (NIST LRE pairwise definition), EER, accuracy.

``scores`` is an N x L matrix (utterance x language) of detection scores, log-likelihood
ratios in the NIST sense; ``labels`` holds each utterance's language as an index
0..L-1. Corpus level.

- Cavg: NIST LRE 2007/2009 evaluation plans. Each (utterance, language) score above
  ``threshold`` is a "yes" decision. For target language t, P_miss(t) is the share of
  t's utterances not accepted for t; for a non-target n, P_fa(t, n) is the share of n's
  utterances accepted for t. Then
  Cavg = 1/L' sum_t [C_miss P_t P_miss(t) + sum_{n != t} C_fa (1 - P_t) / (L' - 1) P_fa(t, n)]
  over the L' languages present in the references (a language without test utterances
  has no miss or false-alarm rate). Defaults C_miss = C_fa = 1, P_t = 0.5, threshold 0
  (the Bayes threshold for LLRs at those costs).
- EER: pooled over all N x L one-vs-rest trials (verification EER).
- Accuracy: the arg-max language equals the reference.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from speechbench.metrics._checks import finite_array
from speechbench.metrics.base import metric
from speechbench.metrics.verification import equal_error_rate

from speechbench.errors import ConfigError


def _scores_and_labels(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    matrix = finite_array(scores, "scores", ndim=2)
    raw = np.asarray(labels.detach().cpu() if hasattr(labels, "detach") else labels)
    if raw.ndim != 1 or raw.shape[0] != matrix.shape[0]:
        raise ConfigError(
            f"{matrix.shape[0]} score rows but labels of shape {raw.shape}; one per row"
        )
    if not np.issubdtype(raw.dtype, np.integer) or raw.min() < 0 or raw.max() >= matrix.shape[1]:
        raise ConfigError(f"labels must be language indices 0..{matrix.shape[1] - 1}")
    if matrix.shape[1] < 2:
        raise ConfigError("language ID needs scores for at least 2 languages")
    return matrix, raw.astype(np.int64)


@metric(
    "cavg",
    higher_is_better=False,
    range=(0.0, 1.0),
    definition="NIST LRE 2007/2009 average pairwise detection cost Cavg",
    inputs="lid",
)
def cavg(
    scores: Any,
    labels: Any,
    p_target: float = 0.5,
    c_miss: float = 1.0,
    c_fa: float = 1.0,
    threshold: float = 0.0,
) -> float:
    """Average over target languages of the miss cost plus mean pairwise false-alarm cost."""
    matrix, langs = _scores_and_labels(scores, labels)
    present = np.unique(langs)
    if present.size < 2:
        raise ConfigError("Cavg needs test utterances from at least 2 languages")
    accepted = matrix[:, present] > threshold  # N x L'
    member = langs[:, None] == present[None, :]  # N x L' one-hot over present languages
    # rate[n, t]: share of language-n utterances accepted as language t
    rate = (member.T.astype(float) @ accepted) / member.sum(axis=0)[:, None]
    p_miss = 1.0 - np.diag(rate)
    off_diagonal = ~np.eye(present.size, dtype=bool)
    p_fa_mean = (rate * off_diagonal).sum(axis=0) / (present.size - 1)
    per_target = c_miss * p_target * p_miss + c_fa * (1 - p_target) * p_fa_mean
    return float(per_target.mean())


@metric(
    "lid_eer",
    higher_is_better=False,
    range=(0.0, 1.0),
    definition="EER pooled over all utterance x language one-vs-rest trials",
    inputs="lid",
)
def lid_eer(scores: Any, labels: Any) -> float:
    """Equal error rate of the pooled one-vs-rest language detection trials."""
    matrix, langs = _scores_and_labels(scores, labels)
    targets = np.arange(matrix.shape[1])[None, :] == langs[:, None]
    return equal_error_rate(matrix.ravel(), targets.ravel())


@metric(
    "lid_accuracy",
    higher_is_better=True,
    range=(0.0, 1.0),
    definition="share of utterances whose highest-scoring language is the reference",
    inputs="lid",
)
def lid_accuracy(scores: Any, labels: Any) -> float:
    """Closed-set identification accuracy from the arg-max language."""
    matrix, langs = _scores_and_labels(scores, labels)
    return float(np.mean(matrix.argmax(axis=1) == langs))
