"""The metric contract: a pure function plus its metadata, as data (cf. VERSA).

Each metric is registered once with :func:`metric`, which records whether higher is
better, its range, whether it needs a reference, its level (utterance / corpus) and
the definition it follows. Leaderboards and the ``score`` command read this metadata;
nobody re-derives a metric's direction from folklore.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

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

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


METRICS: dict[str, MetricSpec] = {}


def metric(
    name: str,
    *,
    higher_is_better: bool,
    range: tuple[float, float],  # noqa: A002 - the metadata field is called range
    needs_reference: bool = True,
    level: Literal["utterance", "corpus"] = "corpus",
    definition: str = "",
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
