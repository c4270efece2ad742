"""EER/minDCF/DET against sklearn's ROC and a brute-force threshold sweep; Cavg by hand."""

import numpy as np
import pytest
from scipy.interpolate import interp1d
from scipy.optimize import brentq
from sklearn.metrics import det_curve as sklearn_det_curve
from sklearn.metrics import roc_curve
from speechbench.metrics.lid import cavg, lid_accuracy, lid_eer
from speechbench.metrics.verification import (
    det_curve,
    eer_with_threshold,
    equal_error_rate,
    min_dcf,
)

from speechbench.errors import ConfigError


def _sklearn_eer(scores, labels):
    """The common recipe: ROC from sklearn, then the root of 1 - x - TPR(x)."""
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    return brentq(lambda x: 1.0 - x - interp1d(fpr, tpr)(x), 0.0, 1.0)


def _brute_force_min_dcf(scores, labels, p_target, c_miss, c_fa):
    best = np.inf
    for threshold in np.append(np.unique(scores), np.inf):
        accept = scores >= threshold
        p_miss = np.mean(~accept[labels == 1])
        p_fa = np.mean(accept[labels == 0])
        best = min(best, c_miss * p_target * p_miss + c_fa * (1 - p_target) * p_fa)
    return best / min(c_miss * p_target, c_fa * (1 - p_target))


@pytest.mark.parametrize("rounding", [None, 1])  # 1 decimal -> heavy ties
def test_eer_and_min_dcf_match_independent_computations(rounding):
    rng = np.random.default_rng(0)
    labels = (rng.random(3000) < 0.3).astype(int)
    scores = rng.standard_normal(3000) + 1.5 * labels
    if rounding is not None:
        scores = np.round(scores, rounding)
    assert equal_error_rate(scores, labels) == pytest.approx(_sklearn_eer(scores, labels), abs=1e-9)
    for p_target, c_miss, c_fa in [(0.01, 1, 1), (0.05, 1, 1), (0.5, 10, 1)]:
        assert min_dcf(scores, labels, p_target, c_miss, c_fa) == pytest.approx(
            _brute_force_min_dcf(scores, labels, p_target, c_miss, c_fa)
        )


def test_det_points_match_sklearn_det_curve():
    rng = np.random.default_rng(1)
    labels = rng.random(500) < 0.5
    scores = np.round(rng.standard_normal(500) + labels, 1)
    curve = det_curve(scores, labels)
    fpr, fnr, thresholds = sklearn_det_curve(labels, scores)
    ours = dict(zip(curve.thresholds, zip(curve.p_fa, curve.p_miss, strict=True), strict=True))
    for t, fa, miss in zip(thresholds, fpr, fnr, strict=True):
        assert ours[t] == pytest.approx((fa, miss))
    x, y = curve.probit()
    assert np.isfinite(x).all() and np.isfinite(y).all()


def test_eer_hand_computed_and_edge_cases():
    # perfectly separated -> 0; perfectly inverted -> 1
    assert equal_error_rate([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 0.0
    assert equal_error_rate([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]) == 1.0
    # targets 1, 3; non-targets 2, 4: accepting >= 3 misses 1 of 2 targets and lets 1 of 2
    # non-targets in: P_miss = P_fa = 1/2 at threshold 3 exactly
    rate, threshold = eer_with_threshold([1, 3, 2, 4], [1, 1, 0, 0])
    assert rate == 0.5 and threshold == 3
    # all scores equal: the only operating points are accept-all and reject-all -> 0.5
    assert equal_error_rate(np.zeros(10), [1] * 5 + [0] * 5) == pytest.approx(0.5)
    assert min_dcf(np.zeros(10), [1] * 5 + [0] * 5) == pytest.approx(1.0)


def test_verification_bad_input():
    with pytest.raises(ConfigError, match="non-target"):
        equal_error_rate([0.1, 0.2], [1, 1])
    with pytest.raises(ConfigError, match="NaN"):
        equal_error_rate([np.nan, 0.2], [1, 0])
    with pytest.raises(ConfigError, match="one per trial"):
        min_dcf([0.1, 0.2, 0.3], [1, 0])
    with pytest.raises(ConfigError, match="0/1"):
        equal_error_rate([0.1, 0.2], [2, 0])
    with pytest.raises(ConfigError, match="p_target"):
        min_dcf([0.1, 0.2], [1, 0], p_target=1.5)


def test_cavg_hand_computed():
    # 3 languages, 2 utterances each; decisions are scores > 0
    scores = np.array(
        [
            [2.0, -1.0, -1.0],  # lang 0: accepted as 0 only
            [-1.0, 1.0, -1.0],  # lang 0: missed, false alarm for 1
            [-1.0, 3.0, -1.0],  # lang 1: correct
            [-1.0, 2.0, 1.0],  # lang 1: correct, false alarm for 2
            [-1.0, -1.0, 1.0],  # lang 2: correct
            [1.0, -1.0, 2.0],  # lang 2: correct, false alarm for 0
        ]
    )
    labels = np.array([0, 0, 1, 1, 2, 2])
    # P_miss: t0 1/2, t1 0, t2 0. P_fa(t, n): (0,2) = 1/2, (1,0) = 1/2, (2,1) = 1/2, others 0
    # per target: 0.5 * P_miss + 0.5 * mean over the 2 non-targets of P_fa
    expected = np.mean([0.5 * 0.5 + 0.5 * (0.5 / 2), 0.5 * (0.5 / 2), 0.5 * (0.5 / 2)])
    assert cavg(scores, labels) == pytest.approx(expected)
    assert lid_accuracy(scores, labels) == pytest.approx(5 / 6)  # row 1 picks language 1
    pooled = equal_error_rate(scores.ravel(), (np.arange(3)[None] == labels[:, None]).ravel())
    assert lid_eer(scores, labels) == pytest.approx(pooled)


def test_cavg_perfect_and_bad_input():
    eye = np.eye(3) * 2 - 1
    assert cavg(eye, np.array([0, 1, 2])) == 0.0
    with pytest.raises(ConfigError, match="language indices"):
        cavg(eye, np.array([0, 1, 5]))
    with pytest.raises(ConfigError, match="at least 2 languages"):
        cavg(eye, np.array([1, 1, 1]))
