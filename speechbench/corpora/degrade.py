"""Speech degradations for mini-mos: additive noise at a set SNR, band-limiting, a real
codec (GSM 06.10 through sox), clipping, packet loss, and spectral-subtraction enhancement.

Each function is pure (input array in, degraded array of the same length out) so tests can
check that a degradation does what its name says.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
from scipy import ndimage, signal, stats

from speechbench.errors import CorpusError


def energy(wav: np.ndarray) -> float:
    return float(np.sum(np.square(wav, dtype=np.float64)))


def snr_db(clean: np.ndarray, noise: np.ndarray) -> float:
    return 10.0 * np.log10(energy(clean) / max(energy(noise), 1e-20))


def mix_at_snr(clean: np.ndarray, noise: np.ndarray, target_snr_db: float) -> np.ndarray:
    """``clean + g * noise`` with g chosen so that 10 log10(E_clean / E_{g noise}) is the
    target (energies over the whole utterance, as in ITU-T P.501-style mixing scripts)."""
    if len(noise) != len(clean):
        raise ValueError("noise and clean must have the same length")
    gain = np.sqrt(energy(clean) / (max(energy(noise), 1e-20) * 10 ** (target_snr_db / 10)))
    return (clean + gain * noise).astype(np.float32)


def band_limit(wav: np.ndarray, rate: int, low_hz: float, high_hz: float) -> np.ndarray:
    """Zero-phase 8th-order Butterworth band-pass (a narrow telephone / cheap-mic channel)."""
    sos = signal.butter(8, [low_hz, high_hz], btype="band", fs=rate, output="sos")
    return signal.sosfiltfilt(sos, wav).astype(np.float32)


def _sox(args: list[str], data: bytes) -> bytes:
    # -D: no dither. sox dithers by default when it reduces the bit depth (float -> GSM's
    # 13 bits), with a seed that differs per call, so a rebuilt file would differ.
    result = subprocess.run(["sox", "-D", *args], input=data, capture_output=True)
    if result.returncode != 0:
        raise CorpusError(f"sox {' '.join(args)} failed: {result.stderr.decode().strip()}")
    return result.stdout


def gsm_codec(wav: np.ndarray, rate: int) -> np.ndarray:
    """Encode with the GSM 06.10 full-rate codec at 8 kHz and decode back (sox's libgsm)."""
    if shutil.which("sox") is None:
        raise CorpusError("the codec degradation needs sox; install it with `apt-get install sox`")
    raw = ["-t", "raw", "-e", "floating-point", "-b", "32", "-c", "1"]
    peak = float(np.max(np.abs(wav))) or 1.0
    coded = _sox(
        [*raw, "-r", str(rate), "-", "-r", "8000", "-t", "gsm", "-"],
        (wav / peak * 0.9).astype(np.float32).tobytes(),
    )
    decoded = _sox(["-t", "gsm", "-r", "8000", "-c", "1", "-", *raw, "-r", str(rate), "-"], coded)
    out = np.frombuffer(decoded, dtype=np.float32) * (peak / 0.9)
    out = np.pad(out, (0, max(0, len(wav) - len(out))))[: len(wav)]
    return out.astype(np.float32)


def clip(wav: np.ndarray, clipped_fraction: float) -> np.ndarray:
    """Hard clipping of the loudest ``clipped_fraction`` of samples at the level they exceed
    (an overdriven input stage; no make-up gain, so the speech distortion index counts the
    energy clipped away rather than a level change)."""
    threshold = float(np.quantile(np.abs(wav), 1.0 - clipped_fraction))
    if threshold <= 0:
        return wav.astype(np.float32)
    return np.clip(wav, -threshold, threshold).astype(np.float32)


def packet_loss(
    wav: np.ndarray, rate: int, loss_rate: float, rng: np.random.Generator, frame_ms: float = 20
) -> tuple[np.ndarray, np.ndarray]:
    """Drop ``frame_ms`` packets independently with probability ``loss_rate`` (zero
    insertion, i.e. no concealment). Returns the signal and the per-packet loss mask."""
    hop = int(rate * frame_ms / 1000)
    packets = int(np.ceil(len(wav) / hop))
    lost = rng.random(packets) < loss_rate
    out = wav.astype(np.float32).copy()
    for index in np.flatnonzero(lost):
        out[index * hop : (index + 1) * hop] = 0.0
    return out, lost


def spectral_subtraction(
    noisy: np.ndarray, rate: int, over_subtraction: float = 2.0, floor: float = 0.05
) -> np.ndarray:
    """Power spectral subtraction (Boll 1979; Berouti et al. 1979 over-subtraction and
    spectral floor), noisy phase kept, with a percentile (minimum-statistics style) noise
    estimate.
    Written by hand: it is the textbook baseline enhancer, ~10 lines, and no well-kept
    library ships it (noisereduce does spectral gating, a different method)."""
    nperseg = 512 if rate >= 16000 else 256
    _, _, spec = signal.stft(noisy, fs=rate, nperseg=nperseg, noverlap=nperseg * 3 // 4)
    power = np.abs(spec) ** 2
    # noise PSD: 20th percentile over time of the periodogram smoothed over 5 frames, divided
    # by that percentile of its chi^2_10 / 10 distribution (the bias of a low percentile of
    # pure noise, as in Martin's minimum statistics), so speech frames need no VAD
    smoothed = ndimage.uniform_filter1d(power, size=5, axis=1, mode="nearest")
    bias = stats.chi2.ppf(0.2, 10) / 10
    noise_psd = np.percentile(smoothed, 20, axis=1, keepdims=True) / bias
    cleaned = np.maximum(power - over_subtraction * noise_psd, floor * power)
    enhanced = np.sqrt(cleaned) * np.exp(1j * np.angle(spec))
    _, out = signal.istft(enhanced, fs=rate, nperseg=nperseg, noverlap=nperseg * 3 // 4)
    out = np.pad(out, (0, max(0, len(noisy) - len(out))))[: len(noisy)]
    return out.astype(np.float32)
