"""Synthetic speech through the Debian ``espeak-ng`` command line (formant synthesis).

Used where real recordings of a language cannot be had here; every corpus labels such
utterances as synthetic. ``espeak-ng -v LANG+VARIANT --stdout`` writes a 22.05 kHz wav
to stdout; the text comes on stdin so it is never parsed as an option.
"""

from __future__ import annotations

import io
import shutil
import subprocess

import numpy as np
import soundfile as sf

from speechbench.errors import CorpusError

LICENSE = "GPL-3.0-or-later (espeak-ng; synthetic speech output)"
CREDIT = "eSpeak NG text-to-speech, https://github.com/espeak-ng/espeak-ng"


def espeak_binary() -> str:
    binary = shutil.which("espeak-ng")
    if binary is None:
        raise CorpusError(
            "espeak-ng is not installed; run `apt-get install espeak-ng` "
            "(it synthesises the languages that have no real recordings here)"
        )
    return binary


def synthesize(text: str, voice: str, speed: int = 160, pitch: int = 50) -> tuple[np.ndarray, int]:
    """Speak ``text`` with ``voice`` (e.g. ``"de+m3"``); returns mono float32 and its rate."""
    result = subprocess.run(
        [espeak_binary(), "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout"],
        input=text.encode("utf-8"),
        capture_output=True,
    )
    if result.returncode != 0 or not result.stdout:
        reason = result.stderr.decode("utf-8", "replace").strip() or "no audio written"
        raise CorpusError(f"espeak-ng failed for voice {voice!r} ({reason}); check the voice")
    wav, rate = sf.read(io.BytesIO(result.stdout), dtype="float32")
    if wav.ndim > 1:
        wav = wav.mean(axis=1)
    if wav.size == 0:
        raise CorpusError(f"espeak-ng wrote no samples for voice {voice!r} and text {text!r}")
    return wav, rate
