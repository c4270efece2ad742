"""The English sentences the phone corpora speak: Asterisk's en prompt transcripts.

They are real English text that ships offline (Debian ``asterisk-core-sounds-en``,
CC-BY-SA-3.0), several hundred distinct sentences and phrases, and each one also has a
real recording (Allison), which is what lets mini-phone pair synthetic and real speech
of the same text. Sentence ids are hashes of the normalised text, so they do not move
when the list grows or shrinks.

A sentence's split is shared by every corpus (speechbench.corpora.splits): the most
held-out split of the Allison recordings of that text, and the sentence's real
recording is one whose own split is that one. mini-en, mini-phone and mini-vc all use
it, so a test sentence is test in all three, as text and as audio.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass

from speechbench.corpora.asterisk import Prompt, asterisk_prompts
from speechbench.corpora.splits import recording_split, resolve_group, text_source
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
    split: str = ""  # the shared split (empty: derive it from the prompt alone)

    @property
    def shared_split(self) -> str:
        return self.split or prompt_split(self.prompt)

    @property
    def text_source(self) -> str:
        return text_source(self.id)


def sentence_id(text: str) -> str:
    return "s" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]


def prompt_text(prompt: Prompt) -> str:
    """The normalised words of a prompt, bracketed notes removed ("" if none)."""
    return normalize(_NOTES.sub(" ", prompt.text))


def prompt_split(prompt: Prompt) -> str:
    """The shared split of one Asterisk recording."""
    return recording_split(prompt.source_id, prompt.global_speaker)


def text_groups(prompts: list[Prompt]) -> dict[str, tuple[str, list[Prompt]]]:
    """normalised text -> (its shared split, the recordings of it with that split).

    Recordings of the same text in another split are left out: a text is in one split."""
    members: dict[str, list[Prompt]] = {}
    for prompt in prompts:
        text = prompt_text(prompt)
        if text:
            members.setdefault(text, []).append(prompt)
    out = {}
    for text, group in members.items():
        split = resolve_group([prompt_split(p) for p in group])
        out[text] = (split, [p for p in group if prompt_split(p) == split])
    return out


def english_sentences() -> list[Sentence]:
    """Distinct normalised prompt texts, each with its shared split and a recording of
    that split (the first by name), sorted by id."""
    sentences = [
        Sentence(sentence_id(text), text, kept[0], split)
        for text, (split, kept) in text_groups(asterisk_prompts("en")).items()
    ]
    return sorted(sentences, key=lambda s: s.id)


def split_sentences(
    sentence_ids: list[str], seed_key: str, dev_fraction: float = 0.1, test_fraction: float = 0.1
) -> dict[str, str]:
    """Deterministic sentence -> split for a given ``seed_key`` (e.g. ``"mini-phone-1-0"``).

    The split of mini-phone/mini-vc version 1. It ignores the shared split, so it leaks
    (tests/test_splits_leaks.py shows it); kept only for that fixture."""
    ids = sorted(sentence_ids)
    random.Random(seed_key).shuffle(ids)
    n_test = max(1, round(len(ids) * test_fraction))
    n_dev = max(1, round(len(ids) * dev_fraction))
    splits = {sid: "test" for sid in ids[:n_test]}
    splits |= {sid: "dev" for sid in ids[n_test : n_test + n_dev]}
    splits |= {sid: "train" for sid in ids[n_test + n_dev :]}
    return splits
