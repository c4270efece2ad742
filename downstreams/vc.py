"""VC: voice conversion as a probe of a representation (the CTAP paper's protocol).

Training is non-parallel: the shared acoustic decoder (:mod:`.generation`) rebuilds an
utterance's vocoder features from its *frozen* upstream features plus the prompt VAE's
embedding of a *different* 3-s clip of the same speaker, with the VAE's KL above a
margin Delta penalised (CTAP eq. 2). At test, source speech of speaker A plus a prompt of
speaker B should give A's words in B's voice; the parallel corpus (every speaker says
every sentence: mini-vc) gives B saying A's sentence as the reference for MCD-DTW, MSEP,
F0 RMSE / correlation and voicing error. WER/CER (whisper-tiny-en vs the text), GE2E
similarity to held-out utterances of B (and, as a diagnostic, of A: ``spk_sim_source``)
and DNSMOS are scored on the same items, beside the copy-synthesis ceiling (``*_copy``:
B's reference analysed and resynthesised by the same vocoder) and the WER of unrelated
speech (``wer_unrelated``).

``downstream.decoder=shared`` (default): the same decoder and prompt encoder for every
upstream, over the weighted sum of its layers, predicting WORLD features (the vocoder
chosen by copy synthesis, docs/evaluators.md). ``downstream.decoder=ctap``: CTAP's own
pretrained prompt encoder and mel decoder (frozen, on the joint embedding S, the last
layer of ``upstream=ctap``), vocoded by Griffin-Lim on CTAP's mel (``griffin-lim-ctap``),
as the paper's "CTAP" rows; nothing is trained.

Dev selection uses the cheap mean dev loss (standardised-feature MSE + KL term); the
vocoder and the evaluators run only at test, on ``test_items`` conversions.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from speechbench.downstreams import generation as gen
from speechbench.downstreams.base import (
    Batch,
    GradientTrained,
    Stage,
    TrainOptions,
    UpstreamInfo,
)
from torch import nn

from speechbench import audio
from speechbench.corpora.base import Utterance
from speechbench.errors import ConfigError
from speechbench.options import option

EVALUATORS = ("whisper-tiny-en", "ge2e", "dnsmos", "world", "griffin-lim", "griffin-lim-ctap")


@dataclass
class GenerationOptions(TrainOptions):
    """Options of the generation probes (shared by vc and tts)."""

    decoder: str = option("shared", choices=("shared", "ctap"), doc="ctap: CTAP's own, frozen")
    vocoder: str = option("world", choices=("world", "griffin-lim"), doc="shared decoder only")
    prompt_seconds: float = option(3.0, low=0.5, high=30.0)
    kl_margin: float = option(2.0, low=0.0, doc="Delta of max(0, KL - Delta), nats")
    kl_weight: float = option(1.0, low=0.0)
    dim: int = option(128, low=8)
    layers: int = option(2, low=0, high=8)
    conv_layers: int = option(2, low=0, high=8)
    dropout: float = option(0.1, low=0.0, high=0.9)
    ctap_checkpoint: str = option("", doc="decoder=ctap: CTAP checkpoint (default: shipped)")
    test_items: int = option(48, low=0, budget=True, doc="scored test items (0: all)")
    real_voices: str = option("mini-sv", doc="corpus of real target voices (none: off)")
    real_items: int = option(24, low=0, budget=True, doc="items converted to real voices")
    samples: int = option(4, low=0, budget=True, doc="generated WAVs kept as artefacts")
    bootstrap: int = option(1000, low=0, budget=True)
    lr: float = 1e-3
    batch_size: int = 8
    # 4 epochs: what fits the 45-minute budget on 2 cores with test scoring (measured,
    # docs/generation.md); the dev loss is still falling there, so more epochs help.
    max_epochs: int = 4
    patience: int = 3
    max_batch_frames: int = 6000


class CTAPOwnHead(nn.Module):
    """CTAP's pretrained prompt encoder + mel decoder on S (frozen; nothing to train)."""

    def __init__(self, ctap: nn.Module) -> None:
        super().__init__()
        self.ctap = ctap
        self.ctap.requires_grad_(False)

    def train(self, mode: bool = True) -> CTAPOwnHead:
        super().train(mode)
        self.ctap.eval()  # frozen: dropout and batch norm stay in inference mode
        return self

    def forward(self, s: torch.Tensor, lengths: torch.Tensor, clip: torch.Tensor) -> torch.Tensor:
        """S (B x T x D, 50/s) + prompt mel clip -> normalised log-mel B x 2T x n_mels."""
        mu, _ = self.ctap.prompt(clip)
        return self.ctap.decoder(s, mu, lengths).transpose(1, 2)

    def to_raw_log_mel(self, mel: torch.Tensor) -> torch.Tensor:
        """Undo CTAP's global standardisation: ln(mel power + 1e-6), T x n_mels."""
        return mel * self.ctap.features.std + self.ctap.features.mean


def load_ctap(checkpoint: str) -> nn.Module:
    """The whole CTAP model (prompt encoder, decoder, phoneme encoder) of a checkpoint."""
    from speechbench.upstreams.ctap import CTAPOptions, CTAPUpstream

    return CTAPUpstream(CTAPOptions(checkpoint=checkpoint))


class GenerationTask(GradientTrained):
    """The parts of vc and tts that are the same: targets, prompts, decoding, scoring."""

    Options = GenerationOptions
    default_corpus = "mini-vc"
    requires = ("speaker", "text")
    upstream_level = "frame"
    primary_metric = "wer"
    selection_metric = "loss"  # cheap: no vocoder or evaluator during training
    evaluators = EVALUATORS

    def __init__(self, options: GenerationOptions | None = None) -> None:
        super().__init__(options)
        self.targets: gen.VocoderTargets | None = None
        self.ctap_upstream: Any = None
        self.corpus_of: dict[str, str] = {}

    # ---- data ------------------------------------------------------------------------
    @property
    def own_decoder(self) -> bool:
        return self.options.decoder == "ctap"

    def setup(self, train: list[Utterance]) -> None:
        opts = self.options
        assert self.data is not None
        self.corpus_of = {
            r.id: name for name in self.data.names for s in ("train", "dev", "test")
            for r in self.data.records(s, name)
        }  # fmt: skip
        self.prompts = gen.PromptPool(opts.prompt_seconds)
        for name in self.data.names:
            records = [r for s in ("train", "dev", "test") for r in self.data.records(s, name)]
            self.prompts.add(name, records)
            self.prompts.check(name, records)
        if self.own_decoder:
            self.ctap_upstream = load_ctap(opts.ctap_checkpoint)
        else:
            from speechbench.evaluators import create

            self.targets = gen.VocoderTargets(create(opts.vocoder))
        self._check_records(train)

    def fit_targets(self) -> None:
        """Vocoder features of the training data (cached) and their statistics."""
        assert self.data is not None and self.targets is not None
        main = self.data.names[0]
        self.targets.fit(self.data.corpora[main].corpus, self.data.records("train", main))

    def _check_records(self, records: list[Utterance]) -> None:
        """Hook for a task's own record checks (tts: the phone inventory)."""

    def corpus(self, record: Utterance):
        assert self.data is not None
        return self.data.corpora[self.corpus_of[record.id]].corpus

    def prompt_features(self, wav: torch.Tensor) -> torch.Tensor:
        """The prompt encoder's input (n_mels x T) of a 16 kHz clip."""
        if self.own_decoder:
            return self.ctap_upstream.model.features(wav[None])[0]
        return gen.prompt_log_mel(wav)

    def acoustic_target(self, record: Utterance) -> torch.Tensor:
        """T x D: what the decoder must produce for this record (100 frames/s)."""
        corpus = self.corpus(record)
        if self.own_decoder:
            wav = audio.load(corpus.audio_path(record), gen.RATE, record.sample_rate)
            return self.ctap_upstream.model.features(wav[None])[0].T
        assert self.targets is not None and self.targets.mean is not None
        if record.split == "test":  # test scores generated audio, never this loss: no
            return torch.zeros(1, self.targets.mean.numel())  # WORLD analysis needed
        return self.targets.standardised(corpus, record)

    def target(self, record: Utterance) -> dict[str, Any]:
        corpus = self.corpus(record)
        train = record.split == "train"
        clip, _ = self.prompts.clip(
            corpus, record.speaker or "", record.split, {record.id, gen._sentence(record)}, train
        )
        return {"target": self.acoustic_target(record), "clip": self.prompt_features(clip)}

    def collate(self, targets: list[Any], frames: dict[str, torch.Tensor]) -> dict[str, Any]:
        padded, lengths = gen.pad_targets([t["target"] for t in targets])
        return {
            "target": padded,
            "frames": lengths,
            "clip": torch.stack([t["clip"] for t in targets]),
        }

    # ---- model -----------------------------------------------------------------------
    def shape(self) -> gen.DecoderShape:
        o = self.options
        return gen.DecoderShape(dim=o.dim, layers=o.layers, conv_layers=o.conv_layers,
                                dropout=o.dropout)  # fmt: skip

    def check_own_decoder(self, upstream: UpstreamInfo) -> None:
        if upstream.name != "ctap":
            raise ConfigError(
                f"downstream.decoder=ctap is CTAP's own pretrained decoder, which reads the "
                f"ctap upstream's joint embedding; upstream={upstream.name} needs "
                "downstream.decoder=shared"
            )

    def fitters(self, upstream: UpstreamInfo):
        if self.own_decoder:
            from speechbench.fitting import ClosedFormFitter

            return [ClosedFormFitter("ctap-pretrained-decoder", lambda head: None)]
        return super().fitters(upstream)

    def configure_optimizer(self, head: nn.Module, options: Any) -> torch.optim.Optimizer:
        params = [p for p in head.parameters() if p.requires_grad]
        return torch.optim.AdamW(params, lr=options.lr, weight_decay=options.weight_decay)

    def decode(
        self,
        head: nn.Module,
        rep: torch.Tensor,
        lengths: torch.Tensor,
        clip: torch.Tensor,
        frames: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Predicted targets B x max(frames) x D (+ mu, logvar of the shared VAE)."""
        if self.own_decoder:
            return head(rep, lengths, clip)[:, : int(frames.max())], None, None
        return head.decode(rep, lengths, clip, frames)

    def to_wave(self, head: nn.Module, predicted: torch.Tensor, ctx: Any) -> torch.Tensor:
        """One item's predicted targets (T x D) -> 16 kHz waveform."""
        if self.own_decoder:
            return ctx.evaluator("griffin-lim-ctap").mel_to_wave(head.to_raw_log_mel(predicted))
        assert self.targets is not None
        return self.targets.to_wave(predicted)

    def copy_vocoder(self, ctx: Any) -> Any:
        return ctx.evaluator("griffin-lim-ctap" if self.own_decoder else self.options.vocoder)

    def reconstruction_loss(
        self,
        head: nn.Module,
        rep: torch.Tensor,
        lengths: torch.Tensor,
        batch: Batch,
        rate: float,
    ) -> torch.Tensor:
        """Decoder loss of rebuilding the batch's own targets from ``rep`` (frames/s ``rate``)."""
        t = batch.targets
        frames = torch.minimum(gen.output_frames(lengths, rate, 100.0), t["frames"])
        pred, mu, logvar = self.decode(head, rep, lengths, t["clip"], frames)
        target = t["target"][:, : pred.shape[1]]
        if mu is None:
            return gen.masked_mse(pred, target, frames)
        o = self.options
        return gen.generation_loss(pred, target, frames, mu, logvar, o.kl_margin, o.kl_weight)

    # ---- evaluation ------------------------------------------------------------------
    def score(self, predictions: list[Any], records: list[Utterance], stage: Stage):
        raise NotImplementedError("generation tasks score in evaluate(): they need evaluators")

    def dev_loss(self, head: nn.Module, batches: Iterable[Batch]) -> dict[str, float]:
        total, count = 0.0, 0
        with torch.no_grad():
            for batch in batches:
                total += float(self.loss(head, batch)) * len(batch)
                count += len(batch)
        return {"loss": total / max(count, 1)}

    def state_dict(self) -> dict[str, Any]:
        return {"targets": self.targets.state() if self.targets is not None else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("targets") and self.targets is not None:
            self.targets.load_state(state["targets"])


def stable_hash(text: str) -> int:
    return int(hashlib.sha1(text.encode()).hexdigest()[:8], 16)


class VoiceConversion(GenerationTask):
    name = "vc"
    description = "voice conversion: frozen features + VAE prompt -> shared decoder -> WORLD"
    metrics = ("wer", "cer", "spk_sim", "mcd", "msep", "f0_rmse", "f0_corr", "vde", "dnsmos")

    def build_head(self, upstream: UpstreamInfo) -> nn.Module:
        self.frame_rate = upstream.frame_rate
        if self.own_decoder:
            self.check_own_decoder(upstream)
            return CTAPOwnHead(self.ctap_upstream.model)
        self.fit_targets()
        assert self.targets is not None
        out_dim = int(self.targets.mean.numel())  # type: ignore[union-attr]
        return gen.GenerationHead(
            upstream.dim, upstream.num_layers, upstream.frame_rate, out_dim, self.shape()
        )

    def representation(self, head: nn.Module, batch: Batch) -> torch.Tensor:
        features = batch.features["main"]
        return features[:, -1] if self.own_decoder else head.representation(features)

    def loss(self, head: nn.Module, batch: Batch) -> torch.Tensor:
        rep, lengths = self.representation(head, batch), batch.lengths["main"]
        return self.reconstruction_loss(head, rep, lengths, batch, self.frame_rate)

    def predict(self, head: nn.Module, batch: Batch) -> list[Any]:
        raise NotImplementedError("vc predicts in evaluate(): conversion pairs need prompts")

    # -- conversion plan: who speaks, to whom, against which references
    def _plan(self, records: list[Utterance]) -> dict[str, dict[str, Any]]:
        by_key = {(r.speaker, gen._sentence(r)): r for r in records}
        by_speaker: dict[str, list[Utterance]] = defaultdict(list)
        for r in sorted(records, key=lambda r: r.id):
            by_speaker[r.speaker or ""].append(r)
        speakers = sorted(by_speaker)
        if len(speakers) < 2:
            raise ConfigError("vc test needs at least two speakers to convert between")
        chosen = gen.seeded_subset(records, self.options.test_items, self.seed)
        plan = {}
        for r in chosen:
            i, s = speakers.index(r.speaker or ""), gen._sentence(r)
            target = speakers[(i + 1 + stable_hash(s) % (len(speakers) - 1)) % len(speakers)]
            reference = by_key.get((target, s))
            exclude = {s, r.id}
            corpus = self.corpus(r)
            clip, prompt = self.prompts.clip(corpus, target, r.split, exclude, train=False)
            exclude |= {prompt.id, gen._sentence(prompt)}
            held = [u for u in by_speaker[target] if u.id not in exclude
                    and gen._sentence(u) not in exclude][:3]  # fmt: skip
            source_held = [u for u in by_speaker[r.speaker or ""] if gen._sentence(u) != s][:3]
            plan[r.id] = {
                "target_speaker": target,
                "clip": clip,
                "prompt_id": prompt.id,
                "reference": reference,
                "speaker_refs": held or [prompt],
                "source_refs": source_held,
            }
        return plan

    def _load(self, record: Utterance) -> torch.Tensor:
        return audio.load(self.corpus(record).audio_path(record), gen.RATE, record.sample_rate)

    def generate(self, head: nn.Module, rep: torch.Tensor, clip: torch.Tensor, ctx: Any):
        """One item: representation (T x D at the upstream rate) + 16 kHz prompt clip ->
        16 kHz waveform through the decoder and the vocoder."""
        lengths = torch.tensor([rep.shape[0]])
        frames = gen.output_frames(lengths, self.frame_rate, 100.0)
        clips = self.prompt_features(clip)[None]
        pred, _, _ = self.decode(head, rep[None], lengths, clips, frames)
        return self.to_wave(head, pred[0, : int(frames[0])], ctx)

    def evaluate(self, head: nn.Module, batches: Iterable[Batch], stage: Stage, ctx: Any):
        if stage != "test":
            return self.dev_loss(head, batches), []
        assert self.data is not None
        reps: dict[str, torch.Tensor] = {}  # what the decoder reads, per scored record
        records: list[Utterance] = []
        plan: dict[str, dict[str, Any]] = {}
        with torch.no_grad():
            for batch in batches:
                if not records:
                    records = self.data.records("test", batch.corpus)
                    plan = self._plan(records)
                    real = gen.seeded_subset(records, self.options.real_items, self.seed + 1)
                    wanted = set(plan) | {r.id for r in real}
                rep = self.representation(head, batch)
                for k, r in enumerate(batch.records):
                    if r.id in wanted:
                        reps[r.id] = rep[k, : int(batch.lengths["main"][k])].clone()
            items: list[gen.GenItem] = []
            outputs: list[dict[str, Any]] = []
            for r in sorted((r for r in records if r.id in plan), key=lambda r: r.id):
                p = plan[r.id]
                items.append(
                    gen.GenItem(
                        id=r.id,
                        wave=self.generate(head, reps[r.id], p["clip"], ctx),
                        text=r.text or "",
                        reference=self._load(p["reference"]) if p["reference"] else None,
                        speaker_refs=[self._load(u) for u in p["speaker_refs"]],
                        other_refs=[self._load(u) for u in p["source_refs"]] or None,
                    )
                )
                reference = p["reference"].id if p["reference"] else None
                outputs.append({"id": r.id, "source_speaker": r.speaker,
                                "target_speaker": p["target_speaker"],
                                "prompt": p["prompt_id"], "reference": reference})  # fmt: skip
            return gen.score_outputs(
                self.options,
                self.copy_vocoder(ctx),
                items,
                outputs,
                real,
                lambda source, clip: self.generate(head, reps[source.id], clip, ctx),
                ctx,
                "converted",
            )
