"""Bootstrap confidence intervals and the paired bootstrap test between two runs.

Both resample test items (utterances, trials, clips, files) with replacement
(Efron & Tibshirani, "An Introduction to the Bootstrap", 1993), so an interval
reflects how much the score depends on which test items were drawn.

- Utterance-level metrics: per-utterance values are computed once and only their
  means are resampled (vectorised), NaN utterances left out.
- Corpus-level metrics (WER, EER, lwlrap...): every positional input is indexed along
  its first axis by the same resample and the metric is recomputed, so WER keeps its
  (S+D+I)/N pooling. A resample on which the metric is undefined (e.g. EER drawing
  only target trials) is dropped and counted.

The interval is the percentile interval. The paired test (Koehn, "Statistical
significance tests for machine translation evaluation", EMNLP 2004) draws the same
items for both runs; its p-value is the share of resamples in which the run that is
better on the full test set is not better, so a small p means the ranking is
unlikely to flip with another draw of the test set.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from speechbench.metrics.base import MetricSpec

from speechbench.errors import ConfigError, SpeechbenchError

_MAX_DROPPED_SHARE = 0.5


@dataclass(frozen=True)
class ConfidenceInterval:
    value: float
    low: float
    high: float
    confidence: float
    n_resamples: int  # resamples actually used (undefined ones dropped)


@dataclass(frozen=True)
class PairedBootstrapResult:
    value_a: float
    value_b: float
    delta: float  # value_a - value_b in the metric's own units
    delta_low: float
    delta_high: float
    a_is_better: bool  # on the full test set, honouring higher_is_better
    p_value: float  # share of resamples where the full-set winner does not win
    n_resamples: int


def _length(inputs: Sequence[Any]) -> int:
    if not inputs:
        raise ConfigError("bootstrap needs the metric's per-item inputs")
    sizes = {len(x) for x in inputs}
    if len(sizes) != 1:
        raise ConfigError(f"bootstrap inputs have different numbers of items: {sorted(sizes)}")
    size = sizes.pop()
    if size < 2:
        raise ConfigError("bootstrap needs at least 2 test items")
    return size


def _take(values: Any, index: np.ndarray) -> Any:
    if hasattr(values, "detach"):  # torch tensor
        import torch

        return values[torch.as_tensor(index)]
    if isinstance(values, np.ndarray):
        return values[index]
    return [values[i] for i in index]


def _check_settings(n_resamples: int, confidence: float) -> None:
    if n_resamples < 10:
        raise ConfigError(f"n_resamples={n_resamples} is too few; use at least 100 (1000 typical)")
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"confidence must be in (0, 1), got {confidence}")


def _resample_index(rng: np.random.Generator, n_items: int, n_resamples: int) -> np.ndarray:
    return rng.integers(0, n_items, size=(n_resamples, n_items))


def _utterance_values(spec: MetricSpec, inputs: Sequence[Any], kwargs: dict) -> np.ndarray:
    values = spec.fn(*inputs, **kwargs)
    return np.asarray(values.detach().cpu() if hasattr(values, "detach") else values, float)


def _corpus_statistics(
    spec: MetricSpec, input_sets: Sequence[Sequence[Any]], index: np.ndarray, kwargs: dict
) -> np.ndarray:
    """Metric of every input set on every resample: n_resamples x n_sets, NaN if undefined."""
    out = np.full((index.shape[0], len(input_sets)), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for row, draw in enumerate(index):
            try:
                out[row] = [
                    float(spec.fn(*(_take(x, draw) for x in inputs), **kwargs))
                    for inputs in input_sets
                ]
            except SpeechbenchError:
                continue
    return out


def _kept(stats: np.ndarray) -> np.ndarray:
    keep = np.isfinite(stats).all(axis=1)
    dropped = int((~keep).sum())
    if dropped > _MAX_DROPPED_SHARE * len(stats):
        raise ConfigError(
            f"the metric was undefined on {dropped}/{len(stats)} bootstrap resamples; "
            "the test set is too small or too one-sided for a confidence interval"
        )
    if dropped:
        warnings.warn(f"bootstrap: metric undefined on {dropped} resamples, dropped", stacklevel=3)
    return stats[keep]


def mean_ci(
    values: Any, n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> ConfidenceInterval:
    """Percentile interval of the mean of per-utterance values (NaN values left out)."""
    _check_settings(n_resamples, confidence)
    array = np.asarray(values.detach().cpu() if hasattr(values, "detach") else values, float)
    array = array[np.isfinite(array)]
    if array.size < 2:
        raise ConfigError("fewer than 2 scorable utterances; no confidence interval")
    rng = np.random.default_rng(seed)
    means = array[_resample_index(rng, array.size, n_resamples)].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return ConfidenceInterval(float(array.mean()), float(low), float(high), confidence, n_resamples)


def bootstrap_ci(
    spec: MetricSpec,
    *inputs: Any,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    **kwargs: Any,
) -> ConfidenceInterval:
    """Percentile bootstrap interval of ``spec`` over its test items."""
    if spec.level == "utterance":
        return mean_ci(_utterance_values(spec, inputs, kwargs), n_resamples, confidence, seed)
    _check_settings(n_resamples, confidence)
    rng = np.random.default_rng(seed)
    n_items = _length(inputs)
    value = float(spec.fn(*inputs, **kwargs))
    index = _resample_index(rng, n_items, n_resamples)
    stats = _kept(_corpus_statistics(spec, [inputs], index, kwargs))[:, 0]
    tail = (1 - confidence) / 2
    low, high = np.quantile(stats, [tail, 1 - tail])
    return ConfidenceInterval(value, float(low), float(high), confidence, int(stats.size))


def paired_bootstrap_test(
    spec: MetricSpec,
    inputs_a: Sequence[Any],
    inputs_b: Sequence[Any],
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    **kwargs: Any,
) -> PairedBootstrapResult:
    """Is run A better than run B on this test set? Same resampled items for both runs.

    ``inputs_a`` / ``inputs_b`` are the metric's positional inputs for each run, e.g.
    ``(references, hypotheses_a)`` and ``(references, hypotheses_b)``.
    """
    if spec.level == "utterance":
        return paired_mean_test(
            _utterance_values(spec, inputs_a, kwargs),
            _utterance_values(spec, inputs_b, kwargs),
            higher_is_better=spec.higher_is_better,
            name=spec.name,
            n_resamples=n_resamples,
            confidence=confidence,
            seed=seed,
        )
    _check_settings(n_resamples, confidence)
    rng = np.random.default_rng(seed)
    n_items = _length([*inputs_a, *inputs_b])
    value_a, value_b = float(spec.fn(*inputs_a, **kwargs)), float(spec.fn(*inputs_b, **kwargs))
    index = _resample_index(rng, n_items, n_resamples)
    stats = _kept(_corpus_statistics(spec, [inputs_a, inputs_b], index, kwargs))
    return _paired_result(value_a, value_b, stats, spec.higher_is_better, confidence)


def paired_mean_test(
    values_a: Any,
    values_b: Any,
    *,
    higher_is_better: bool,
    name: str = "metric",
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedBootstrapResult:
    """The paired test of an utterance-level metric from its per-item values (item i of
    A paired with item i of B; items not finite in both are left out). Used directly
    when runs stored per-item values (e.g. SI-SDRi) rather than their inputs."""
    _check_settings(n_resamples, confidence)
    values_a, values_b = np.asarray(values_a, float), np.asarray(values_b, float)
    _length([values_a, values_b])
    both = np.isfinite(values_a) & np.isfinite(values_b)
    if both.sum() < 2:
        raise ConfigError(f"{name}: fewer than 2 utterances scorable in both runs")
    values_a, values_b = values_a[both], values_b[both]
    rng = np.random.default_rng(seed)
    index = _resample_index(rng, values_a.size, n_resamples)
    stats = np.stack([values_a[index].mean(axis=1), values_b[index].mean(axis=1)], axis=1)
    return _paired_result(
        float(values_a.mean()), float(values_b.mean()), stats, higher_is_better, confidence
    )


def _paired_result(
    value_a: float, value_b: float, stats: np.ndarray, higher_is_better: bool, confidence: float
) -> PairedBootstrapResult:
    """Deltas, their interval and Koehn's p-value from per-resample (A, B) statistics."""
    deltas = stats[:, 0] - stats[:, 1]
    sign = 1.0 if higher_is_better else -1.0
    a_is_better = sign * (value_a - value_b) > 0
    winner_margin = sign * deltas if a_is_better else -sign * deltas
    tail = (1 - confidence) / 2
    low, high = np.quantile(deltas, [tail, 1 - tail])
    return PairedBootstrapResult(
        value_a=value_a,
        value_b=value_b,
        delta=value_a - value_b,
        delta_low=float(low),
        delta_high=float(high),
        a_is_better=bool(a_is_better),
        p_value=float(np.mean(winner_margin <= 0)),
        n_resamples=int(deltas.size),
    )
