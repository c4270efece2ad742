"""TTS: minimally supervised text-to-speech as a probe of a representation (CTAP's protocol).

Phonemes plus durations go to a *semantic predictor* that predicts the upstream's
representation (one layer: ``downstream.layer``, default the last); the same acoustic
decoder and prompt VAE as ``vc`` (:mod:`.generation`) turn it into vocoder features in
the voice of a 3-s prompt. In training the decoder rebuilds each utterance from its
ground-truth (frozen, standardised) upstream features, the predictor learns those
features from the phones and their ground-truth durations (at the upstream's frame
rate, from the corpus' phone times), and a duration predictor learns the durations; at
test the durations are predicted, so the chain is phones -> durations -> predicted
representation -> decoder -> WORLD.

For ``upstream=ctap`` the semantic predictor is CTAP's pretrained phoneme encoder (with
its duration predictor), frozen: its output P lives in the joint space of the speech
embedding S (the upstream's last layer), which is the paper's point. Every other
upstream gets one predictor architecture trained the same way: CTAP's phoneme-encoder
shape (embedding -> length regulator -> frame positions -> conv -> 3 transformer layers
-> linear) and its FastSpeech-style duration predictor, trained from scratch.
``downstream.decoder=ctap`` (with ``upstream=ctap``) is the paper's CTAP row: P into
CTAP's own decoder, nothing trained.

Scored like vc, against the record itself as the parallel reference: WER/CER of the
output against the input text, GE2E similarity to held-out utterances of the prompt
speaker, MCD-DTW, MSEP, F0, VDE, DNSMOS, beside the copy-synthesis ceiling and the WER of
unrelated speech.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from speechbench.downstreams import generation as gen
from speechbench.downstreams.base import Batch, UpstreamInfo
from speechbench.downstreams.vc import CTAPOwnHead, GenerationOptions, GenerationTask
from torch import nn

from speechbench import audio
from speechbench.corpora.base import Utterance
from speechbench.corpora.phones import PHONES
from speechbench.ctap.config import ModelConfig
from speechbench.ctap.data import PhoneVocabulary, frame_alignment, run_length
from speechbench.ctap.losses import duration_loss
from speechbench.ctap.model import DurationPredictor, PhonemeEncoder, lengths_mask
from speechbench.errors import ConfigError
from speechbench.options import option


@dataclass
class TTSOptions(GenerationOptions):
    layer: int = option(-1, low=-64, high=63, doc="the upstream layer the predictor predicts")
    semantic: str = option("auto", choices=("auto", "ctap", "trained"),
                           doc="auto: CTAP's phoneme encoder for upstream=ctap")  # fmt: skip
    predictor_weight: float = option(1.0, low=0.0)
    duration_weight: float = option(1.0, low=0.0)


class SemanticPredictor(nn.Module):
    """Phones + durations -> the upstream representation (standardised), and log
    durations: CTAP's phoneme encoder and duration predictor shapes, trained here."""

    def __init__(self, n_phones: int, out_dim: int) -> None:
        super().__init__()
        config = ModelConfig(n_phones=n_phones, joint_dim=out_dim)
        self.encoder = PhonemeEncoder(config)
        self.encoder.out_norm = nn.Identity()  # targets are standardised features
        self.durations = DurationPredictor(config)

    def forward(self, phones, phone_lengths, durations=None):
        """(frames B x T x out_dim, frame lengths, predicted log durations)."""
        tokens = self.encoder.tokens(phones, phone_lengths)
        log_durations = self.durations(tokens.detach(), phone_lengths)
        if durations is None:
            durations = DurationPredictor.to_frames(log_durations, phone_lengths)
        frames, lengths = self.encoder.frames(phones, phone_lengths, durations, tokens)
        return frames, lengths, log_durations


class CTAPSemantic(nn.Module):
    """CTAP's pretrained phoneme encoder + duration predictor (frozen)."""

    def __init__(self, ctap: nn.Module) -> None:
        super().__init__()
        self.ctap = ctap
        self.ctap.requires_grad_(False)

    def train(self, mode: bool = True) -> CTAPSemantic:
        super().train(mode)
        self.ctap.eval()
        return self

    def forward(self, phones, phone_lengths, durations=None):
        return self.ctap.encode_phonemes(phones, phone_lengths, durations)


class TTSHead(nn.Module):
    """Semantic predictor + the shared generation head (or CTAP's own decoder)."""

    def __init__(self, predictor: nn.Module, generator: nn.Module) -> None:
        super().__init__()
        self.predictor = predictor
        self.generator = generator


class TextToSpeech(GenerationTask):
    name = "tts"
    description = "minimally supervised TTS: phones -> semantic predictor -> shared decoder"
    Options = TTSOptions
    requires = ("speaker", "text", "phones")
    metrics = ("wer", "cer", "spk_sim", "mcd", "msep", "f0_rmse", "f0_corr", "vde", "dnsmos")

    def __init__(self, options: TTSOptions | None = None) -> None:
        super().__init__(options)
        self.vocab: PhoneVocabulary | None = None
        self.feature_mean: torch.Tensor | None = None
        self.feature_std: torch.Tensor | None = None

    # ---- data ------------------------------------------------------------------------
    def uses_ctap_semantic(self, upstream_name: str) -> bool:
        choice = self.options.semantic
        return choice == "ctap" or (choice == "auto" and upstream_name == "ctap")

    def _check_records(self, records: list[Utterance]) -> None:
        """Every record of every split has phones, all in the inventory."""
        assert self.data is not None
        for r in [r for s in ("train", "dev", "test") for r in self.data.records(s)]:
            if not r.phones:
                raise ConfigError(f"record {r.id} ({r.split}) has no phones; tts needs phone times")

    def _build_vocabulary(self, upstream_name: str) -> None:
        assert self.data is not None
        train = self.data.records("train")
        if self.uses_ctap_semantic(upstream_name) or self.own_decoder:
            if self.ctap_upstream is None:
                from speechbench.downstreams.vc import load_ctap

                self.ctap_upstream = load_ctap(self.options.ctap_checkpoint)
            self.vocab, which = self.ctap_upstream.vocabulary, "CTAP checkpoint's"
        else:
            self.vocab, which = PhoneVocabulary.from_records(train, PHONES), "training"
        for r in [r for s in ("train", "dev", "test") for r in self.data.records(s)]:
            for phone, _, _ in r.phones or []:
                if str(phone) not in self.vocab.index:
                    raise ConfigError(
                        f"record {r.id} ({r.split}): phone {phone!r} is outside the {which} "
                        f"phone inventory ({len(self.vocab)} symbols); map the text onto "
                        "speechbench.corpora.phones.PHONES or leave the record out"
                    )

    def target(self, record: Utterance) -> dict[str, Any]:
        found = super().target(record)
        found["phones"] = record.phones
        return found

    def phone_durations(self, phones: list[list], frames: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Phone ids and durations (frames at the upstream's rate, summing to ``frames``)."""
        assert self.vocab is not None
        token, segment = frame_alignment(phones, self.vocab, frames, self.frame_rate)
        return run_length(token, segment)

    def collate(self, targets: list[Any], frames: dict[str, torch.Tensor]) -> dict[str, Any]:
        batch = super().collate(targets, frames)
        pairs = [
            self.phone_durations(t["phones"], int(n))
            for t, n in zip(targets, frames["main"], strict=True)
        ]
        ids = [i for i, _ in pairs]
        durations = [d for _, d in pairs]
        batch["phones"] = nn.utils.rnn.pad_sequence(ids, batch_first=True)
        batch["durations"] = nn.utils.rnn.pad_sequence(durations, batch_first=True)
        batch["phone_lengths"] = torch.tensor([len(i) for i in ids])
        return batch

    def _standardisation(self) -> None:
        """Per-dimension mean / std of the predicted layer over the training features."""
        assert self.data is not None
        main = self.data.names[0]
        store = self.data.corpora[main].features[("train", "main")]
        total = square = None
        count = 0
        for r in self.data.records("train", main):
            f = store.get(r.id)[self.options.layer].double()
            total = f.sum(0) if total is None else total + f.sum(0)
            square = (f**2).sum(0) if square is None else square + (f**2).sum(0)
            count += f.shape[0]
        mean = total / count
        self.feature_mean = mean.float()
        self.feature_std = (square / count - mean**2).clamp(min=1e-8).sqrt().float()

    def standardise(self, rep: torch.Tensor) -> torch.Tensor:
        return (rep - self.feature_mean) / self.feature_std

    # ---- model -----------------------------------------------------------------------
    def build_head(self, upstream: UpstreamInfo) -> nn.Module:
        self.frame_rate = upstream.frame_rate
        if not -upstream.num_layers <= self.options.layer < upstream.num_layers:
            raise ConfigError(
                f"downstream.layer={self.options.layer}: upstream {upstream.name} has "
                f"{upstream.num_layers} layers"
            )
        self.ctap_semantic = self.uses_ctap_semantic(upstream.name) or self.own_decoder
        if self.ctap_semantic:
            self.check_own_decoder(upstream)
        self._build_vocabulary(upstream.name)
        assert self.vocab is not None
        self._standardisation()
        if self.ctap_semantic:
            predictor: nn.Module = CTAPSemantic(self.ctap_upstream.model)
        else:
            predictor = SemanticPredictor(len(self.vocab), upstream.dim)
        if self.own_decoder:
            return TTSHead(predictor, CTAPOwnHead(self.ctap_upstream.model))
        self.fit_targets()
        assert self.targets is not None and self.targets.mean is not None
        generator = gen.GenerationHead(
            upstream.dim, 1, upstream.frame_rate, int(self.targets.mean.numel()), self.shape(),
            layer=0,
        )  # fmt: skip
        return TTSHead(predictor, generator)

    def check_own_decoder(self, upstream: UpstreamInfo) -> None:
        if upstream.name != "ctap":
            raise ConfigError(
                f"CTAP's phoneme encoder / decoder (downstream.semantic=ctap or decoder=ctap) "
                f"predict the ctap upstream's joint embedding; upstream={upstream.name} needs "
                "downstream.semantic=trained and downstream.decoder=shared"
            )
        if self.options.layer != -1:
            raise ConfigError("CTAP's phoneme encoder predicts the last layer (S): layer=-1")

    def _decoder_input(self, rep: torch.Tensor) -> torch.Tensor:
        """What the decoder reads: standardised features (shared), raw S/P (CTAP's own)."""
        return rep if self.own_decoder else self.standardise(rep)[:, None]

    def _decode(self, head: TTSHead, rep, lengths, clip, frames):
        if self.own_decoder:
            return self.decode(head.generator, rep, lengths, clip, frames)
        return head.generator.decode(head.generator.representation(rep), lengths, clip, frames)

    def loss(self, head: nn.Module, batch: Batch) -> torch.Tensor:
        t = batch.targets
        gt = batch.features["main"][:, self.options.layer]  # B x T x D
        lengths = batch.lengths["main"]
        frames = torch.minimum(gen.output_frames(lengths, self.frame_rate, 100.0), t["frames"])
        pred, mu, logvar = self._decode(head, self._decoder_input(gt), lengths, t["clip"], frames)
        target = t["target"][:, : pred.shape[1]]
        o = self.options
        if mu is None:
            total = gen.masked_mse(pred, target, frames)
        else:
            total = gen.generation_loss(pred, target, frames, mu, logvar, o.kl_margin, o.kl_weight)
        if not self.ctap_semantic:
            predicted, p_lengths, log_dur = head.predictor(
                t["phones"], t["phone_lengths"], t["durations"]
            )
            n = min(predicted.shape[1], gt.shape[1])
            keep = lengths_mask(torch.minimum(p_lengths, lengths), n)
            semantic = torch.nn.functional.mse_loss(
                predicted[:, :n][keep], self.standardise(gt[:, :n])[keep]
            )
            dur = duration_loss(log_dur, t["durations"], t["phone_lengths"])
            total = total + o.predictor_weight * semantic + o.duration_weight * dur
        return total

    def fitters(self, upstream: UpstreamInfo):
        if self.own_decoder:
            from speechbench.fitting import ClosedFormFitter

            return [ClosedFormFitter("ctap-pretrained-phoneme-encoder-decoder", lambda h: None)]
        return super().fitters(upstream)

    def predict(self, head: nn.Module, batch: Batch) -> list[Any]:
        raise NotImplementedError("tts predicts in evaluate(): outputs need prompts")

    # ---- evaluation ------------------------------------------------------------------
    def generate(self, head: nn.Module, phones: torch.Tensor, clip: torch.Tensor, ctx: Any):
        """One item: phone ids (N) + 16 kHz prompt clip -> predicted durations -> predicted
        representation -> decoder -> vocoder -> 16 kHz waveform."""
        rep, lengths, _ = head.predictor(phones[None], torch.tensor([phones.numel()]))
        frames = gen.output_frames(lengths, self.frame_rate, 100.0)
        clips = self.prompt_features(clip)[None]
        pred, _, _ = self._decode(head, self._decoder_input(rep), lengths, clips, frames)
        return self.to_wave(head.generator, pred[0, : int(frames[0])], ctx)

    def evaluate(self, head: nn.Module, batches: Iterable[Batch], stage: str, ctx: Any):
        if stage != "test":
            return self.dev_loss(head, batches), []
        assert self.data is not None
        phones: dict[str, torch.Tensor] = {}
        records: list[Utterance] = []
        for batch in batches:
            if not records:
                records = self.data.records("test", batch.corpus)
                chosen = gen.seeded_subset(records, self.options.test_items, self.seed)
                real = gen.seeded_subset(records, self.options.real_items, self.seed + 1)
                wanted = {r.id for r in chosen} | {r.id for r in real}
            t = batch.targets
            for k, r in enumerate(batch.records):
                if r.id in wanted:
                    phones[r.id] = t["phones"][k, : int(t["phone_lengths"][k])].clone()
        by_speaker: dict[str, list[Utterance]] = defaultdict(list)
        for r in sorted(records, key=lambda r: r.id):
            by_speaker[r.speaker or ""].append(r)
        items: list[gen.GenItem] = []
        outputs: list[dict[str, Any]] = []
        with torch.no_grad():
            for r in chosen:
                exclude = {r.id, gen._sentence(r)}
                wav, prompt = self.prompts.clip(self.corpus(r), r.speaker or "", r.split,
                                                exclude, False)  # fmt: skip
                exclude |= {prompt.id, gen._sentence(prompt)}
                same = by_speaker[r.speaker or ""]
                held = [u for u in same if not {u.id, gen._sentence(u)} & exclude][:3]
                items.append(
                    gen.GenItem(
                        id=r.id,
                        wave=self.generate(head, phones[r.id], wav, ctx),
                        text=r.text or "",
                        reference=self._load(r),
                        speaker_refs=[self._load(u) for u in held or [prompt]],
                    )
                )
                seconds = round(items[-1].wave.numel() / gen.RATE, 2)
                outputs.append({"id": r.id, "speaker": r.speaker, "prompt": prompt.id,
                                "seconds": seconds})  # fmt: skip
            return gen.score_outputs(
                self.options,
                self.copy_vocoder(ctx),
                items,
                outputs,
                real,
                lambda source, clip: self.generate(head, phones[source.id], clip, ctx),
                ctx,
                "synthesised",
            )

    def _load(self, record: Utterance) -> torch.Tensor:
        return audio.load(self.corpus(record).audio_path(record), gen.RATE, record.sample_rate)

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        if self.feature_mean is not None:
            state["features"] = {"mean": self.feature_mean.tolist(),
                                 "std": self.feature_std.tolist()}  # type: ignore[union-attr]  # fmt: skip
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if state.get("features"):
            self.feature_mean = torch.tensor(state["features"]["mean"])
            self.feature_std = torch.tensor(state["features"]["std"])
