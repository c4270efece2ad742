"""Real read prompts of Asterisk's core sound sets (Debian, CC-BY-SA-3.0; ru CC-BY-3.0).

Each language is one professional voice at 8 kHz mono: en Allison, es-MX Allison (the
same woman), fr-CA June, it Carlo (male), ru IvrvoiceRU. Audio comes from
``asterisk-core-sounds-XX-wav``, transcripts (lines ``name: text``) from the
metapackage ``asterisk-core-sounds-XX``.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

from speechbench.corpora.debian import fetch_package
from speechbench.errors import CorpusError

VOICES: dict[str, str] = {
    "en": "en_US_f_Allison",
    "es": "es_MX_f_Allison",
    "fr": "fr_CA_f_June",
    "it": "it_IT_m_Carlo",
    "ru": "ru_RU_f_IvrvoiceRU",
}
SPEAKERS: dict[str, str] = {  # es and en are the same woman
    "en": "allison",
    "es": "allison",
    "fr": "june",
    "it": "carlo",
    "ru": "ivrvoice-ru",
}
LICENSES: dict[str, str] = {lang: "CC-BY-SA-3.0" for lang in VOICES} | {"ru": "CC-BY-3.0"}


@dataclass(frozen=True)
class Prompt:
    name: str  # e.g. "digits/7" or "vm-goodbye"
    path: Path  # 8 kHz mono wav
    text: str  # transcript as published
    language: str
    speaker: str


def parse_transcripts(lines: list[str]) -> dict[str, str]:
    """``name: text`` lines; comments (``;``) and bracketed non-speech (``[beep]``) dropped."""
    texts: dict[str, str] = {}
    for raw in lines:
        line = raw.lstrip("\ufeff").strip()
        if not line or line.startswith(";") or ":" not in line:
            continue
        name, _, text = line.partition(":")
        text = text.strip()
        if not text or (text.startswith("[") and text.endswith("]")):
            continue
        texts[name.strip()] = text
    return texts


def asterisk_prompts(language: str) -> list[Prompt]:
    """Every transcribed prompt of one language, fetched from Debian if needed."""
    if language not in VOICES:
        raise CorpusError(
            f"no Asterisk voice for language {language!r}; available: {', '.join(VOICES)}"
        )
    audio_root = fetch_package(f"asterisk-core-sounds-{language}-wav")
    text_root = fetch_package(f"asterisk-core-sounds-{language}")
    text_file = text_root / f"usr/share/doc/asterisk-core-sounds-{language}"
    text_file = text_file / f"core-sounds-{language}.txt.gz"
    if not text_file.exists():
        raise CorpusError(f"transcripts {text_file} missing from asterisk-core-sounds-{language}")
    with gzip.open(text_file, "rt", encoding="utf-8", errors="replace") as fh:
        texts = parse_transcripts(fh.readlines())
    voice_dir = audio_root / "usr/share/asterisk/sounds" / VOICES[language]
    prompts = []
    for wav in sorted(voice_dir.rglob("*.wav")):
        name = wav.relative_to(voice_dir).with_suffix("").as_posix()
        if name in texts:
            prompts.append(Prompt(name, wav, texts[name], language, SPEAKERS[language]))
    if not prompts:
        raise CorpusError(f"no transcribed prompts found under {voice_dir}")
    return prompts
