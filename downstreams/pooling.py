"""Utterance-level encoders over frozen upstream layers, shared by the SV and LID heads.

weighted layer sum -> frame layers -> pooling -> embedding:

- frame layers ``"tdnn"``: the x-vector TDNN (Snyder et al. 2018), dilated 1-D
  convolutions with contexts [-2, 2], {-2, 0, 2}, {-3, 0, 3} and a 1x1 layer;
  ``"asp"``: one position-wise projection, the light head of SUPERB's SID task.
- pooling: attentive statistics pooling (Okabe et al. 2018), an attention-weighted
  mean and standard deviation over the valid frames (``"asp"``) or plain mean+std
  statistics (``"tdnn"``, as in the x-vector recipe).
An utterance-level upstream gives one frame per utterance; the same encoder then
pools that one frame (its standard deviation is zero), so LID works on any upstream.
"""

from __future__ import annotations

import torch
from speechbench.downstreams.base import WeightedLayerSum, lengths_mask
from torch import nn

from speechbench.errors import ConfigError

HEADS = ("asp", "tdnn")


class VectorBatchNorm(nn.BatchNorm1d):
    """BatchNorm over a batch of vectors (B x D) that also accepts a batch of one.

    A length-bucketed batch can hold a single long utterance; plain BatchNorm1d then fails
    in training ("expected more than 1 value per channel"). Such a batch is normalised with
    the running statistics instead of updating them. Same parameters and state-dict keys
    as ``nn.BatchNorm1d``, so stored checkpoints load unchanged.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] == 1:
            return nn.functional.batch_norm(
                x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
            )
        return super().forward(x)


def masked_statistics(
    x: torch.Tensor, mask: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean and standard deviation over valid frames (B x T x H -> B x 2H), weighted if given."""
    if weights is None:
        weights = mask.float() / mask.sum(dim=1, keepdim=True).clamp_min(1)
    w = weights.unsqueeze(-1)
    mean = (w * x).sum(dim=1)
    var = (w * (x - mean.unsqueeze(1)).pow(2)).sum(dim=1)
    return torch.cat([mean, var.clamp_min(1e-8).sqrt()], dim=-1)


class AttentiveStatsPooling(nn.Module):
    def __init__(self, dim: int, attention_dim: int = 128) -> None:
        super().__init__()
        self.attention = nn.Sequential(
            nn.Linear(dim, attention_dim), nn.Tanh(), nn.Linear(attention_dim, 1)
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        logits = self.attention(x).squeeze(-1).masked_fill(~mask, float("-inf"))
        return masked_statistics(x, mask, torch.softmax(logits, dim=1))


class TDNN(nn.Module):
    """x-vector frame layers; 'same' padding keeps one output per input frame."""

    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i, (kernel, dilation) in enumerate(((5, 1), (3, 2), (3, 3), (1, 1))):
            layers += [
                nn.Conv1d(
                    dim if i == 0 else hidden, hidden, kernel, dilation=dilation, padding="same"
                ),
                nn.ReLU(),
                nn.BatchNorm1d(hidden),
                nn.Dropout(dropout),
            ]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x * mask.unsqueeze(-1)  # padding must not leak into edge frames
        return self.net(x.transpose(1, 2)).transpose(1, 2)


class UtteranceEncoder(nn.Module):
    """B x L x T x D frozen layers (+ lengths) -> B x embed_dim utterance embeddings."""

    def __init__(
        self, dim: int, num_layers: int, kind: str, hidden: int, embed_dim: int, dropout: float
    ) -> None:
        super().__init__()
        if kind not in HEADS:
            raise ConfigError(f"bad value {kind!r} for downstream.head: use {' or '.join(HEADS)}")
        self.kind = kind
        self.layer_sum = WeightedLayerSum(num_layers)
        self.norm = nn.LayerNorm(dim)
        if kind == "tdnn":
            self.frames: nn.Module = TDNN(dim, hidden, dropout)
        else:
            self.frames = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout))
        self.attention = AttentiveStatsPooling(hidden) if kind == "asp" else None
        self.embed = nn.Linear(2 * hidden, embed_dim)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.layer_sum(features))
        mask = lengths_mask(lengths, x.shape[1])
        x = self.frames(x, mask) if self.kind == "tdnn" else self.frames(x)
        pooled = (
            self.attention(x, mask) if self.attention is not None else masked_statistics(x, mask)
        )
        return self.embed(pooled)
