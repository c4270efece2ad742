"""Quality and intelligibility: PESQ (wb/nb), STOI, ESTOI, speech distortion index.

Inputs are sequences of 1-D float arrays (clean ``references`` and ``degraded``
outputs, paired by position, lengths may differ between utterances) and their sample
rate; ``ids`` name utterances in warnings. Each returns one value per utterance.

- PESQ: ITU-T P.862 (narrow band, MOS-LQO mapping P.862.1) and P.862.2 (wide band),
  computed by the ``pesq`` package (ITU reference C code). P.862 is defined at 8 and
  16 kHz: wb needs 16 kHz, so other rates are resampled to 16 kHz (nb keeps 8 kHz /
  16 kHz input as is) with a polyphase filter. An utterance PESQ cannot score (no
  speech found, e.g. silence, or too short) gives NaN and a warning naming it.
- STOI: Taal et al., IEEE TASLP 2011; ESTOI: Jensen & Taal, IEEE TASLP 2016; both
  through ``pystoi`` (which resamples to 10 kHz itself). Reference and output must
  have the same length.
- SDI (speech distortion index): Chen, Benesty, Huang & Doclo, "New insights into the
  noise reduction Wiener filter", IEEE TASLP 2006: E[(x - z)^2] / E[x^2] with x the
  clean speech and z its processed version; here z is the system output. Written by
  hand (a two-line ratio no library exports).

PESQ and STOI run in parallel over utterances in a joblib (loky) process pool, which
is reused between calls; ``workers=1`` runs them in this process.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from math import gcd
from typing import Any

import numpy as np
from scipy.signal import resample_poly
from speechbench.metrics._checks import same_length
from speechbench.metrics.base import metric

from speechbench.errors import ConfigError

PESQ_WB_RATE = 16000


def _pairs(
    references: Sequence[Any], degraded: Sequence[Any], ids: Sequence[str] | None, same_len: bool
) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    same_length("references", references, "degraded signals", degraded)
    names = [str(i) for i in (ids if ids is not None else range(len(references)))]
    same_length("references", references, "ids", names)
    refs, degs = [], []
    for name, ref, deg in zip(names, references, degraded, strict=True):
        ref = np.asarray(ref.detach().cpu() if hasattr(ref, "detach") else ref, dtype=np.float64)
        deg = np.asarray(deg.detach().cpu() if hasattr(deg, "detach") else deg, dtype=np.float64)
        if ref.ndim != 1 or deg.ndim != 1:
            raise ConfigError(f"utterance {name}: signals must be mono 1-D arrays")
        if ref.size == 0 or deg.size == 0:
            raise ConfigError(f"utterance {name}: empty signal")
        if not (np.isfinite(ref).all() and np.isfinite(deg).all()):
            raise ConfigError(f"utterance {name}: signal contains NaN or inf")
        if same_len and ref.size != deg.size:
            raise ConfigError(
                f"utterance {name}: reference has {ref.size} samples, output {deg.size}; "
                "this metric compares them sample by sample, so they must be equally long"
            )
        refs.append(ref)
        degs.append(deg)
    return refs, degs, names


def _resample(signal: np.ndarray, rate: int, target: int) -> np.ndarray:
    if rate == target:
        return signal
    common = gcd(rate, target)
    return resample_poly(signal, target // common, rate // common)


def _pesq_one(ref: np.ndarray, deg: np.ndarray, rate: int, mode: str) -> tuple[float, str]:
    from pesq import PesqError, pesq

    try:
        with np.errstate(invalid="ignore", divide="ignore"):  # silence: pesq divides by 0 first
            return float(pesq(rate, ref, deg, mode)), ""
    except (PesqError, ValueError) as error:
        return float("nan"), f"{type(error).__name__}: {error}"


def _stoi_one(ref: np.ndarray, deg: np.ndarray, rate: int, extended: bool) -> tuple[float, str]:
    from pystoi import stoi

    value = float(stoi(ref, deg, rate, extended=extended))
    # pystoi returns ~1e-5 with a warning when no speech frame survives its silence removal
    return value, ""


def _run(job, arguments: list[tuple], workers: int | None) -> list[tuple[float, str]]:
    workers = workers if workers is not None else min(len(arguments), os.cpu_count() or 1)
    if workers <= 1 or len(arguments) == 1:
        return [job(*args) for args in arguments]
    from joblib import Parallel, delayed

    return Parallel(n_jobs=workers, backend="loky")(delayed(job)(*args) for args in arguments)


def _collect(results: list[tuple[float, str]], names: list[str], metric_name: str) -> np.ndarray:
    for name, (_, problem) in zip(names, results, strict=True):
        if problem:
            warnings.warn(
                f"{metric_name}: utterance {name} cannot be scored ({problem}); NaN", stacklevel=3
            )
    return np.array([value for value, _ in results], dtype=np.float64)


def pesq_scores(
    references: Sequence[Any],
    degraded: Sequence[Any],
    sample_rate: int,
    mode: str = "wb",
    ids: Sequence[str] | None = None,
    workers: int | None = None,
) -> np.ndarray:
    """PESQ MOS-LQO per utterance; NaN (with a warning) where PESQ finds no speech."""
    if mode not in ("wb", "nb"):
        raise ConfigError(f"PESQ mode must be 'wb' or 'nb', got {mode!r}")
    refs, degs, names = _pairs(references, degraded, ids, same_len=False)
    rate = PESQ_WB_RATE if (mode == "wb" or sample_rate not in (8000, 16000)) else sample_rate
    arguments = [
        (_resample(r, sample_rate, rate), _resample(d, sample_rate, rate), rate, mode)
        for r, d in zip(refs, degs, strict=True)
    ]
    return _collect(_run(_pesq_one, arguments, workers), names, f"pesq_{mode}")


# P.862.2 maps raw PESQ x to 0.999 + 4 / (1 + exp(-1.3669 x + 3.8224)): its lower asymptote
# is 0.999 (the pesq package returns ~1.02 on noise, below the 1.04 of raw x = -0.5) and
# raw x = 4.5 maps to 4.644.
PESQ_WB_RANGE = (0.999, 4.644)


@metric(
    "pesq_wb",
    higher_is_better=True,
    range=PESQ_WB_RANGE,
    level="utterance",
    definition="PESQ wide band MOS-LQO, ITU-T P.862.2 (pesq package), 16 kHz",
    inputs="audio",
)
def pesq_wb(references, degraded, sample_rate: int, ids=None, workers=None) -> np.ndarray:
    """Wide-band PESQ (P.862.2) per utterance."""
    return pesq_scores(references, degraded, sample_rate, "wb", ids, workers)


@metric(
    "pesq_nb",
    higher_is_better=True,
    range=(1.02, 4.55),
    level="utterance",
    definition="PESQ narrow band MOS-LQO, ITU-T P.862 + P.862.1 mapping (pesq package)",
    inputs="audio",
)
def pesq_nb(references, degraded, sample_rate: int, ids=None, workers=None) -> np.ndarray:
    """Narrow-band PESQ (P.862, P.862.1 mapping) per utterance."""
    return pesq_scores(references, degraded, sample_rate, "nb", ids, workers)


def stoi_scores(
    references: Sequence[Any],
    degraded: Sequence[Any],
    sample_rate: int,
    extended: bool = False,
    ids: Sequence[str] | None = None,
    workers: int | None = None,
) -> np.ndarray:
    """(E)STOI per utterance through pystoi, in parallel."""
    refs, degs, names = _pairs(references, degraded, ids, same_len=True)
    arguments = [(r, d, sample_rate, extended) for r, d in zip(refs, degs, strict=True)]
    return _collect(_run(_stoi_one, arguments, workers), names, "estoi" if extended else "stoi")


@metric(
    "stoi",
    higher_is_better=True,
    range=(0.0, 1.0),
    level="utterance",
    definition="short-time objective intelligibility (Taal et al. 2011, pystoi)",
    inputs="audio",
)
def stoi(references, degraded, sample_rate: int, ids=None, workers=None) -> np.ndarray:
    """STOI per utterance."""
    return stoi_scores(references, degraded, sample_rate, False, ids, workers)


@metric(
    "estoi",
    higher_is_better=True,
    range=(-1.0, 1.0),
    level="utterance",
    definition="extended STOI (Jensen & Taal 2016, pystoi)",
    inputs="audio",
)
def estoi(references, degraded, sample_rate: int, ids=None, workers=None) -> np.ndarray:
    """Extended STOI per utterance (copes with fluctuating noise)."""
    return stoi_scores(references, degraded, sample_rate, True, ids, workers)


@metric(
    "sdi",
    higher_is_better=False,
    range=(0.0, float("inf")),
    level="utterance",
    definition="speech distortion index E[(x - z)^2] / E[x^2] (Chen, Benesty et al. 2006)",
    inputs="audio",
)
def speech_distortion_index(
    references, degraded, sample_rate: int | None = None, ids=None
) -> np.ndarray:
    """Energy of (clean - output) over clean energy, per utterance: 0 means undistorted."""
    refs, degs, names = _pairs(references, degraded, ids, same_len=True)
    values = []
    for name, ref, deg in zip(names, refs, degs, strict=True):
        energy = float(np.dot(ref, ref))
        if energy == 0.0:
            warnings.warn(f"sdi: reference of utterance {name} is silent; NaN", stacklevel=2)
            values.append(float("nan"))
        else:
            values.append(float(np.sum((ref - deg) ** 2)) / energy)
    return np.array(values)
