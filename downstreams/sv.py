"""Speaker verification: speaker embeddings scored on a trial list (EER, minDCF).

Frame-level upstreams: an utterance encoder (weighted layer sum -> attentive statistics
pooling, or the x-vector TDNN -> statistics pooling -> embedding; ``speechbench.
downstreams.pooling``) is trained as a softmax speaker classifier on the training
speakers; its embedding layer is the speaker embedding. Utterance-level upstreams
(i-vector, GE2E) already give embeddings, so the head is the back-end alone (fitted in
``fit``, no gradient training).

Trials are scored with a back-end fitted on the training embeddings: cosine,
LDA + cosine, or Gaussian PLDA (``speechbench.downstreams.backends``). Reported: EER
and minDCF (P_target 0.01) with 95% bootstrap intervals over trials (test split).
The dev split (training speakers, unseen utterances) is scored on trials drawn from
its speaker labels, and early stopping watches that dev EER.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from speechbench.downstreams.backends import Backend
from speechbench.downstreams.base import Batch, Downstream, TrainOptions
from speechbench.downstreams.pooling import UtteranceEncoder
from speechbench.downstreams.trials import (
    Trial,
    trial_outputs,
    trials_for,
    verification_metrics,
)
from torch import nn

from speechbench.corpora.base import Utterance
from speechbench.errors import ConfigError, CorpusError

UNSEEN = -1  # target of an utterance whose speaker is not a training speaker


@dataclass
class SVOptions(TrainOptions):
    head: str = "asp"  # "asp" (attentive statistics pooling) or "tdnn" (x-vector)
    hidden: int = 256
    embed_dim: int = 128
    dropout: float = 0.1
    backend: str = "cosine"  # "cosine", "lda-cosine" or "plda"
    lda_dim: int = 0  # 0: training speakers - 1
    wccn: bool = False
    trials: str = ""  # trial file for the test split; empty: the records' labels["trials"]
    bootstrap: int = 1000  # resamples for the test-set confidence intervals; 0: none
    max_epochs: int = 20
    patience: int = 5


class SpeakerHead(nn.Module):
    """Utterance encoder + a softmax layer over the training speakers."""

    def __init__(self, dim: int, num_layers: int, num_speakers: int, opts: SVOptions) -> None:
        super().__init__()
        self.encoder = UtteranceEncoder(
            dim, num_layers, opts.head, opts.hidden, opts.embed_dim, opts.dropout
        )
        self.layer_sum = self.encoder.layer_sum  # the runner records its weights
        self.classifier = nn.Sequential(
            nn.ReLU(), nn.BatchNorm1d(opts.embed_dim), nn.Linear(opts.embed_dim, num_speakers)
        )

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.encoder(features, lengths)


class EmbeddingPassThrough(nn.Module):
    """Head of an utterance-level upstream: its (layer-averaged) vector is the embedding."""

    classifier = None

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return features.mean(dim=1)[:, 0, :]  # B x L x 1 x D -> B x D


def embed(head: nn.Module, batches: Iterable[Batch]) -> tuple[list[Utterance], np.ndarray]:
    records, vectors = [], []
    with torch.no_grad():
        for batch in batches:
            vectors.append(head(batch.features, batch.lengths).double().numpy())
            records.extend(batch.records)
    return records, np.concatenate(vectors) if vectors else np.zeros((0, 0))


class SpeakerVerification(Downstream):
    name = "sv"
    description = "speaker embeddings (ASP/x-vector head or utterance-level upstream) + back-end"
    Options = SVOptions
    default_corpus = "mini-sv"
    requires = ("speaker",)
    upstream_level = "any"
    metrics = ("eer", "min_dcf")
    primary_metric = "eer"

    def __init__(self, options: SVOptions | None = None) -> None:
        super().__init__(options)
        Backend(self.options.backend, self.options.lda_dim)  # bad values fail before extraction
        self.speakers: list[str] = []
        self.index: dict[str, int] = {}
        self.train_data: tuple[list[Utterance], dict[str, torch.Tensor]] | None = None
        self.backend: Backend | None = None

    def setup(self, train: list[Utterance]) -> None:
        self.speakers = sorted({r.speaker for r in train if r.speaker})
        if len(self.speakers) < 2:
            raise CorpusError(
                f"speaker verification needs at least 2 training speakers, the train split "
                f"has {len(self.speakers)}; use corpus=mini-sv"
            )
        self.index = {s: i for i, s in enumerate(self.speakers)}

    def target(self, record: Utterance) -> int:
        return self.index.get(record.speaker, UNSEEN)

    def build_head(self, dim: int, num_layers: int, frame_rate: float) -> nn.Module:
        if frame_rate <= 0:  # one vector per utterance
            return EmbeddingPassThrough()
        return SpeakerHead(dim, num_layers, len(self.speakers), self.options)

    def fit(self, head, train, dev):
        """Keep the training features for the back-end; an utterance-level upstream's
        head is the back-end alone, fitted here (nothing to train by gradient)."""
        from speechbench.training import TrainResult, make_batches

        self.train_data = train
        if not isinstance(head, EmbeddingPassThrough):
            return None
        opts = self.options
        batches = make_batches(
            dev[0], dev[1], {r.id: 0 for r in dev[0]}, opts.batch_size, opts.max_batch_frames
        )
        scores, _ = self.evaluate(head, batches)
        entry = {"epoch": 0, **{f"dev_{k}": v for k, v in scores.items()}}
        return TrainResult(best_epoch=0, best_dev=entry, epochs_run=0, history=[entry])

    def loss(self, head: nn.Module, batch: Batch) -> torch.Tensor:
        targets = torch.tensor(batch.targets)
        if (targets == UNSEEN).any():
            raise CorpusError("a training utterance has no training speaker label")
        return F.cross_entropy(head.classifier(head(batch.features, batch.lengths)), targets)

    def predict(self, head: nn.Module, batch: Batch) -> list[list[float]]:
        with torch.no_grad():
            return head(batch.features, batch.lengths).tolist()

    def fitted_backend(self, head: nn.Module) -> Backend:
        """The back-end fitted on training embeddings of the head as it is now."""
        if self.train_data is None:
            raise ConfigError("sv: fit() was not called with the training features")
        from speechbench.training import make_batches

        records, features = self.train_data
        opts = self.options
        batches = make_batches(
            records, features, {r.id: 0 for r in records}, opts.batch_size, opts.max_batch_frames
        )
        train_records, vectors = embed(head, batches)
        backend = Backend(opts.backend, opts.lda_dim, opts.wccn)
        return backend.fit(vectors, [r.speaker for r in train_records])

    def trial_scores(
        self, records: list[Utterance], vectors: np.ndarray
    ) -> tuple[list[Trial], np.ndarray]:
        """The split's trials and their scores under the last fitted back-end."""
        if self.backend is None:
            raise ConfigError("sv: no fitted back-end; call evaluate(head, batches)")
        trials = trials_for(records, self.options.trials)
        row = {r.id: i for i, r in enumerate(records)}
        enroll = vectors[[row[t.enroll] for t in trials]]
        test = vectors[[row[t.test] for t in trials]]
        return trials, self.backend.score(enroll, test)

    def evaluate(self, head: nn.Module, batches: Iterable[Batch]):
        records, vectors = embed(head, batches)
        self.backend = self.fitted_backend(head)
        trials, scores = self.trial_scores(records, vectors)
        is_test = records[0].split == "test"
        metrics = verification_metrics(scores, trials, self.options.bootstrap if is_test else 0)
        classifier = getattr(head, "classifier", None)
        targets = torch.tensor([self.target(r) for r in records])
        if classifier is not None and (targets != UNSEEN).all():
            with torch.no_grad():
                logits = classifier(torch.from_numpy(vectors).float())
            metrics["speaker_accuracy"] = float((logits.argmax(1) == targets).float().mean())
        return metrics, trial_outputs(trials, scores)

    def score(self, predictions: list[Any], records: list[Utterance]) -> dict[str, float]:
        """EER/minDCF of embeddings (one per record) under the last fitted back-end."""
        trials, scores = self.trial_scores(records, np.asarray(predictions, dtype=np.float64))
        return verification_metrics(scores, trials)

    def state_dict(self) -> dict[str, Any]:
        return {"speakers": self.speakers}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.speakers = state["speakers"]
        self.index = {s: i for i, s in enumerate(self.speakers)}
