"""Plugin registry: in-tree plugins, decorator registration and entry points.

Five kinds: ``upstreams``, ``downstreams``, ``metrics``, ``corpora``, ``evaluators``. Each in-tree
family package declares ``BUILTINS = {name: "module:attr"}`` so nothing is imported
until it is used (no star-imports loading every plugin). Third-party packages add
plugins through the entry-point groups ``speechbench.upstreams`` etc.; code can also
register at run time with ``@register("upstreams", "name")``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, TypeVar

from speechbench.errors import ConfigError

KINDS = ("upstreams", "downstreams", "metrics", "corpora", "evaluators")
_FAMILY_PACKAGES = {
    "upstreams": "speechbench.upstreams",
    "downstreams": "speechbench.downstreams",
    "metrics": "speechbench.metrics",
    "corpora": "speechbench.corpora",
    "evaluators": "speechbench.evaluators",
}
_registered: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
T = TypeVar("T")


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ConfigError(f"unknown plugin kind {kind!r}; valid kinds: {', '.join(KINDS)}")


def register(kind: str, name: str) -> Callable[[T], T]:
    """Decorator: make ``obj`` available as ``name`` of ``kind`` in this process."""
    _check_kind(kind)

    def decorator(obj: T) -> T:
        _registered[kind][name] = obj
        return obj

    return decorator


def _sources(kind: str) -> dict[str, str | Any]:
    """name -> "module:attr" string or an already loaded object; later sources win."""
    builtins = importlib.import_module(_FAMILY_PACKAGES[kind]).BUILTINS
    found: dict[str, str | Any] = dict(builtins)
    for ep in entry_points(group=f"speechbench.{kind}"):
        found[ep.name] = ep
    found.update(_registered[kind])
    return found


def names(kind: str) -> list[str]:
    _check_kind(kind)
    return sorted(_sources(kind))


def get(kind: str, name: str) -> Any:
    """Load plugin ``name`` of ``kind``; an unknown name lists the valid ones."""
    _check_kind(kind)
    sources = _sources(kind)
    if name not in sources:
        singular = kind.rstrip("s").replace("corpora", "corpus")
        raise ConfigError(
            f"unknown {singular} {name!r}; valid choices: {', '.join(sorted(sources)) or '(none)'}"
        )
    source = sources[name]
    if isinstance(source, str):
        module_name, _, attr = source.partition(":")
        return getattr(importlib.import_module(module_name), attr)
    if hasattr(source, "load") and hasattr(source, "group"):  # an EntryPoint
        return source.load()
    return source
