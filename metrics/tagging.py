"""Multi-label tagging metrics: lwlrap (with per-class values) and mAP.

``truth`` is an N x C 0/1 matrix (clip x class), ``scores`` an N x C real matrix.

lwlrap follows the DCASE 2019 task 2 (Freesound Audio Tagging 2019) definition
(Fonseca et al., "Audio tagging with noisy labels and minimal supervision", DCASE
2019): for every positive (clip, class) pair, the precision of the clip's ranked
class list at that class's rank; lwlrap is the mean over all positive pairs, which
equals the per-class mean precisions weighted by each class's share of positive
labels. Ties count against the system: a class's rank is the number of classes
scored >= it (as in sklearn's label-ranking average precision).

mAP is the unweighted mean over classes of average precision (area under the
precision-recall curve as a step function, sklearn ``average_precision_score``),
over the classes that have at least one positive clip (AudioSet convention; a
class without positives has no defined AP).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import average_precision_score
from speechbench.metrics._checks import finite_array
from speechbench.metrics.base import metric

from speechbench.errors import ConfigError


def _truth_and_scores(truth: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    labels = finite_array(truth, "truth", ndim=2)
    values = finite_array(scores, "scores", ndim=2)
    if labels.shape != values.shape:
        raise ConfigError(
            f"truth has shape {labels.shape} but scores {values.shape}; "
            "both must be clips x classes"
        )
    if not np.isin(labels, (0.0, 1.0)).all():
        raise ConfigError("truth must be a 0/1 matrix (clip x class)")
    if not labels.any():
        raise ConfigError("truth has no positive label at all; tagging metrics need some")
    return labels.astype(bool), values


def lwlrap_per_class(truth: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    """Per-class label-ranking precision and each class's weight (share of positive labels).

    A class with no positive clip gets precision NaN and weight 0. Vectorised: two
    row-wise rankings replace the per-clip loop of the DCASE reference code.
    """
    positives, values = _truth_and_scores(truth, scores)
    # rank among all classes: how many classes score >= this one (ties pessimistic)
    rank_all = rankdata(-values, axis=1, method="max")
    # same count restricted to positive classes: push negatives below every score of the row
    floor = values.min(axis=1, keepdims=True) - 1.0
    rank_pos = rankdata(-np.where(positives, values, floor), axis=1, method="max")
    precision = np.where(positives, rank_pos / rank_all, 0.0)
    counts = positives.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(counts > 0, precision.sum(axis=0) / counts, np.nan)
    weights = counts / counts.sum()
    return per_class, weights


@metric(
    "lwlrap",
    higher_is_better=True,
    range=(0.0, 1.0),
    definition="label-weighted label-ranking average precision (DCASE 2019 task 2)",
    inputs="tagging",
)
def lwlrap(truth: Any, scores: Any) -> float:
    """Mean label-ranking precision over all positive (clip, class) pairs (DCASE 2019 task 2)."""
    per_class, weights = lwlrap_per_class(truth, scores)
    present = weights > 0
    return float(np.sum(per_class[present] * weights[present]))


@metric(
    "map",
    higher_is_better=True,
    range=(0.0, 1.0),
    definition="mean over classes with positives of average precision (sklearn, AudioSet)",
    inputs="tagging",
)
def mean_average_precision(truth: Any, scores: Any) -> float:
    """Unweighted mean of per-class average precision over classes with a positive clip."""
    positives, values = _truth_and_scores(truth, scores)
    present = positives.any(axis=0)
    per_class = average_precision_score(positives[:, present], values[:, present], average=None)
    return float(np.mean(per_class))
