"""The metric contract: a pure function plus its metadata, as data (cf. VERSA).

Each metric is registered once with :func:`metric`, which records whether higher is
better, its range, whether it needs a reference, its level (utterance / corpus) and
the definition it follows. A corpus-level metric returns one number for the whole
test set; an utterance-level metric returns one value per utterance and
:meth:`MetricSpec.score` averages them. Leaderboards and the ``score`` command read this metadata;
nobody re-derives a metric's direction from folklore.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from speechbench.errors import ConfigError


@dataclass(frozen=True)
class MetricSpec:
    name: str
    fn: Callable[..., Any]
    higher_is_better: bool
    range: tuple[float, float]
    needs_reference: bool
    level: Literal["utterance", "corpus"]
    definition: str
    # What the ``score`` command reads for this metric ("text", "labels", "audio", ...);
    # empty means the metric is only callable from Python.
    inputs: str = ""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def score(self, *args: Any, **kwargs: Any) -> float:
        """The single number a leaderboard shows.

        A corpus-level metric already returns it. An utterance-level metric returns one
        value per utterance; its score is the mean over the finite ones (an utterance a
        metric could not score, e.g. PESQ on silence, is NaN and was already warned about).
        """
        value = self.fn(*args, **kwargs)
        if self.level == "corpus":
            return float(value)
        return aggregate_utterances(value, self.name)


def aggregate_utterances(values: Any, name: str) -> float:
    """Mean over the finite per-utterance values; an error if none is finite."""
    array = np.asarray(values.detach().cpu() if hasattr(values, "detach") else values, float)
    finite = array[np.isfinite(array)]
    if finite.size == 0:
        raise ConfigError(f"metric {name!r}: no utterance could be scored (all values NaN)")
    return float(finite.mean())


METRICS: dict[str, MetricSpec] = {}


def metric(
    name: str,
    *,
    higher_is_better: bool,
    range: tuple[float, float],  # noqa: A002 - the metadata field is called range
    needs_reference: bool = True,
    level: Literal["utterance", "corpus"] = "corpus",
    definition: str = "",
    inputs: str = "",
) -> Callable[[Callable[..., Any]], MetricSpec]:
    """Register ``fn`` as metric ``name``; the returned MetricSpec is still callable."""

    def decorator(fn: Callable[..., Any]) -> MetricSpec:
        spec = METRICS[name] = MetricSpec(
            name=name,
            fn=fn,
            higher_is_better=higher_is_better,
            range=range,
            needs_reference=needs_reference,
            level=level,
            definition=definition or (fn.__doc__ or "").strip().splitlines()[0],
            inputs=inputs,
        )
        return spec

    return decorator


def get_metric(name: str) -> MetricSpec:
    """Look a metric up through the plugin registry (in-tree and entry points)."""
    from speechbench import registry

    spec = registry.get("metrics", name)
    if not isinstance(spec, MetricSpec):
        raise ConfigError(f"metric {name!r} is not a MetricSpec (got {type(spec).__name__})")
    return spec
