"""Speaker-verification metrics: EER, minDCF and DET points, from trial scores.

``scores`` are one real number per trial (higher = more likely the same speaker),
``labels`` 1 for a target (same-speaker) trial and 0 for a non-target one. Corpus
level: computed once over all trials.

A trial is accepted when ``score >= threshold``; sweeping the threshold over every
distinct score gives the DET curve P_miss(t), P_fa(t) (Martin et al., "The DET curve
in assessment of detection task performance", Eurospeech 1997). Tied scores share one
operating point, so the curve does not depend on trial order.

- EER: the rate where P_miss = P_fa on the DET curve with operating points joined by
  straight lines (the ROC convex-interpolation used by sklearn's ``roc_curve`` + root
  finding recipe, and by Kaldi's ``compute-eer`` up to its nearest-point choice).
- minDCF: NIST SRE detection cost C = C_miss P_target P_miss + C_fa (1 - P_target) P_fa,
  minimised over thresholds and normalised by the cost of the best trivial system,
  min(C_miss P_target, C_fa (1 - P_target)) (NIST SRE 2008-2019 evaluation plans).
  Defaults P_target = 0.01, C_miss = C_fa = 1 (VoxCeleb / VoxSRC).

Sorting once (O(n log n)) gives every operating point; no per-threshold loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import norm
from speechbench.metrics._checks import binary_labels, finite_array
from speechbench.metrics.base import metric

from speechbench.errors import ConfigError


@dataclass(frozen=True)
class DetCurve:
    """Operating points in increasing-threshold order; the last is "reject everything"."""

    thresholds: np.ndarray
    p_miss: np.ndarray
    p_fa: np.ndarray

    def probit(self) -> tuple[np.ndarray, np.ndarray]:
        """Normal-deviate coordinates (the DET plot axes), clipped away from 0 and 1."""
        clip = lambda p: norm.ppf(np.clip(p, 1e-6, 1 - 1e-6))  # noqa: E731
        return clip(self.p_fa), clip(self.p_miss)


def det_curve(scores: Any, labels: Any) -> DetCurve:
    """P_miss and P_fa at every distinct score used as the acceptance threshold."""
    values = finite_array(scores, "scores", ndim=1)
    targets = binary_labels(labels)
    if values.shape != targets.shape:
        raise ConfigError(f"{values.size} scores but {targets.size} labels; one per trial")
    n_target = int(targets.sum())
    n_nontarget = targets.size - n_target
    if n_target == 0 or n_nontarget == 0:
        kind = "target" if n_target == 0 else "non-target"
        raise ConfigError(f"no {kind} trials; verification metrics need both kinds")
    order = np.argsort(values)  # ties are grouped below, so no stable sort is needed
    sorted_scores, sorted_targets = values[order], targets[order]
    # number of targets / non-targets strictly below each position
    targets_below = np.concatenate(([0], np.cumsum(sorted_targets)))
    nontargets_below = np.arange(targets.size + 1) - targets_below
    # first position of every run of tied scores, then "above all scores"
    starts = np.flatnonzero(np.concatenate(([True], sorted_scores[1:] != sorted_scores[:-1])))
    positions = np.append(starts, targets.size)
    thresholds = np.append(sorted_scores[starts], np.inf)
    p_miss = targets_below[positions] / n_target
    p_fa = (n_nontarget - nontargets_below[positions]) / n_nontarget
    return DetCurve(thresholds=thresholds, p_miss=p_miss, p_fa=p_fa)


def eer_with_threshold(scores: Any, labels: Any) -> tuple[float, float]:
    """EER and the (interpolated) threshold where P_miss = P_fa."""
    curve = det_curve(scores, labels)
    gap = curve.p_miss - curve.p_fa  # rises from -1 to +1 with the threshold
    after = int(np.argmax(gap >= 0))
    if gap[after] == 0:
        return float(curve.p_miss[after]), float(curve.thresholds[after])
    before = after - 1
    fraction = -gap[before] / (gap[after] - gap[before])
    rate = curve.p_miss[before] + fraction * (curve.p_miss[after] - curve.p_miss[before])
    low, high = curve.thresholds[before], curve.thresholds[after]
    threshold = low + fraction * (high - low) if np.isfinite(high) else low
    return float(rate), float(threshold)


@metric(
    "eer",
    higher_is_better=False,
    range=(0.0, 1.0),
    definition="equal error rate: P_miss = P_fa on the linearly interpolated DET curve",
    inputs="trials",
)
def equal_error_rate(scores: Any, labels: Any) -> float:
    """Equal error rate (a fraction, not %) of a detection system."""
    return eer_with_threshold(scores, labels)[0]


def min_dcf_with_threshold(
    scores: Any, labels: Any, p_target: float = 0.01, c_miss: float = 1.0, c_fa: float = 1.0
) -> tuple[float, float]:
    """Normalised minimum detection cost and the threshold that reaches it."""
    if not 0.0 < p_target < 1.0 or c_miss <= 0 or c_fa <= 0:
        raise ConfigError("minDCF needs 0 < p_target < 1 and positive c_miss, c_fa")
    curve = det_curve(scores, labels)
    cost = c_miss * p_target * curve.p_miss + c_fa * (1 - p_target) * curve.p_fa
    best = int(np.argmin(cost))
    default_cost = min(c_miss * p_target, c_fa * (1 - p_target))
    return float(cost[best] / default_cost), float(curve.thresholds[best])


@metric(
    "min_dcf",
    higher_is_better=False,
    range=(0.0, 1.0),
    definition="normalised minimum detection cost (NIST SRE), default P_target=0.01, C_miss=C_fa=1",
    inputs="trials",
)
def min_dcf(
    scores: Any, labels: Any, p_target: float = 0.01, c_miss: float = 1.0, c_fa: float = 1.0
) -> float:
    """Normalised minDCF: best achievable detection cost over thresholds / trivial-system cost."""
    return min_dcf_with_threshold(scores, labels, p_target, c_miss, c_fa)[0]
