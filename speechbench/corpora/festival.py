"""Festival speech synthesis with phone times (Debian ``festival`` + ``festvox-*`` voices).

The US English diphone voices (kal, ked) are concatenations of real recorded
diphones; the HTS voice (slt) is a statistical model trained on CMU ARCTIC slt.
``utt.save.segs`` writes each segment's end time in festival's "radio" phone set
(ARPAbet, lowercase, no stress), which maps onto the corpus inventory. Festival starts
once per voice and speaks a whole batch from one generated Scheme script.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from speechbench.corpora.phones import SILENCE, arpabet_to_phone
from speechbench.errors import CorpusError


@dataclass(frozen=True)
class FestivalVoice:
    name: str  # Scheme voice function without "voice_", e.g. "kal_diphone"
    package: str  # Debian package that ships it
    speaker: str  # corpus speaker id
    description: str
    license: str


VOICES: tuple[FestivalVoice, ...] = (
    FestivalVoice(
        "kal_diphone",
        "festvox-kallpc16k",
        "festival-kal",
        "American English male diphone voice (CMU, real recorded diphones), 16 kHz",
        "free: (c) Alan W Black, Kevin Lenzo 1998, use and distribution without restriction",
    ),
    FestivalVoice(
        "ked_diphone",
        "festvox-kdlpc16k",
        "festival-ked",
        "American English male diphone voice (CMU, real recorded diphones), 16 kHz",
        "free: (c) CSTR, University of Edinburgh 1997, use and distribution without restriction",
    ),
    FestivalVoice(
        "cmu_us_slt_arctic_hts",
        "festvox-us-slt-hts",
        "festival-slt",
        "American English female HTS voice trained on CMU ARCTIC slt",
        "free: (c) 2003 Carnegie Mellon University, EST-2003 licence (permissive)",
    ),
)

# festival "radio" phones beyond the 39 ARPAbet ones
_RADIO_EXTRA: dict[str, tuple[str, ...]] = {
    "pau": (SILENCE,),
    "h#": (SILENCE,),
    "ax": ("ʌ",),
    "axr": ("ɝ",),
    "ix": ("ɪ",),
    "dx": ("t",),
    "nx": ("n",),
    "el": ("ʌ", "l"),
    "em": ("ʌ", "m"),
    "en": ("ʌ", "n"),
}


def radio_to_phones(name: str) -> tuple[str, ...]:
    """Map one festival radio phone onto the inventory (one or two phones)."""
    if name in _RADIO_EXTRA:
        return _RADIO_EXTRA[name]
    return (arpabet_to_phone(name),)


def read_segs(path: Path) -> list[list[Any]]:
    """``utt.save.segs`` output (``end 100 phone`` after a ``#`` line) -> raw intervals."""
    intervals: list[list[Any]] = []
    start = 0.0
    past_header = False
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not past_header:
            past_header = line.strip() == "#"
            continue
        fields = line.split()
        if len(fields) < 3:
            continue
        end = float(fields[0])
        if end > start:
            intervals.append([fields[2], start, end])
            start = end
    if not intervals:
        raise CorpusError(f"festival wrote no segments to {path}")
    return intervals


def require_festival(voice: FestivalVoice) -> None:
    if shutil.which("festival") is None:
        raise CorpusError(f"festival is not installed: `apt-get install festival {voice.package}`")
    probe = subprocess.run(
        ["festival", "-b", f"(voice_{voice.name})"], capture_output=True, text=True, timeout=120
    )
    if probe.returncode != 0 or "unbound variable" in (probe.stderr + probe.stdout):
        raise CorpusError(
            f"festival voice {voice.name} is not installed: `apt-get install {voice.package}`"
        )


def speak_batch(voice: FestivalVoice, items: list[tuple[str, str]], out_dir: Path) -> None:
    """Write ``KEY.wav`` and ``KEY.segs`` in ``out_dir`` for every ``(key, text)``.

    Texts must be normalised words (letters, apostrophes, spaces): they go into a
    Scheme string literal."""
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"(voice_{voice.name})"]
    for key, text in items:
        if '"' in text or "\\" in text:
            raise CorpusError(f"festival text for {key} is not normalised: {text!r}")
        wav, segs = out_dir / f"{key}.wav", out_dir / f"{key}.segs"
        lines.append(
            f'(let ((u (utt.synth (Utterance Text "{text}")))) '
            f'(utt.save.wave u "{wav}" \'riff) (utt.save.segs u "{segs}"))'
        )
    script = out_dir / "batch.scm"
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = subprocess.run(["festival", "-b", str(script)], capture_output=True, text=True)
    missing = [key for key, _ in items if not (out_dir / f"{key}.segs").exists()]
    if result.returncode != 0 or missing:
        detail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise CorpusError(
            f"festival voice {voice.name} failed on {len(missing)} item(s) "
            f"(first: {missing[:1]}): {detail}"
        )
