"""GE2E speaker encoder (Wan et al. 2018): the real pretrained model Resemblyzer ships.

- ``ge2e``: one 256-dim speaker embedding per utterance (level "utterance"), made the
  way Resemblyzer does: volume normalised to -30 dBFS, long silences trimmed by
  webrtcvad, 40-band mel frames, 1.6 s partial windows through the 3-layer LSTM, and
  the L2-normalised mean of the partial embeddings.
- ``ge2e-partials``: the partial embeddings themselves as a frame-level sequence: one
  frame every ``1 / rate`` s (default 0.4 s) describing the 1.6 s window that starts
  there. Silences are *not* trimmed here, so frame ``i`` stays at ``i / rate`` s.

Resemblyzer's partial slicing and mel front end are used as is; partial windows are
sent through the LSTM in bounded batches so hour-long audio does not blow memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from speechbench.upstreams.base import Upstream, checkpoint_digest

from speechbench.errors import WeightsUnavailableError
from speechbench.options import option

SAMPLE_RATE = 16000  # resemblyzer.hparams.sampling_rate
EMBEDDING_DIM = 256  # resemblyzer.hparams.model_embedding_size


def weights_file() -> Path | None:
    try:
        import resemblyzer
    except ImportError:
        return None
    return Path(resemblyzer.__file__).parent / "pretrained.pt"


class _GE2EBase(Upstream):
    sample_rate = SAMPLE_RATE
    num_layers = 1
    dim = EMBEDDING_DIM

    def __init__(self, options=None) -> None:
        super().__init__(options)
        self.encoder = None
        if self.weights_available(self.options)[0]:
            from resemblyzer import VoiceEncoder

            self.encoder = VoiceEncoder(device="cpu", verbose=False)
            self.encoder.requires_grad_(False)

    @classmethod
    def weights_available(cls, options=None) -> tuple[bool, str]:
        path = weights_file()
        if path is None:
            return False, f"{cls.name} needs `pip install resemblyzer webrtcvad-wheels`"
        if not path.exists():
            return False, f"{path} is missing; reinstall resemblyzer"
        return True, f"Resemblyzer GE2E weights {path}"

    def _require(self):
        if self.encoder is None:
            raise WeightsUnavailableError(self.weights_available(self.options)[1])
        return self.encoder

    def weights_fingerprint(self) -> str:
        self._require()
        return checkpoint_digest(weights_file())

    def partial_embeddings(self, wav: np.ndarray, rate: float, min_coverage: float) -> np.ndarray:
        """``n_partials x 256`` embeddings of 1.6 s windows, ``rate`` windows per second."""
        from resemblyzer import audio

        encoder = self._require()
        encoder.eval()
        _, mel_slices = encoder.compute_partial_slices(len(wav), rate, min_coverage)
        needed = mel_slices[-1].stop * int(SAMPLE_RATE * 0.01)
        if needed > len(wav):
            wav = np.pad(wav, (0, needed - len(wav)))
        mel = audio.wav_to_mel_spectrogram(wav)
        out = []
        for first in range(0, len(mel_slices), self.options.batch_partials):
            chunk = mel_slices[first : first + self.options.batch_partials]
            mels = torch.from_numpy(np.stack([mel[s] for s in chunk]))
            out.append(encoder(mels))
        return torch.cat(out).numpy()


@dataclass
class GE2EOptions:
    trim_silence: bool = True  # Resemblyzer's webrtcvad trimming of long pauses
    batch_partials: int = option(64, low=1, budget=True)  # 1.6 s windows per LSTM call


class GE2E(_GE2EBase):
    name = "ge2e"
    description = "GE2E speaker embedding (real pretrained Resemblyzer LSTM), per utterance"
    Options = GE2EOptions
    level = "utterance"
    frame_rate = 0.0  # one vector per utterance

    def _prepare(self, wav: np.ndarray) -> np.ndarray:
        from resemblyzer import audio
        from resemblyzer.hparams import audio_norm_target_dBFS

        if np.abs(wav).max() > 0:
            wav = audio.normalize_volume(wav, audio_norm_target_dBFS, increase_only=True)
        if self.options.trim_silence:
            trimmed = audio.trim_long_silences(np.clip(wav, -1.0, 1.0))
            if len(trimmed) >= SAMPLE_RATE // 4:  # keep the audio when VAD finds no speech
                wav = trimmed
        return wav.astype(np.float32)

    @torch.no_grad()
    def forward(self, wavs, lengths):
        self._require()
        embeddings = []
        for wav, n in zip(wavs, lengths.tolist(), strict=True):
            prepared = self._prepare(wav[:n].numpy().astype(np.float64))
            partials = self.partial_embeddings(prepared, rate=1.3, min_coverage=0.75)
            mean = partials.mean(axis=0)
            embeddings.append(torch.from_numpy(mean / max(np.linalg.norm(mean), 1e-12)))
        stacked = torch.stack(embeddings).float()[:, None, :]
        return [stacked], torch.ones(len(embeddings), dtype=torch.long)


@dataclass
class GE2EPartialsOptions:
    rate: float = option(2.5, low=0.625, high=100.0)  # partial windows per second (frame rate)
    min_coverage: float = option(0.75, low=0.0, high=1.0)  # keep a last, padded window if this full
    batch_partials: int = option(64, low=1, budget=True)


class GE2EPartials(_GE2EBase):
    name = "ge2e-partials"
    description = "GE2E partial embeddings (1.6 s windows every 0.4 s) as a frame sequence"
    Options = GE2EPartialsOptions
    level = "frame"
    frame_rate = 2.5

    def __init__(self, options: GE2EPartialsOptions | None = None) -> None:
        super().__init__(options)
        # resemblyzer rounds the hop to whole 10 ms mel frames
        hop_frames = int(np.round((SAMPLE_RATE / self.options.rate) / (SAMPLE_RATE // 100)))
        self.frame_rate = 100.0 / hop_frames

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        from resemblyzer import VoiceEncoder

        counts = [
            len(
                VoiceEncoder.compute_partial_slices(
                    int(n), self.options.rate, self.options.min_coverage
                )[1]
            )
            for n in lengths.tolist()
        ]
        return torch.tensor(counts, dtype=torch.long)

    @torch.no_grad()
    def forward(self, wavs, lengths):
        from resemblyzer import audio
        from resemblyzer.hparams import audio_norm_target_dBFS

        self._require()
        frames = []
        for wav, n in zip(wavs, lengths.tolist(), strict=True):
            signal = wav[:n].numpy().astype(np.float64)
            if np.abs(signal).max() > 0:
                signal = audio.normalize_volume(signal, audio_norm_target_dBFS, increase_only=True)
            partials = self.partial_embeddings(
                signal.astype(np.float32), self.options.rate, self.options.min_coverage
            )
            frames.append(torch.from_numpy(partials).float())
        padded = torch.nn.utils.rnn.pad_sequence(frames, batch_first=True)
        return [padded], torch.tensor([f.shape[0] for f in frames], dtype=torch.long)
