"""What evaluation may write and use: an artefact sink and the frozen evaluators.

:class:`Sink` writes files (generated or extracted audio, plots, tables) under the run
folder's ``artefacts/``, each atomically, and keeps the list that the run's record
stores, so audio is kept for listening and never half-written. :class:`EvalContext`
hands a task its sink and its evaluators (frozen scoring models, a plugin kind of
their own), loaded lazily on first use and fingerprinted into the run record.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from speechbench import atomic
from speechbench.errors import ConfigError


class Sink:
    def __init__(self, root: Path | None) -> None:
        self.root = Path(root) if root is not None else None
        self.written: list[dict[str, Any]] = []

    @property
    def enabled(self) -> bool:
        """False during dev evaluation: nothing is written for epochs that are thrown away."""
        return self.root is not None

    def _target(self, name: str) -> Path:
        if self.root is None:
            raise ConfigError("this evaluation writes no artefacts (dev split)")
        path = (self.root / name).resolve()
        if self.root.resolve() not in path.parents:
            raise ConfigError(f"artefact name {name!r} leaves the run folder")
        return path

    def _record(self, name: str, kind: str, **extra: Any) -> str:
        path = self._target(name)
        self.written.append({"name": name, "kind": kind, "bytes": path.stat().st_size, **extra})
        return name

    def audio(self, name: str, wav: torch.Tensor | np.ndarray, sample_rate: int) -> str:
        from speechbench.audio import write_audio

        write_audio(self._target(name), wav, sample_rate)
        return self._record(name, "audio", sample_rate=sample_rate)

    def text(self, name: str, text: str) -> str:
        atomic.write_text(self._target(name), text)
        return self._record(name, "text")

    def json(self, name: str, obj: Any) -> str:
        atomic.write_text(self._target(name), json.dumps(obj, indent=2, sort_keys=True) + "\n")
        return self._record(name, "json")

    def figure(self, name: str, figure: Any) -> str:
        """A matplotlib figure as PNG."""
        atomic.write_with(self._target(name), lambda tmp: figure.savefig(tmp, format="png"))
        return self._record(name, "image")


class EvalContext:
    """Sink + lazily loaded evaluators of one evaluation (dev or test)."""

    def __init__(self, sink: Sink, evaluator_names: tuple[str, ...] = ()) -> None:
        self.sink = sink
        self.allowed = tuple(evaluator_names)
        self._loaded: dict[str, Any] = {}

    def evaluator(self, name: str) -> Any:
        """The evaluator plugin ``name`` (loaded once); tasks declare what they use."""
        if name not in self.allowed:
            raise ConfigError(
                f"evaluator {name!r} is not declared by the task (declared: "
                f"{', '.join(self.allowed) or 'none'})"
            )
        if name not in self._loaded:
            from speechbench import registry

            cls = registry.get("evaluators", name)
            self._loaded[name] = cls() if isinstance(cls, type) else cls
        return self._loaded[name]

    def fingerprints(self) -> dict[str, str]:
        """Name -> fingerprint of every evaluator this evaluation loaded."""
        found = {}
        for name, evaluator in self._loaded.items():
            fingerprint = getattr(evaluator, "fingerprint", None)
            found[name] = fingerprint() if callable(fingerprint) else "unknown"
        return found
