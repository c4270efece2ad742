"""Option fields: a plugin's ``Options`` dataclass says what each setting means as data.

``option(default, low=..., high=..., choices=..., budget=True)`` is a
``dataclasses.field`` whose metadata the config layer reads to reject out-of-range
values before anything runs, and that the run records so the leaderboard never needs
live plugin code to tell a budget setting (epochs, batch size: how long or how fast)
from one that makes a different system (learning rate, back-end).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from speechbench.errors import ConfigError

META_KEY = "speechbench"


def option(
    default: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    choices: Sequence[Any] | None = None,
    budget: bool = False,
    doc: str = "",
) -> Any:
    """A dataclass field with its valid range and meaning.

    ``low``/``high`` are inclusive bounds (``low_open=True`` excludes ``low``: a learning
    rate must be > 0); ``choices`` lists the valid values; ``budget`` marks settings that
    change how long or how fast a run is, not which system it is.
    """
    meta = {
        "low": low,
        "high": high,
        "low_open": low_open,
        "choices": tuple(choices) if choices is not None else None,
        "budget": budget,
        "doc": doc,
    }
    if isinstance(default, (list, dict)):
        return dataclasses.field(
            default_factory=lambda: type(default)(default), metadata={META_KEY: meta}
        )
    return dataclasses.field(default=default, metadata={META_KEY: meta})


def field_meta(options_cls: type, name: str) -> dict[str, Any]:
    """The metadata of field ``name``; a subclass that only changes a default
    (``lr: float = 3e-3``) inherits the range and budget flag of the base class' field."""
    for klass in options_cls.__mro__:
        if not dataclasses.is_dataclass(klass):
            continue
        for f in dataclasses.fields(klass):
            if f.name == name and META_KEY in f.metadata:
                return dict(f.metadata[META_KEY])
    return {}


def budget_keys(options_cls: type) -> list[str]:
    """Names of the fields of ``options_cls`` marked ``budget``."""
    if not dataclasses.is_dataclass(options_cls):
        return []
    return [
        f.name
        for f in dataclasses.fields(options_cls)
        if field_meta(options_cls, f.name).get("budget")
    ]


def _describe_range(meta: dict[str, Any]) -> str:
    if meta.get("choices") is not None:
        return "one of " + ", ".join(str(c) for c in meta["choices"])
    low, high = meta.get("low"), meta.get("high")
    lower = "" if low is None else (f"> {low}" if meta.get("low_open") else f">= {low}")
    upper = "" if high is None else f"<= {high}"
    return " and ".join(p for p in (lower, upper) if p)


def check_value(name: str, value: Any, meta: dict[str, Any]) -> None:
    """Raise one ConfigError line when ``value`` is outside the field's declared range."""
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        raise ConfigError(f"bad value {value!r} for {name}: expected {_describe_range(meta)}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"bad value {value!r} for {name}: must be a finite number")
    low, high = meta.get("low"), meta.get("high")
    too_low = low is not None and (value <= low if meta.get("low_open") else value < low)
    too_high = high is not None and value > high
    if too_low or too_high:
        raise ConfigError(f"bad value {value!r} for {name}: expected {_describe_range(meta)}")


def check_options(options: Any, prefix: str = "") -> None:
    """Check every field of an options instance against its declared range."""
    for field in dataclasses.fields(options):
        meta = field_meta(type(options), field.name)
        if meta:
            check_value(f"{prefix}{field.name}", getattr(options, field.name), meta)
