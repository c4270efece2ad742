"""Evaluators: frozen models that score generated or extracted audio (the fifth plugin kind).

``BUILTINS`` maps a name to ``"module:attr"``; nothing is imported until it is used. A
third-party package adds one through the ``speechbench.evaluators`` entry-point group.
The contract is in :mod:`speechbench.evaluators.base`; :func:`create` builds one by name
with ``key=value`` options, :func:`speechbench.evaluators.pairs.score_pairs` scores
(generated, reference) pairs with the metrics layer.
"""

from __future__ import annotations

from typing import Any

BUILTINS: dict[str, str] = {
    "whisper-tiny-en": "speechbench.evaluators.whisper:WhisperTinyEnTranscriber",
    "ge2e": "speechbench.evaluators.speaker:GE2EEmbedder",
    "dnsmos": "speechbench.evaluators.dnsmos:DNSMOS",
    "griffin-lim": "speechbench.evaluators.vocoders:GriffinLim",
    "world": "speechbench.evaluators.vocoders:World",
    "griffin-lim-ctap": "speechbench.evaluators.vocoders:GriffinLimCtap",
}

# Chosen by copy synthesis on mini-vc test (docs/evaluators.md): WORLD's WER ties
# Griffin-Lim's, its DNSMOS OVRL is 0.6 higher and 0.03 below the original audio's.
DEFAULT_VOCODER = "world"


def create(name: str, **options: Any):
    """Evaluator ``name`` with its ``Options`` set from ``options`` (type-checked; an
    unknown key names the valid ones). The model itself loads on first use."""
    from speechbench import registry
    from speechbench.config import build_options

    cls = registry.get("evaluators", name)
    built = build_options(cls.Options, {k: str(v) for k, v in options.items()}, f"{name}.")
    return cls(built)
