"""SI-SDR / SDR / SNR: closed-form cases, invariances, mir_eval's BSS Eval, bad input."""

import math

import numpy as np
import pytest
import torch
from speechbench.metrics.separation import sdr, si_sdr, si_sdr_improvement, snr

from speechbench.errors import ConfigError


def _orthogonal_pair(n=8000, seed=0):
    """Zero-mean reference s and noise e with <s, e> = 0, so every ratio has a closed form."""
    rng = np.random.default_rng(seed)
    s = rng.standard_normal(n)
    s -= s.mean()
    e = rng.standard_normal(n)
    e -= e.mean()
    e -= (e @ s) / (s @ s) * s
    return s, e


def test_si_sdr_closed_form_and_scale_invariance():
    s, e = _orthogonal_pair()
    estimate = 0.5 * s + e
    expected = 10 * math.log10(np.sum((0.5 * s) ** 2) / np.sum(e**2))
    assert si_sdr(estimate, s).item() == pytest.approx(expected, abs=1e-9)
    for scale in (1e-3, 0.7, 42.0):
        assert si_sdr(scale * estimate, s).item() == pytest.approx(expected, abs=1e-9)
    # an offset (DC) does not matter either: both signals are made zero-mean
    assert si_sdr(estimate + 3.0, s).item() == pytest.approx(expected, abs=1e-9)


def test_snr_closed_form_and_not_scale_invariant():
    s, e = _orthogonal_pair()
    assert snr(s + e, s).item() == pytest.approx(10 * math.log10((s @ s) / (e @ e)), abs=1e-9)
    assert snr(2 * (s + e), s).item() < snr(s + e, s).item()


def test_si_sdr_improvement_is_the_difference():
    s, e = _orthogonal_pair()
    mixture, estimate = s + 2 * e, s + 0.5 * e
    gain = si_sdr_improvement(estimate, s, mixture).item()
    assert gain == pytest.approx(20 * math.log10(4), abs=1e-9)  # noise amplitude / 4


def test_sdr_matches_mir_eval_bss_eval_sources():
    mir_eval = pytest.importorskip("mir_eval")
    rng = np.random.default_rng(1)
    refs = rng.standard_normal((3, 3000))
    ests = np.stack(
        [
            np.convolve(r, rng.standard_normal(6))[:3000] + 0.4 * rng.standard_normal(3000)
            for r in refs
        ]
    )
    ours = sdr(ests, refs).numpy()
    with pytest.warns(FutureWarning):  # bss_eval_sources is deprecated in mir_eval 0.8, still valid
        theirs = [
            mir_eval.separation.bss_eval_sources(r[None], e[None])[0][0]
            for r, e in zip(refs, ests, strict=True)
        ]
    np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_sdr_forgives_a_short_filter_that_si_sdr_does_not():
    rng = np.random.default_rng(2)
    ref = rng.standard_normal(4000)
    filtered = np.convolve(ref, [1.0, -0.6, 0.3])[:4000]
    assert sdr(filtered, ref).item() > 40  # a 3-tap filter is inside the 512-tap projection
    assert si_sdr(filtered, ref).item() < 5


def test_batched_with_lengths_equals_one_by_one():
    rng = np.random.default_rng(3)
    lengths = [3000, 2000]
    refs = [rng.standard_normal(n) for n in lengths]
    ests = [r + 0.3 * rng.standard_normal(r.size) for r in refs]
    ref_batch = torch.zeros(2, 3000, dtype=torch.float64)
    est_batch = torch.full((2, 3000), 5.0, dtype=torch.float64)  # padding garbage must not count
    for i, (r, e) in enumerate(zip(refs, ests, strict=True)):
        ref_batch[i, : r.size] = torch.from_numpy(r)
        est_batch[i, : e.size] = torch.from_numpy(e)
    for fn in (si_sdr, snr, sdr):
        batched = fn(est_batch, ref_batch, lengths=lengths)
        single = torch.cat([fn(e, r) for e, r in zip(ests, refs, strict=True)])
        torch.testing.assert_close(batched, single)


def test_silent_reference_is_nan_with_a_warning():
    with pytest.warns(UserWarning, match="silent"):
        values = si_sdr(np.ones((2, 100)), np.stack([np.zeros(100), np.arange(100.0)]))
    assert math.isnan(values[0]) and not math.isnan(values[1])


def test_separation_bad_input():
    with pytest.raises(ConfigError, match="shape"):
        si_sdr(np.zeros((2, 10)), np.zeros((2, 11)))
    with pytest.raises(ConfigError, match="NaN"):
        sdr(np.full(10, np.nan), np.ones(10))
    with pytest.raises(ConfigError, match="lengths"):
        snr(np.ones((2, 10)), np.ones((2, 10)), lengths=[10, 11])
