"""Forced phone alignment of real English speech with pocketsphinx (PyPI ``pocketsphinx``).

pocketsphinx ships the CMU US English acoustic model and CMUdict, so it aligns a
transcript to 16 kHz audio offline at 10 ms resolution: a first pass aligns words,
a second (``set_alignment``) aligns phones. ``<sil>`` on both ends lets it give the
lead-in and tail their own silence instead of stretching the first and last phones.
Its ARPAbet phones map onto the corpus inventory (speechbench.corpora.phones).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from speechbench.corpora.phones import SILENCE, arpabet_to_phone
from speechbench.errors import CorpusError

SAMPLE_RATE = 16000
FRAME_S = 0.01  # pocketsphinx frame shift


class AlignmentFailed(CorpusError):
    """The aligner could not align this transcript (unknown word, no path found)."""


# pocketsphinx's default beams sometimes lose the only path through a forced
# transcript; the retry uses much wider beams (slower, so only when needed).
_WIDE_BEAMS = {"beam": 1e-80, "wbeam": 1e-60, "pbeam": 1e-80}


@lru_cache(maxsize=2)
def _decoder(wide: bool = False):
    try:
        from pocketsphinx import Decoder
    except ImportError:
        raise CorpusError(
            "forced alignment needs pocketsphinx: `pip install pocketsphinx`"
        ) from None
    beams = _WIDE_BEAMS if wide else {}
    return Decoder(samprate=SAMPLE_RATE, bestpath=False, loglevel="FATAL", **beams)


def _run(decoder: Any, pcm: bytes) -> None:
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()


def align(audio: np.ndarray, text: str) -> tuple[list[list[Any]], list[list[Any]]]:
    """``(phones, words)`` of 16 kHz ``audio`` spoken as ``text`` (normalised words).

    Phones are ``[[phone, start_s, end_s]]`` in the 39-phone inventory with silences,
    tiling the audio; words ``[[word, start_s, end_s]]``. Raises AlignmentFailed."""
    missing = [w for w in text.split() if _decoder().lookup_word(w) is None]
    if missing:
        raise AlignmentFailed(f"words not in the pocketsphinx dictionary: {', '.join(missing)}")
    pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
    alignment, error = None, "no alignment"
    for wide in (False, True):
        decoder = _decoder(wide)
        try:
            decoder.set_align_text(f"<sil> {text} <sil>")
            _run(decoder, pcm)
            decoder.set_alignment()
            _run(decoder, pcm)
            alignment = decoder.get_alignment()
        except RuntimeError as exc:
            error = str(exc)
            continue
        if alignment is not None:
            break
    if alignment is None:
        raise AlignmentFailed(f"pocketsphinx could not align {text!r}: {error}")
    duration = len(audio) / SAMPLE_RATE
    phones: list[list[Any]] = []
    words: list[list[Any]] = []
    for word in alignment:
        word_start = word.start * FRAME_S
        word_end = (word.start + word.duration) * FRAME_S
        if not word.name.startswith("<") and word.name != "<sil>":
            words.append([word.name.split("(")[0], word_start, word_end])
        for phone in word:
            name = arpabet_to_phone(phone.name)
            start = phone.start * FRAME_S
            end = min((phone.start + phone.duration) * FRAME_S, duration)
            if end <= start:
                continue
            if name == SILENCE and phones and phones[-1][0] == SILENCE:
                phones[-1][2] = end
            else:
                phones.append([name, start, end])
    if len([p for p in phones if p[0] != SILENCE]) == 0:
        raise AlignmentFailed(f"pocketsphinx aligned no phones for {text!r}")
    return phones, words
