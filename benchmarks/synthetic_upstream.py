"""A synthetic upstream with HuBERT-base's output shape, for cache benchmarks.

13 layers x 768 dims at 50 frames/s: a fixed random projection of 20 ms frames, each
layer a rolled copy plus an offset. Cheap to compute, same feature volume as HuBERT-base.
Its own module so that editing a benchmark script does not change its code fingerprint
(and so the cache key of its features).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from speechbench.upstreams.base import Upstream


@dataclass
class SyntheticOptions:
    num_layers: int = 13
    dim: int = 768


class SyntheticHubertShape(Upstream):
    name = "bench-synthetic-13x768"
    Options = SyntheticOptions
    sample_rate = 16000
    frame_rate = 50.0

    def __init__(self, options=None):
        super().__init__(options)
        self.num_layers, self.dim = self.options.num_layers, self.options.dim
        generator = torch.Generator().manual_seed(0)
        self.register_buffer("weight", torch.randn(320, self.dim, generator=generator))

    def forward(self, wavs, lengths):
        usable = wavs[:, : wavs.shape[1] // 320 * 320]
        base = usable.reshape(len(wavs), -1, 320) @ self.weight
        layers = [base.roll(k, dims=-1) + k for k in range(self.num_layers)]
        return layers, self.frame_lengths(lengths)
