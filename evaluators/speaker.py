"""``ge2e``: speaker embeddings by the real pretrained GE2E encoder Resemblyzer ships.

The evaluator wraps the ``ge2e`` upstream (volume normalised to -30 dBFS, long silences
trimmed by webrtcvad, 1.6 s partial windows through the 3-layer LSTM, L2-normalised mean
of the partials), so embeddings are identical to that upstream's. Speaker similarity is
the cosine of two rows (:func:`speechbench.metrics.generation.speaker_similarity`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from speechbench.evaluators.base import SpeakerEmbedder, Wave


@dataclass
class GE2EOptions:
    trim_silence: bool = True  # Resemblyzer's webrtcvad trimming of long pauses


class GE2EEmbedder(SpeakerEmbedder):
    name = "ge2e"
    sample_rate = 16000
    dim = 256
    description = "GE2E speaker embedding (Resemblyzer's pretrained LSTM), 256-dim"
    Options = GE2EOptions

    @classmethod
    def weights_available(cls, options=None) -> tuple[bool, str]:
        from speechbench.upstreams.ge2e import GE2E

        return GE2E.weights_available()

    def load(self):
        from speechbench.upstreams.ge2e import GE2E

        return GE2E(GE2E.Options(trim_silence=self.options.trim_silence)).eval()

    def weights_fingerprint(self) -> str:
        from speechbench.upstreams.ge2e import weights_file
        from speechbench.upstreams.ssl import checkpoint_digest

        return checkpoint_digest(weights_file())

    @torch.no_grad()
    def embed(self, wavs: Sequence[Wave], sample_rate: int | None = None) -> torch.Tensor:
        prepared = self.prepare(wavs, sample_rate)
        upstream = self.model
        rows = []
        for wav in prepared:
            (embedding,), _ = upstream(wav[None], torch.tensor([wav.numel()]))
            rows.append(embedding[0, 0])
        return torch.stack(rows) if rows else torch.zeros(0, self.dim)
