"""Restartable rendering of one utterance: audio file + a JSON sidecar with its timing.

The sidecar (phones, words, duration) is written after the audio, both atomically, so
an interrupted build leaves either a finished pair or nothing for that utterance; a
restart skips finished pairs and re-renders the rest. Rendering is a pure function of
its arguments, so the restarted corpus is byte-identical to an uninterrupted one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from speechbench import atomic
from speechbench.audio import resample, write_audio


@dataclass
class Rendered:
    """What a renderer returns: audio at ``sample_rate`` and intervals in seconds."""

    audio: np.ndarray
    sample_rate: int
    phones: list[list[Any]] | None = None
    words: list[list[Any]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def fit_intervals(intervals: list[list[Any]] | None, duration: float) -> list[list[Any]] | None:
    """Clip intervals to ``[0, duration]`` after resampling changed the length by a sample
    or two; the last interval is stretched to end exactly at ``duration``."""
    if intervals is None:
        return None
    out = []
    for name, start, end in intervals:
        start, end = min(float(start), duration), min(float(end), duration)
        if end > start:
            out.append([name, round(start, 6), round(end, 6)])
    if out and out[-1][2] < duration:
        out[-1][2] = round(duration, 6)
    return out


def to_rate(rendered: Rendered, rate: int, tile: bool = True) -> Rendered:
    """Resample to ``rate`` (speechbench.audio.resample) and fit the phone intervals."""
    audio = resample(rendered.audio, rendered.sample_rate, rate).numpy()
    duration = len(audio) / rate
    phones = fit_intervals(rendered.phones, duration) if tile else rendered.phones
    words = rendered.words
    if words is not None:
        words = [[w, round(min(s, duration), 6), round(min(e, duration), 6)] for w, s, e in words]
    return Rendered(audio, rate, phones, words, rendered.extra)


def render_cached(
    root: Path, relative_wav: str, rate: int, render: Callable[[], Rendered]
) -> dict[str, Any]:
    """Render ``relative_wav`` under ``root`` unless it and its sidecar already exist.

    Returns the sidecar: ``{"duration", "phones", "words", "extra"}``."""
    wav_path = root / relative_wav
    sidecar = wav_path.with_suffix(".json")
    if wav_path.exists() and sidecar.exists():
        return json.loads(sidecar.read_text(encoding="utf-8"))
    rendered = render()
    if rendered.sample_rate != rate:
        rendered = to_rate(rendered, rate)
    duration = len(rendered.audio) / rate
    meta = {
        "duration": round(duration, 6),
        "phones": fit_intervals(rendered.phones, duration),
        "words": rendered.words,
        "extra": rendered.extra,
    }
    write_audio(wav_path, rendered.audio, rate)
    atomic.write_json(sidecar, meta)
    return meta
