"""Correlation with human ratings (MOS prediction): LCC, SRCC, Kendall tau, MSE.

``references`` are true scores (e.g. MOS), ``predictions`` the system's, one per
utterance. With ``systems`` (one system id per utterance), both are first averaged
per system and the correlation is taken over systems: the system-level figures of the
VoiceMOS Challenge (Huang et al., INTERSPEECH 2022). Corpus level (one number over
the set). LCC = Pearson r, SRCC = Spearman rho, KTAU = Kendall tau-b (ties handled),
all from scipy.stats; MSE = mean squared error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats
from speechbench.metrics._checks import finite_array
from speechbench.metrics.base import metric

from speechbench.errors import ConfigError


def _paired(references: Any, predictions: Any, systems: Sequence[Any] | None):
    truth = finite_array(references, "references", ndim=1)
    guess = finite_array(predictions, "predictions", ndim=1)
    if truth.shape != guess.shape:
        raise ConfigError(f"{truth.size} references but {guess.size} predictions; one per item")
    if systems is None:
        return truth, guess
    ids = np.asarray(systems)
    if ids.shape != truth.shape:
        raise ConfigError(f"{ids.size} system ids for {truth.size} items; one per item")
    unique, inverse = np.unique(ids, return_inverse=True)
    counts = np.bincount(inverse)
    return (
        np.bincount(inverse, weights=truth) / counts,
        np.bincount(inverse, weights=guess) / counts,
    )


def _correlation(fn, references, predictions, systems, name: str) -> float:
    truth, guess = _paired(references, predictions, systems)
    if truth.size < 2:
        raise ConfigError(
            f"{name} needs at least 2 {'systems' if systems is not None else 'items'}"
        )
    for label, values in (("references", truth), ("predictions", guess)):
        if np.all(values == values[0]):
            raise ConfigError(f"{name}: all {label} are equal, so the correlation is undefined")
    return float(fn(truth, guess)[0])


@metric(
    "lcc",
    higher_is_better=True,
    range=(-1.0, 1.0),
    definition="linear (Pearson) correlation coefficient, scipy.stats.pearsonr",
    inputs="values",
)
def linear_correlation(references: Any, predictions: Any, systems=None) -> float:
    """Pearson correlation; per-system means first when ``systems`` is given."""
    return _correlation(stats.pearsonr, references, predictions, systems, "LCC")


@metric(
    "srcc",
    higher_is_better=True,
    range=(-1.0, 1.0),
    definition="Spearman rank correlation coefficient, scipy.stats.spearmanr",
    inputs="values",
)
def spearman_correlation(references: Any, predictions: Any, systems=None) -> float:
    """Spearman rank correlation (average ranks for ties)."""
    return _correlation(stats.spearmanr, references, predictions, systems, "SRCC")


@metric(
    "ktau",
    higher_is_better=True,
    range=(-1.0, 1.0),
    definition="Kendall tau-b rank correlation, scipy.stats.kendalltau",
    inputs="values",
)
def kendall_tau(references: Any, predictions: Any, systems=None) -> float:
    """Kendall tau-b (accounts for ties)."""
    return _correlation(stats.kendalltau, references, predictions, systems, "KTAU")


@metric(
    "mse",
    higher_is_better=False,
    range=(0.0, float("inf")),
    definition="mean squared error between predicted and true scores",
    inputs="values",
)
def mean_squared_error(references: Any, predictions: Any, systems=None) -> float:
    """Mean squared prediction error (of per-system means when ``systems`` is given)."""
    truth, guess = _paired(references, predictions, systems)
    return float(np.mean((truth - guess) ** 2))


def _system_level(spec, label: str):
    def system_metric(references: Any, predictions: Any, systems: Sequence[Any]) -> float:
        return spec.fn(references, predictions, systems)

    system_metric.__doc__ = f"System-level {label}: per-system means, then {label} over systems."
    return system_metric


sys_lcc = metric(
    "sys_lcc",
    higher_is_better=True,
    range=(-1.0, 1.0),
    inputs="values+systems",
    definition="LCC of per-system mean scores (VoiceMOS 2022)",
)(_system_level(linear_correlation, "LCC"))
sys_srcc = metric(
    "sys_srcc",
    higher_is_better=True,
    range=(-1.0, 1.0),
    inputs="values+systems",
    definition="SRCC of per-system mean scores (VoiceMOS 2022)",
)(_system_level(spearman_correlation, "SRCC"))
sys_ktau = metric(
    "sys_ktau",
    higher_is_better=True,
    range=(-1.0, 1.0),
    inputs="values+systems",
    definition="Kendall tau of per-system mean scores (VoiceMOS 2022)",
)(_system_level(kendall_tau, "KTAU"))
sys_mse = metric(
    "sys_mse",
    higher_is_better=False,
    range=(0.0, float("inf")),
    inputs="values+systems",
    definition="MSE of per-system mean scores",
)(_system_level(mean_squared_error, "MSE"))
