"""Non-intrusive speech quality prediction: MTQ-Net (``mos``) and the MOS-SSL baseline.

``mos`` is MTQ-Net (Zezario et al., "Multi-task pseudo-label learning for non-intrusive
speech quality assessment", ICASSP 2023), built on MOSA-Net (Zezario et al., TASLP 2022):

- cross-domain features concatenated per frame: the STFT log power spectrum, a
  learnable SincNet filterbank (Ravanelli & Bengio, SLT 2018) and the frozen upstream's
  weighted layer sum (SUPERB); ``features=stft,sinc,upstream`` switches each stream;
- a CNN-BLSTM encoder (MOSA-Net: convolution blocks that stride the feature axis by 3,
  a bidirectional LSTM, a fully connected layer);
- one head per target, each self-attention + a fully connected layer giving a score per
  frame + global average pooling giving the utterance score: the primary targets
  (DNSMOS P.835 SIG / BAK / OVRL on mini-mos, the analogue of 3QUEST S-/N-/G-MOS) and
  the auxiliary pseudo-labels PESQ-WB / STOI / SDI, whose heads are dropped after
  training (``finalize``);
- loss per head (the paper's eq. 2-3): rho(utterance score - label) + alpha * mean over
  frames of rho(frame score - label), rho Huber (``delta``), MSE or MAE; a record whose
  label is missing (``pesq_wb`` null) adds nothing to that head's loss;
- ``mechanism``: ``scratch`` (primary heads only), ``kt`` (a stage on the auxiliary
  heads, then a stage on the primary heads from that encoder: knowledge transfer) or
  ``mpl`` (all six jointly: multi-task pseudo-label learning, the paper's method).

``mos-ssl`` is MOS-SSL (Cooper et al., ICASSP 2022) with the upstream frozen, as in every
speechbench task: weighted layer sum, mean over frames, one linear layer; one such model
per target (independent parameters, trained side by side).

Scores, per primary target: LCC, SRCC and MSE over utterances and over conditions (the
mean per degradation type and SNR band), with 95% bootstrap intervals at test; the
leaderboard's metric is SRCC on OVRL. The mean-of-train constant predictor's MSE is
reported beside the model's (``const_mse_<target>``). ``predictions.jsonl`` holds each
test file's predicted and true scores; ``artefacts/scatter_<target>.png`` the scatter plot.
"""

from __future__ import annotations

import logging
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
    Input,
    Stage,
    StageSpec,
    TrainOptions,
    UpstreamInfo,
    WeightedLayerSum,
    lengths_mask,
)
from speechbench.metrics.bootstrap import bootstrap_ci
from speechbench.metrics.correlation import (
    linear_correlation,
    mean_squared_error,
    spearman_correlation,
)
from torch import nn

from speechbench.corpora.base import MAIN, Utterance
from speechbench.errors import ConfigError, CorpusError
from speechbench.metric_keys import make_key
from speechbench.options import option

log = logging.getLogger("speechbench.mos")

RATE = 16000
WAVE = "wave"  # the input name under which MTQ-Net reads the main stream's waveform
FEATURE_STREAMS = ("stft", "sinc", "upstream")
LOSSES = ("huber", "mse", "mae")
MECHANISMS = ("scratch", "kt", "mpl")
# label name -> where a record keeps it: inside labels["mos"] or at the top of labels
MOS_LABELS = ("sig", "bak", "ovrl", "p808", "mean", "intelligibility_mean")
TOP_LABELS = ("pesq_wb", "stoi", "sdi")
KNOWN_TARGETS = MOS_LABELS + TOP_LABELS
SNR_BANDS = ((-math.inf, 5.0, "snr-5to5"), (5.0, 15.0, "snr5to15"), (15.0, math.inf, "snr15to30"))
METRICS = {"lcc": linear_correlation, "srcc": spearman_correlation, "mse": mean_squared_error}


# ------------------------------------------------------------------ labels and conditions
def label_value(record: Utterance, name: str) -> float | None:
    """A record's quality label ``name`` (None when the record has none)."""
    labels = record.labels or {}
    holder = labels.get("mos") if name in MOS_LABELS else labels
    value = holder.get(name) if isinstance(holder, dict) else None
    return None if value is None else float(value)


def condition_of(record: Utterance) -> str | None:
    """The condition a record belongs to for condition-level scores: its degradation and,
    for noise, the SNR band (mini-mos); the rated system (TMHINT-QI); else None."""
    labels = record.labels or {}
    degradation = labels.get("degradation")
    if degradation:
        snr = labels.get("snr_db")
        if snr is None:
            return str(degradation)
        band = next(name for low, high, name in SNR_BANDS if low <= snr < high)
        return f"{degradation}/{band}"
    system = (
        (labels.get("mos") or {}).get("system") if isinstance(labels.get("mos"), dict) else None
    )
    return str(system) if system else None


def parse_names(value: str, key: str, allowed: Iterable[str], empty_ok: bool = False) -> tuple:
    """A comma list option as a tuple; an unknown or repeated name is one ConfigError."""
    names = tuple(n.strip() for n in str(value).split(",") if n.strip())
    allowed = tuple(allowed)
    for name in names:
        if name not in allowed:
            raise ConfigError(
                f"bad value {name!r} in downstream.{key}={value}: expected names from "
                f"{', '.join(allowed)}"
            )
    if len(set(names)) != len(names):
        raise ConfigError(f"downstream.{key}={value} names a value twice")
    if not names and not empty_ok:
        raise ConfigError(f"downstream.{key} is empty; give at least one of {', '.join(allowed)}")
    return names


# ------------------------------------------------------------------ the loss (eq. 2-3)
def elementwise(kind: str, pred: torch.Tensor, target: torch.Tensor, delta: float) -> torch.Tensor:
    if kind == "huber":
        return F.huber_loss(pred, target, reduction="none", delta=delta)
    if kind == "mse":
        return F.mse_loss(pred, target, reduction="none")
    if kind == "mae":
        return F.l1_loss(pred, target, reduction="none")
    raise ConfigError(f"bad value {kind!r} for downstream.loss: expected {', '.join(LOSSES)}")


def quality_loss(
    utterance: torch.Tensor,
    frames: torch.Tensor | None,
    frame_mask: torch.Tensor | None,
    labels: torch.Tensor,
    kind: str = "huber",
    delta: float = 1.0,
    alpha: float = 1.0,
) -> torch.Tensor:
    """One head's loss: mean over labelled items of rho(utterance - y) + alpha * mean over
    valid frames of rho(frame - y). ``utterance`` and ``labels`` are B, ``frames`` and
    ``frame_mask`` B x T; a NaN label masks its item out (0 when no item is labelled)."""
    known = ~torch.isnan(labels)
    y = torch.where(known, labels, torch.zeros_like(labels))
    per_item = elementwise(kind, utterance, y, delta)
    if frames is not None and alpha > 0:
        valid = frame_mask.float()
        frame_loss = elementwise(kind, frames, y[:, None].expand_as(frames), delta)
        per_item = per_item + alpha * (frame_loss * valid).sum(1) / valid.sum(1).clamp_min(1)
    weight = known.float()
    return (per_item * weight).sum() / weight.sum().clamp_min(1)


# ------------------------------------------------------------------ MTQ-Net modules
class SincFilterbank(nn.Module):
    """SincNet's learnable band-pass filters (Ravanelli & Bengio 2018): each filter is
    2 f2 sinc(2 pi f2 n) - 2 f1 sinc(2 pi f1 n), Hamming-windowed, with learnable low
    cut-off f1 and band f2 - f1, mel-spaced at start.

    Applied through the filters' frequency response to each STFT frame's power
    (log band energies), which equals filtering each windowed frame (circularly); a
    stride-1 time convolution of 40 x 251 taps would cost ~0.5 GMAC per 3 s file on CPU.
    """

    def __init__(self, filters: int, kernel: int, n_fft: int, rate: int = RATE) -> None:
        super().__init__()
        self.n_fft, self.rate, self.kernel = n_fft, rate, kernel | 1
        low_hz, min_band = 30.0, 50.0
        mel = np.linspace(_mel(low_hz), _mel(rate / 2 - (low_hz + min_band)), filters + 1)
        edges = _hz(mel)
        self.low = nn.Parameter(torch.tensor(edges[:-1], dtype=torch.float32))
        self.band = nn.Parameter(torch.tensor(np.diff(edges), dtype=torch.float32))
        self.min_low, self.min_band = low_hz, min_band
        n = torch.arange(-(self.kernel // 2), self.kernel // 2 + 1, dtype=torch.float32)
        self.register_buffer("n", n / rate, persistent=False)
        self.register_buffer("window", torch.hamming_window(self.kernel, periodic=False), False)

    def responses(self) -> torch.Tensor:
        """|H(f)|^2 of every filter at the STFT bins: filters x (n_fft/2 + 1)."""
        low = self.min_low + self.low.abs()
        high = (low + self.min_band + self.band.abs()).clamp(max=self.rate / 2)
        t = self.n[None, :]

        def lowpass(cut: torch.Tensor) -> torch.Tensor:  # 2 f sinc(2 pi f t), sinc(0) = 1
            x = 2 * math.pi * cut[:, None] * t
            safe = torch.where(x == 0, torch.ones_like(x), x)
            return (
                2 * cut[:, None] * torch.where(x == 0, torch.ones_like(x), torch.sin(safe) / safe)
            )

        taps = (lowpass(high) - lowpass(low)) * self.window / self.rate
        taps = taps / taps.abs().sum(1, keepdim=True).clamp_min(1e-8)  # unit L1 gain
        return torch.fft.rfft(taps, n=self.n_fft).abs().pow(2)

    def forward(self, power: torch.Tensor) -> torch.Tensor:  # B x T x bins -> B x T x filters
        return torch.log(power @ self.responses().T + 1e-10)


def _mel(hz: float) -> float:
    return 2595 * np.log10(1 + hz / 700)


def _hz(mel: np.ndarray) -> np.ndarray:
    return 700 * (10 ** (mel / 2595) - 1)


class MaskedNorm(nn.Module):
    """BatchNorm over the valid frames only (padding must not enter the statistics)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(x)
        out[mask] = self.norm(x[mask])
        return out


class AttentionHead(nn.Module):
    """Self-attention, a fully connected layer to one score per frame, global average
    pooling to the utterance score; ``mean + std * score`` puts it on the label's scale."""

    def __init__(self, dim: int, heads: int, mean: float, std: float) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.out = nn.Linear(dim, 1)
        self.register_buffer("mean", torch.tensor(float(mean)))
        self.register_buffer("std", torch.tensor(float(std)))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        attended, _ = self.attention(x, x, x, key_padding_mask=~mask, need_weights=False)
        frames = self.mean + self.std * self.out(attended).squeeze(-1)
        valid = mask.float()
        utterance = (frames * valid).sum(1) / valid.sum(1).clamp_min(1)
        return utterance, frames


@dataclass(frozen=True)
class TargetStats:
    mean: float
    std: float


class MTQNet(nn.Module):
    """Cross-domain features -> CNN-BLSTM -> attention heads (see the module docstring)."""

    def __init__(
        self,
        upstream: UpstreamInfo,
        streams: tuple[str, ...],
        targets: dict[str, TargetStats],
        opts: MTQOptions,
    ) -> None:
        super().__init__()
        self.streams, self.opts = streams, opts
        self.frame_rate = RATE / opts.hop
        width = 0
        if "stft" in streams:
            width += opts.n_fft // 2 + 1
            self.stft_norm = MaskedNorm(opts.n_fft // 2 + 1)
        if "sinc" in streams:
            self.sinc = SincFilterbank(opts.sinc_filters, opts.sinc_kernel, opts.n_fft)
            self.sinc_norm = MaskedNorm(opts.sinc_filters)
            width += opts.sinc_filters
        if "upstream" in streams:
            self.layer_sum = WeightedLayerSum(upstream.num_layers)
            self.upstream_proj = nn.Linear(upstream.dim, opts.upstream_proj)
            self.upstream_norm = MaskedNorm(upstream.dim)
            self.upstream_rate = upstream.frame_rate
            width += opts.upstream_proj
        blocks: list[nn.Module] = []
        channels_in = 1
        for block in range(opts.cnn_blocks):
            channels = opts.cnn_channels * 2**block
            for k in range(opts.convs_per_block):
                stride = (1, 3) if k == opts.convs_per_block - 1 else (1, 1)
                blocks += [
                    nn.Conv2d(channels_in, channels, 3, stride=stride, padding=1),
                    nn.BatchNorm2d(channels),
                    nn.ReLU(),
                ]
                channels_in = channels
                if stride[1] == 3:
                    width = (width - 1) // 3 + 1
        self.cnn = nn.Sequential(*blocks)
        self.blstm = nn.LSTM(
            channels_in * width, opts.lstm_hidden, batch_first=True, bidirectional=True
        )
        self.fc = nn.Sequential(
            nn.Linear(2 * opts.lstm_hidden, opts.fc_dim), nn.ReLU(), nn.Dropout(opts.dropout)
        )
        self.heads = nn.ModuleDict(
            {
                name: AttentionHead(opts.fc_dim, opts.attention_heads, s.mean, s.std)
                for name, s in targets.items()
            }
        )

    def encode(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """B x T x fc_dim frames and the B x T valid mask, at the STFT hop (or the
        upstream's own rate when no waveform stream is used)."""
        parts: list[torch.Tensor] = []
        if "stft" in self.streams or "sinc" in self.streams:
            wave, samples = batch.audio[WAVE], batch.lengths[WAVE]
            window = torch.hann_window(self.opts.win, device=wave.device)
            spec = torch.stft(
                wave, self.opts.n_fft, self.opts.hop, self.opts.win, window, return_complex=True
            )
            power = spec.abs().pow(2).transpose(1, 2)  # B x T x bins
            lengths = samples // self.opts.hop + 1
            mask = lengths_mask(lengths, power.shape[1])
            if "stft" in self.streams:
                parts.append(self.stft_norm(torch.log(power + 1e-10), mask))
            if "sinc" in self.streams:
                parts.append(self.sinc_norm(self.sinc(power), mask))
        if "upstream" in self.streams:
            feats = self.layer_sum(batch.features[MAIN])  # B x Tu x D
            frames_u = batch.lengths[MAIN]
            if parts:  # nearest upstream frame of each STFT frame (same clock)
                t = torch.arange(parts[0].shape[1], device=feats.device)
                rate = self.upstream_rate or self.frame_rate
                index = (t[None, :] * rate / self.frame_rate).long()
                index = torch.minimum(index, (frames_u - 1).clamp_min(0)[:, None])
                feats = torch.gather(feats, 1, index[..., None].expand(-1, -1, feats.shape[-1]))
            else:
                mask = lengths_mask(frames_u, feats.shape[1])
            parts.append(self.upstream_proj(self.upstream_norm(feats, mask)))
        x = torch.cat(parts, dim=-1) * mask[..., None]
        x = self.cnn(x[:, None])  # B x C x T x F'
        x = x.permute(0, 2, 1, 3).flatten(2)  # B x T x C*F'
        lengths = mask.sum(1)
        packed = nn.utils.rnn.pack_padded_sequence(
            x, lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        out, _ = self.blstm(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return self.fc(out), mask

    def forward(
        self, batch: Batch, heads: Iterable[str]
    ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """(utterance B, frames B x T) of each named head, plus the frame mask under "_mask"."""
        x, mask = self.encode(batch)
        out: dict[str, Any] = {name: self.heads[name](x, mask) for name in heads}
        out["_mask"] = mask
        return out


class MosSslModel(nn.Module):
    """MOS-SSL with a frozen upstream: per target, weighted layer sum -> mean over frames
    -> linear (one independent model per target)."""

    def __init__(self, upstream: UpstreamInfo, targets: dict[str, TargetStats]) -> None:
        super().__init__()
        self.layer_sums = nn.ModuleDict({t: WeightedLayerSum(upstream.num_layers) for t in targets})
        self.linears = nn.ModuleDict({t: nn.Linear(upstream.dim, 1) for t in targets})
        for name, s in targets.items():  # start at the train mean: the constant predictor
            nn.init.zeros_(self.linears[name].weight)
            nn.init.constant_(self.linears[name].bias, s.mean)

    def forward(self, batch: Batch, heads: Iterable[str]) -> dict[str, Any]:
        feats, lengths = batch.features[MAIN], batch.lengths[MAIN]
        mask = lengths_mask(lengths, feats.shape[2]).float()
        out: dict[str, Any] = {}
        for name in heads:
            x = self.layer_sums[name](feats)
            pooled = (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp_min(1)
            out[name] = (self.linears[name](pooled).squeeze(-1), None)
        out["_mask"] = None
        return out


# ------------------------------------------------------------------ options
@dataclass
class QualityOptions(TrainOptions):
    # primary targets (scored, kept at inference): names of labels["mos"] or labels
    targets: str = option("sig,bak,ovrl", doc="comma list of quality labels to predict")
    loss: str = option("huber", choices=LOSSES)
    delta: float = option(1.0, low=0.0, low_open=True, doc="Huber threshold, label units")
    bootstrap: int = option(1000, low=0, budget=True, doc="resamples for 95% intervals")
    batch_size: int = 16


@dataclass
class MTQOptions(QualityOptions):
    features: str = option("stft,sinc,upstream", doc="feature streams: stft, sinc, upstream")
    mechanism: str = option("mpl", choices=MECHANISMS)
    auxiliary: str = option("pesq_wb,stoi,sdi", doc="pseudo-label targets (mpl, kt)")
    alpha: float = option(1.0, low=0.0, doc="weight of the frame-level loss")
    n_fft: int = option(512, low=16)
    win: int = option(512, low=16)
    hop: int = option(256, low=1)
    sinc_filters: int = option(40, low=1)
    sinc_kernel: int = option(251, low=3)
    upstream_proj: int = option(64, low=1)
    cnn_blocks: int = option(4, low=1, high=8)
    cnn_channels: int = option(4, low=1)
    convs_per_block: int = option(1, low=1)
    lstm_hidden: int = option(48, low=1)
    fc_dim: int = option(48, low=1)
    attention_heads: int = option(1, low=1)
    dropout: float = option(0.1, low=0.0, high=0.95)
    # set by the kt schedule's stages; "auto": the heads the mechanism trains
    stage_heads: str = option("auto", choices=("auto", "primary", "auxiliary"))
    max_epochs: int = 10  # ~1 min per epoch on one idle core (docs/mos.md)
    patience: int = 3


@dataclass
class MosSslOptions(QualityOptions):
    loss: str = option("mae", choices=LOSSES)  # MOS-SSL trains with L1
    max_epochs: int = 30  # a linear layer on cached features: seconds per epoch
    patience: int = 5


# ------------------------------------------------------------------ the tasks
class QualityTask(GradientTrained):
    """What MTQ-Net and MOS-SSL share: targets, masking, scoring, artefacts."""

    default_corpus = "mini-mos"
    metrics = ("lcc", "srcc", "mse")
    primary_metric = "srcc_ovrl"
    selection_metric = "loss"  # mean dev loss: kt's auxiliary stage has no primary score

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.primary = parse_names(self.options.targets, "targets", KNOWN_TARGETS)
        self.auxiliary: tuple[str, ...] = ()
        self.stats: dict[str, TargetStats] = {}
        self.constant: dict[str, float] = {}

    @property
    def heads(self) -> tuple[str, ...]:
        return self.primary + self.auxiliary

    def primary_metric_for(self, records: list[Utterance]) -> str:
        return f"srcc_{'ovrl' if 'ovrl' in self.primary else self.primary[0]}"

    def setup(self, train: list[Utterance]) -> None:
        corpus = ", ".join(self.data.names) if self.data is not None else "this corpus"
        for name in self.heads:
            values = [v for r in train if (v := label_value(r, name)) is not None]
            if len(values) < 2:
                hint = (
                    "downstream.mechanism=scratch (no pseudo-labels)"
                    if name in self.auxiliary
                    else "corpus=mini-mos or downstream.targets=..."
                )
                raise CorpusError(
                    f"corpus {corpus} has {len(values)} training records with quality label "
                    f"{name!r} (needs labels['mos'][{name!r}] or labels[{name!r}]); use {hint}"
                )
            std = float(np.std(values))
            self.stats[name] = TargetStats(float(np.mean(values)), std if std > 1e-6 else 1.0)
        self.constant = {name: self.stats[name].mean for name in self.primary}

    def target(self, record: Utterance) -> list[float]:
        return [math.nan if (v := label_value(record, name)) is None else v for name in self.heads]

    def collate(self, targets: list[Any], frames: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.tensor(targets, dtype=torch.float32).reshape(len(targets), len(self.heads))

    def active_heads(self) -> tuple[str, ...]:
        return self.heads

    def loss(self, head: nn.Module, batch: Batch) -> torch.Tensor:
        active = self.active_heads()
        out = head(batch, active)
        total = torch.zeros(())
        for name in active:
            utterance, frames = out[name]
            labels = batch.targets[:, self.heads.index(name)]
            total = total + quality_loss(
                utterance,
                frames,
                out["_mask"],
                labels,
                self.options.loss,
                self.options.delta,
                getattr(self.options, "alpha", 0.0),
            )
        return total

    def predict(self, head: nn.Module, batch: Batch) -> list[dict[str, float]]:
        with torch.no_grad():
            out = head(batch, self.primary)  # auxiliary heads are not run at inference
        scores = torch.stack([out[name][0] for name in self.primary], 1).tolist()
        return [dict(zip(self.primary, row, strict=True)) for row in scores]

    def score(
        self, predictions: list[Any], records: list[Utterance], stage: Stage
    ) -> dict[str, float]:
        result: dict[str, float] = {}
        conditions = [condition_of(r) for r in records]
        for name in self.primary:
            rows = [
                (label_value(r, name), p[name], c)
                for r, p, c in zip(records, predictions, conditions, strict=True)
                if label_value(r, name) is not None
            ]
            truth = np.array([t for t, _, _ in rows])
            guess = np.array([g for _, g, _ in rows])
            conds = np.array([str(c) for _, _, c in rows])
            has_conditions = all(c is not None for _, _, c in rows) and len(set(conds)) > 2
            constant = bool(guess.size) and np.ptp(guess) == 0
            if constant:
                levels = ("", "cond") if has_conditions else ("",)
                with_ci = stage == "test" and self.options.bootstrap > 0
                self._note_constant(name, result, levels, with_ci)
            for metric, spec in METRICS.items():
                if constant and metric != "mse":
                    continue  # set by _note_constant: a correlation of a constant is 0/0
                result[make_key(metric, target=name)] = spec(truth, guess)
                if has_conditions:
                    result[make_key(metric, target=name, level="cond")] = spec(truth, guess, conds)
                if stage != "test" or self.options.bootstrap <= 0:
                    continue
                intervals = [
                    ("", bootstrap_ci(spec, truth, guess, n_resamples=self.options.bootstrap))
                ]
                if has_conditions:
                    interval = bootstrap_ci(
                        spec, truth, guess, conds, n_resamples=self.options.bootstrap
                    )
                    intervals.append(("cond", interval))
                for level, ci in intervals:
                    for stat, value in (("ci_low", ci.low), ("ci_high", ci.high)):
                        key = make_key(metric, target=name, level=level or None, stat=stat)
                        result[key] = value
            mean_of_train = np.full_like(truth, self.constant.get(name, float(np.mean(truth))))
            result[f"const_mse_{name}"] = mean_squared_error(truth, mean_of_train)
        return result

    def _note_constant(
        self, name: str, result: dict[str, float], levels: tuple[str, ...], with_ci: bool
    ) -> None:
        """A model that predicts one value for every file ranks nothing: its LCC and SRCC
        (0/0, undefined) are stored as 0, the value of no association, with
        ``constant_<target>`` = 1 so a reader can tell it from a measured 0. The run is
        kept rather than failed: a constant predictor is a result (e.g. MOS-SSL over
        per-utterance CMVN features, whose frame mean is zero for every file)."""
        log.warning(
            "every %s prediction is the same value: LCC and SRCC stored as 0 (constant_%s=1)"
            "; a mean-pooling head over per-utterance CMVN features sees only zeros "
            "(try upstream.cmvn=false)",
            name,
            name,
        )
        result[f"constant_{name}"] = 1.0
        for metric in ("lcc", "srcc"):
            for level in levels:
                for stat in (None, "ci_low", "ci_high") if with_ci else (None,):
                    result[make_key(metric, target=name, level=level or None, stat=stat)] = 0.0

    def evaluate(self, head: nn.Module, batches: Iterable[Batch], stage: Stage, ctx):
        metrics, outputs = super().evaluate(head, batches, stage, ctx)
        by_id = {r.id: r for r in self.data.records(stage)} if self.data is not None else {}
        for output in outputs:
            record = by_id.get(output["id"])
            output["prediction"] = {k: round(v, 4) for k, v in output["prediction"].items()}
            if record is not None:
                output["truth"] = {name: label_value(record, name) for name in self.primary}
                output["condition"] = condition_of(record)
        if stage == "test" and ctx.sink.enabled and outputs and by_id:
            name = "ovrl" if "ovrl" in self.primary else self.primary[0]
            ctx.sink.figure(f"scatter_{name}.png", scatter_figure(outputs, name, metrics))
        return metrics, outputs

    def state_dict(self) -> dict[str, Any]:
        return {n: [s.mean, s.std] for n, s in self.stats.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stats = {n: TargetStats(*v) for n, v in state.items()}
        self.constant = {n: self.stats[n].mean for n in self.primary if n in self.stats}


def scatter_figure(outputs: list[dict[str, Any]], name: str, metrics: dict[str, float]):
    """Predicted vs true score of every test file (matplotlib, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    pairs = [(o["truth"][name], o["prediction"][name]) for o in outputs if o["truth"].get(name)]
    truth, guess = np.array(pairs).T
    figure = Figure(figsize=(4.5, 4.5), dpi=100)
    axes = figure.add_subplot()
    axes.scatter(truth, guess, s=8, alpha=0.6)
    low, high = float(min(truth.min(), guess.min())), float(max(truth.max(), guess.max()))
    axes.plot([low, high], [low, high], color="grey", linewidth=0.8)
    axes.set_xlabel(f"true {name.upper()}")
    axes.set_ylabel(f"predicted {name.upper()}")
    axes.set_title(
        f"LCC {metrics.get(f'lcc_{name}', math.nan):.3f}  "
        f"SRCC {metrics.get(f'srcc_{name}', math.nan):.3f}  (n={len(truth)})"
    )
    figure.tight_layout()
    return figure


class MTQNetTask(QualityTask):
    name = "mos"
    description = "MTQ-Net speech quality predictor (STFT+SincNet+upstream, CNN-BLSTM, 6 heads)"
    Options = MTQOptions

    def __init__(self, options: MTQOptions | None = None) -> None:
        super().__init__(options)
        self.streams = parse_names(self.options.features, "features", FEATURE_STREAMS)
        if self.options.mechanism != "scratch":
            self.auxiliary = parse_names(self.options.auxiliary, "auxiliary", KNOWN_TARGETS)
            overlap = set(self.auxiliary) & set(self.primary)
            if overlap:
                raise ConfigError(
                    f"{', '.join(sorted(overlap))} is both a target and an auxiliary target"
                )
        self._stage_heads = self.options.stage_heads

    def inputs(self, stage: Stage) -> dict[str, Input]:
        wanted: dict[str, Input] = {}
        if "upstream" in self.streams:
            wanted[MAIN] = Input("features")
        if "stft" in self.streams or "sinc" in self.streams:
            wanted[WAVE] = Input("waveform", sample_rate=RATE, stream=MAIN)
        return wanted

    def schedule(self, corpora) -> list[StageSpec]:
        if self.options.mechanism != "kt":
            return [StageSpec("train", tuple(corpora))]
        first = max(1, self.options.max_epochs // 2)  # the same epoch budget in two stages
        second = max(1, self.options.max_epochs - first)
        return [
            StageSpec(
                "auxiliary",
                tuple(corpora),
                overrides={"stage_heads": "auxiliary", "max_epochs": first},
            ),
            StageSpec(
                "primary",
                tuple(corpora),
                overrides={"stage_heads": "primary", "max_epochs": second},
            ),
        ]

    def configure_optimizer(self, head: nn.Module, options: Any) -> torch.optim.Optimizer:
        self._stage_heads = options.stage_heads  # the stage's overrides say which heads train
        return super().configure_optimizer(head, options)

    def active_heads(self) -> tuple[str, ...]:
        if self._stage_heads == "auxiliary":
            return self.auxiliary
        if self._stage_heads == "primary" or self.options.mechanism == "scratch":
            return self.primary
        return self.heads

    def build_head(self, upstream: UpstreamInfo) -> nn.Module:
        if "upstream" in self.streams and upstream.frame_rate <= 0:
            raise ConfigError(
                f"downstream mos reads frame-level features; upstream {upstream.name} is "
                "utterance-level: use downstream.features=stft,sinc or downstream=mos-ssl"
            )
        return MTQNet(upstream, self.streams, {n: self.stats[n] for n in self.heads}, self.options)

    def finalize(self, head: nn.Module) -> nn.Module:
        """Drop the auxiliary heads: they only shaped the encoder during training."""
        for name in self.auxiliary:
            if name in head.heads:
                del head.heads[name]
        return head


class MosSsl(QualityTask):
    name = "mos-ssl"
    description = "MOS-SSL baseline: mean-pooled frozen upstream + linear, one per target"
    Options = MosSslOptions
    upstream_level = "any"

    def build_head(self, upstream: UpstreamInfo) -> nn.Module:
        return MosSslModel(upstream, {n: self.stats[n] for n in self.primary})


__all__ = [
    "MTQNet",
    "MTQNetTask",
    "MosSsl",
    "MosSslModel",
    "SincFilterbank",
    "condition_of",
    "label_value",
    "quality_loss",
]
