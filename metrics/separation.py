"""Separation / extraction metrics, batched in torch: SI-SDR, SI-SDRi, SDR, SNR.

All take ``estimates`` and ``references`` as B x T tensors (or one T signal), with
optional ``lengths`` (B valid samples each) for padded batches, and return one value
in dB per utterance (utterance-level metrics; the reported score is their mean).

- SI-SDR: Le Roux, Wisdom, Erdogan, Hershey, "SDR - half-baked or well done?",
  ICASSP 2019, eq. (2): both signals made zero-mean, target = <s_hat, s> s / ||s||^2,
  SI-SDR = 10 log10(||target||^2 / ||s_hat - target||^2). Invariant to rescaling s_hat.
- SI-SDRi: SI-SDR(estimate, reference) - SI-SDR(mixture, reference).
- SDR: BSS Eval (Vincent, Gribonval, Fevotte, IEEE TASLP 2006) for one source, as in
  bss_eval_sources v3 / mir_eval: the estimate is projected by least squares onto the
  span of the reference delayed by 0..511 samples (a 512-tap distortion filter);
  SDR = 10 log10(||projection||^2 / ||estimate - projection||^2). Written here because
  no installed library computes it batched; checked against mir_eval in the tests.
- SNR: 10 log10(||s||^2 / ||s - s_hat||^2), no scaling or filtering allowed.

A silent reference makes every ratio undefined: that utterance is NaN, with a warning.
Every ratio is clamped to [-100, +100] dB (``DB_CEILING``): a perfect estimate counts as
+100 dB in the mean rather than +inf (which would be dropped as non-finite). An estimate
that is constant (zero after centring) has no SI-SDR direction; it scores -100 dB.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from speechbench.metrics.base import metric

from speechbench.errors import ConfigError

BSS_EVAL_FILTER_TAPS = 512
_EPS = torch.finfo(torch.float64).tiny
# Ratios are clamped to [-DB_CEILING, +DB_CEILING] dB (the ``clamp_db`` of fast_bss_eval /
# ESPnet): a perfect estimate (+inf dB) counts as +100 dB instead of being dropped from
# the mean. 100 dB is above what 16-bit audio can express (~98 dB), so no real system
# output is clipped by it.
DB_CEILING = 100.0
# energy after centring <= _FLAT x energy before: the signal is constant (rounding only)
_FLAT = 1e-24


def _clamp_db(values: torch.Tensor) -> torch.Tensor:
    return values.clamp(-DB_CEILING, DB_CEILING)


def _batch(
    estimates: Any, references: Any, lengths: Any = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """float64 B x T tensors with any padding zeroed, plus the B valid lengths."""
    est = torch.as_tensor(estimates, dtype=torch.float64)
    ref = torch.as_tensor(references, dtype=torch.float64)
    if est.shape != ref.shape:
        raise ConfigError(
            f"estimates have shape {tuple(est.shape)} but references {tuple(ref.shape)}; "
            "they must match sample for sample"
        )
    if est.ndim == 1:
        est, ref = est[None], ref[None]
    if est.ndim != 2 or est.shape[1] == 0:
        raise ConfigError(f"expected B x T signals, got shape {tuple(est.shape)}")
    for name, x in (("estimates", est), ("references", ref)):
        # a row sum is NaN/inf iff the row holds NaN/inf (audio never overflows float64),
        # and is ~20x cheaper than an elementwise isfinite on long signals
        bad = ~torch.isfinite(x.sum(dim=1))
        if bad.any():
            row = int(torch.nonzero(bad)[0, 0])
            raise ConfigError(f"{name} contain NaN or inf (utterance {row}); fix the audio")
    if lengths is None:
        return est, ref, torch.full((est.shape[0],), est.shape[1], dtype=torch.float64)
    lengths = torch.as_tensor(lengths).reshape(-1)
    if lengths.shape[0] != est.shape[0] or (lengths < 1).any() or (lengths > est.shape[1]).any():
        raise ConfigError(f"lengths must be B={est.shape[0]} values in [1, {est.shape[1]}]")
    mask = torch.arange(est.shape[1])[None, :] < lengths[:, None]
    return est * mask, ref * mask, lengths.to(torch.float64)


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise inner products (a batched matrix product: no B x T temporary)."""
    return torch.einsum("bt,bt->b", a, b)


def _ratio_db(signal_energy: torch.Tensor, noise_energy: torch.Tensor) -> torch.Tensor:
    return 10 * torch.log10((signal_energy + _EPS) / (noise_energy + _EPS))


def _silent_to_nan(values: torch.Tensor, ref_energy: torch.Tensor, name: str) -> torch.Tensor:
    silent = ref_energy <= 1e-20
    if silent.any():
        rows = torch.nonzero(silent).flatten().tolist()
        warnings.warn(f"{name}: reference of utterance(s) {rows[:10]} is silent; NaN", stacklevel=3)
        values = values.masked_fill(silent, float("nan"))
    return values


@metric(
    "si_sdr",
    higher_is_better=True,
    range=(-DB_CEILING, DB_CEILING),
    level="utterance",
    definition="scale-invariant SDR in dB, zero-mean (Le Roux et al., ICASSP 2019), "
    f"clamped to +-{DB_CEILING:g} dB",
    inputs="audio",
)
def si_sdr(estimates: Any, references: Any, lengths: Any = None, chunk: int = 64) -> torch.Tensor:
    """Scale-invariant SDR (dB) per utterance: rescaling the estimate cannot change it.

    Computed from explicitly centred signals and the explicit residual (not from sums of
    squares, which cancel catastrophically for near-perfect estimates or large DC
    offsets), ``chunk`` utterances at a time to bound memory. A perfect estimate scores
    the ceiling, +DB_CEILING; an estimate that is constant (zero after centring) scores
    the floor, -DB_CEILING, with a warning: it recovers nothing of the reference."""
    est, ref, count = _batch(estimates, references, lengths)
    mask = torch.arange(est.shape[1])[None, :] < count[:, None]
    out, ref_energies, flat = [], [], []
    for start in range(0, est.shape[0], chunk):
        rows = slice(start, start + chunk)
        e, r, m, n = est[rows], ref[rows], mask[rows], count[rows]
        e_raw, r_raw = _dot(e, e), _dot(r, r)
        e = (e - (e.sum(dim=1) / n)[:, None]) * m
        r = (r - (r.sum(dim=1) / n)[:, None]) * m
        ref_energy = _dot(r, r)
        scale = _dot(e, r) / (ref_energy + _EPS)
        target = scale[:, None] * r
        residual = e - target
        values = _ratio_db(_dot(target, target), _dot(residual, residual))
        out.append(values)
        # "zero after centring": nothing left but rounding of the mean (or truly zero)
        ref_energies.append(torch.where(ref_energy <= _FLAT * r_raw, 0.0, ref_energy))
        flat.append(_dot(e, e) <= _FLAT * e_raw)
    values, ref_energy, flat = torch.cat(out), torch.cat(ref_energies), torch.cat(flat)
    flat &= ref_energy > 1e-20  # a silent reference is NaN anyway
    if flat.any():
        rows = torch.nonzero(flat).flatten().tolist()
        warnings.warn(
            f"si_sdr: estimate of utterance(s) {rows[:10]} is constant; scored as "
            f"-{DB_CEILING:g} dB",
            stacklevel=2,
        )
        values = values.masked_fill(flat, -DB_CEILING)
    return _silent_to_nan(_clamp_db(values), ref_energy, "si_sdr")


@metric(
    "si_sdri",
    higher_is_better=True,
    range=(-2 * DB_CEILING, 2 * DB_CEILING),
    level="utterance",
    definition="SI-SDR improvement: SI-SDR(estimate) - SI-SDR(mixture), dB",
    inputs="audio+mixture",
)
def si_sdr_improvement(
    estimates: Any, references: Any, mixtures: Any, lengths: Any = None
) -> torch.Tensor:
    """How many dB of SI-SDR the system gained over its input mixture."""
    return si_sdr(estimates, references, lengths) - si_sdr(mixtures, references, lengths)


@metric(
    "snr",
    higher_is_better=True,
    range=(-DB_CEILING, DB_CEILING),
    level="utterance",
    definition="10 log10(||s||^2 / ||s - s_hat||^2), dB, no scaling allowed",
    inputs="audio",
)
def snr(estimates: Any, references: Any, lengths: Any = None) -> torch.Tensor:
    """Plain signal-to-noise ratio of the estimate against the reference (dB)."""
    est, ref, _ = _batch(estimates, references, lengths)
    ref_energy = _dot(ref, ref)
    error = ref - est
    values = _clamp_db(_ratio_db(ref_energy, _dot(error, error)))
    return _silent_to_nan(values, ref_energy, "snr")


@metric(
    "sdr",
    higher_is_better=True,
    range=(-DB_CEILING, DB_CEILING),
    level="utterance",
    definition="BSS Eval SDR, 512-tap distortion filter (Vincent et al. 2006; mir_eval v3)",
    inputs="audio",
)
def sdr(
    estimates: Any,
    references: Any,
    lengths: Any = None,
    filter_taps: int = BSS_EVAL_FILTER_TAPS,
    chunk: int = 32,
) -> torch.Tensor:
    """BSS Eval SDR (dB) of one source: a 512-tap filter of the reference is not penalised."""
    est, ref, _ = _batch(estimates, references, lengths)
    taps = filter_taps
    n_fft = 1 << (est.shape[1] + taps - 1 - 1).bit_length()
    lag = torch.arange(taps)
    toeplitz_index = (lag[:, None] - lag[None, :]).abs()
    out = []
    for start in range(0, est.shape[0], chunk):
        e, r = est[start : start + chunk], ref[start : start + chunk]
        ref_spec = torch.fft.rfft(r, n=n_fft)
        est_spec = torch.fft.rfft(e, n=n_fft)
        # autocorrelation of the reference and its cross-correlation with the estimate,
        # lags 0..taps-1: the normal equations of the least-squares filter
        auto = torch.fft.irfft(ref_spec * ref_spec.conj(), n=n_fft)[:, :taps]
        cross = torch.fft.irfft(est_spec * ref_spec.conj(), n=n_fft)[:, :taps]
        gram = auto[:, toeplitz_index]
        try:
            filt = torch.linalg.solve(gram, cross)
        except torch._C._LinAlgError:  # singular Gram matrix (e.g. silent reference)
            filt = torch.linalg.lstsq(gram, cross[..., None]).solution[..., 0]
        proj_energy = torch.einsum("bi,bij,bj->b", filt, gram, filt)
        est_energy = (e * e).sum(dim=1)
        error_energy = (est_energy - 2 * (filt * cross).sum(dim=1) + proj_energy).clamp_min(0)
        out.append(_ratio_db(proj_energy, error_energy))
    values = _clamp_db(torch.cat(out))
    return _silent_to_nan(values, _dot(ref, ref), "sdr")


@metric(
    "wrong_speaker_rate",
    higher_is_better=False,
    range=(0.0, 1.0),
    level="utterance",
    definition="share of mixtures whose estimate is closer in SI-SDR to the interferer "
    "than to the target (target speaker extraction's characteristic failure)",
    inputs="audio+interferer",
)
def wrong_speaker_rate(
    estimates: Any, references: Any, interferers: Any, lengths: Any = None
) -> torch.Tensor:
    """1.0 per utterance where SI-SDR(estimate, interferer) > SI-SDR(estimate, target),
    else 0.0 (NaN where either reference is silent); the mean is the rate."""
    to_target = si_sdr(estimates, references, lengths)
    to_interferer = si_sdr(estimates, interferers, lengths)
    wrong = (to_interferer > to_target).to(torch.float64)
    return wrong.masked_fill(to_target.isnan() | to_interferer.isnan(), float("nan"))
