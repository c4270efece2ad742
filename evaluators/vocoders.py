"""Vocoders without downloads: Griffin-Lim (log-mel in) and WORLD (its own parameters in).

A vocoder states exactly the features it inverts (``features``, a frozen dataclass), and
``wave_to_mel`` computes them, so a TTS / VC decoder is trained to predict
``vocoder.wave_to_mel(target)`` and the vocoder turns its predictions into audio.
Both run at 16 kHz with 100 feature frames per second (10 ms hop), an integer multiple
of the 50 Hz and 100 Hz frame rates of the upstreams here.

``griffin-lim`` inverts a natural-log mel magnitude spectrogram (:class:`LogMel`, the
HiFi-GAN convention: magnitude STFT, Slaney mel filters, ln clamped at 1e-5): mel ->
linear magnitude by least squares (torchaudio ``InverseMelScale``, negative values
clamped to 0), then Griffin-Lim phase recovery (Griffin & Lim 1984; torchaudio
``GriffinLim`` with fast-GL momentum, Perraudin et al. 2013), zero initial phase.

``world`` is the WORLD vocoder (Morise et al. 2016, ``pyworld``); its features
(:class:`WorldFeatures`) are per 10 ms frame: the spectral envelope (CheapTrick) coded
as a mel-cepstrum by WORLD's ``CodeSpectralEnvelope``, log F0 (DIO + StoneMask by
default, or Harvest) linearly interpolated through unvoiced frames, a voicing flag, and the
band aperiodicity (D4C) coded by ``CodeAperiodicity``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
import torch
from speechbench.evaluators.base import Vocoder, Wave

from speechbench.errors import ConfigError

RATE = 16000
HOP = 160  # 10 ms


# ----------------------------------------------------------------------------- log-mel


@dataclass(frozen=True)
class LogMel:
    """``features = ln(max(mel, log_floor))``, ``T x n_mels``, with ``mel`` the Slaney-
    normalised Slaney-scale mel filterbank applied to the STFT magnitude (power 1) of a
    Hann-windowed, centred (reflect-padded) STFT. ``T = 1 + samples // hop_length``."""

    sample_rate: int = RATE
    n_fft: int = 1024
    win_length: int = 1024
    hop_length: int = HOP
    n_mels: int = 80
    f_min: float = 0.0
    f_max: float = RATE / 2
    power: float = 1.0
    mel_scale: str = "slaney"
    norm: str | None = "slaney"
    log_floor: float = 1e-5


@lru_cache(maxsize=8)
def _mel_transform(spec: LogMel):
    from speechbench._torchaudio import torchaudio

    return torchaudio.transforms.MelSpectrogram(
        sample_rate=spec.sample_rate,
        n_fft=spec.n_fft,
        win_length=spec.win_length,
        hop_length=spec.hop_length,
        f_min=spec.f_min,
        f_max=spec.f_max,
        n_mels=spec.n_mels,
        power=spec.power,
        norm=spec.norm,
        mel_scale=spec.mel_scale,
        center=True,
        pad_mode="reflect",
    )


def log_mel(wav: torch.Tensor, spec: LogMel = LogMel()) -> torch.Tensor:
    """The :class:`LogMel` features of a 1-D waveform at ``spec.sample_rate``."""
    mel = _mel_transform(spec)(wav.float())
    return torch.log(torch.clamp(mel, min=spec.log_floor)).T.contiguous()


@dataclass
class GriffinLimOptions:
    n_iter: int = 32  # Griffin-Lim iterations (64 and 100 gave no lower spectral convergence)
    momentum: float = 0.99  # fast Griffin-Lim (0: the original algorithm)


class GriffinLim(Vocoder):
    name = "griffin-lim"
    sample_rate = RATE
    description = "Griffin-Lim phase recovery from an 80-band log-mel (torchaudio)"
    Options = GriffinLimOptions

    spec = LogMel()
    lstsq_driver = "gels"  # torch.linalg.lstsq driver of the mel -> linear least squares

    @property
    def features(self) -> LogMel:
        return self.spec

    @property
    def feature_dim(self) -> int:
        return self.spec.n_mels

    @property
    def frame_rate(self) -> float:
        return self.spec.sample_rate / self.spec.hop_length

    def load(self):
        from speechbench._torchaudio import torchaudio

        spec = self.spec
        if not 0.0 <= self.options.momentum < 1.0 or self.options.n_iter < 1:
            raise ConfigError("griffin-lim: need n_iter >= 1 and 0 <= momentum < 1")
        inverse = torchaudio.transforms.InverseMelScale(
            n_stft=spec.n_fft // 2 + 1,
            n_mels=spec.n_mels,
            sample_rate=spec.sample_rate,
            f_min=spec.f_min,
            f_max=spec.f_max,
            norm=spec.norm,
            mel_scale=spec.mel_scale,
            driver=self.lstsq_driver,
        )
        return inverse, torch.hann_window(spec.win_length)

    @torch.no_grad()
    def wave_to_mel(self, wav: Wave, sample_rate: int | None = None) -> torch.Tensor:
        return log_mel(self._one(wav, sample_rate), self.spec)

    @torch.no_grad()
    def mel_to_wave(self, mel, length: int | None = None) -> torch.Tensor:
        """``length``: samples to return (default ``(T - 1) * hop``, the analysed length)."""
        features = self._check_features(mel)
        from speechbench._torchaudio import torchaudio

        inverse, window = self.model
        spec = self.spec
        magnitude = torch.relu(inverse(torch.exp(features).T))
        if length is None:
            length = max(1, (features.shape[0] - 1) * spec.hop_length)
        return torchaudio.functional.griffinlim(
            magnitude,
            window,
            spec.n_fft,
            spec.hop_length,
            spec.win_length,
            spec.power,
            self.options.n_iter,
            self.options.momentum,
            length,
            False,  # rand_init: zero initial phase, so the output is deterministic
        ).float()


class GriffinLimCtap(GriffinLim):
    """Griffin-Lim on CTAP's own mel (``speechbench.ctap.model.LogMel`` before its global
    standardisation: 25 ms Hann window, n_fft 400, power 2, HTK mel scale, no filter
    normalisation, ln(mel + 1e-6)), so CTAP's pretrained decoder can be vocoded."""

    name = "griffin-lim-ctap"
    description = "Griffin-Lim phase recovery from CTAP's 80-band log-power mel (torchaudio)"
    spec = LogMel(n_fft=400, win_length=400, power=2.0, mel_scale="htk", norm=None, log_floor=1e-6)
    # 80 HTK bands over 201 STFT bins: the lowest filters share bins, the filterbank is
    # rank-deficient, which "gels" cannot solve; "gelsd" (SVD) gives the minimum-norm one
    lstsq_driver = "gelsd"


def spectral_convergence(reference: torch.Tensor, estimate: torch.Tensor) -> float:
    """``||S - S_hat||_F / ||S||_F`` of STFT magnitudes (1024-point, 10 ms hop); the usual
    consistency measure of phase recovery (0 = identical magnitudes)."""
    n = min(reference.numel(), estimate.numel())
    window = torch.hann_window(1024)

    def magnitude(x):
        return torch.stft(x[:n], 1024, HOP, window=window, return_complex=True).abs()

    ref, est = magnitude(reference.float()), magnitude(estimate.float())
    return float(torch.linalg.norm(ref - est) / torch.linalg.norm(ref).clamp(min=1e-12))


# ----------------------------------------------------------------------------- WORLD


@dataclass(frozen=True)
class WorldFeatures:
    """Per 10 ms frame (``T = len(WORLD's time axis)``), ``envelope_dims + 2 +
    aperiodicity_dims`` columns: ``[0, envelope_dims)`` the CheapTrick spectral envelope
    coded as a mel-cepstrum (``pyworld.code_spectral_envelope``); then ln F0 (Hz), linearly
    interpolated through unvoiced frames (ln f0_floor if nothing is voiced); then voicing
    (1 voiced, 0 not; > 0.5 counts as voiced); then the D4C aperiodicity coded in bands
    (``pyworld.code_aperiodicity``; one band at 16 kHz)."""

    sample_rate: int = RATE
    frame_period_ms: float = 10.0
    f0_method: str = "dio"
    f0_floor: float = 71.0
    f0_ceil: float = 800.0
    envelope_dims: int = 60
    aperiodicity_dims: int = 1
    fft_size: int = 1024  # pyworld.get_cheaptrick_fft_size(16000, 71.0)

    @property
    def dim(self) -> int:
        return self.envelope_dims + 2 + self.aperiodicity_dims


@dataclass
class WorldOptions:
    # dio (DIO + StoneMask) | harvest: same copy-synthesis WER and DNSMOS on mini-vc test,
    # dio 3.8x faster (docs/evaluators.md)
    f0_method: str = "dio"
    envelope_dims: int = 60


def _pyworld():
    import warnings

    with warnings.catch_warnings():  # pyworld imports pkg_resources at import time
        warnings.simplefilter("ignore")
        import pyworld

    return pyworld


class World(Vocoder):
    name = "world"
    sample_rate = RATE
    description = "WORLD vocoder (pyworld): mel-cepstral envelope, log F0, voicing, aperiodicity"
    Options = WorldOptions

    @classmethod
    def weights_available(cls, options=None) -> tuple[bool, str]:
        try:
            _pyworld()
        except ImportError:
            return False, "needs `pip install pyworld` (WORLD vocoder; builds with a C compiler)"
        return True, "no pretrained weights needed (pyworld)"

    @property
    def features(self) -> WorldFeatures:
        method: Literal["harvest", "dio"] = self.options.f0_method  # type: ignore[assignment]
        if method not in ("harvest", "dio"):
            raise ConfigError(f"world: f0_method={method!r}; choose harvest or dio")
        if self.options.envelope_dims < 2:
            raise ConfigError("world: envelope_dims must be at least 2")
        return WorldFeatures(f0_method=method, envelope_dims=self.options.envelope_dims)

    @property
    def feature_dim(self) -> int:
        return self.features.dim

    @property
    def frame_rate(self) -> float:
        return 1000.0 / self.features.frame_period_ms

    def load(self):
        return _pyworld()

    def analyse(self, wav: Wave, sample_rate: int | None = None):
        """WORLD's raw parameters ``(f0, sp, ap)`` (float64) of one waveform."""
        pw, spec = self.model, self.features
        x = self._one(wav, sample_rate).double().numpy()
        kwargs = dict(f0_floor=spec.f0_floor, f0_ceil=spec.f0_ceil)
        if spec.f0_method == "harvest":
            f0, t = pw.harvest(x, spec.sample_rate, frame_period=spec.frame_period_ms, **kwargs)
        else:
            f0, t = pw.dio(x, spec.sample_rate, frame_period=spec.frame_period_ms, **kwargs)
            f0 = pw.stonemask(x, f0, t, spec.sample_rate)
        sp = pw.cheaptrick(
            x, f0, t, spec.sample_rate, f0_floor=spec.f0_floor, fft_size=spec.fft_size
        )
        ap = pw.d4c(x, f0, t, spec.sample_rate, fft_size=spec.fft_size)
        return f0, sp, ap

    def wave_to_mel(self, wav: Wave, sample_rate: int | None = None) -> torch.Tensor:
        pw, spec = self.model, self.features
        f0, sp, ap = self.analyse(wav, sample_rate)
        envelope = pw.code_spectral_envelope(sp, spec.sample_rate, spec.envelope_dims)
        aperiodicity = pw.code_aperiodicity(ap, spec.sample_rate)
        voiced = f0 > 0
        frames = np.arange(len(f0))
        if voiced.any():
            log_f0 = np.interp(frames, frames[voiced], np.log(f0[voiced]))
        else:
            log_f0 = np.full(len(f0), np.log(spec.f0_floor))
        columns = [envelope, log_f0[:, None], voiced[:, None].astype(np.float64), aperiodicity]
        return torch.from_numpy(np.concatenate(columns, axis=1)).float()

    def mel_to_wave(self, mel, **_: object) -> torch.Tensor:
        pw, spec = self.model, self.features
        features = self._check_features(mel).double().numpy()
        d = spec.envelope_dims
        envelope = np.ascontiguousarray(features[:, :d])
        log_f0, voicing = features[:, d], features[:, d + 1]
        aperiodicity = np.ascontiguousarray(features[:, d + 2 :])
        f0 = np.where(voicing > 0.5, np.exp(np.clip(log_f0, np.log(20.0), np.log(2000.0))), 0.0)
        sp = pw.decode_spectral_envelope(envelope, spec.sample_rate, spec.fft_size)
        ap = pw.decode_aperiodicity(aperiodicity, spec.sample_rate, spec.fft_size)
        wav = pw.synthesize(
            np.ascontiguousarray(f0), sp, ap, spec.sample_rate, spec.frame_period_ms
        )
        return torch.from_numpy(wav).float()
