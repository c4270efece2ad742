"""Correlations against textbook formulas; MCD/F0/VDE/speaker similarity by hand and a naive DTW."""

import math

import numpy as np
import pytest
from speechbench.metrics.correlation import (
    kendall_tau,
    linear_correlation,
    mean_squared_error,
    spearman_correlation,
    sys_lcc,
    sys_mse,
    sys_srcc,
)
from speechbench.metrics.generation import (
    MCD_CONSTANT,
    f0_contour,
    f0_correlation,
    f0_rmse,
    mel_cepstral_distortion,
    mel_cepstrum,
    pitch_mse,
    speaker_similarity,
    voicing_decision_error,
)

from speechbench.errors import ConfigError


def test_correlations_against_textbook_formulas():
    truth = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    pred = np.array([2.0, 1.0, 4.0, 3.0, 5.0])
    t, p = truth - truth.mean(), pred - pred.mean()
    assert linear_correlation(truth, pred) == pytest.approx((t @ p) / math.sqrt((t @ t) * (p @ p)))
    # no ties: Spearman = 1 - 6 sum d^2 / (n (n^2 - 1)), d = rank differences (1,1,1,1,0)
    assert spearman_correlation(truth, pred) == pytest.approx(1 - 6 * 4 / (5 * 24))
    # Kendall: 10 pairs, 2 discordant ((1,2), (3,4)) -> (8 - 2) / 10
    assert kendall_tau(truth, pred) == pytest.approx(0.6)
    assert mean_squared_error(truth, pred) == pytest.approx(4 / 5)


def test_system_level_averages_per_system_first():
    truth = np.array([1.0, 3.0, 4.0, 4.0, 2.0, 2.0])
    pred = np.array([2.0, 2.0, 3.0, 5.0, 1.0, 2.0])
    systems = ["a", "a", "b", "b", "c", "c"]
    # means: truth a=2, b=4, c=2 ; pred a=2, b=4, c=1.5
    assert sys_mse(truth, pred, systems) == pytest.approx((0 + 0 + 0.25) / 3)
    assert sys_lcc(truth, pred, systems) == pytest.approx(
        linear_correlation([2.0, 4.0, 2.0], [2.0, 4.0, 1.5])
    )
    # ties in the truth (a = c): average ranks, as scipy's spearmanr
    assert sys_srcc(truth, pred, systems) == pytest.approx(
        linear_correlation([1.5, 3, 1.5], [2, 3, 1])
    )


def test_correlation_edge_cases():
    with pytest.raises(ConfigError, match="all predictions are equal"):
        linear_correlation([1.0, 2.0, 3.0], [2.0, 2.0, 2.0])
    with pytest.raises(ConfigError, match="at least 2"):
        spearman_correlation([1.0], [1.0])
    with pytest.raises(ConfigError, match="NaN"):
        kendall_tau([1.0, np.nan], [1.0, 2.0])
    with pytest.raises(ConfigError, match="one per item"):
        linear_correlation([1.0, 2.0], [1.0, 2.0, 3.0])


def _naive_dtw_mcd(ref, gen):
    """Textbook O(T^2) DTW (steps (1,0), (0,1), (1,1)), then MCD averaged over the path."""
    cost = np.sqrt(((ref[:, None, 1:] - gen[None, :, 1:]) ** 2).sum(-1))
    acc = np.full((len(ref) + 1, len(gen) + 1), np.inf)
    acc[0, 0] = 0
    for i in range(1, len(ref) + 1):
        for j in range(1, len(gen) + 1):
            acc[i, j] = cost[i - 1, j - 1] + min(acc[i - 1, j], acc[i, j - 1], acc[i - 1, j - 1])
    i, j, path = len(ref), len(gen), []
    while (i, j) != (0, 0):
        path.append(cost[i - 1, j - 1])
        steps = {
            (i - 1, j - 1): acc[i - 1, j - 1],
            (i - 1, j): acc[i - 1, j],
            (i, j - 1): acc[i, j - 1],
        }
        i, j = min(steps, key=steps.get)
    return MCD_CONSTANT * np.mean(path)


def test_mcd_closed_form_and_against_naive_dtw():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((40, 13))
    assert mel_cepstral_distortion([ref], [ref])[0] == 0.0
    shifted = ref.copy()
    shifted[:, 3] += 0.5
    shifted[:, 0] += 9.0  # c0 (energy) is excluded
    value = mel_cepstral_distortion([ref], [shifted], use_dtw=False)[0]
    assert value == pytest.approx(10 / math.log(10) * math.sqrt(2 * 0.25))
    # a time-stretched, noisy copy: our librosa DTW path equals the textbook DTW
    gen = np.repeat(ref, 2, axis=0)[::3] + 0.1 * rng.standard_normal((27, 13))
    assert mel_cepstral_distortion([ref], [gen])[0] == pytest.approx(_naive_dtw_mcd(ref, gen))
    # repeating frames costs nothing with DTW
    assert mel_cepstral_distortion([ref], [np.repeat(ref, 2, axis=0)])[0] == pytest.approx(0.0)


def test_f0_metrics_hand_computed():
    ref = np.array([0.0, 100.0, 110.0, 120.0, 0.0])
    gen = np.array([0.0, 110.0, 100.0, 0.0, 130.0])
    # voiced in both: frames 1, 2 -> errors -10, 10
    assert f0_rmse([ref], [gen])[0] == pytest.approx(10.0)
    # MSEP is the mean squared ln-F0 error: (ln 100 - ln 110)^2 and (ln 110 - ln 100)^2
    assert pitch_mse([ref], [gen])[0] == pytest.approx(math.log(1.1) ** 2)
    # F0 correlation on the voiced-in-both frames (1, 2, 3 here) against numpy
    ref3, gen3 = np.array([0.0, 100.0, 120.0, 150.0]), np.array([90.0, 101.0, 118.0, 160.0])
    expected = np.corrcoef(ref3[1:], gen3[1:])[0, 1]
    assert f0_correlation([ref3], [gen3])[0] == pytest.approx(expected)
    assert voicing_decision_error([ref], [gen])[0] == pytest.approx(2 / 5)
    with pytest.warns(UserWarning, match="no frame voiced"):
        assert math.isnan(f0_rmse([np.zeros(3)], [np.ones(3)])[0])
    with pytest.raises(ConfigError, match="frame grid"):
        voicing_decision_error([ref], [gen[:-1]])


def test_speaker_similarity_is_cosine():
    a = np.array([[1.0, 0.0], [1.0, 1.0]])
    b = np.array([[0.0, 2.0], [2.0, 2.0]])
    np.testing.assert_allclose(speaker_similarity(a, b), [0.0, 1.0])
    with pytest.raises(ConfigError, match="zero embedding"):
        speaker_similarity(np.zeros((1, 2)), b[:1])


def test_audio_front_ends_on_a_synthetic_vowel():
    rate = 16000
    t = np.arange(rate) / rate
    tone = 0.5 * np.sin(2 * np.pi * 200 * t) + 0.2 * np.sin(2 * np.pi * 400 * t)
    f0 = f0_contour(tone, rate)
    voiced = f0[f0 > 0]
    assert voiced.size > 0.8 * f0.size and np.median(voiced) == pytest.approx(200, rel=0.02)
    cep = mel_cepstrum(tone, rate)
    assert cep.shape[1] == 25 and abs(cep.shape[0] - 100) <= 2
    assert mel_cepstral_distortion([cep], [mel_cepstrum(tone, rate)])[0] == 0.0
