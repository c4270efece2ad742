"""Real voices shared by mini-sv, mini-lid and mini-tse: Asterisk prompts and Fish Fillets.

A :class:`SourceUtt` is one real recording with a global speaker id (Allison is one
speaker in en and es). :func:`convert` decodes it once to 16 kHz mono wav, skipping files
already written, so an interrupted build restarts where it stopped. Every bad source
(corrupt, empty, NaN, unexpected sample rate) raises a CorpusError naming the file and
its Debian package.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from speechbench.audio import resample, write_audio
from speechbench.corpora import asterisk, fillets, splits
from speechbench.errors import CorpusError

SAMPLE_RATE = 16_000
ASTERISK_VOICES = (*asterisk.VOICES, *asterisk.EXTRA_VOICES)


@dataclass(frozen=True)
class Origin:
    """Where a recording comes from, for ATTRIBUTION and for sample-rate checks."""

    packages: str
    license: str
    credit: str
    rates: tuple[int, ...]


ORIGINS: dict[str, Origin] = {
    **{
        f"asterisk-{lang}": Origin(
            f"asterisk-core-sounds-{lang}-wav, asterisk-core-sounds-{lang}",
            asterisk.LICENSES[lang],
            f"Asterisk core sounds ({asterisk.VOICES[lang]}), Digium / Sangoma",
            (8000,),
        )
        for lang in asterisk.VOICES
    },
    **{
        f"asterisk-{key}": Origin(
            f"{voice.package} (transcripts: asterisk-core-sounds-{voice.language})",
            voice.license,
            voice.credit,
            (8000,),
        )
        for key, voice in asterisk.EXTRA_VOICES.items()
    },
    **{
        f"fillets-{lang}": Origin(
            f"fillets-ng-data-{lang}, fillets-ng-data",
            fillets.LICENSE,
            fillets.CREDIT,
            (22050, 44100),
        )
        for lang in fillets.VOICED_LANGUAGES
    },
}


@dataclass(frozen=True)
class SourceUtt:
    id: str  # unique, file-name safe
    source: Path  # original file in the unpacked Debian package
    language: str
    speaker: str  # global speaker id
    text: str | None
    text_exact: bool
    origin: str  # key of ORIGINS
    duration: float  # seconds, from the file header
    source_key: str = ""  # PACKAGE:FILE (speechbench.corpora.splits); "" -> ORIGIN:ID

    @property
    def source_id(self) -> str:
        return self.source_key or f"{self.origin}:{self.id}"

    @property
    def shared_split(self) -> str:
        """The split every corpus gives this recording (speechbench.corpora.splits)."""
        return splits.recording_split(self.source_id, self.speaker)


def _duration(path: Path) -> float:
    try:
        info = sf.info(str(path))
    except Exception as exc:
        raise CorpusError(
            f"{path}: cannot read audio header ({exc}); delete its _debian folder"
        ) from None
    return info.frames / info.samplerate if info.samplerate else 0.0


def asterisk_sources(voices: tuple[str, ...] = ASTERISK_VOICES) -> list[SourceUtt]:
    out = []
    for voice in voices:
        for prompt in asterisk.asterisk_prompts(voice):
            safe = prompt.name.replace("/", "_")
            out.append(
                SourceUtt(
                    id=f"ast-{voice}-{prompt.speaker}-{safe}",
                    source=prompt.path,
                    language=prompt.language,
                    speaker=f"asterisk-{prompt.speaker}",
                    text=prompt.text,
                    text_exact=prompt.text_exact,
                    origin=f"asterisk-{voice}",
                    duration=_duration(prompt.path),
                    source_key=prompt.source_id,
                )
            )
    return out


def fillets_sources(
    languages: tuple[str, ...] = fillets.VOICED_LANGUAGES, min_lines: int = fillets.MIN_LINES
) -> list[SourceUtt]:
    """Voiced lines of characters with at least ``min_lines`` transcribed lines."""
    out = []
    for lang in languages:
        lines = fillets.fillets_lines(lang)
        counts: dict[str, int] = defaultdict(int)
        for line in lines:
            counts[line.character] += line.text is not None
        for line in lines:
            if counts[line.character] < min_lines:
                continue
            level = line.level.replace("/", "_")
            out.append(
                SourceUtt(
                    id=f"fil-{lang}-{level}-{line.id}",
                    source=line.path,
                    language=lang,
                    speaker=f"fillets-{lang}-{line.character}",
                    text=line.text,
                    text_exact=line.text is not None,
                    origin=f"fillets-{lang}",
                    duration=_duration(line.path),
                    source_key=f"fillets-ng-data-{lang}:{line.level}/{line.id}",
                )
            )
    return out


def real_sources(min_duration: float = 1.0) -> list[SourceUtt]:
    """Every real recording of every voice, at least ``min_duration`` seconds long."""
    sources = asterisk_sources() + fillets_sources()
    return [s for s in sources if s.duration >= min_duration]


def speaker_group(speaker: str, n_utts: int) -> str:
    """Strata for a speaker split: Asterisk voices, Fillets main fish, Fillets minor roles."""
    if speaker.startswith("asterisk-"):
        return "asterisk"
    return "fillets-main" if n_utts >= 100 else "fillets-minor"


def choose_test_speakers(sources: list[SourceUtt], fraction: float, seed: int) -> set[str]:
    """Seeded, stratified choice of held-out speakers (at least one train speaker per group
    with two or more speakers), so train and test speakers are disjoint."""
    counts: dict[str, int] = defaultdict(int)
    for s in sources:
        counts[s.speaker] += 1
    groups: dict[str, list[str]] = defaultdict(list)
    for speaker in sorted(counts):
        groups[speaker_group(speaker, counts[speaker])].append(speaker)
    rng = random.Random(seed)
    test: set[str] = set()
    for name in sorted(groups):
        members = groups[name]
        rng.shuffle(members)
        n_test = max(1, round(fraction * len(members))) if len(members) > 1 else 0
        test.update(members[:n_test])
    return test


def decode(src: SourceUtt | Path, rates: tuple[int, ...] = ()) -> np.ndarray:
    """Decode a source file to 16 kHz mono float32 (stereo dubs are averaged)."""
    path = src.source if isinstance(src, SourceUtt) else Path(src)
    if isinstance(src, SourceUtt):
        rates = rates or ORIGINS[src.origin].rates
        where = f" (from Debian package {ORIGINS[src.origin].packages})"
    else:
        where = ""
    if not path.exists():
        raise CorpusError(f"{path}: source audio missing{where}; delete its _debian folder")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise CorpusError(f"{path}: cannot decode source audio ({exc}){where}") from None
    wav = data.mean(axis=1)
    if wav.size == 0:
        raise CorpusError(f"{path}: source audio is empty{where}")
    if not np.isfinite(wav).all():
        raise CorpusError(f"{path}: source audio has NaN/Inf samples{where}")
    if rates and rate not in rates:
        raise CorpusError(
            f"{path}: sample rate {rate} Hz, expected {' or '.join(map(str, rates))} Hz{where}"
        )
    return resample(wav, rate, SAMPLE_RATE).numpy()


def duration_of(path: Path) -> float:
    """Duration of a written file, rounded for the manifest."""
    try:
        info = sf.info(str(path))
    except Exception as exc:
        raise CorpusError(
            f"{path}: cannot read this corpus file ({exc}); delete it and prepare again"
        ) from None
    if info.frames == 0:
        raise CorpusError(f"{path}: corpus file is empty; delete it and prepare again")
    return round(info.frames / info.samplerate, 4)


def convert(src: SourceUtt, out: Path) -> Path:
    """Write ``src`` as 16 kHz mono wav at ``out`` unless it is already there (restart)."""
    if not out.exists():
        write_audio(out, decode(src), SAMPLE_RATE)
    return out


def attribution(corpus: str, origins: set[str], extra: list[str] = ()) -> str:
    """ATTRIBUTION text: every source used, with its package, credit and licence."""
    lines = [f"{corpus}: sources and licences", ""]
    for key in sorted(origins):
        origin = ORIGINS[key]
        lines.append(f"- {key}: {origin.credit}")
        lines.append(f"  Debian package(s): {origin.packages}")
        lines.append(f"  Licence: {origin.license}")
    for paragraph in extra:
        lines.append(paragraph)
    lines += [
        "",
        "Audio was decoded, averaged to mono and resampled to 16 kHz; the derived corpus",
        "is shared under the same licences as its sources.",
    ]
    return "\n".join(lines)
