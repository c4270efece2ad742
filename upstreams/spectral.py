"""Classic spectral front ends from torchaudio's Kaldi-compatible functions.

``mfcc``: 13 cepstra + delta + delta-delta = 39 dims, 25 ms window / 10 ms hop,
per-utterance cepstral mean and variance normalisation (CMVN): the classic GMM/HMM
front end. ``fbank``: 80 log-mel filterbank energies, Kaldi compatible, with CMVN.
Both are single-layer frame-level upstreams at 100 frames/s on 16 kHz audio.
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
