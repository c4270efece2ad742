"""Noise beds for the mini corpora: synthetic coloured noise, hum, traffic, wind, and real
babble / music / event sequences cut from real recordings.

Everything takes an explicit ``numpy.random.Generator`` so a corpus item rebuilt after an
interruption is bit-identical. Outputs are float arrays scaled to unit RMS (callers set
levels through SNR or LUFS).
"""

from __future__ import annotations

import numpy as np
from scipy import signal


def unit_rms(wav: np.ndarray) -> np.ndarray:
    level = float(np.sqrt(np.mean(np.square(wav, dtype=np.float64))))
    return (wav / level).astype(np.float32) if level > 0 else wav.astype(np.float32)


def coloured_noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """White (flat), pink (1/f power) or brown (1/f^2 power) Gaussian noise."""
    exponents = {"white": 0.0, "pink": 1.0, "brown": 2.0}
    if kind not in exponents:
        raise ValueError(f"unknown noise colour {kind!r}; valid: {', '.join(exponents)}")
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n)
    freqs[0] = freqs[1] if n > 1 else 1.0
    spectrum *= freqs ** (-exponents[kind] / 2.0)
    return unit_rms(np.fft.irfft(spectrum, n))


def hum(n: int, rate: int, rng: np.random.Generator, mains_hz: float = 50.0) -> np.ndarray:
    """Mains hum: a few harmonics with random phases and a little jitter (HVAC / fridge)."""
    t = np.arange(n) / rate
    wav = np.zeros(n)
    for k in range(1, 6):
        f = mains_hz * k * (1 + rng.uniform(-0.002, 0.002))
        wav += rng.uniform(0.2, 1.0) / k * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    return unit_rms(wav)


def _smooth_envelope(n: int, rate: int, rng: np.random.Generator, seconds: float) -> np.ndarray:
    """A slowly varying positive gain (random walk low-passed at 1/``seconds`` Hz)."""
    sos = signal.butter(2, 1.0 / seconds, fs=rate, output="sos")
    walk = signal.sosfiltfilt(sos, rng.standard_normal(n))
    walk = (walk - walk.min()) / (np.ptp(walk) + 1e-12)
    return 0.3 + walk


def traffic(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Street rumble: low-passed brown noise with swells of passing vehicles."""
    rumble = signal.sosfilt(
        signal.butter(4, 800, fs=rate, output="sos"), coloured_noise("brown", n, rng)
    )
    t = np.arange(n) / rate
    swells = np.full(n, 0.4)
    for centre in rng.uniform(0, n / rate, size=max(1, int(n / rate / 3))):
        swells += np.exp(-0.5 * ((t - centre) / rng.uniform(0.8, 2.0)) ** 2)
    return unit_rms(rumble * swells)


def wind(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Outdoor wind: band-passed pink noise with slow gusts."""
    sos = signal.butter(2, [150, 3000], btype="band", fs=rate, output="sos")
    return unit_rms(
        signal.sosfilt(sos, coloured_noise("pink", n, rng))
        * _smooth_envelope(n, rate, rng, seconds=2.0)
    )


def excerpt(recording: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``n``-sample excerpt of a long recording (looped if it is shorter)."""
    if len(recording) < n:
        recording = np.tile(recording, int(np.ceil(n / len(recording))) + 1)
    start = int(rng.integers(0, len(recording) - n + 1))
    return unit_rms(recording[start : start + n])


def babble(
    utterances: list[np.ndarray], n: int, rate: int, rng: np.random.Generator, talkers: int = 6
) -> np.ndarray:
    """Real multi-talker babble: ``talkers`` streams of randomly chosen utterances, each
    stream a back-to-back sequence with short pauses, summed at equal level."""
    out = np.zeros(n)
    for _ in range(talkers):
        stream = np.zeros(n)
        pos = int(rng.integers(-n // 4, n // 8))
        while pos < n:
            utt = unit_rms(utterances[int(rng.integers(len(utterances)))])
            lo, hi = max(pos, 0), min(pos + len(utt), n)
            if hi > lo:
                stream[lo:hi] += utt[lo - pos : hi - pos]
            pos += len(utt) + int(rng.uniform(0.1, 0.6) * rate)
        out += stream
    return unit_rms(out)


def sequence(sounds: list[np.ndarray], n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Real event sounds one after another with short random gaps (e.g. barnyard, desk)."""
    out = np.zeros(n)
    pos = int(rng.uniform(0, 0.3) * rate)
    while pos < n:
        sound = sounds[int(rng.integers(len(sounds)))] * rng.uniform(0.5, 1.0)
        end = min(pos + len(sound), n)
        out[pos:end] += sound[: end - pos]
        pos = end + int(rng.uniform(0.05, 0.5) * rate)
    return unit_rms(out)
