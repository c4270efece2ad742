"""Duration conditions: fixed-length test segments cut from the middle of the speech.

NIST LRE (and SV evaluations after it) score the same test utterances at full length
and as 3 s and 1 s segments, so a condition differs only in how much speech the system
hears. mini-lid and mini-sv both cut their test segments here.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from speechbench.audio import read_audio, write_audio
from speechbench.corpora.base import Utterance
from speechbench.corpora.speakers import duration_of

CONDITIONS = (("3s", 3.0), ("1s", 1.0))
TRIM_TOP_DB = 35  # speech region: within this many dB of the loudest frame


def speech_region(wav: np.ndarray, rate: int) -> tuple[int, int]:
    """Start and end sample of the speech: frames within ``TRIM_TOP_DB`` of the loudest.

    Written here (the same rule as ``librosa.effects.trim``) because importing librosa
    and JIT-compiling its framing costs ~20 s on these machines for ten lines of numpy.
    """
    hop, frame = rate // 100, rate // 40  # 10 ms hop, 25 ms frames
    if wav.size < frame:
        return 0, wav.size
    frames = np.lib.stride_tricks.sliding_window_view(wav, frame)[::hop]
    power = np.mean(frames.astype(np.float64) ** 2, axis=1)
    loud = np.flatnonzero(10 * np.log10(np.maximum(power, 1e-20) / power.max()) > -TRIM_TOP_DB)
    return int(loud[0] * hop), int(min(loud[-1] * hop + frame, wav.size))


def cut_middle(wav: np.ndarray, rate: int, seconds: float) -> np.ndarray | None:
    """``seconds`` of audio from the middle of the speech region, or None if too short."""
    start, end = speech_region(wav, rate)
    length = int(round(seconds * rate))
    if end - start < length:
        return None
    offset = start + (end - start - length) // 2
    return wav[offset : offset + length]


def condition_segments(
    root: Path, full: Utterance, rate: int, group: str
) -> list[Utterance] | None:
    """The 3 s and 1 s test segments of one full-length test utterance (written under
    ``test/CONDITION/GROUP/``, kept if already there), or None when its speech is too
    short for every condition. A segment keeps the full record's labels plus
    ``condition`` and ``source_id``, and drops its transcript (it no longer matches)."""
    out = []
    wav = None
    for condition, seconds in CONDITIONS:
        rel = Path("test") / condition / group / f"{full.id}-{condition}.wav"
        if not (root / rel).exists():
            if wav is None:
                wav, _ = read_audio(root / full.path, rate)
            segment = cut_middle(wav, rate, seconds)
            if segment is None:
                return None
            write_audio(root / rel, segment, rate)
        labels = dict(full.labels, condition=condition, source_id=full.id)
        out.append(
            replace(
                full,
                id=f"{full.id}-{condition}",
                path=rel.as_posix(),
                duration=duration_of(root / rel),
                text=None,
                labels=labels,
            )
        )
    return out
