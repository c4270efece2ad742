"""Structured metric keys: a reported value is a base metric plus qualifiers.

A run reports flat keys (``cavg_3s``, ``eer_ci_low``, ``srcc_ovrl_sys``,
``accuracy@mini-dcase-asc``); each is parsed once, when the run is stored, into
``{"base": ..., "condition": ..., "target": ..., "level": ..., "stat": ..., "corpus": ...}``
against the registered metric names, and the parse is stored with the run. The
leaderboard then resolves ``--metric`` and each value's direction from the store alone.

Key grammar: ``BASE[_QUALIFIER...][@CORPUS]`` where BASE is the longest registered
metric name that prefixes the key and each qualifier token is a condition (``3s``,
``full``), a level (``utt``, ``sys``, ``cond``), a statistic (``ci_low``, ``ci_high``,
``std``) or otherwise a target (``ovrl``, a class name).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

CONDITION = re.compile(r"^(\d+(\.\d+)?s|full)$")
LEVELS = {"utt", "utterance", "sys", "system", "cond", "condition"}
STATS = ("ci_low", "ci_high", "std")


def make_key(
    base: str,
    *,
    target: str | None = None,
    condition: str | None = None,
    level: str | None = None,
    stat: str | None = None,
    corpus: str | None = None,
) -> str:
    """The flat key of a qualified value, in the order ``parse_key`` reads it back."""
    parts = [base, *(q for q in (target, condition, level, stat) if q)]
    key = "_".join(parts)
    return f"{key}@{corpus}" if corpus else key


def parse_key(key: str, metric_names: Iterable[str]) -> dict[str, Any]:
    """Base metric and qualifiers of a reported key; ``base`` is None for values that are
    not an instance of a registered metric (counts such as ``num_trials``)."""
    name, _, corpus = key.partition("@")
    info: dict[str, Any] = {"base": None}
    if corpus:
        info["corpus"] = corpus
    candidates = sorted(metric_names, key=len, reverse=True)
    base = next((m for m in candidates if name == m or name.startswith(m + "_")), None)
    if base is None:
        return info
    info["base"] = base
    rest = name[len(base) + 1 :]
    for stat in STATS:
        if rest == stat or rest.endswith("_" + stat):
            info["stat"] = stat
            rest = rest[: -len(stat)].rstrip("_")
    targets = []
    for token in filter(None, rest.split("_")):
        if CONDITION.match(token):
            info["condition"] = token
        elif token in LEVELS:
            info["level"] = token
        else:
            targets.append(token)
    if targets:
        info["target"] = "_".join(targets)
    return info


def describe_metrics(metrics: dict[str, float]) -> dict[str, dict[str, Any]]:
    """``parse_key`` of every reported key against the registered metrics, with the base
    metric's direction (``higher_is_better``; a confidence bound keeps its metric's)."""
    from speechbench import registry
    from speechbench.metrics.base import get_metric

    names = registry.names("metrics")
    described = {}
    for key in metrics:
        info = parse_key(key, names)
        if info["base"] is not None:
            info["higher_is_better"] = bool(get_metric(info["base"]).higher_is_better)
        described[key] = info
    return described
