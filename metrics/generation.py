"""Generation (TTS / VC) metrics: MCD with DTW, F0 RMSE, MSEP, voicing error, speaker similarity.

Utterance-level: each returns one value per (reference, generated) pair.

- MCD: mel-cepstral distortion (Kubichek, "Mel-cepstral distance measure for objective
  speech quality assessment", 1993): per frame (10 / ln 10) sqrt(2 sum_{d>=1} (c_d - c'_d)^2)
  in dB, c_0 (energy) excluded, averaged over the frames of the dynamic-time-warping
  path between the two cepstrum sequences (Euclidean frame cost, librosa's DTW), since
  generated speech is not time-aligned with its reference.
- F0 RMSE (Hz), F0 correlation (Pearson) and MSEP (the "MSEP" reported by CTAP, Qiang
  et al., ICASSP 2024: mean squared error of log F0) over frames voiced in both
  contours; F0 <= 0 marks an unvoiced frame. Contours must have one value per frame at
  the same frame rate (callers align them, e.g. along the MCD's DTW path).
- Voicing decision error (VDE, Nakatani et al., Speech Communication 2008): share of
  frames whose voiced/unvoiced decision differs.
- Speaker similarity: cosine between speaker embeddings of the reference and the
  generated utterance (the embedding model is the caller's choice).

Cepstra and F0 from audio (:func:`mel_cepstrum`, :func:`f0_contour`) are provided for
the ``score`` command; they are librosa front-ends, documented in docs/metrics.md.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from speechbench.metrics._checks import finite_array, same_length
from speechbench.metrics.base import metric

from speechbench.errors import ConfigError

MCD_CONSTANT = 10.0 / np.log(10.0) * np.sqrt(2.0)
FRAME_HOP_SECONDS = 0.010


def _frame_pairs(references, generated, name: str, ndim: int):
    same_length("references", references, "generated", generated)
    pairs = []
    for i, (ref, gen) in enumerate(zip(references, generated, strict=True)):
        pairs.append(
            (
                finite_array(ref, f"{name} reference {i}", ndim=ndim),
                finite_array(gen, f"{name} generated {i}", ndim=ndim),
            )
        )
    return pairs


@metric(
    "mcd",
    higher_is_better=False,
    range=(0.0, float("inf")),
    level="utterance",
    definition="mel-cepstral distortion (dB), c0 excluded, over the DTW path (Kubichek 1993)",
    inputs="audio",
)
def mel_cepstral_distortion(
    references: Sequence[Any], generated: Sequence[Any], use_dtw: bool = True
) -> np.ndarray:
    """MCD per utterance from T x D cepstra (column 0 is c0 and is ignored)."""
    import librosa

    values = []
    for i, (ref, gen) in enumerate(_frame_pairs(references, generated, "cepstra", 2)):
        if ref.shape[1] != gen.shape[1] or ref.shape[1] < 2:
            raise ConfigError(
                f"utterance {i}: cepstra of order {ref.shape[1]} vs {gen.shape[1]}; "
                "need equal orders, at least 2"
            )
        ref, gen = ref[:, 1:], gen[:, 1:]
        if use_dtw:
            _, path = librosa.sequence.dtw(X=ref.T, Y=gen.T, metric="euclidean")
            ref, gen = ref[path[:, 0]], gen[path[:, 1]]
        elif ref.shape[0] != gen.shape[0]:
            raise ConfigError(f"utterance {i}: {ref.shape[0]} vs {gen.shape[0]} frames without DTW")
        values.append(MCD_CONSTANT * np.mean(np.sqrt(np.sum((ref - gen) ** 2, axis=1))))
    return np.array(values)


def _contours(references, generated):
    pairs = _frame_pairs(references, generated, "F0", 1)
    for i, (ref, gen) in enumerate(pairs):
        if ref.size != gen.size:
            raise ConfigError(
                f"utterance {i}: F0 contours have {ref.size} and {gen.size} frames; "
                "they must share one frame grid (align or trim them first)"
            )
    return pairs


def _voiced_errors(references, generated, name: str) -> list[np.ndarray | None]:
    errors = []
    for i, (ref, gen) in enumerate(_contours(references, generated)):
        both = (ref > 0) & (gen > 0)
        if not both.any():
            warnings.warn(
                f"{name}: utterance {i} has no frame voiced in both contours; NaN", stacklevel=3
            )
            errors.append(None)
        else:
            errors.append(ref[both] - gen[both])
    return errors


@metric(
    "f0_rmse",
    higher_is_better=False,
    range=(0.0, float("inf")),
    level="utterance",
    definition="root mean squared F0 error (Hz) over frames voiced in both contours",
    inputs="audio",
)
def f0_rmse(references: Sequence[Any], generated: Sequence[Any]) -> np.ndarray:
    """F0 RMSE in Hz on frames both contours call voiced."""
    return np.array(
        [
            np.nan if e is None else np.sqrt(np.mean(e**2))
            for e in _voiced_errors(references, generated, "f0_rmse")
        ]
    )


@metric(
    "msep",
    higher_is_better=False,
    range=(0.0, float("inf")),
    level="utterance",
    definition="mean squared error of ln F0 on frames voiced in both (MSEP, CTAP 2024)",
    inputs="audio",
)
def pitch_mse(references: Sequence[Any], generated: Sequence[Any]) -> np.ndarray:
    """MSEP: mean of (ln F0_ref - ln F0_gen)^2 on frames both contours call voiced (F0 in
    Hz; the log makes it a relative error: 0.01 is about a 10% pitch error)."""
    values = []
    for i, (ref, gen) in enumerate(_contours(references, generated)):
        both = (ref > 0) & (gen > 0)
        if not both.any():
            warnings.warn(f"msep: utterance {i} has no frame voiced in both contours; NaN",
                          stacklevel=2)  # fmt: skip
            values.append(np.nan)
        else:
            values.append(float(np.mean((np.log(ref[both]) - np.log(gen[both])) ** 2)))
    return np.array(values)


@metric(
    "f0_corr",
    higher_is_better=True,
    range=(-1.0, 1.0),
    level="utterance",
    definition="Pearson correlation of F0 (Hz) on frames voiced in both contours",
    inputs="audio",
)
def f0_correlation(references: Sequence[Any], generated: Sequence[Any]) -> np.ndarray:
    """Pearson r of the two F0 contours over frames voiced in both (scipy.stats.pearsonr);
    NaN with a warning when fewer than 3 such frames or a contour is constant there."""
    from scipy.stats import pearsonr

    values = []
    for i, (ref, gen) in enumerate(_contours(references, generated)):
        both = (ref > 0) & (gen > 0)
        if both.sum() < 3 or np.ptp(ref[both]) == 0 or np.ptp(gen[both]) == 0:
            warnings.warn(f"f0_corr: utterance {i} has too few varying voiced frames; NaN",
                          stacklevel=2)  # fmt: skip
            values.append(np.nan)
        else:
            values.append(float(pearsonr(ref[both], gen[both]).statistic))
    return np.array(values)


@metric(
    "vde",
    higher_is_better=False,
    range=(0.0, 1.0),
    level="utterance",
    definition="voicing decision error: share of frames with differing voiced/unvoiced decision",
    inputs="audio",
)
def voicing_decision_error(references: Sequence[Any], generated: Sequence[Any]) -> np.ndarray:
    """Fraction of frames where one contour is voiced (F0 > 0) and the other is not."""
    return np.array([np.mean((r > 0) != (g > 0)) for r, g in _contours(references, generated)])


@metric(
    "spk_sim",
    higher_is_better=True,
    range=(-1.0, 1.0),
    level="utterance",
    definition="cosine similarity of reference and generated speaker embeddings",
    inputs="embeddings",
)
def speaker_similarity(references: Any, generated: Any) -> np.ndarray:
    """Cosine of each pair of speaker embeddings (rows of two N x D matrices)."""
    ref = finite_array(references, "reference embeddings", ndim=2)
    gen = finite_array(generated, "generated embeddings", ndim=2)
    if ref.shape != gen.shape:
        raise ConfigError(f"embeddings of shape {ref.shape} vs {gen.shape}; need N x D both")
    norms = np.linalg.norm(ref, axis=1) * np.linalg.norm(gen, axis=1)
    if (norms == 0).any():
        raise ConfigError(f"zero embedding at row {int(np.argmax(norms == 0))}; cosine undefined")
    return np.sum(ref * gen, axis=1) / norms


@metric(
    "dnsmos",
    higher_is_better=True,
    range=(1.0, 5.0),
    level="utterance",
    definition="DNSMOS P.835 / P.808 score of each output (the dnsmos evaluator, 1-5)",
    inputs="scores",
)
def dnsmos_values(scores: Sequence[float]) -> np.ndarray:
    """Per-item DNSMOS scores as computed by the ``dnsmos`` evaluator (registered so that
    ``dnsmos_ovrl`` etc. have a direction and range in the store and leaderboards)."""
    return finite_array(scores, "DNSMOS scores", ndim=1)


def mel_cepstrum(
    signal: np.ndarray,
    sample_rate: int,
    order: int = 24,
    n_mels: int = 80,
    dynamic_range_db: float = 80.0,
) -> np.ndarray:
    """T x (order + 1) mel-frequency cepstrum: DCT-II (orthonormal) of the natural-log
    mel power spectrum, 10 ms hop, 25 ms window, floored ``dynamic_range_db`` below the
    utterance's loudest mel bin.

    The floor is relative so that digital silence (exact zeros, as espeak-ng writes)
    against a vocoder's low-level noise does not give frames of 100+ dB distance: both
    sides' silence sits at the same level below their own peak. An approximation of
    SPTK's all-pass-warped mel-cepstrum: systems are comparable with each other, not with
    papers' absolute MCD.
    """
    import librosa
    from scipy.fft import dct

    hop = int(round(FRAME_HOP_SECONDS * sample_rate))
    mel = librosa.feature.melspectrogram(
        y=np.asarray(signal, dtype=np.float32),
        sr=sample_rate,
        n_fft=int(0.025 * sample_rate),
        hop_length=hop,
        n_mels=n_mels,
        power=2.0,
    )
    floor = max(float(mel.max()), 1e-20) * 10.0 ** (-dynamic_range_db / 10.0)
    return dct(np.log(np.maximum(mel, floor)), type=2, norm="ortho", axis=0)[: order + 1].T


def f0_contour(
    signal: np.ndarray, sample_rate: int, fmin: float = 50.0, fmax: float = 600.0
) -> np.ndarray:
    """F0 in Hz every 10 ms by WORLD's DIO refined with StoneMask (pyworld), the same F0
    estimator as the generation tasks' WORLD targets; 0 on unvoiced frames.

    It replaced librosa's pYIN, whose numba-compiled kernel segfaulted on fresh installs
    (numba 0.68.1, llvmlite 0.50.0) in the test process and, intermittently, even in a
    spawned worker; WORLD is compiled C++ and needs no JIT. (Harvest, WORLD's other
    estimator, marks a noise-free synthetic tone unvoiced throughout.)
    """
    import pyworld

    wave = np.ascontiguousarray(signal, dtype=np.float64)
    period = 1000.0 * FRAME_HOP_SECONDS
    coarse, times = pyworld.dio(wave, sample_rate, f0_floor=fmin, f0_ceil=fmax, frame_period=period)
    f0 = pyworld.stonemask(wave, coarse, times, sample_rate)
    return np.where(np.isfinite(f0) & (coarse > 0), f0, 0.0)
