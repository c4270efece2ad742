"""English text normalisation for recognition targets and scoring.

The rule set (documented because WER depends on it): Unicode NFKD, lowercase,
digits spelled out with num2words (``4`` -> ``four``, ``1st`` -> ``first``; a number
beyond num2words' range digit by digit), the keypad
symbols of telephone prompts spelled out (``*`` star, ``#`` pound, ``&`` and, ``%``
percent), hyphens and slashes become spaces, every other character outside a-z and
the apostrophe is dropped, and runs of spaces collapse to one.
"""

from __future__ import annotations

import re
import unicodedata

from num2words import num2words

SYMBOLS = {"*": " star ", "#": " pound ", "&": " and ", "%": " percent ", "+": " plus "}
CHARACTERS = tuple("abcdefghijklmnopqrstuvwxyz' ")
_ORDINAL = re.compile(r"(\d+)(st|nd|rd|th)\b")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def _spell(number: str, to: str = "cardinal") -> str:
    """num2words, or digit by digit for a number beyond its range (it raises
    OverflowError past 10**306 in English): a recogniser hallucinating a 300-digit string on
    generated audio must cost insertions in the WER, not end the run."""
    try:
        return num2words(float(number) if "." in number else int(number), to=to)
    except OverflowError:
        return " ".join("point" if ch == "." else num2words(int(ch)) for ch in number)


def _spell_numbers(text: str) -> str:
    text = _ORDINAL.sub(lambda m: " " + _spell(m.group(1), to="ordinal") + " ", text)
    return _NUMBER.sub(lambda m: " " + _spell(m.group()) + " ", text)


def normalize(text: str) -> str:
    """Normalise English text to lowercase words over a-z and apostrophe."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    for symbol, word in SYMBOLS.items():
        text = text.replace(symbol, word)
    text = _spell_numbers(text.lower())
    text = re.sub(r"[-/,]", " ", text)
    text = re.sub(r"[^a-z' ]", "", text)
    text = re.sub(r"\s*'\s*(?=\s|$)|(?<=\s)'", " ", text)  # quotes, not contractions
    return re.sub(r"\s+", " ", text).strip()
