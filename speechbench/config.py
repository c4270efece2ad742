"""Run configuration: ``key=value`` overrides on typed defaults (OmegaConf).

``speechbench run upstream=fbank downstream=asr downstream.lr=1e-3 seed=2`` resolves
to one plain dict: top-level settings, the upstream's ``Options`` dataclass under
``upstream``, the downstream's under ``downstream``. An unknown key or a value of the
wrong type is a :class:`ConfigError` that names the valid keys; nothing is ``eval``-ed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields, is_dataclass
from typing import Any

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from speechbench import registry
from speechbench.errors import ConfigError
from speechbench.options import budget_keys, check_options, option


@dataclass
class RunSettings:
    """Top-level keys of a run (the upstream/downstream options live in their classes)."""

    upstream: str = "mfcc"
    downstream: str = "asr"
    # empty: the downstream's default corpus; several, comma-separated, for joint training
    corpus: str = ""
    seed: int = option(0, low=0, budget=True)
    # audio per extraction batch: bounds memory
    extract_batch_seconds: float = option(160.0, low=0.0, low_open=True, budget=True)
    threads: int = option(0, low=0, high=256, budget=True)  # torch threads; 0 = default

    @property
    def corpora(self) -> list[str]:
        """The run's corpus names (empty: the downstream's default)."""
        return [c.strip() for c in self.corpus.split(",") if c.strip()]


@dataclass
class ResolvedConfig:
    settings: RunSettings
    upstream_options: Any
    downstream_options: Any

    def as_dict(self) -> dict[str, Any]:
        top = asdict(self.settings)
        return {
            **{k: v for k, v in top.items() if k not in ("upstream", "downstream")},
            "upstream": {"name": self.settings.upstream, **asdict(self.upstream_options)},
            "downstream": {"name": self.settings.downstream, **asdict(self.downstream_options)},
        }

    def budget(self) -> dict[str, list[str]]:
        """Which settings are budget (how long/how fast), per group, from field metadata."""
        return {
            "run": budget_keys(RunSettings),
            "upstream": budget_keys(type(self.upstream_options)),
            "downstream": budget_keys(type(self.downstream_options)),
        }

    def changed_options(self) -> list[tuple[str, str, Any]]:
        """``(group, option, value)`` of every non-default, non-budget plugin option: what
        makes this run a different *system* than the plugin's default."""
        changed = []
        budget = self.budget()
        for group, options in (
            ("upstream", self.upstream_options),
            ("downstream", self.downstream_options),
        ):
            defaults = asdict(type(options)())
            for key, value in sorted(asdict(options).items()):
                if key not in budget[group] and value != defaults.get(key):
                    changed.append((group, key, value))
        return changed

    def hash(self, extra: dict[str, Any] | None = None) -> str:
        """Identity of a run: the resolved config plus e.g. the corpus version."""
        payload = {**self.as_dict(), **(extra or {})}
        payload.pop("threads", None)  # how fast, not what is computed
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def parse_overrides(args: list[str]) -> dict[str, str]:
    """``["a=1", "b.c=x"]`` -> ``{"a": "1", "b.c": "x"}``; a bare word or a key given
    twice (``seed=5 seed=6``) is an error."""
    pairs: dict[str, str] = {}
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"argument {arg!r} is not KEY=VALUE (e.g. upstream=fbank seed=1)")
        key = key.strip()
        if key in pairs:
            raise ConfigError(
                f"config key {key!r} is given twice ({key}={pairs[key]} and {key}={value.strip()})"
                "; keep one"
            )
        pairs[key] = value.strip()
    return pairs


def valid_keys(options_cls: type, prefix: str = "") -> list[str]:
    return [f"{prefix}{f.name}" for f in fields(options_cls)]


def build_options(options_cls: type, overrides: dict[str, str], prefix: str = "") -> Any:
    """Instantiate dataclass ``options_cls`` with string overrides, type-checked."""
    if not is_dataclass(options_cls):
        raise ConfigError(f"{options_cls!r} is not an options dataclass")
    allowed = valid_keys(options_cls)
    for key in overrides:
        if key not in allowed:
            choices = ", ".join(valid_keys(options_cls, prefix)) or "(none)"
            raise ConfigError(f"unknown config key '{prefix}{key}'; valid keys: {choices}")
    schema = OmegaConf.structured(options_cls)
    try:
        merged = OmegaConf.merge(
            schema, OmegaConf.from_dotlist([f"{k}={v}" for k, v in overrides.items()])
        )
        options = OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or "?"
        expected = {f.name: f.type for f in fields(options_cls)}.get(str(key), "?")
        value = overrides.get(str(key), "?")
        type_name = getattr(expected, "__name__", expected)
        raise ConfigError(f"bad value {value!r} for {prefix}{key}: expected {type_name}") from None
    check_options(options, prefix)
    return options


def resolve(args: list[str]) -> ResolvedConfig:
    """Resolve CLI arguments into typed settings and plugin options."""
    overrides = parse_overrides(args)
    top = {k: v for k, v in overrides.items() if "." not in k}
    nested = {k: v for k, v in overrides.items() if "." in k}
    settings = build_options(RunSettings, top)
    upstream_cls = registry.get("upstreams", settings.upstream)
    downstream_cls = registry.get("downstreams", settings.downstream)
    groups: dict[str, dict[str, str]] = {"upstream": {}, "downstream": {}}
    for key, value in nested.items():
        group, _, sub = key.partition(".")
        if group not in groups:
            raise ConfigError(
                f"unknown config key {key!r}; nested keys start with upstream. or downstream."
            )
        groups[group][sub] = value
    return ResolvedConfig(
        settings=settings,
        upstream_options=build_options(upstream_cls.Options, groups["upstream"], "upstream."),
        downstream_options=build_options(
            downstream_cls.Options, groups["downstream"], "downstream."
        ),
    )
