"""Bootstrap intervals against scipy.stats.bootstrap; the paired test on clear and null cases."""

import numpy as np
import pytest
from scipy import stats
from speechbench.metrics.base import MetricSpec
from speechbench.metrics.bootstrap import bootstrap_ci, mean_ci, paired_bootstrap_test
from speechbench.metrics.recognition import word_error_rate
from speechbench.metrics.separation import si_sdr
from speechbench.metrics.verification import equal_error_rate

from speechbench.errors import ConfigError


def test_mean_interval_agrees_with_scipy_percentile_bootstrap():
    values = np.random.default_rng(0).gamma(2.0, 1.5, size=400)
    ours = mean_ci(values, n_resamples=4000, seed=1)
    theirs = stats.bootstrap(
        (values,), np.mean, n_resamples=4000, method="percentile", rng=np.random.default_rng(2)
    ).confidence_interval
    assert ours.value == pytest.approx(values.mean())
    # two Monte Carlo estimates of the same interval: equal within resampling noise
    assert ours.low == pytest.approx(theirs.low, abs=0.03)
    assert ours.high == pytest.approx(theirs.high, abs=0.03)
    assert ours.low < values.mean() < ours.high


def test_utterance_level_metric_resamples_values_and_skips_nan():
    rng = np.random.default_rng(3)
    refs = rng.standard_normal((30, 800))
    ests = refs + rng.uniform(0.1, 1.0, (30, 1)) * rng.standard_normal((30, 800))
    interval = bootstrap_ci(si_sdr, ests, refs, n_resamples=500)
    assert interval.low < interval.value < interval.high
    assert interval.value == pytest.approx(si_sdr.score(ests, refs))
    with_nan = np.append(si_sdr(ests, refs).numpy(), np.nan)
    assert mean_ci(with_nan, n_resamples=500).value == pytest.approx(interval.value)


def test_corpus_level_metric_is_recomputed_on_each_resample():
    refs = ["a b c d"] * 20 + ["a b"] * 20
    hyps = ["a b c d"] * 20 + ["a x"] * 20  # 20 errors over 120 words
    interval = bootstrap_ci(word_error_rate, refs, hyps, n_resamples=300, seed=0)
    assert interval.value == pytest.approx(20 / 120)
    assert 0.08 < interval.low < interval.value < interval.high < 0.26


def test_undefined_resamples_are_dropped_or_refused():
    # one target trial among 40: about e^-1 of the resamples draw no target (EER undefined)
    scores, labels = np.arange(40.0), np.array([1] + [0] * 39)
    with pytest.warns(UserWarning, match="dropped"):
        interval = bootstrap_ci(equal_error_rate, scores, labels, n_resamples=200)
    assert 100 < interval.n_resamples < 200

    def picky(values):  # defined only when exactly one zero is drawn: ~61 % of resamples fail
        if np.sum(values == 0) != 1:
            raise ConfigError("undefined here")
        return float(np.mean(values))

    spec = MetricSpec("picky", picky, True, (0.0, 1.0), True, "corpus", "test metric")
    with pytest.raises(ConfigError, match="undefined on"):
        bootstrap_ci(spec, np.array([1.0] * 9 + [0.0]), n_resamples=200)


def test_paired_test_detects_a_real_difference_and_not_a_null_one():
    rng = np.random.default_rng(4)
    refs = ["the cat sat on the mat"] * 60
    words = refs[0].split()

    def corrupt(rate):
        return [" ".join(w if rng.random() > rate else "x" for w in words) for _ in refs]

    good, bad = corrupt(0.05), corrupt(0.4)
    result = paired_bootstrap_test(word_error_rate, (refs, good), (refs, bad), n_resamples=500)
    assert result.a_is_better and result.p_value < 0.01 and result.delta < 0
    assert result.delta_low <= result.delta <= result.delta_high
    same = paired_bootstrap_test(word_error_rate, (refs, good), (refs, good), n_resamples=200)
    assert same.delta == 0 and same.p_value == 1.0  # identical runs never differ


def test_paired_test_utterance_level_orientation():
    rng = np.random.default_rng(5)
    refs = rng.standard_normal((40, 500))
    better = refs + 0.1 * rng.standard_normal((40, 500))
    worse = refs + 0.2 * rng.standard_normal((40, 500))
    result = paired_bootstrap_test(si_sdr, (worse, refs), (better, refs), n_resamples=500)
    assert not result.a_is_better and result.delta < 0 and result.p_value < 0.01


def test_bootstrap_bad_settings():
    with pytest.raises(ConfigError, match="too few"):
        mean_ci([1.0, 2.0], n_resamples=5)
    with pytest.raises(ConfigError, match="confidence"):
        mean_ci([1.0, 2.0], confidence=1.5)
    with pytest.raises(ConfigError, match="different numbers"):
        bootstrap_ci(word_error_rate, ["a", "b"], ["a"], n_resamples=100)
