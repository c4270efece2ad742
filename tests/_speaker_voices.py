"""Real voices for speaker tests: Asterisk's professional prompt voices from Debian.

Four speakers (en Allison, fr-CA June, it Carlo, ru), 8 kHz read prompts. Fetched once
per test session (the session's ``SPEECHBENCH_DOWNLOADS``, else a temporary folder),
or from ``SPEECHBENCH_DEB_DIR`` offline.
"""

from __future__ import annotations

import os
import tempfile
from functools import lru_cache

import numpy as np
import soundfile as sf
from sklearn.metrics import roc_curve

LANGUAGES = ("en", "fr", "it", "ru")


@lru_cache(maxsize=1)
def _data_dir() -> str:
    return os.environ.get("SPEECHBENCH_TEST_VOICES") or tempfile.mkdtemp(prefix="sb-voices-")


@lru_cache(maxsize=4)
def asterisk_voices(per_speaker: int, min_seconds: float = 1.2) -> tuple[tuple[str, str], ...]:
    """``(speaker, wav path)`` pairs: ``per_speaker`` evenly spread prompts per voice."""
    from speechbench.corpora.asterisk import asterisk_prompts

    previous = os.environ.get("SPEECHBENCH_DATA")
    if not os.environ.get("SPEECHBENCH_DOWNLOADS"):  # else conftest shares the session's
        os.environ["SPEECHBENCH_DATA"] = _data_dir()
    try:
        chosen = []
        for language in LANGUAGES:
            prompts = [
                p
                for p in asterisk_prompts(language)
                if sf.info(str(p.path)).duration >= min_seconds
            ]
            picks = np.linspace(0, len(prompts) - 1, per_speaker).round().astype(int)
            chosen += [(prompts[i].speaker, str(prompts[i].path)) for i in picks]
        return tuple(chosen)
    finally:
        if previous is None:
            os.environ.pop("SPEECHBENCH_DATA", None)
        else:
            os.environ["SPEECHBENCH_DATA"] = previous


def equal_error_rate(embeddings: np.ndarray, speakers: list[str]) -> float:
    """EER of cosine scoring over every pair of distinct utterances (sklearn roc_curve)."""
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    scores = unit @ unit.T
    upper = np.triu_indices(len(speakers), k=1)
    same = np.array([[a == b for b in speakers] for a in speakers])[upper]
    fpr, tpr, _ = roc_curve(same.astype(int), scores[upper])
    fnr = 1 - tpr
    best = np.nanargmin(np.abs(fnr - fpr))
    return float((fpr[best] + fnr[best]) / 2)
