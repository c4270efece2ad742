"""Speaker verification: speaker embeddings scored on a trial list (EER, minDCF).

Frame-level upstreams: an utterance encoder (weighted layer sum -> attentive statistics
pooling, or the x-vector TDNN -> statistics pooling -> embedding; ``speechbench.
downstreams.pooling``) is trained as a softmax speaker classifier on the training
speakers (the gradient fitter); its embedding layer is the speaker embedding.
Utterance-level upstreams (i-vector, GE2E) already give embeddings, so there is no
gradient fitter. Either way a closed-form fitter then fits the back-end on the training
embeddings of the final head.

Trials are scored with a back-end fitted on the training embeddings: cosine,
LDA + cosine, or Gaussian PLDA (``speechbench.downstreams.backends``). Reported: EER
and minDCF (P_target 0.01) with 95% bootstrap intervals over trials (test split), and
per test-side duration condition where the corpus cuts its test utterances (mini-sv 3:
``eer_full``, ``eer_3s``, ``eer_1s`` on the same trials; ``downstreams.trials``).
The dev split (training speakers, unseen utterances) is scored on trials drawn from
its speaker labels, and early stopping watches that dev EER (with a back-end fitted on
the current head's training embeddings, since the final one is fitted after training).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from speechbench.downstreams.backends import BACKENDS, Backend
from speechbench.downstreams.base import Batch, Downstream, Stage, TrainOptions, UpstreamInfo
from speechbench.downstreams.pooling import HEADS, UtteranceEncoder, VectorBatchNorm
from speechbench.downstreams.trials import (
    Trial,
    condition_metrics,
    trial_outputs,
    trials_for,
)
from torch import nn

from speechbench.corpora.base import Utterance
from speechbench.dataset import materialized
from speechbench.errors import CorpusError
from speechbench.fitting import ClosedFormFitter
from speechbench.options import option
from speechbench.training import GradientFitter

UNSEEN = -1  # target of an utterance whose speaker is not a training speaker


@dataclass
class SVOptions(TrainOptions):
    # "asp" (attentive statistics pooling) or "tdnn" (x-vector)
    head: str = option("asp", choices=HEADS)
    hidden: int = option(256, low=1)
    embed_dim: int = option(128, low=1)
    dropout: float = option(0.1, low=0.0, high=0.95)
    backend: str = option("cosine", choices=BACKENDS)
    lda_dim: int = option(0, low=0)  # 0: training speakers - 1
    wccn: bool = False
    trials: str = ""  # trial file for the test split; empty: the records' labels["trials"]
    # resamples for the test-set confidence intervals; 0: none
    bootstrap: int = option(1000, low=0, budget=True)
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
            nn.ReLU(), VectorBatchNorm(opts.embed_dim), nn.Linear(opts.embed_dim, num_speakers)
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
            out = head(batch.features["main"], batch.lengths["main"])
            vectors.append(out.double().numpy())
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
        self.speakers: list[str] = []
        self.index: dict[str, int] = {}
        self.backend: Backend | None = None  # fitted by the back-end fitter

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

    def build_head(self, upstream: UpstreamInfo) -> nn.Module:
        if upstream.frame_rate <= 0:  # one vector per utterance
            return EmbeddingPassThrough()
        return SpeakerHead(upstream.dim, upstream.num_layers, len(self.speakers), self.options)

    def fitters(self, upstream: UpstreamInfo):
        backend = ClosedFormFitter(f"backend:{self.options.backend}", self.fit_backend)
        if upstream.frame_rate <= 0:
            return [backend]
        return [GradientFitter(self.loss), backend]

    def loss(self, head: nn.Module, batch: Batch) -> torch.Tensor:
        targets = torch.tensor(batch.targets)
        if (targets == UNSEEN).any():
            raise CorpusError("a training utterance has no training speaker label")
        embeddings = head(batch.features["main"], batch.lengths["main"])
        return F.cross_entropy(head.classifier(embeddings), targets)

    def predict(self, head: nn.Module, batch: Batch) -> list[list[float]]:
        with torch.no_grad():
            return head(batch.features["main"], batch.lengths["main"]).tolist()

    def backend_for(self, head: nn.Module) -> Backend:
        """A back-end fitted on the training embeddings of the head as it is now."""
        opts = self.options
        plans = [
            plan
            for corpus in self.data.names
            for plan in self.data.batches(
                self, corpus, "train", "train", opts.batch_size, opts.max_batch_frames
            )
        ]
        head.eval()
        train_records, vectors = embed(head, materialized(plans))
        backend = Backend(opts.backend, opts.lda_dim, opts.wccn)
        return backend.fit(vectors, [r.speaker for r in train_records])

    def fit_backend(self, head: nn.Module) -> None:
        """The closed-form fitter: the final head's back-end, kept for test scoring."""
        self.backend = self.backend_for(head)

    def trial_scores(
        self, records: list[Utterance], vectors: np.ndarray, backend: Backend, stage: Stage
    ) -> tuple[list[Trial], np.ndarray]:
        trials = trials_for(records, stage, self.options.trials)
        row = {r.id: i for i, r in enumerate(records)}
        enroll = vectors[[row[t.enroll] for t in trials]]
        test = vectors[[row[t.test] for t in trials]]
        return trials, backend.score(enroll, test)

    def _backend(self, head: nn.Module | None) -> Backend:
        if self.backend is not None:
            return self.backend
        if head is None:
            raise CorpusError("sv: no fitted back-end yet; fit the task first")
        return self.backend_for(head)  # during gradient training: the current head's

    def evaluate(self, head: nn.Module, batches: Iterable[Batch], stage: Stage, ctx):
        records, vectors = embed(head, batches)
        backend = self._backend(head)
        trials, scores = self.trial_scores(records, vectors, backend, stage)
        n_boot = self.options.bootstrap if stage == "test" else 0
        metrics = condition_metrics(scores, trials, records, n_boot)
        classifier = getattr(head, "classifier", None)
        targets = torch.tensor([self.target(r) for r in records])
        if classifier is not None and (targets != UNSEEN).all():
            with torch.no_grad():
                logits = classifier(torch.from_numpy(vectors).float())
            metrics["speaker_accuracy"] = float((logits.argmax(1) == targets).float().mean())
        return metrics, trial_outputs(trials, scores)

    def score(
        self, predictions: list[Any], records: list[Utterance], stage: Stage
    ) -> dict[str, float]:
        """EER/minDCF of embeddings (one per record) under the fitted back-end."""
        vectors = np.asarray(predictions, dtype=np.float64)
        trials, scores = self.trial_scores(records, vectors, self._backend(None), stage)
        return condition_metrics(scores, trials, records)

    def state_dict(self) -> dict[str, Any]:
        return {"speakers": self.speakers}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.speakers = state["speakers"]
        self.index = {s: i for i, s in enumerate(self.speakers)}
