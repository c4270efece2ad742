"""The downstream contract: a small head trained on frozen upstream features.

A downstream declares the corpus it needs, the manifest fields it reads, the head
it builds from ``(dim, num_layers, frame_rate)``, its loss, how it decodes
predictions and which metrics score them (the primary one feeds leaderboards).
The generic training loop (``speechbench.training``) does the rest, so every task
is trained and evaluated the same way (the SUPERB protocol).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from speechbench.corpora.base import Utterance


@dataclass
class TrainOptions:
    """Settings every downstream shares; a task's Options dataclass extends this."""

    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 16
    max_epochs: int = 30
    patience: int = 6  # epochs without a better dev score before stopping...
    min_epochs: int = 0  # ...but never before this many (CTC first sits on an all-blank plateau)
    grad_clip: float = 5.0
    max_batch_frames: int = 20000  # bounds memory: batches are built by length


@dataclass
class Batch:
    """Frozen features of a few utterances: ``features`` is B x L x T x D."""

    features: torch.Tensor
    lengths: torch.Tensor
    records: list[Utterance]
    targets: list[Any]


class WeightedLayerSum(nn.Module):
    """Softmax-weighted sum of upstream layers, weights learned by the head (SUPERB)."""

    def __init__(self, num_layers: int) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(num_layers))

    def forward(self, features: torch.Tensor) -> torch.Tensor:  # B x L x T x D -> B x T x D
        weights = torch.softmax(self.logits, dim=0)
        return torch.einsum("l,bltd->btd", weights, features)

    def layer_weights(self) -> list[float]:
        return torch.softmax(self.logits.detach(), dim=0).tolist()


def lengths_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """B x T boolean mask, True on valid frames."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


class Downstream(ABC):
    name: ClassVar[str]
    description: ClassVar[str] = ""
    Options: ClassVar[type] = TrainOptions
    default_corpus: ClassVar[str]
    requires: ClassVar[tuple[str, ...]] = ()  # manifest fields the task reads
    upstream_level: ClassVar[Literal["frame", "utterance", "any"]] = "frame"
    metrics: ClassVar[tuple[str, ...]]
    primary_metric: ClassVar[str]

    def __init__(self, options: Any = None) -> None:
        self.options = options if options is not None else self.Options()

    @classmethod
    def accepts_level(cls, level: str) -> bool:
        """Can this task read features of an upstream of ``level`` ("frame"/"utterance")?"""
        return cls.upstream_level == "any" or cls.upstream_level == level

    def primary_metric_for(self, records: list[Utterance]) -> str:
        """The leaderboard metric; a task whose units depend on the corpus overrides it."""
        return self.primary_metric

    @abstractmethod
    def setup(self, train: list[Utterance]) -> None:
        """Learn what the task needs from training data (vocabulary, label set)."""

    @abstractmethod
    def target(self, record: Utterance) -> Any:
        """The training target of one utterance."""

    @abstractmethod
    def build_head(self, dim: int, num_layers: int, frame_rate: float) -> nn.Module:
        """The trainable head; it reads Batch.features (B x L x T x D) and lengths."""

    @abstractmethod
    def loss(self, head: nn.Module, batch: Batch) -> torch.Tensor:
        """Scalar training loss of one batch."""

    @abstractmethod
    def predict(self, head: nn.Module, batch: Batch) -> list[Any]:
        """Decoded predictions, one per utterance."""

    @abstractmethod
    def score(self, predictions: list[Any], records: list[Utterance]) -> dict[str, float]:
        """Metric values of predictions against the records' references."""

    def fit(
        self,
        head: nn.Module,
        train: tuple[list[Utterance], dict[str, torch.Tensor]],
        dev: tuple[list[Utterance], dict[str, torch.Tensor]],
    ) -> Any:
        """Fit a head that is not trained by gradient descent (e.g. an LDA/PLDA back-end
        over utterance-level embeddings) and return a ``speechbench.training.TrainResult``;
        returning None (the default) means: train with the shared loop."""
        return None

    def evaluate(
        self, head: nn.Module, batches: Iterable[Batch]
    ) -> tuple[dict[str, float], list[dict[str, Any]]]:
        """Scores and per-utterance outputs of one split; tasks scored on trials override."""
        predictions: list[Any] = []
        records: list[Utterance] = []
        with torch.no_grad():
            for batch in batches:
                predictions.extend(self.predict(head, batch))
                records.extend(batch.records)
        outputs = [{"id": r.id, "prediction": p} for r, p in zip(records, predictions, strict=True)]
        return self.score(predictions, records), outputs

    def state_dict(self) -> dict[str, Any]:
        """What ``setup`` learned, saved with checkpoints."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """Restore what ``setup`` learned; tasks without learned state keep this no-op."""
