"""Classic spectral front ends from torchaudio's Kaldi-compatible functions.

``mfcc``: 13 cepstra + delta + delta-delta = 39 dims, 25 ms window / 10 ms hop,
per-utterance cepstral mean and variance normalisation (CMVN): the classic GMM/HMM
front end. ``fbank``: 80 log-mel filterbank energies, Kaldi compatible, with CMVN.
Both are single-layer frame-level upstreams at 100 frames/s on 16 kHz audio.
``mel128``: DCASENet's input (Jung et al. 2021): 128 log-mel energies from a 2048-point
FFT over 40 ms Hann windows every 20 ms (50 frames/s), torchaudio's
``MelSpectrogram`` (HTK mel scale, 0-8 kHz on 16 kHz audio; the paper's audio was
44.1/48 kHz, so its mel bands reach higher), centred frames, no CMVN by default: the
scene background level is information for ASC.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from speechbench.upstreams.base import Upstream, pad_frames

from speechbench._torchaudio import torchaudio
from speechbench.options import option

kaldi = torchaudio.compliance.kaldi


def cmvn(features: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Per-utterance mean and variance normalisation over time (T x D)."""
    mean = features.mean(dim=0, keepdim=True)
    std = features.std(dim=0, keepdim=True, unbiased=False)
    return (features - mean) / (std + eps)


def _valid(wav: torch.Tensor, length: int, min_samples: int) -> torch.Tensor:
    """Trim padding; pad very short audio up to one analysis window."""
    wav = wav[:length]
    if wav.numel() < min_samples:
        wav = torch.nn.functional.pad(wav, (0, min_samples - wav.numel()))
    return wav


class _KaldiUpstream(Upstream):
    sample_rate = 16000
    frame_rate = 100.0
    num_layers = 1
    level = "frame"

    def _features(self, wav: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def weights_fingerprint(self) -> str:
        return "no-weights"

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        # Kaldi snip_edges framing: 1 + (n - 400) // 160 frames, at least one.
        window = int(0.025 * self.sample_rate)
        return 1 + torch.clamp(lengths - window, min=0) // int(0.010 * self.sample_rate)

    @torch.no_grad()
    def forward(self, wavs, lengths):
        window = int(0.025 * self.sample_rate)
        frames = []
        for wav, n in zip(wavs, lengths.tolist(), strict=True):
            feats = self._features(_valid(wav, n, window).unsqueeze(0) * 32768.0)
            frames.append(cmvn(feats) if self.options.cmvn else feats)
        padded, frame_lengths = pad_frames(frames)
        return [padded], frame_lengths


@dataclass
class MFCCOptions:
    num_ceps: int = option(13, low=1, high=40)
    num_mel_bins: int = option(23, low=1, high=128)
    deltas: bool = True
    cmvn: bool = True


class MFCC(_KaldiUpstream):
    name = "mfcc"
    description = "MFCC 13 + delta + delta-delta (39), 25/10 ms, CMVN (Kaldi compatible)"
    Options = MFCCOptions
    dim = 39  # with the default options

    def __init__(self, options: MFCCOptions | None = None) -> None:
        super().__init__(options)
        self.dim = self.options.num_ceps * (3 if self.options.deltas else 1)

    def _features(self, wav: torch.Tensor) -> torch.Tensor:
        ceps = kaldi.mfcc(
            wav,
            sample_frequency=self.sample_rate,
            num_ceps=self.options.num_ceps,
            num_mel_bins=self.options.num_mel_bins,
            dither=0.0,
        )
        if not self.options.deltas:
            return ceps
        d1 = torchaudio.functional.compute_deltas(ceps.T).T
        d2 = torchaudio.functional.compute_deltas(d1.T).T
        return torch.cat([ceps, d1, d2], dim=1)


@dataclass
class FbankOptions:
    num_mel_bins: int = option(80, low=1, high=256)
    cmvn: bool = True


class Fbank(_KaldiUpstream):
    name = "fbank"
    description = "80-dim Kaldi-compatible log-mel filterbank, 25/10 ms, CMVN"
    Options = FbankOptions
    dim = 80  # with the default options

    def __init__(self, options: FbankOptions | None = None) -> None:
        super().__init__(options)
        self.dim = self.options.num_mel_bins

    def _features(self, wav: torch.Tensor) -> torch.Tensor:
        return kaldi.fbank(
            wav,
            sample_frequency=self.sample_rate,
            num_mel_bins=self.options.num_mel_bins,
            dither=0.0,
        )


@dataclass
class Mel128Options:
    n_mels: int = option(128, low=1, high=256)
    cmvn: bool = False


class Mel128(Upstream):
    name = "mel128"
    description = "128 log-mel bands, 2048-point FFT, 40 ms window / 20 ms hop (DCASENet)"
    Options = Mel128Options
    sample_rate = 16000
    frame_rate = 50.0
    num_layers = 1
    dim = 128  # with the default options
    level = "frame"
    N_FFT = 2048
    WINDOW_S = 0.040
    HOP_S = 0.020

    def __init__(self, options: Mel128Options | None = None) -> None:
        super().__init__(options)
        self.dim = self.options.n_mels
        self.hop = int(self.HOP_S * self.sample_rate)
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=self.sample_rate,
            n_fft=self.N_FFT,
            win_length=int(self.WINDOW_S * self.sample_rate),
            hop_length=self.hop,
            n_mels=self.options.n_mels,
            center=True,
            power=2.0,
        )

    def weights_fingerprint(self) -> str:
        return "no-weights"

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        # centred STFT frames: frame k is centred on sample k * hop
        return 1 + lengths // self.hop

    @torch.no_grad()
    def forward(self, wavs, lengths):
        frames = []
        for wav, n in zip(wavs, lengths.tolist(), strict=True):
            feats = torch.log(self.mel(wav[:n].float()).T + 1e-6)  # T x n_mels
            frames.append(cmvn(feats) if self.options.cmvn else feats)
        padded, frame_lengths = pad_frames(frames)
        return [padded], frame_lengths
