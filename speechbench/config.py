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


@dataclass
class RunSettings:
    """Top-level keys of a run (the upstream/downstream options live in their classes)."""

    upstream: str = "mfcc"
    downstream: str = "asr"
    corpus: str = ""  # empty: the downstream's default corpus
    seed: int = 0
    extract_batch_seconds: float = 160.0  # audio per extraction batch: bounds memory
    threads: int = 0  # torch threads; 0 = torch's default


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
        return OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or "?"
        expected = {f.name: f.type for f in fields(options_cls)}.get(str(key), "?")
        value = overrides.get(str(key), "?")
        type_name = getattr(expected, "__name__", expected)
        raise ConfigError(f"bad value {value!r} for {prefix}{key}: expected {type_name}") from None


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
