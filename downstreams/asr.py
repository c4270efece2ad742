"""ASR: a CTC head over the weighted sum of upstream layers.

Head: weighted layer sum -> frame stacking down to <= 25 frames/s -> linear
projection -> BiLSTM (default 2 layers x 96 per direction) -> linear to units + blank.
Units are characters (a-z, apostrophe, space; text normalised as in
``speechbench.text``) or, where the corpus has phone alignments, phones (the
corpus' inventory without silence, as in the usual 39-phone PER).
Greedy CTC decoding. Scored with WER + CER (characters) or PER (phones).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from speechbench.downstreams.base import (
    Batch,
    GradientTrained,
    Stage,
    TrainOptions,
    UpstreamInfo,
    WeightedLayerSum,
)
from speechbench.metrics.recognition import (
    character_error_rate,
    phone_error_rate,
    word_error_rate,
)
from torch import nn

from speechbench.corpora.base import Utterance
from speechbench.corpora.phones import phone_sequence
from speechbench.errors import ConfigError
from speechbench.options import option
from speechbench.text import CHARACTERS

BLANK = 0


@dataclass
class ASROptions(TrainOptions):
    # "char", "phone", or "auto" (phones where the corpus has them)
    units: str = option("auto", choices=("auto", "char", "phone"))
    # Defaults measured on mini-en (fbank): 96 units per direction at <= 25 frames/s halve
    # the cost of an epoch against 128 at 34 frames/s and leave the all-blank CTC plateau
    # sooner with small batches and lr 3e-3; characters are ~15/s, so 25 frames/s suffice.
    hidden: int = option(96, low=1)
    layers: int = option(2, low=1, high=8)
    dropout: float = option(0.1, low=0.0, high=0.95)
    # neighbouring frames are stacked down to at most this rate
    max_frame_rate: float = option(25.0, low=0.0, low_open=True)
    lr: float = 3e-3
    batch_size: int = 8
    max_epochs: int = 40
    min_epochs: int = 15
    patience: int = 8


class CTCHead(nn.Module):
    def __init__(self, dim: int, num_layers: int, stack: int, opts: ASROptions, vocab: int) -> None:
        super().__init__()
        self.stack = stack
        self.layer_sum = WeightedLayerSum(num_layers)
        self.norm = nn.LayerNorm(dim * stack)
        self.proj = nn.Linear(dim * stack, opts.hidden)
        self.rnn = nn.LSTM(
            opts.hidden,
            opts.hidden,
            num_layers=opts.layers,
            batch_first=True,
            bidirectional=True,
            dropout=opts.dropout if opts.layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(opts.dropout)
        self.out = nn.Linear(2 * opts.hidden, vocab)

    def forward(
        self, features: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.layer_sum(features)  # B x T x D
        if self.stack > 1:  # concatenate `stack` neighbouring frames
            b, t, d = x.shape
            pad = (-t) % self.stack
            x = F.pad(x, (0, 0, 0, pad)).reshape(b, (t + pad) // self.stack, d * self.stack)
            lengths = torch.div(lengths + self.stack - 1, self.stack, rounding_mode="floor")
        x = self.dropout(torch.relu(self.proj(self.norm(x))))
        packed = nn.utils.rnn.pack_padded_sequence(
            x, lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        y, _ = self.rnn(packed)
        y, _ = nn.utils.rnn.pad_packed_sequence(y, batch_first=True)
        return self.out(self.dropout(y)).log_softmax(-1), lengths


class ASR(GradientTrained):
    name = "asr"
    description = "CTC BiLSTM head; characters (WER/CER) or phones (PER)"
    Options = ASROptions
    default_corpus = "mini-en"
    requires = ("text",)
    upstream_level = "frame"
    metrics = ("wer", "cer", "per")
    primary_metric = "cer"

    def __init__(self, options: ASROptions | None = None) -> None:
        super().__init__(options)
        self.unit_kind = "char"
        self.units: list[str] = list(CHARACTERS)

    @staticmethod
    def _has_phones(records: list[Utterance]) -> bool:
        return bool(records) and all(r.phones for r in records)

    def _choose_units(self, records: list[Utterance]) -> str:
        if self.options.units == "phone" and not self._has_phones(records):
            raise ConfigError(
                "downstream.units=phone needs a corpus with phone alignments "
                "(e.g. corpus=mini-phone)"
            )
        if self.options.units == "auto":
            return "phone" if self._has_phones(records) else "char"
        return self.options.units

    def primary_metric_for(self, records: list[Utterance]) -> str:
        return "per" if self._choose_units(records) == "phone" else "cer"

    def setup(self, train: list[Utterance]) -> None:
        self.unit_kind = self._choose_units(train)
        if self.unit_kind == "phone":
            self.units = sorted({p for r in train for p in phone_sequence(r.phones)})
        else:
            self.units = list(CHARACTERS)
        self.index = {u: i + 1 for i, u in enumerate(self.units)}  # 0 is the CTC blank

    def reference(self, record: Utterance) -> str:
        if self.unit_kind == "phone":
            return " ".join(phone_sequence(record.phones))
        return record.text or ""

    def target(self, record: Utterance) -> torch.Tensor:
        if self.unit_kind == "phone":
            symbols = phone_sequence(record.phones)
        else:
            symbols = list(record.text or "")
        # unseen symbols (a phone only in test) cannot be targets; skipping them is scored as errors
        return torch.tensor([self.index[s] for s in symbols if s in self.index], dtype=torch.long)

    def build_head(self, upstream: UpstreamInfo) -> nn.Module:
        stack = max(1, math.ceil(upstream.frame_rate / self.options.max_frame_rate - 1e-9))
        return CTCHead(upstream.dim, upstream.num_layers, stack, self.options, len(self.units) + 1)

    def loss(self, head: nn.Module, batch: Batch) -> torch.Tensor:
        log_probs, lengths = head(batch.features["main"], batch.lengths["main"])
        targets = torch.cat(batch.targets)
        target_lengths = torch.tensor([len(t) for t in batch.targets])
        return F.ctc_loss(
            log_probs.transpose(0, 1),
            targets,
            lengths,
            target_lengths,
            blank=BLANK,
            reduction="mean",
            zero_infinity=True,
        )

    def predict(self, head: nn.Module, batch: Batch) -> list[str]:
        log_probs, lengths = head(batch.features["main"], batch.lengths["main"])
        best = log_probs.argmax(-1)
        outputs = []
        for seq, n in zip(best, lengths.tolist(), strict=True):
            ids = torch.unique_consecutive(seq[:n]).tolist()
            symbols = [self.units[i - 1] for i in ids if i != BLANK]
            text = " ".join(symbols) if self.unit_kind == "phone" else "".join(symbols)
            outputs.append(" ".join(text.split()))
        return outputs

    def score(
        self, predictions: list[Any], records: list[Utterance], stage: Stage
    ) -> dict[str, float]:
        refs = [self.reference(r) for r in records]
        if self.unit_kind == "phone":
            return {"per": phone_error_rate(refs, predictions)}
        return {
            "wer": word_error_rate(refs, predictions),
            "cer": character_error_rate(refs, predictions),
        }

    def state_dict(self) -> dict[str, Any]:
        return {"unit_kind": self.unit_kind, "units": self.units}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.unit_kind, self.units = state["unit_kind"], state["units"]
        self.index = {u: i + 1 for i, u in enumerate(self.units)}
