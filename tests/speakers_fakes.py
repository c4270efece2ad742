"""Small stand-ins for the Debian voices, so corpus logic is tested in seconds.

Each fake speaker is a harmonic voice with its own pitch and timbre, padded with
silence like a real prompt, written at the sample rate its origin declares (8 kHz for
Asterisk, 22.05 kHz for Fish Fillets) so the sample-rate checks run as in a real build.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from speechbench.corpora.speakers import SourceUtt

ORIGIN_RATES = {"asterisk-en": 8000, "asterisk-es": 8000, "fillets-cs": 22050}


def fake_voice(rate: int, seconds: float, f0: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    wave = sum(rng.uniform(0.2, 1.0) / k * np.sin(2 * np.pi * k * f0 * t) for k in range(1, 6))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(2, 5) * t) ** 2
    speech = 0.3 * wave * envelope / np.abs(wave).max()
    pad = np.zeros(int(0.3 * rate))
    return np.concatenate([pad, speech, pad]).astype(np.float32)


def fake_sources(
    folder: Path,
    speakers: dict[str, tuple[str, str]],
    per_speaker: int,
    durations: tuple[float, float] = (1.2, 4.0),
) -> list[SourceUtt]:
    """``speakers``: {speaker id: (language, origin)}; returns their SourceUtts."""
    out = []
    for s_index, (speaker, (language, origin)) in enumerate(sorted(speakers.items())):
        rate = ORIGIN_RATES[origin]
        for u in range(per_speaker):
            seconds = durations[0] + (durations[1] - durations[0]) * u / max(per_speaker - 1, 1)
            path = folder / speaker / f"u{u}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            wav = fake_voice(rate, seconds, 90.0 + 25.0 * s_index, seed=100 * s_index + u)
            sf.write(str(path), wav, rate)
            out.append(
                SourceUtt(
                    id=f"{speaker}-u{u}",
                    source=path,
                    language=language,
                    speaker=speaker,
                    text=f"utterance {u} of {speaker}",
                    text_exact=True,
                    origin=origin,
                    duration=len(wav) / rate,
                )
            )
    return out


SPEAKERS = {
    "asterisk-a": ("en", "asterisk-en"),
    "asterisk-b": ("es", "asterisk-es"),
    "asterisk-c": ("en", "asterisk-en"),
    "asterisk-d": ("es", "asterisk-es"),
    "asterisk-e": ("en", "asterisk-en"),
    "fillets-cs-small-fish": ("cs", "fillets-cs"),
    "fillets-cs-big-fish": ("cs", "fillets-cs"),
    "fillets-cs-statue-hs": ("cs", "fillets-cs"),
}
