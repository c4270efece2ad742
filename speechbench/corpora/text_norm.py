"""English transcript normalisation shared by the synthetic corpora.

Prompts as published carry digits, symbols, bracketed notes and punctuation; a speech
corpus needs the words as spoken. Numbers are spelled out with num2words, notes in
brackets are dropped, and what remains is lowercase words with inner apostrophes.
"""

from __future__ import annotations

import re

from num2words import num2words

_BRACKETED = re.compile(r"\[[^\]]*\]|\([^)]*\)|<[^>]*>")
_ORDINAL = re.compile(r"(\d+)(?:st|nd|rd|th)\b", re.IGNORECASE)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_SYMBOLS = {"&": " and ", "%": " percent ", "#": " pound ", "*": " star ", "+": " plus "}
_NON_WORD = re.compile(r"[^a-z' ]+")


def _spell_number(match: re.Match[str]) -> str:
    return " " + num2words(float(match.group()) if "." in match.group() else int(match.group()))


def normalise_english(text: str) -> str:
    """``"Press 5, or [beep] 10%!"`` -> ``"press five or ten percent"``."""
    text = _BRACKETED.sub(" ", text)
    for symbol, word in _SYMBOLS.items():
        text = text.replace(symbol, word)
    text = _ORDINAL.sub(lambda m: " " + num2words(int(m.group(1)), to="ordinal"), text)
    text = _NUMBER.sub(_spell_number, text)
    text = _NON_WORD.sub(" ", text.lower().replace("-", " "))
    words = [w.strip("'") for w in text.split()]
    return " ".join(w for w in words if w)
