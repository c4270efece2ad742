"""The upstream contract: audio in, a list of frozen hidden-state layers out.

Modelled on the HEAR API (a few attributes are the whole contract) and s3prl's
Featurizer (all layers out, the head learns their weighted sum). An upstream:

- declares ``name``, ``sample_rate`` (audio is resampled to it), ``frame_rate``
  (frames per second), ``num_layers``, ``dim`` and ``level`` ("frame" | "utterance");
- has an ``Options`` dataclass: its typed config, set with ``upstream.KEY=VALUE``;
- gives a ``fingerprint()`` of its weights, so the feature cache never serves
  features of other weights;
- implements ``forward(wavs, lengths) -> (hidden_states, frame_lengths)`` with
  ``hidden_states`` a list of ``num_layers`` tensors ``B x T x dim``.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch
from torch import nn

from speechbench.hashing import file_hash

if TYPE_CHECKING:
    from speechbench.corpora.base import Utterance


@lru_cache(maxsize=32)
def _file_digest(path: str, size: int, mtime: float) -> str:
    return file_hash(path, "sha256")[:16]


def file_digest(path: Path) -> str:
    """sha256 of one file's bytes (16 hex digits), memoised per (path, size, mtime): the
    runner, the sweep and the feature cache all ask for a checkpoint's identity."""
    stat = path.stat()
    return _file_digest(str(path), stat.st_size, stat.st_mtime)


def checkpoint_digest(path: Path) -> str:
    """sha256 of a checkpoint file, or of every file in a model directory (memoised)."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.name.encode())
        digest.update(file_digest(file).encode())
    return digest.hexdigest()[:16]


@dataclass
class NoOptions:
    """Upstreams without settings use this."""


class Upstream(nn.Module):
    name: ClassVar[str]
    description: ClassVar[str] = ""
    Options: ClassVar[type] = NoOptions
    sample_rate: int = 16000
    frame_rate: float = 100.0
    num_layers: int = 1
    dim: int = 1
    level: Literal["frame", "utterance"] = "frame"
    # Fitted upstreams (e.g. i-vectors) learn their extractor on the corpus' train split:
    # the runner calls fit() with (record, mono waveform at sample_rate) pairs first.
    needs_fit: ClassVar[bool] = False

    def __init__(self, options=None) -> None:
        super().__init__()
        self.options = options if options is not None else self.Options()

    @classmethod
    def weights_available(cls, options=None) -> tuple[bool, str]:
        """(available on this machine?, what to provide if not). Default: no weights needed."""
        return True, "no pretrained weights needed"

    def fit(self, train: Iterable[tuple[Utterance, torch.Tensor]], seed: int = 0) -> None:
        """Learn the extractor from training audio with the run's ``seed``; a no-op for
        pretrained/fixed upstreams.

        Fitted parameters must enter ``fingerprint()`` so cached features are never stale.
        """

    @classmethod
    def weights_identity(cls, options: Any) -> str | None:
        """A cheap hash of the weight file a run's features come from, computed without
        building the model, so that it can be part of the run's identity: a re-shipped or
        re-pretrained checkpoint is another run, never the stored result of the old one.
        None (the default) when options and code already determine the weights."""
        return None

    def weights_fingerprint(self) -> str:
        """Hash of the parameters and buffers; override for large models with a file hash."""
        digest = hashlib.sha256()
        for key, tensor in sorted(self.state_dict().items()):
            digest.update(key.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]

    def num_parameters(self) -> int | None:
        """How many weights turn audio into these features (learned or fitted), for the
        leaderboard's parameter column. Default: the module's parameters (0 for fixed DSP
        front ends); upstreams whose weights live elsewhere override it, and None means
        unknown."""
        return sum(p.numel() for p in self.parameters())

    def code_fingerprint(self) -> str:
        """Hash of the source of the module that defines this upstream."""
        source = inspect.getsource(inspect.getmodule(type(self)))
        return hashlib.sha256(source.encode()).hexdigest()[:16]

    def fingerprint(self) -> str:
        return f"{self.weights_fingerprint()}-{self.code_fingerprint()}"

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Valid frames per item; frame upstreams with a plain hop may keep this default."""
        if self.level == "utterance":
            return torch.ones_like(lengths)
        return torch.clamp(
            torch.floor(lengths.float() * self.frame_rate / self.sample_rate).long(), min=1
        )

    def forward(
        self, wavs: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        raise NotImplementedError


def pad_frames(frames: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack variable-length ``T_i x D`` tensors into ``B x T x D`` plus lengths."""
    from speechbench.batching import pad_frames as pad_batch

    return pad_batch(frames)
