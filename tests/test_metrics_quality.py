"""PESQ/STOI wrappers vs direct calls of the reference packages; NaN for silence; SDI by hand."""

import math

import numpy as np
import pytest
from pesq import pesq as reference_pesq
from pystoi import stoi as reference_stoi
from speechbench.metrics.quality import estoi, pesq_nb, pesq_wb, speech_distortion_index, stoi

from speechbench.errors import ConfigError

RATE = 16000


def _speech_like(seconds=2.0, seed=0):
    """Amplitude-modulated harmonic tone with pauses: PESQ's VAD finds 'speech' in it."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    voiced = sum(np.sin(2 * np.pi * k * 140 * t) / k for k in range(1, 8))
    envelope = np.clip(np.sin(2 * np.pi * 2.5 * t), 0, None)
    return 0.3 * voiced * envelope + 1e-3 * rng.standard_normal(t.size)


@pytest.fixture(scope="module")
def pairs():
    clean = [_speech_like(seed=i) for i in range(3)]
    rng = np.random.default_rng(9)
    noisy = [c + 0.03 * rng.standard_normal(c.size) for c in clean]
    return clean, noisy


def test_pesq_matches_the_pesq_package_serial_and_parallel(pairs):
    clean, noisy = pairs
    direct = [reference_pesq(RATE, c, n, "wb") for c, n in zip(clean, noisy, strict=True)]
    np.testing.assert_allclose(pesq_wb(clean, noisy, RATE, workers=1), direct, rtol=1e-6)
    np.testing.assert_allclose(pesq_wb(clean, noisy, RATE, workers=2), direct, rtol=1e-6)
    direct_nb = [reference_pesq(RATE, c, n, "nb") for c, n in zip(clean, noisy, strict=True)]
    np.testing.assert_allclose(pesq_nb(clean, noisy, RATE, workers=1), direct_nb, rtol=1e-6)
    assert pesq_wb(clean[:1], clean[:1], RATE, workers=1)[0] > 4.5  # identical: near the 4.64 max


def test_pesq_silence_is_nan_with_a_warning_naming_the_file(pairs):
    clean, noisy = pairs
    with pytest.warns(UserWarning, match="quiet.wav"):
        values = pesq_wb(
            [clean[0], np.zeros(RATE)],
            [noisy[0], np.zeros(RATE)],
            RATE,
            ids=["ok.wav", "quiet.wav"],
            workers=2,
        )
    assert not math.isnan(values[0]) and math.isnan(values[1])


def test_pesq_resamples_other_rates():
    signal16 = _speech_like()
    from scipy.signal import resample_poly

    signal48 = resample_poly(signal16, 3, 1)
    assert pesq_wb([signal48], [signal48], 48000, workers=1)[0] > 4.4


def test_stoi_and_estoi_match_pystoi(pairs):
    clean, noisy = pairs
    np.testing.assert_allclose(
        stoi(clean, noisy, RATE, workers=2),
        [reference_stoi(c, n, RATE) for c, n in zip(clean, noisy, strict=True)],
    )
    np.testing.assert_allclose(
        estoi(clean, noisy, RATE, workers=1),
        [reference_stoi(c, n, RATE, extended=True) for c, n in zip(clean, noisy, strict=True)],
    )
    assert stoi(clean[:1], clean[:1], RATE, workers=1)[0] == pytest.approx(1.0, abs=1e-6)


def test_sdi_hand_computed():
    clean = np.array([1.0, -1.0, 2.0, 0.0])
    processed = np.array([0.5, -1.0, 2.0, 0.5])
    # (0.25 + 0 + 0 + 0.25) / (1 + 1 + 4 + 0)
    assert speech_distortion_index([clean], [processed])[0] == pytest.approx(0.5 / 6)
    with pytest.warns(UserWarning, match="silent"):
        assert math.isnan(speech_distortion_index([np.zeros(4)], [processed])[0])


def test_quality_bad_input(pairs):
    clean, _ = pairs
    with pytest.raises(ConfigError, match="equally long"):
        stoi([clean[0]], [clean[0][:-10]], RATE, workers=1)
    with pytest.raises(ConfigError, match="NaN"):
        pesq_wb([clean[0]], [np.full(100, np.nan)], RATE, workers=1)
    with pytest.raises(ConfigError, match="pair up"):
        pesq_wb(clean, clean[:1], RATE)
    with pytest.raises(ConfigError, match="mono"):
        sdi_input = np.zeros((2, 10))
        speech_distortion_index([sdi_input], [sdi_input])
