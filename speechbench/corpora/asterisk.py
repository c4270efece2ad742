"""Real read prompts of Asterisk's core sound sets (Debian, CC-BY-SA-3.0; ru CC-BY-3.0).

Each language is one professional voice at 8 kHz mono: en Allison, es-MX Allison (the
same woman), fr-CA June, it Carlo (male), ru IvrvoiceRU. Audio comes from
``asterisk-core-sounds-XX-wav``, transcripts (lines ``name: text``) from the
metapackage ``asterisk-core-sounds-XX``.

Three more voices of other Debian packages record the same prompt names:
``es-co`` (July E. Jiménez, GSM, GPL-2), ``fr-armelle`` (Armelle Desjardins, GSM,
BSD-style) and ``it-menardi`` (Paola Dal Zot, wav, CC-BY-SA-3.0-IT). They ship no
transcripts, so their text is the core set's transcript of the same prompt name
(``Prompt.text_exact`` is False: the wording may differ).
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
class ExtraVoice:
    """A voice outside the core sets: its own package, folder and audio format."""

    package: str
    folder: str  # inside the unpacked package
    suffix: str  # ".gsm" (raw GSM 06.10, soundfile reads it) or ".wav"
    language: str  # transcripts are borrowed from this core language
    speaker: str
    license: str
    credit: str


EXTRA_VOICES: dict[str, ExtraVoice] = {
    "es-co": ExtraVoice(
        "asterisk-prompt-es-co",
        "usr/share/asterisk/sounds/es",
        ".gsm",
        "es",
        "july-jimenez",
        "GPL-2",
        "Avatar Ltda. (http://www.avatar.com.co/), voice of July E. Jiménez",
    ),
    "fr-armelle": ExtraVoice(
        "asterisk-prompt-fr-armelle",
        "usr/share/asterisk/sounds/fr",
        ".gsm",
        "fr",
        "armelle",
        "BSD-2-Clause-like (Copyright (C) 2006 Michel Gutierrez)",
        "Michel Gutierrez, voice actor Armelle Desjardins",
    ),
    "it-menardi": ExtraVoice(
        "asterisk-prompt-it-menardi-wav",
        "usr/share/asterisk/sounds/it_IT_f_Menardi",
        ".wav",
        "it",
        "menardi",
        "CC-BY-SA-3.0-IT",
        "Marco Menardi and Paola Dal Zot (the voice), http://www.voip.ammdomus.it",
    ),
}


@dataclass(frozen=True)
class Prompt:
    name: str  # e.g. "digits/7" or "vm-goodbye"
    path: Path  # 8 kHz mono wav
    text: str  # transcript as published
    language: str
    speaker: str
    text_exact: bool = True  # False: transcript borrowed from another voice's prompt
    package: str = ""  # Debian package of the audio file

    @property
    def source_id(self) -> str:
        """``PACKAGE:NAME``, the key of the shared split (speechbench.corpora.splits)."""
        return f"{self.package or 'asterisk-' + self.language}:{self.name}"

    @property
    def global_speaker(self) -> str:
        """The speaker id shared by every corpus (Allison is one speaker in en and es)."""
        return f"asterisk-{self.speaker}"


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


def _transcripts(language: str) -> dict[str, str]:
    text_root = fetch_package(f"asterisk-core-sounds-{language}")
    text_file = text_root / f"usr/share/doc/asterisk-core-sounds-{language}"
    text_file = text_file / f"core-sounds-{language}.txt.gz"
    if not text_file.exists():
        raise CorpusError(f"transcripts {text_file} missing from asterisk-core-sounds-{language}")
    with gzip.open(text_file, "rt", encoding="utf-8", errors="replace") as fh:
        return parse_transcripts(fh.readlines())


def asterisk_prompts(language: str) -> list[Prompt]:
    """Every transcribed prompt of one language (or of an ``EXTRA_VOICES`` key such as
    ``"es-co"``), fetched from Debian if needed."""
    if language in EXTRA_VOICES:
        return _extra_voice_prompts(EXTRA_VOICES[language])
    if language not in VOICES:
        raise CorpusError(
            f"no Asterisk voice {language!r}; available: {', '.join([*VOICES, *EXTRA_VOICES])}"
        )
    audio_root = fetch_package(f"asterisk-core-sounds-{language}-wav")
    texts = _transcripts(language)
    voice_dir = audio_root / "usr/share/asterisk/sounds" / VOICES[language]
    prompts = []
    for wav in sorted(voice_dir.rglob("*.wav")):
        name = wav.relative_to(voice_dir).with_suffix("").as_posix()
        if name in texts:
            package = f"asterisk-core-sounds-{language}-wav"
            prompts.append(
                Prompt(name, wav, texts[name], language, SPEAKERS[language], True, package)
            )
    if not prompts:
        raise CorpusError(f"no transcribed prompts found under {voice_dir}")
    return prompts


def _extra_voice_prompts(voice: ExtraVoice) -> list[Prompt]:
    voice_dir = fetch_package(voice.package) / voice.folder
    texts = _transcripts(voice.language)
    prompts = []
    for path in sorted(voice_dir.rglob(f"*{voice.suffix}")):
        name = path.relative_to(voice_dir).with_suffix("").as_posix()
        if name in texts:
            prompt = Prompt(
                name, path, texts[name], voice.language, voice.speaker, False, voice.package
            )
            prompts.append(prompt)
    if not prompts:
        raise CorpusError(f"no prompts with a known transcript found under {voice_dir}")
    return prompts
