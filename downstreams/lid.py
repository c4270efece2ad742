"""Spoken language identification: per-language scores, Cavg / EER / accuracy per condition.

Head: the utterance encoder shared with SV (weighted layer sum -> attentive statistics
pooling or x-vector TDNN -> embedding) and a softmax layer over the training
languages. Utterance-level upstreams go through the same encoder (one pooled frame).

The softmax outputs are turned into detection log-likelihood ratios, as the NIST LRE
Cavg expects at threshold 0: with the logits as class log-likelihoods (flat prior),
``LLR_t = logit_t - log(mean_{n != t} exp(logit_n))``.

Test utterances carry a duration condition (``labels["condition"]``: ``full``, ``3s``,
``1s`` on mini-lid; ``full`` when absent). Every metric is reported per condition
(``cavg_3s``, ``lid_eer_1s``...); the unsuffixed ``cavg`` / ``lid_eer`` /
``lid_accuracy`` are the full-length condition, and ``cavg`` (the primary metric)
has a 95% bootstrap interval over test utterances.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from speechbench.downstreams.base import (
    Batch,
    GradientTrained,
    Stage,
    TrainOptions,
    UpstreamInfo,
)
from speechbench.downstreams.pooling import HEADS, UtteranceEncoder
from speechbench.metrics.bootstrap import bootstrap_ci
from speechbench.metrics.lid import cavg, lid_accuracy, lid_eer
from torch import nn

from speechbench.corpora.base import Utterance
from speechbench.errors import CorpusError
from speechbench.options import option

FULL = "full"


@dataclass
class LIDOptions(TrainOptions):
    # "asp" (attentive statistics pooling) or "tdnn" (x-vector)
    head: str = option("asp", choices=HEADS)
    hidden: int = option(256, low=1)
    embed_dim: int = option(128, low=1)
    dropout: float = option(0.1, low=0.0, high=0.95)
    # resamples for the test Cavg interval; 0: none
    bootstrap: int = option(1000, low=0, budget=True)
    max_epochs: int = 20
    patience: int = 5


class LanguageHead(nn.Module):
    def __init__(self, dim: int, num_layers: int, num_languages: int, opts: LIDOptions) -> None:
        super().__init__()
        self.encoder = UtteranceEncoder(
            dim, num_layers, opts.head, opts.hidden, opts.embed_dim, opts.dropout
        )
        self.layer_sum = self.encoder.layer_sum
        self.out = nn.Sequential(
            nn.ReLU(), nn.Dropout(opts.dropout), nn.Linear(opts.embed_dim, num_languages)
        )

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.out(self.encoder(features, lengths))


def detection_llrs(logits: torch.Tensor) -> torch.Tensor:
    """Per-language detection LLRs from class log-likelihoods (flat prior over the rest)."""
    num = logits.shape[1]
    eye = torch.eye(num, dtype=torch.bool, device=logits.device)
    others = logits.unsqueeze(1).expand(-1, num, -1).masked_fill(eye, float("-inf"))
    return logits - (torch.logsumexp(others, dim=2) - math.log(num - 1))


def condition_of(record: Utterance) -> str:
    return str(record.labels.get("condition") or FULL)


class LanguageID(GradientTrained):
    name = "lid"
    description = "language classifier (ASP/x-vector head); Cavg, EER, accuracy per duration"
    Options = LIDOptions
    default_corpus = "mini-lid"
    requires = ("language",)
    upstream_level = "any"
    metrics = ("cavg", "lid_eer", "lid_accuracy")
    primary_metric = "cavg"

    def __init__(self, options: LIDOptions | None = None) -> None:
        super().__init__(options)
        self.languages: list[str] = []
        self.index: dict[str, int] = {}

    def setup(self, train: list[Utterance]) -> None:
        self.languages = sorted({r.language for r in train if r.language})
        if len(self.languages) < 2:
            raise CorpusError(
                f"language ID needs at least 2 training languages, the train split has "
                f"{len(self.languages)}; use corpus=mini-lid"
            )
        self.index = {lang: i for i, lang in enumerate(self.languages)}

    def target(self, record: Utterance) -> int:
        if record.language not in self.index:
            raise CorpusError(
                f"utterance {record.id} ({record.split}) is in language {record.language!r}, "
                f"which no training utterance has (training: {', '.join(self.languages)}); "
                "language ID is closed-set: remove it or add training data"
            )
        return self.index[record.language]

    def build_head(self, upstream: UpstreamInfo) -> nn.Module:
        return LanguageHead(upstream.dim, upstream.num_layers, len(self.languages), self.options)

    def loss(self, head: nn.Module, batch: Batch) -> torch.Tensor:
        logits = head(batch.features["main"], batch.lengths["main"])
        return F.cross_entropy(logits, torch.tensor(batch.targets))

    def predict(self, head: nn.Module, batch: Batch) -> list[list[float]]:
        with torch.no_grad():
            return detection_llrs(head(batch.features["main"], batch.lengths["main"])).tolist()

    def score(
        self, predictions: list[Any], records: list[Utterance], stage: Stage
    ) -> dict[str, float]:
        scores = np.asarray(predictions, dtype=np.float64)
        labels = np.array([self.target(r) for r in records], dtype=np.int64)
        conditions = np.array([condition_of(r) for r in records])
        result: dict[str, float] = {}
        for condition in sorted(set(conditions.tolist())):
            keep = conditions == condition
            suffix = "" if condition == FULL else f"_{condition}"
            result[f"cavg{suffix}"] = cavg(scores[keep], labels[keep])
            result[f"lid_eer{suffix}"] = lid_eer(scores[keep], labels[keep])
            result[f"lid_accuracy{suffix}"] = lid_accuracy(scores[keep], labels[keep])
        if FULL not in conditions:  # a corpus with only cut segments: pool them
            result.update(
                cavg=cavg(scores, labels),
                lid_eer=lid_eer(scores, labels),
                lid_accuracy=lid_accuracy(scores, labels),
            )
        if stage == "test" and self.options.bootstrap > 0:
            keep = conditions == FULL if FULL in conditions else np.ones(len(labels), bool)
            interval = bootstrap_ci(
                cavg, scores[keep], labels[keep], n_resamples=self.options.bootstrap, seed=0
            )
            result["cavg_ci_low"], result["cavg_ci_high"] = interval.low, interval.high
        return result

    def evaluate(self, head: nn.Module, batches: Iterable[Batch], stage: Stage, ctx):
        metrics, outputs = super().evaluate(head, batches, stage, ctx)
        for output in outputs:  # name the languages instead of a bare score list
            output["prediction"] = {
                lang: round(s, 4)
                for lang, s in zip(self.languages, output["prediction"], strict=True)
            }
        return metrics, outputs

    def state_dict(self) -> dict[str, Any]:
        return {"languages": self.languages}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.languages = state["languages"]
        self.index = {lang: i for i, lang in enumerate(self.languages)}
