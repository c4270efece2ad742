"""The classic GMM-UBM verification system (Reynolds, Quatieri & Dunn, DSP 2000).

A reference row of the SV leaderboard, meant for ``upstream=mfcc`` (MFCC-39 with CMVN;
any frame-level upstream works, one layer of it chosen by ``downstream.layer``):

1. a diagonal-covariance universal background model on the training speakers' frames
   (scikit-learn ``GaussianMixture``, a random subset of at most ``max_ubm_frames``);
2. per enrollment utterance, MAP adaptation of the UBM means only, relevance factor
   ``r``: ``alpha_c = n_c / (n_c + r)``, ``mu_c' = alpha_c E_c[x] + (1 - alpha_c) mu_c``;
3. the trial score is the average per-frame log-likelihood ratio of the test frames
   between the adapted model and the UBM.
MAP adaptation and the LLR are a few lines of torch, written here (no maintained
library exposes GMM MAP adaptation). Nothing is trained by gradient: one closed-form
fitter trains the UBM by EM (seeded by the run seed); trials are scored as in ``sv``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from speechbench.downstreams.base import Batch, Downstream, Stage, TrainOptions, UpstreamInfo
from speechbench.downstreams.trials import condition_metrics, trial_outputs, trials_for
from torch import nn
from tqdm import tqdm

from speechbench.corpora.base import Utterance
from speechbench.errors import ConfigError, SpeechbenchError
from speechbench.fitting import ClosedFormFitter
from speechbench.options import option
from speechbench.ubm import train_ubm


@dataclass
class GmmUbmOptions(TrainOptions):
    num_gaussians: int = option(128, low=1)
    relevance: float = option(16.0, low=0.0, low_open=True)  # MAP relevance factor r
    ubm_iterations: int = option(30, low=1)
    max_ubm_frames: int = option(200_000, low=1)
    layer: int = -1  # which upstream layer (frame-level features) the GMMs model
    trials: str = ""  # trial file for the test split; empty: the records' labels["trials"]
    bootstrap: int = option(1000, low=0, budget=True)


def diag_log_likelihoods(
    x: torch.Tensor, log_weights: torch.Tensor, means: torch.Tensor, variances: torch.Tensor
) -> torch.Tensor:
    """Weighted component log-densities (T x C) of a diagonal GMM; the squared distance is
    expanded into matrix products (x^2/v - 2 x mu/v + mu^2/v), no T x C x D temporary."""
    precision = 1.0 / variances
    log_norm = -0.5 * (torch.log(2 * torch.pi * variances).sum(dim=1))
    squared = x.pow(2) @ precision.T - 2 * x @ (means * precision).T
    squared = squared + (means.pow(2) * precision).sum(dim=1)
    return log_weights + log_norm - 0.5 * squared


def map_adapt_means(
    x: torch.Tensor,
    log_weights: torch.Tensor,
    means: torch.Tensor,
    variances: torch.Tensor,
    relevance: float,
) -> torch.Tensor:
    """MAP-adapted means (C x D) of a UBM towards the frames ``x`` (T x D)."""
    posteriors = torch.softmax(diag_log_likelihoods(x, log_weights, means, variances), dim=1)
    counts = posteriors.sum(dim=0)  # n_c
    first = posteriors.T @ x  # sum_t gamma_tc x_t
    expected = first / counts.clamp_min(1e-10)[:, None]
    alpha = (counts / (counts + relevance))[:, None]
    return alpha * expected + (1 - alpha) * means


class UBMHead(nn.Module):
    """The UBM's parameters as buffers (saved with the run like any head)."""

    def __init__(self, layer: int) -> None:
        super().__init__()
        self.layer = layer
        for name in ("log_weights", "means", "variances"):
            self.register_buffer(name, None)

    @property
    def fitted(self) -> bool:
        return self.means is not None

    def frames(self, features: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
        """Valid frames of one layer for every utterance of a batch."""
        chosen = features[:, self.layer].double()
        return [chosen[i, :n] for i, n in enumerate(lengths.tolist())]

    def log_likelihood(self, x: torch.Tensor, means: torch.Tensor | None = None) -> torch.Tensor:
        component = diag_log_likelihoods(
            x, self.log_weights, self.means if means is None else means, self.variances
        )
        return torch.logsumexp(component, dim=1)


class GmmUbmVerification(Downstream):
    name = "sv-gmm-ubm"
    description = "GMM-UBM, MAP-adapted means, average frame LLR (classic reference system)"
    Options = GmmUbmOptions
    default_corpus = "mini-sv"
    requires = ("speaker",)
    upstream_level = "frame"
    metrics = ("eer", "min_dcf")
    primary_metric = "eer"

    def __init__(self, options: GmmUbmOptions | None = None) -> None:
        super().__init__(options)
        self.ubm: UBMHead | None = None  # set by the EM fitter

    def setup(self, train: list[Utterance]) -> None:
        """Nothing to learn up front; the UBM is trained by its fitter."""

    def target(self, record: Utterance) -> str:
        return record.speaker or ""

    def build_head(self, upstream: UpstreamInfo) -> nn.Module:
        if not -upstream.num_layers <= self.options.layer < upstream.num_layers:
            raise ConfigError(
                f"downstream.layer={self.options.layer} but the upstream has "
                f"{upstream.num_layers} layer(s); use 0..{upstream.num_layers - 1} or -1"
            )
        return UBMHead(self.options.layer)

    def fitters(self, upstream: UpstreamInfo):
        return [ClosedFormFitter("ubm-em", self.fit_ubm)]

    def fit_ubm(self, head: UBMHead) -> None:
        """EM on the training frames of the chosen layer (read one utterance at a time;
        ``train_ubm`` subsamples at most ``max_ubm_frames``), seeded by the run seed."""
        o = self.options
        layer = o.layer
        parts = []
        for corpus in self.data.names:
            store = self.data.corpora[corpus].features[("train", "main")]
            for record in self.data.records("train", corpus):
                feats = store.get(record.id)
                parts.append(feats[layer].double().numpy())
        ubm = train_ubm(
            np.concatenate(parts),
            o.num_gaussians,
            o.max_ubm_frames,
            o.ubm_iterations,
            self.seed,
            "downstream.num_gaussians",
        )
        head.log_weights = torch.from_numpy(np.log(ubm.weights_))
        head.means = torch.from_numpy(ubm.means_)
        head.variances = torch.from_numpy(ubm.covariances_)
        self.ubm = head

    def predict(self, head: nn.Module, batch: Batch) -> list[Any]:
        """Per-utterance frames (the GMM-UBM scores trials on frames, not embeddings)."""
        return head.frames(batch.features["main"], batch.lengths["main"])

    def trial_scores(
        self, head: UBMHead, records: list[Utterance], frames: list[torch.Tensor], stage: Stage
    ):
        if not head.fitted:
            raise SpeechbenchError("sv-gmm-ubm: the UBM is not trained; fit it first")
        trials = trials_for(records, stage, self.options.trials)
        row = {r.id: i for i, r in enumerate(records)}
        ubm_ll = {}  # mean UBM log-likelihood of each test utterance
        for t in {t.test for t in trials}:
            ubm_ll[t] = head.log_likelihood(frames[row[t]]).mean()
        scores = np.empty(len(trials))
        by_enroll: dict[str, list[int]] = {}
        for k, trial in enumerate(trials):
            by_enroll.setdefault(trial.enroll, []).append(k)
        for enroll, indices in tqdm(
            by_enroll.items(), desc="MAP-adapt + score trials", unit="enroll", leave=False
        ):
            adapted = map_adapt_means(
                frames[row[enroll]],
                head.log_weights,
                head.means,
                head.variances,
                self.options.relevance,
            )
            for k in indices:
                test = trials[k].test
                speaker_ll = head.log_likelihood(frames[row[test]], adapted).mean()
                scores[k] = float(speaker_ll - ubm_ll[test])
        return trials, scores

    def evaluate(self, head: nn.Module, batches: Iterable[Batch], stage: Stage, ctx):
        records: list[Utterance] = []
        frames: list[torch.Tensor] = []
        for batch in batches:
            frames.extend(self.predict(head, batch))
            records.extend(batch.records)
        trials, scores = self.trial_scores(head, records, frames, stage)
        n_boot = self.options.bootstrap if stage == "test" else 0
        metrics = condition_metrics(scores, trials, records, n_boot)
        return metrics, trial_outputs(trials, scores)

    def score(
        self, predictions: list[Any], records: list[Utterance], stage: Stage
    ) -> dict[str, float]:
        """EER/minDCF of per-record frames under the fitted UBM."""
        if self.ubm is None:
            raise SpeechbenchError("sv-gmm-ubm: the UBM is not trained; fit it first")
        trials, scores = self.trial_scores(self.ubm, records, predictions, stage)
        return condition_metrics(scores, trials, records)
