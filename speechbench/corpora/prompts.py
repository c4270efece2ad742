"""The English sentences the phone corpora speak: Asterisk's en prompt transcripts.

They are real English text that ships offline (Debian ``asterisk-core-sounds-en``,
CC-BY-SA-3.0), several hundred distinct sentences and phrases, and each one also has a
real recording (Allison), which is what lets mini-phone pair synthetic and real speech
of the same text. Sentence ids are hashes of the normalised text, so they do not move
when the list grows or shrinks.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass

from speechbench.corpora.asterisk import Prompt, asterisk_prompts
from speechbench.text import normalize

SOURCE_PACKAGES = ("asterisk-core-sounds-en", "asterisk-core-sounds-en-wav")
LICENSE = "CC-BY-SA-3.0"
# notes that are not spoken: "dollar [$]", "(10 seconds of silence)"
_NOTES = re.compile(r"\[[^\]]*\]|\([^)]*\)|<[^>]*>")


@dataclass(frozen=True)
class Sentence:
    id: str  # "s" + 8 hex digits of sha1(text)
    text: str  # normalised words
    prompt: Prompt  # the real recording of the same text


def sentence_id(text: str) -> str:
    return "s" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]


def english_sentences() -> list[Sentence]:
    """Distinct normalised prompt texts (first recording kept), sorted by id."""
    by_text: dict[str, Sentence] = {}
    for prompt in asterisk_prompts("en"):
        text = normalize(_NOTES.sub(" ", prompt.text))
        if text and text not in by_text:
            by_text[text] = Sentence(sentence_id(text), text, prompt)
    return sorted(by_text.values(), key=lambda s: s.id)


def split_sentences(
    sentence_ids: list[str], seed_key: str, dev_fraction: float = 0.1, test_fraction: float = 0.1
) -> dict[str, str]:
    """Deterministic sentence -> split for a given ``seed_key`` (e.g. ``"mini-phone-1-0"``)."""
    ids = sorted(sentence_ids)
    random.Random(seed_key).shuffle(ids)
    n_test = max(1, round(len(ids) * test_fraction))
    n_dev = max(1, round(len(ids) * dev_fraction))
    splits = {sid: "test" for sid in ids[:n_test]}
    splits |= {sid: "dev" for sid in ids[n_test : n_test + n_dev]}
    splits |= {sid: "train" for sid in ids[n_test + n_dev :]}
    return splits
