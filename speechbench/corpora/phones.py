"""The one English phone inventory of the phone corpora: CMUdict's 39 phonemes in IPA.

Why this set: it is what CMUdict / ARPAbet (and so pocketsphinx's forced aligner and
festival's US voices) use, so synthetic espeak-ng phones, festival segments and forced
alignments of real speech all land on the same labels, and PER numbers are comparable
with the usual 39-phone English setting. Normalisation rules:

* stress (ˈ ˌ) is dropped; length (ː) is dropped: ``iː``/``i`` -> ``i``, ``uː`` -> ``u``...
* reduced and unstressed vowels merge as in ARPAbet: ``ə ɐ`` -> ``ʌ`` (AH), ``ᵻ`` -> ``ɪ``,
  ``ɚ ɜː`` -> ``ɝ`` (ER);
* the American flap ``ɾ`` and glottal stop ``ʔ`` -> ``t`` (CMUdict writes T or D; espeak
  flaps mostly spelled t);
* espeak's rhotic and compound vowels are split in two (``ɔːɹ`` -> ``ɔ ɹ``, ``əl`` -> ``ʌ l``,
  ``aɪə`` -> ``aɪ ʌ``); the two halves share the original interval equally;
* pauses and lead-in/-out silence are :data:`SILENCE` (``sil``): kept in ``phones`` so the
  intervals tile the audio, but not part of :data:`PHONES` and not a PER target.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from speechbench.errors import CorpusError

SILENCE = "sil"

# ARPAbet (CMUdict, pocketsphinx, festival "radio" phone set) -> IPA, in ARPAbet order.
ARPABET_TO_PHONE: dict[str, str] = {
    "AA": "ɑ",
    "AE": "æ",
    "AH": "ʌ",
    "AO": "ɔ",
    "AW": "aʊ",
    "AY": "aɪ",
    "B": "b",
    "CH": "tʃ",
    "D": "d",
    "DH": "ð",
    "EH": "ɛ",
    "ER": "ɝ",
    "EY": "eɪ",
    "F": "f",
    "G": "ɡ",
    "HH": "h",
    "IH": "ɪ",
    "IY": "i",
    "JH": "dʒ",
    "K": "k",
    "L": "l",
    "M": "m",
    "N": "n",
    "NG": "ŋ",
    "OW": "oʊ",
    "OY": "ɔɪ",
    "P": "p",
    "R": "ɹ",
    "S": "s",
    "SH": "ʃ",
    "T": "t",
    "TH": "θ",
    "UH": "ʊ",
    "UW": "u",
    "V": "v",
    "W": "w",
    "Y": "j",
    "Z": "z",
    "ZH": "ʒ",
}

#: The inventory ASR/CTAP vocabularies are built from (39 phones, no silence).
PHONES: list[str] = list(ARPABET_TO_PHONE.values())

# espeak-ng en-us IPA phonemes (stress and length removed) that are not already in PHONES.
_ESPEAK_EXTRA: dict[str, tuple[str, ...]] = {
    "ə": ("ʌ",),
    "ɐ": ("ʌ",),
    "ᵻ": ("ɪ",),
    "ɚ": ("ɝ",),
    "ɜ": ("ɝ",),
    "ɾ": ("t",),
    "ʔ": ("t",),
    "ɒ": ("ɑ",),
    "a": ("æ",),
    "o": ("oʊ",),
    "e": ("ɛ",),
    "əʊ": ("oʊ",),
    "ɔɹ": ("ɔ", "ɹ"),
    "ɑɹ": ("ɑ", "ɹ"),
    "oɹ": ("ɔ", "ɹ"),
    "ʊɹ": ("ʊ", "ɹ"),
    "ɪɹ": ("ɪ", "ɹ"),
    "ɛɹ": ("ɛ", "ɹ"),
    "aɪɚ": ("aɪ", "ɝ"),
    "aʊɚ": ("aʊ", "ɝ"),
    "aɪə": ("aɪ", "ʌ"),
    "aʊə": ("aʊ", "ʌ"),
    "iə": ("i", "ʌ"),
    "əl": ("ʌ", "l"),
    "l̩": ("ʌ", "l"),
    "n̩": ("ʌ", "n"),
    "m̩": ("ʌ", "m"),
}
_STRIP = str.maketrans("", "", "ˈˌːˑ")


def espeak_to_phones(ipa: str) -> tuple[str, ...]:
    """Map one espeak-ng en-us IPA phoneme onto the inventory (one or two phones)."""
    if ipa == SILENCE:
        return (SILENCE,)
    bare = ipa.translate(_STRIP)
    if bare in ARPABET_TO_PHONE.values():
        return (bare,)
    if bare in _ESPEAK_EXTRA:
        return _ESPEAK_EXTRA[bare]
    raise CorpusError(
        f"espeak-ng phoneme {ipa!r} has no mapping onto the 39-phone inventory; "
        "add it to _ESPEAK_EXTRA in speechbench/corpora/phones.py"
    )


def arpabet_to_phone(symbol: str) -> str:
    """``"AH0"`` / ``"ah"`` -> ``"ʌ"``; ``SIL``/``pau``/``h#`` -> silence."""
    bare = symbol.upper().rstrip("012")
    if bare in ("SIL", "PAU", "H#", "SP", "<SIL>", "+NSN+", "+SPN+", "+BREATH+"):
        return SILENCE
    if bare not in ARPABET_TO_PHONE:
        raise CorpusError(f"ARPAbet phone {symbol!r} is not one of the 39 CMUdict phonemes")
    return ARPABET_TO_PHONE[bare]


def map_intervals(
    intervals: Iterable[Sequence[Any]], mapper: Any = espeak_to_phones
) -> list[list[Any]]:
    """Map ``[[phone, start, end], ...]`` through ``mapper`` (one phone -> one or more),
    splitting an interval equally when one source phone becomes several; adjacent
    silences merge."""
    out: list[list[Any]] = []
    for name, start, end in intervals:
        targets = mapper(name)
        if isinstance(targets, str):
            targets = (targets,)
        step = (end - start) / len(targets)
        for k, target in enumerate(targets):
            s, e = start + k * step, start + (k + 1) * step
            if target == SILENCE and out and out[-1][0] == SILENCE:
                out[-1][2] = e
            else:
                out.append([target, s, e])
    return out


def phone_sequence(phones: Iterable[Sequence[Any]]) -> list[str]:
    """The PER target of a manifest record: its phones without silence."""
    return [p[0] for p in phones if p[0] != SILENCE]


def espeak_symbols() -> frozenset[str]:
    """Every bare (stress- and length-free) espeak-ng English phoneme the mapping knows."""
    return frozenset(ARPABET_TO_PHONE.values()) | frozenset(_ESPEAK_EXTRA)
