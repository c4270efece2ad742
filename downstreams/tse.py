"""Target speaker extraction (``tse``): LiMuSE / TasNet over the mixture waveform, told
whom to extract by the **voiceprint** — the frozen upstream applied to the enrollment.

Streams (``speechbench.corpora.mini_tse``): ``main`` (the C-channel mixture, C = 1 or
2), ``enroll`` (another utterance of the target speaker; read as upstream features)
and ``reference`` (the target as it is in the mixture at channel 0). The interferer
is ``mixture[channel 0] - reference`` (the corpus mixes exactly target + interferer),
which gives the wrong-speaker rate without a corpus change.

Protocol (LiMuSE, Liu et al. SLT 2022, scaled to 2 CPU cores; see docs/tse.md):
SI-SDR loss on random crops of the training mixtures, Adam at 1e-3, learning rate
halved after 2 epochs without a better dev score, early stop after 6, gradient norm
clipped at 5; the dev score is the mean SI-SDR loss on the first ``crop_seconds`` of
every dev mixture (cheap); test scores whole mixtures. ``quantize=true`` fine-tunes
with 3-bit weights / 8-bit activations (``tse_quant``), from ``init_from`` (a
full-precision run's id or checkpoint) or after a full-precision stage, the sigmoid
temperature at T = 5 x epoch, and scores with the hard quantizer.

Reported (test): ``si_sdr``, ``si_sdr_mixture`` (the input's own SI-SDR: 0 dB of
improvement), ``si_sdri`` (primary, with a 95 % bootstrap interval over mixtures),
``pesq_wb``, ``stoi``, ``wrong_speaker_rate``, ``params``, ``size_mb`` (the measured
bytes of the bit-packed model file), ``size_nogc_mb`` (the same network without GC at
full precision, measured the same way) and ``compression_ratio`` (their ratio).
Extracted audio of the first ``keep_audio`` test mixtures is written next to the
mixture and the reference (``ctx.sink``).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from speechbench.downstreams.base import (
    Batch,
    GradientTrained,
    Input,
    StageSpec,
    TrainOptions,
    UpstreamInfo,
)
from speechbench.downstreams.tse_models import Extractor, StftMaskHead
from speechbench.downstreams.tse_quant import enable_quantization, set_temperature, write_packed
from speechbench.metrics.bootstrap import mean_ci
from speechbench.metrics.quality import pesq_wb, stoi
from speechbench.metrics.separation import si_sdr, wrong_speaker_rate
from torch import nn

from speechbench import audio, paths
from speechbench.batching import pad_stack
from speechbench.corpora.base import Utterance
from speechbench.errors import AudioError, ConfigError
from speechbench.options import option

MB = 1e6
TEMPERATURE_PER_EPOCH = 5.0  # LiMuSE: T = 5 x epoch


@dataclass
class TseOptions(TrainOptions):
    lr: float = 1e-3
    batch_size: int = 4
    # 10 passes over mini-tse v3's 800 train mixtures = 8,000 one-second crops: ~3.5 min
    # each on one core, 38 min for the whole run (docs/tse.md; 4 passes scored -0.29 dB)
    max_epochs: int = option(10, low=1, budget=True)
    patience: int = 6  # stop after 6 epochs without a better dev score
    grad_clip: float = 5.0
    lr_patience: int = option(2, low=1, budget=True, doc="epochs before the lr is halved")
    crop_seconds: float = option(1.0, low=0.05, high=30.0, budget=True)
    sample_rate: int = option(8000, choices=(8000, 16000))
    model: str = option("limuse", choices=("limuse", "stft-mask"), doc="stft-mask: SUPERB")
    groups: int = option(16, low=1, high=128, doc="K: groups of group communication")
    gc: bool = option(True, doc="False: TasNet blocks (no group communication, no TAC)")
    voiceprint: bool = option(True, doc="False: no enrollment cue (ablation)")
    context: int = option(32, low=0, high=256, doc="context codec chunk (frames); 0: none")
    blocks: int = option(6, low=1, high=12, doc="X: TCN blocks per repeat")
    hidden: int = option(512, low=8, doc="H")
    quantize: bool = option(False, doc="3-bit weights / 8-bit activations fine-tune")
    qat_epochs: int = option(10, low=1, budget=True)
    qat_lr: float = option(1e-4, low=0.0, low_open=True)
    qat_crop_seconds: float = option(0.25, low=0.05, high=30.0, budget=True)
    init_from: str = option("", doc="run id or checkpoint of the full-precision model")
    keep_audio: int = option(10, low=0, budget=True, doc="test mixtures whose audio is kept")


class TemperaturePlateau(torch.optim.lr_scheduler.ReduceLROnPlateau):
    """ReduceLROnPlateau that also anneals the quantizers' temperature, T = 5 x epoch."""

    def __init__(self, optimizer, head: nn.Module, quantized: bool, **kwargs) -> None:
        super().__init__(optimizer, **kwargs)
        self._head, self.quantized, self.epochs_done = head, quantized, 0
        self._apply()

    def _apply(self) -> None:
        if self.quantized:
            set_temperature(self._head, TEMPERATURE_PER_EPOCH * (self.epochs_done + 1))

    def step(self, metrics, epoch=None) -> None:  # type: ignore[override]
        super().step(metrics)
        self.epochs_done += 1
        self._apply()

    def state_dict(self) -> dict[str, Any]:
        return {k: v for k, v in super().state_dict().items() if k != "_head"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self._apply()


def neg_si_sdr(estimates: torch.Tensor, references: torch.Tensor, lengths: torch.Tensor):
    """The training loss: minus the mean SI-SDR (the metric itself, differentiable)."""
    return -si_sdr.fn(estimates, references, lengths).mean()


class TargetSpeakerExtraction(GradientTrained):
    name = "tse"
    description = "target speaker extraction (LiMuSE / TasNet) cued by the upstream voiceprint"
    Options = TseOptions
    default_corpus = "mini-tse-2ch"
    upstream_level = "any"  # utterance embeddings (ge2e, ivector) or pooled frames
    metrics = ("si_sdri", "si_sdr", "pesq_wb", "stoi", "wrong_speaker_rate")
    primary_metric = "si_sdri"
    selection_metric = "loss"

    # ---- declaration
    def inputs(self, stage):
        rate = self.options.sample_rate
        main = (
            Input("features")  # the mixture's waveform is read beside it (_mixture)
            if self.options.model == "stft-mask"
            else Input("waveform", sample_rate=rate, channels=(1, 2))
        )
        streams = {"main": main, "reference": Input("waveform", sample_rate=rate)}
        if self.options.voiceprint:
            streams["enroll"] = Input("features")
        return streams

    def setup(self, train: list[Utterance]) -> None:
        """Every mixture must be long enough for the model (one clear line if not)."""
        assert self.data is not None
        opts = self.options
        self._check_options()
        shortest = _model_min_samples(opts) / opts.sample_rate
        for name in self.data.names:
            corpus = self.data.corpora[name].corpus
            for record in (
                self.data.records("train", name)
                + self.data.records("dev", name)
                + self.data.records("test", name)
            ):
                if record.duration < shortest:
                    raise AudioError(
                        f"{corpus.audio_path(record)}: mixture is {record.duration:.3f} s, "
                        f"shorter than the model's receptive field ({shortest:.3f} s: one "
                        "context chunk); drop the record or use a smaller downstream.context"
                    )

    def _check_options(self) -> None:
        opts = self.options
        if opts.gc and (128 % opts.groups or opts.hidden % (2 * opts.groups)):
            raise ConfigError(
                f"downstream.groups={opts.groups}: K must divide N=128 and H/2="
                f"{opts.hidden // 2} (e.g. 16 or 32)"
            )
        if opts.init_from and not opts.quantize:
            raise ConfigError("downstream.init_from is for downstream.quantize=true fine-tunes")

    def target(self, record: Utterance) -> Any:
        return record.id

    # ---- model
    def build_head(self, upstream: UpstreamInfo) -> nn.Module:
        assert self.data is not None
        corpus = self.data.corpora[self.data.names[0]].corpus
        if self.options.model == "stft-mask":
            if upstream.level != "frame":
                raise ConfigError(
                    f"downstream.model=stft-mask masks the mixture from its frame features; "
                    f"upstream {upstream.name} gives one vector per utterance (use a "
                    "frame-level upstream such as mfcc, fbank or ctap)"
                )
            if self.options.quantize:
                raise ConfigError("downstream.quantize=true applies to downstream.model=limuse")
            return StftMaskHead(
                upstream.dim,
                upstream.num_layers,
                upstream.frame_rate,
                self.options.sample_rate,
                voiceprint=self.options.voiceprint,
            )
        head = self._network(corpus.streams.get("main", 1), upstream.dim, upstream.num_layers)
        if self.options.init_from:
            state = _load_init(self.options.init_from)
            try:
                head.load_state_dict(state)
            except RuntimeError as exc:
                raise ConfigError(
                    f"downstream.init_from={self.options.init_from}: its model does not "
                    f"match this configuration ({str(exc).splitlines()[0]})"
                ) from None
        return head

    def _network(self, channels: int, dim: int, layers: int, gc: bool | None = None) -> Extractor:
        opts = self.options
        gc = opts.gc if gc is None else gc
        return Extractor(
            channels,
            dim,
            layers,
            hidden=opts.hidden,
            blocks=opts.blocks,
            groups=opts.groups if gc else 1,
            gc=gc,
            voiceprint=opts.voiceprint,
            context=opts.context,
        )

    def schedule(self, corpora):
        if not self.options.quantize:
            return [StageSpec("train", tuple(corpora))]
        qat = StageSpec(
            "quantize",
            tuple(corpora),
            overrides={
                "lr": self.options.qat_lr,
                "max_epochs": self.options.qat_epochs,
                "patience": self.options.qat_epochs,
                "crop_seconds": self.options.qat_crop_seconds,
            },
        )
        if self.options.init_from:
            return [qat]
        return [StageSpec("train", tuple(corpora), overrides={"quantize": False}), qat]

    def configure_optimizer(self, head, options):
        """Adam (LiMuSE); a stage whose options say ``quantize`` trains quantized."""
        self._stage_options, self._current_head = options, head
        if options.quantize:
            enable_quantization(head)
        params = [p for p in head.parameters() if p.requires_grad]
        return torch.optim.Adam(params, lr=options.lr, weight_decay=options.weight_decay)

    def configure_scheduler(self, optimizer, options):
        """lr x 0.5 after ``lr_patience`` epochs without a better dev score (ReduceLROn-
        Plateau counts bad epochs *beyond* its patience); anneals T when quantized."""
        return TemperaturePlateau(
            optimizer,
            self._current_head,
            options.quantize,
            factor=0.5,
            patience=options.lr_patience - 1,
        )

    # ---- training
    def loss(self, head: nn.Module, batch: Batch) -> torch.Tensor:
        opts = getattr(self, "_stage_options", self.options)
        rate = self.options.sample_rate
        mix, ref = self._mixture(batch), batch.audio["reference"]
        lengths = batch.lengths["reference"]
        if isinstance(head, StftMaskHead):  # whole mixtures: the BLSTM is cheap
            est = head(mix[:, 0], batch.features["main"], *self._enroll(batch))
            return neg_si_sdr(est, ref, lengths)
        crop = min(int(round(opts.crop_seconds * rate)), mix.shape[-1])
        if head.training:  # a random window per mixture (torch RNG: seeded per epoch)
            spare = (lengths - crop).clamp_min(0)
            starts = (torch.rand(len(batch)) * (spare + 1).float()).long().clamp_max(spare)
        else:  # dev: the first crop_seconds of each mixture
            starts = torch.zeros(len(batch), dtype=torch.long)
        index = starts[:, None] + torch.arange(crop)[None, :]
        index = index.clamp_max(mix.shape[-1] - 1)
        mix_c = torch.gather(mix, 2, index[:, None, :].expand(-1, mix.shape[1], -1))
        ref_c = torch.gather(ref, 1, index)
        valid = (lengths - starts).clamp(1, crop)
        est = head(mix_c, *self._enroll(batch))
        return neg_si_sdr(est, ref_c, valid)

    def _enroll(self, batch: Batch) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        if not self.options.voiceprint:
            return None, None
        return batch.features["enroll"], batch.lengths["enroll"]

    # ---- inference and scoring
    def predict(self, head: nn.Module, batch: Batch) -> list[torch.Tensor]:
        """One estimate per mixture, each run alone at its own length (no padding in
        the global layer norms)."""
        mix = self._mixture(batch)
        enroll, enroll_lengths = self._enroll(batch)
        out = []
        for k, n in enumerate(batch.lengths["reference"].tolist()):
            e = None if enroll is None else enroll[k : k + 1, :, : int(enroll_lengths[k])]
            el = None if enroll_lengths is None else enroll_lengths[k : k + 1]
            if isinstance(head, StftMaskHead):
                frames = int(batch.lengths["main"][k])
                feats = batch.features["main"][k : k + 1, :, :frames]
                out.append(head(mix[k : k + 1, 0, :n], feats, e, el)[0])
            else:
                out.append(head(mix[k : k + 1, :, :n], e, el)[0])
        return out

    def _mixture(self, batch: Batch) -> torch.Tensor:
        """B x C x S mixture waveforms: the batch's, or (when the task reads the mixture's
        features) read here at the task's rate and padded like the reference."""
        if "main" in batch.audio:
            mix = batch.audio["main"]
            return mix.unsqueeze(1) if mix.dim() == 2 else mix
        assert self.data is not None
        corpus = self.data.corpora[batch.corpus].corpus
        rate = self.options.sample_rate
        wavs = [audio.load(corpus.audio_path(r), rate, r.sample_rate) for r in batch.records]
        mix, _ = pad_stack(wavs)
        width = batch.audio["reference"].shape[-1]
        return nn.functional.pad(mix, (0, max(0, width - mix.shape[-1])))[:, None, :width]

    def score(self, predictions, records, stage):
        raise AssertionError("evaluate() scores: the references come with the batches")

    def evaluate(self, head, batches, stage, ctx):
        rate = self.options.sample_rate
        est_all, ref_all, mix_all, ids, outputs = [], [], [], [], []
        kept = 0
        with torch.no_grad():
            for batch in batches:
                mix = self._mixture(batch)
                for k, (record, est) in enumerate(
                    zip(batch.records, self.predict(head, batch), strict=True)
                ):
                    n = int(batch.lengths["reference"][k])
                    ref = batch.audio["reference"][k, :n]
                    est_all.append(est[:n])
                    ref_all.append(ref)
                    mix_all.append(mix[k, 0, :n])
                    ids.append(record.id)
                    output: dict[str, Any] = {"id": record.id}
                    if ctx.sink.enabled and kept < self.options.keep_audio:
                        peak = max(float(est.abs().max()), 1e-8)
                        output["audio"] = ctx.sink.audio(
                            f"extracted/{record.id}.wav", est[:n] * min(1.0, 0.9 / peak), rate
                        )
                        ctx.sink.audio(f"mixture/{record.id}.wav", mix[k, :, :n].squeeze(0), rate)
                        ctx.sink.audio(f"reference/{record.id}.wav", ref, rate)
                        kept += 1
                    outputs.append(output)
        metrics, per_utt = separation_scores(est_all, ref_all, mix_all)
        for o, sdr_i in zip(outputs, per_utt["si_sdri"], strict=True):
            o["si_sdri"] = round(float(sdr_i), 3)
        if stage == "test":
            metrics |= quality_scores(est_all, ref_all, rate, ids)
            metrics |= self.size_scores(head)
            ci = mean_ci(per_utt["si_sdri"], seed=self.seed)
            metrics |= {"si_sdri_ci_low": ci.low, "si_sdri_ci_high": ci.high}
        return metrics, outputs

    def size_scores(self, head: nn.Module) -> dict[str, float]:
        """Parameters and the MEASURED sizes: bytes of the bit-packed model file, and of
        the same network without GC at full precision (the compression baseline)."""
        params = float(sum(p.numel() for p in head.parameters() if p.requires_grad))
        if not isinstance(head, Extractor):
            with tempfile.TemporaryDirectory() as tmp:
                size = write_packed(head, Path(tmp) / "model.sbq")
            return {"params": params, "size_mb": size / MB}
        first = self.data.corpora[self.data.names[0]].corpus  # type: ignore[union-attr]
        vp = head.voiceprint.fc if head.voiceprint is not None else None
        dim, layers = (vp.in_features, head.voiceprint.layer_sum.logits.numel()) if vp else (1, 1)
        baseline = self._network(first.streams.get("main", 1), dim, layers, gc=False)
        with tempfile.TemporaryDirectory() as tmp:
            size = write_packed(head, Path(tmp) / "model.sbq")
            size_nogc = write_packed(baseline, Path(tmp) / "nogc.sbq")
        return {
            "params": params,
            "size_mb": size / MB,
            "size_nogc_mb": size_nogc / MB,
            "compression_ratio": size_nogc / size,
        }


def _model_min_samples(opts: TseOptions) -> int:
    length, hop = 16, 8
    first = opts.context if opts.context > 1 else 3
    return length + (first - 1) * hop


def _load_init(init_from: str) -> dict[str, torch.Tensor]:
    """The full-precision head of a finished run (its id) or a checkpoint file."""
    path = Path(init_from).expanduser()
    if not path.suffix:
        path = paths.results_dir() / "runs" / init_from / "checkpoint.pt"
    if not path.exists():
        raise ConfigError(
            f"downstream.init_from={init_from}: {path} not found; give the run id of a "
            "finished full-precision tse run or a checkpoint path"
        )
    saved = torch.load(path, weights_only=True)
    return saved.get("best_head") or saved["head"]


def separation_scores(
    estimates: list[torch.Tensor], references: list[torch.Tensor], mixtures: list[torch.Tensor]
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """SI-SDR of estimate and mixture, SI-SDRi and the wrong-speaker rate (per mixture:
    the interferer is ``mixture - reference``)."""
    est_sdr, mix_sdr, wrong = [], [], []
    for est, ref, mix in zip(estimates, references, mixtures, strict=True):
        est_sdr.append(float(si_sdr.fn(est, ref)[0]))
        mix_sdr.append(float(si_sdr.fn(mix, ref)[0]))
        wrong.append(float(wrong_speaker_rate.fn(est, ref, mix - ref)[0]))
    est_a, mix_a = np.asarray(est_sdr), np.asarray(mix_sdr)
    per = {"si_sdri": est_a - mix_a}
    metrics = {
        "si_sdr": float(np.nanmean(est_a)),
        "si_sdr_mixture": float(np.nanmean(mix_a)),
        "si_sdri": float(np.nanmean(est_a - mix_a)),
        "wrong_speaker_rate": float(np.nanmean(wrong)),
    }
    return metrics, per


def quality_scores(
    estimates: list[torch.Tensor], references: list[torch.Tensor], rate: int, ids: list[str]
) -> dict[str, float]:
    """PESQ-wb (resampled to 16 kHz by the metric) and STOI of the estimates, in this
    process (threads=1 discipline)."""
    pesq = pesq_wb.fn(references, estimates, rate, ids=ids, workers=1)
    intel = stoi.fn(references, estimates, rate, ids=ids, workers=1)
    return {"pesq_wb": float(np.nanmean(pesq)), "stoi": float(np.nanmean(intel))}
