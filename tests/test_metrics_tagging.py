"""lwlrap vs sklearn label-ranking AP (the DCASE 2019 identity) and hand counts; mAP by hand."""

import numpy as np
import pytest
from sklearn.metrics import label_ranking_average_precision_score
from speechbench.metrics.tagging import lwlrap, lwlrap_per_class, mean_average_precision

from speechbench.errors import ConfigError


def test_lwlrap_hand_computed_with_per_class_values():
    truth = np.array([[1, 0, 1], [0, 1, 0]])
    scores = np.array([[0.9, 0.8, 0.1], [0.5, 0.2, 0.7]])
    # clip 0: class 0 ranked 1st -> precision 1;
    #         class 2 ranked 3rd with 2 positives at or above -> 2/3
    # clip 1: class 1 ranked 3rd, 1 positive at or above -> 1/3
    per_class, weights = lwlrap_per_class(truth, scores)
    np.testing.assert_allclose(per_class, [1.0, 1 / 3, 2 / 3])
    np.testing.assert_allclose(weights, [1 / 3, 1 / 3, 1 / 3])
    assert lwlrap(truth, scores) == pytest.approx((1 + 2 / 3 + 1 / 3) / 3)


@pytest.mark.parametrize("rounding", [None, 1])  # 1 decimal -> many ties
def test_lwlrap_equals_sample_weighted_lrap(rounding):
    # DCASE 2019 task 2: lwlrap == sklearn LRAP weighted by each clip's number of labels
    rng = np.random.default_rng(0)
    truth = rng.random((300, 12)) < 0.15
    truth[~truth.any(axis=1), 0] = True
    scores = rng.random((300, 12))
    if rounding is not None:
        scores = np.round(scores, rounding)
    expected = label_ranking_average_precision_score(truth, scores, sample_weight=truth.sum(axis=1))
    assert lwlrap(truth, scores) == pytest.approx(expected, abs=1e-12)


def test_lwlrap_all_scores_equal_is_label_density_and_class_without_positives_is_nan():
    truth = np.array([[1, 0, 0, 0], [1, 1, 0, 0]])
    scores = np.zeros((2, 4))
    # every class tied at rank 4: precision = positives in clip / 4
    per_class, weights = lwlrap_per_class(truth, scores)
    assert lwlrap(truth, scores) == pytest.approx((1 / 4 + 2 / 4 + 2 / 4) / 3)
    assert np.isnan(per_class[2]) and weights[2] == 0


def test_map_hand_computed():
    truth = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    scores = np.array([[0.9, 0.1], [0.8, 0.7], [0.3, 0.9], [0.1, 0.8]])
    # class 0 ranking: clip0 (pos), clip1 (neg), clip2 (pos), clip3: AP = (1/1 + 2/3) / 2
    # class 1 ranking: clip2 (pos, 0.9), clip3 (neg, 0.8), clip1 (pos, 0.7): AP = (1 + 2/3) / 2
    assert mean_average_precision(truth, scores) == pytest.approx((5 / 6 + 5 / 6) / 2)


def test_tagging_bad_input():
    with pytest.raises(ConfigError, match="shape"):
        lwlrap(np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(ConfigError, match="NaN"):
        lwlrap(np.ones((2, 3)), np.full((2, 3), np.nan))
    with pytest.raises(ConfigError, match="0/1"):
        mean_average_precision(np.full((2, 3), 0.5), np.ones((2, 3)))
    with pytest.raises(ConfigError, match="no positive"):
        lwlrap(np.zeros((2, 3)), np.ones((2, 3)))
