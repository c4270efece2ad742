"""Recognition metrics: WER, CER, PER through jiwer.

Text normalisation is the caller's job and is documented where it happens
(``speechbench.text.normalize``): metrics here compare the strings they are given.
Corpus-level rates follow the standard Levenshtein definition
(S + D + I) / N summed over the whole test set (NIST sclite), not a mean of
per-utterance rates.
"""

from __future__ import annotations

from collections.abc import Sequence

import jiwer
from speechbench.metrics.base import metric

from speechbench.errors import ConfigError


def _check(references: Sequence[str], hypotheses: Sequence[str]) -> None:
    if len(references) != len(hypotheses):
        raise ConfigError(
            f"{len(references)} references but {len(hypotheses)} hypotheses; they must pair up"
        )
    if not references:
        raise ConfigError("no references given")
    if not any(r.strip() for r in references):
        raise ConfigError("every reference is empty; an error rate needs reference words")


def _as_tokens(hypotheses: Sequence[str]) -> list[str]:
    # jiwer rejects empty hypotheses in some versions; an empty output is all deletions.
    return [h if h.strip() else "" for h in hypotheses]


@metric(
    "wer",
    higher_is_better=False,
    range=(0.0, float("inf")),
    definition="word error rate (S+D+I)/N over the corpus (NIST sclite)",
)
def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Word error rate over the corpus: (substitutions + deletions + insertions) / ref words."""
    _check(references, hypotheses)
    return float(jiwer.wer(list(references), _as_tokens(hypotheses)))


@metric(
    "cer",
    higher_is_better=False,
    range=(0.0, float("inf")),
    definition="character error rate (S+D+I)/N over the corpus, spaces count",
)
def character_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Character error rate over the corpus; spaces are characters too (jiwer.cer)."""
    _check(references, hypotheses)
    return float(jiwer.cer(list(references), _as_tokens(hypotheses)))


@metric(
    "per",
    higher_is_better=False,
    range=(0.0, float("inf")),
    definition="phone error rate: WER over space-separated phone strings",
)
def phone_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Phone error rate: word error rate over space-separated phone sequences."""
    _check(references, hypotheses)
    return float(jiwer.wer(list(references), _as_tokens(hypotheses)))
