"""What the generation probes (``vc``, ``tts``) share: prompt VAE, decoder, targets, scoring.

The CTAP paper (Qiang et al. 2023) probes a representation by building the same
two-stage systems on it: VC (speech -> representation + prompt embedding -> acoustic
decoder -> vocoder features -> vocoder) and minimally supervised TTS (phonemes ->
semantic predictor -> representation -> the same decoder). This module is the one copy
of the parts both tasks use, so only the representation differs between rows:

- :class:`PromptVAE`: CTAP's prompt encoder (convs + an SE-ResNet block over a 3-s
  log-mel clip -> mean / log-variance of a global latent; the class of
  :mod:`speechbench.ctap.model`, so the architecture is literally the same), trained with
  the paper's KL margin (eq. 2, :func:`speechbench.ctap.losses.kl_with_margin`): only the
  KL above ``Delta`` nats per utterance is penalised;
- :class:`AcousticDecoder`: upstream frames (any rate) -> nearest-frame upsampling to the
  vocoder's 100 frames/s -> + prompt latent -> transformer layers -> residual convs ->
  vocoder features (the shape of CTAP's mel decoder);
- :class:`VocoderTargets`: the vocoder's features of every record (``wave_to_mel``),
  computed once and cached on disk by content hash (WORLD analysis costs ~0.13 s per
  second of audio, too much to repeat every epoch), standardised per dimension;
- :class:`PromptPool`: the 3-s prompt clips (another utterance of the same speaker, at
  least ``prompt_seconds`` long; random clip in training, the first clip otherwise);
- :func:`score_generation`: test-time scoring through the run's evaluators (WER/CER by
  whisper-tiny-en against the input text, GE2E similarity to held-out utterances of the
  target speaker, DNSMOS, MCD-DTW / MSEP / F0 RMSE / F0 correlation / VDE against the
  parallel reference), with 95% bootstrap intervals, the copy-synthesis ceiling on the
  same items and the WER of unrelated speech (the floor a system must be well below).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from speechbench.downstreams.base import WeightedLayerSum, lengths_mask
from torch import nn

from speechbench import atomic, audio, paths
from speechbench.corpora.base import Corpus, Utterance
from speechbench.ctap.config import ModelConfig
from speechbench.ctap.losses import kl_with_margin
from speechbench.ctap.model import PromptEncoder, sinusoidal_positions, transformer
from speechbench.errors import AudioError, ConfigError

log = logging.getLogger("speechbench.generation")

RATE = 16000  # every vocoder and evaluator here runs at 16 kHz
PROMPT_MELS = 80


# ----------------------------------------------------------------------------- models


class PromptVAE(nn.Module):
    """CTAP's prompt encoder (a VAE over a log-mel clip) and its reparameterised latent."""

    def __init__(self, channels: int = 128, latent: int = 64, n_mels: int = PROMPT_MELS) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(n_mels, affine=False)  # global per-bin standardisation
        config = ModelConfig(n_mels=n_mels, prompt_channels=channels, prompt_latent=latent)
        self.encoder = PromptEncoder(config)
        self.latent = latent

    def forward(self, clip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """clip B x n_mels x T -> (latent sample in training / mean otherwise, mu, logvar)."""
        mu, logvar = self.encoder(self.norm(clip))
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return z, mu, logvar


def upsample_index(frames_in: int, rate_in: float, frames_out: int, rate_out: float):
    """For every output frame, the input frame covering its time (nearest earlier frame)."""
    index = torch.floor(torch.arange(frames_out) * (rate_in / rate_out)).long()
    return index.clamp(max=max(frames_in - 1, 0))


def output_frames(lengths: torch.Tensor, rate_in: float, rate_out: float) -> torch.Tensor:
    """Output frames covering ``lengths`` input frames."""
    return torch.ceil(lengths.float() * (rate_out / rate_in)).long()


class AcousticDecoder(nn.Module):
    """(representation frames, prompt latent) -> vocoder features at ``rate_out`` frames/s."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        latent: int,
        rate_in: float,
        rate_out: float,
        dim: int = 128,
        layers: int = 2,
        conv_layers: int = 2,
        heads: int = 4,
        ff_dim: int = 512,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.rate_in, self.rate_out = rate_in, rate_out
        self.inp = nn.Sequential(nn.LayerNorm(in_dim), nn.Linear(in_dim, dim))
        self.prompt = nn.Linear(latent, dim)
        self.layers = transformer(dim, layers, heads, ff_dim, dropout)
        self.convs = nn.ModuleList(nn.Conv1d(dim, dim, 5, padding=2) for _ in range(conv_layers))
        self.out = nn.Linear(dim, out_dim)

    def forward(
        self, x: torch.Tensor, lengths: torch.Tensor, latent: torch.Tensor, frames: torch.Tensor
    ) -> torch.Tensor:
        """x B x T_in x in_dim, lengths B, latent B x latent, frames B (output frames) ->
        B x max(frames) x out_dim (zero past each item's frames)."""
        total = int(frames.max())
        x = self.inp(x)[:, upsample_index(x.shape[1], self.rate_in, total, self.rate_out)]
        x = x + self.prompt(latent)[:, None, :]
        x = x + sinusoidal_positions(total, x.shape[2]).to(x)
        keep = lengths_mask(frames, total)
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=~keep)
        x = x.transpose(1, 2)
        for conv in self.convs:
            x = x * keep[:, None, :]
            x = x + F.relu(conv(x))
        return self.out(x.transpose(1, 2)) * keep[:, :, None]


@dataclass
class DecoderShape:
    """The sizes of the shared decoder and prompt encoder (the same for every upstream)."""

    dim: int = 128
    layers: int = 2
    conv_layers: int = 2
    heads: int = 4
    ff_dim: int = 512
    dropout: float = 0.1
    prompt_channels: int = 128
    prompt_latent: int = 64


class GenerationHead(nn.Module):
    """Weighted layer sum (or one layer) of the upstream + prompt VAE + acoustic decoder."""

    def __init__(
        self,
        dim: int,
        num_layers: int,
        frame_rate: float,
        out_dim: int,
        shape: DecoderShape,
        layer: int | None = None,
    ) -> None:
        super().__init__()
        self.layer = layer  # None: softmax-weighted sum of every layer (SUPERB)
        if layer is None:
            self.layer_sum = WeightedLayerSum(num_layers)
        self.prompt = PromptVAE(shape.prompt_channels, shape.prompt_latent)
        self.decoder = AcousticDecoder(
            dim, out_dim, shape.prompt_latent, frame_rate, 100.0, shape.dim, shape.layers,
            shape.conv_layers, shape.heads, shape.ff_dim, shape.dropout,
        )  # fmt: skip

    def representation(self, features: torch.Tensor) -> torch.Tensor:
        """B x L x T x D -> B x T x D: what the decoder reads."""
        if self.layer is None:
            return self.layer_sum(features)
        return features[:, self.layer]

    def decode(
        self, rep: torch.Tensor, lengths: torch.Tensor, clip: torch.Tensor, frames: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        z, mu, logvar = self.prompt(clip)
        return self.decoder(rep, lengths, z, frames), mu, logvar


def masked_mse(pred: torch.Tensor, target: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the valid frames (B x T x D tensors, ``frames`` per item)."""
    keep = lengths_mask(frames, pred.shape[1])
    return F.mse_loss(pred[keep], target[keep])


def generation_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    frames: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    kl_margin: float,
    kl_weight: float,
) -> torch.Tensor:
    """Standardised-feature MSE + weight * max(0, KL - Delta) (CTAP eq. 2)."""
    return masked_mse(pred, target, frames) + kl_weight * kl_with_margin(mu, logvar, kl_margin)


# ----------------------------------------------------------------------------- targets


def vocoder_fingerprint(vocoder: Any) -> str:
    """What identifies the features a vocoder analyses: its name, code and feature spec."""
    spec = json.dumps(
        {"name": vocoder.name, "features": repr(vocoder.features), "code": vocoder.fingerprint()},
        sort_keys=True,
    )
    return hashlib.sha256(spec.encode()).hexdigest()[:16]


class VocoderTargets:
    """``vocoder.wave_to_mel`` of records' main audio, cached on disk by content hash, and
    standardised with per-dimension train statistics."""

    def __init__(self, vocoder: Any, root: Path | None = None) -> None:
        self.vocoder = vocoder
        self.root = (root or paths.cache_dir() / "vocoder-features") / (
            f"{vocoder.name}-{vocoder_fingerprint(vocoder)}"
        )
        self.mean: torch.Tensor | None = None
        self.std: torch.Tensor | None = None

    def _path(self, record: Utterance) -> Path:
        key = record.sha1.get("main") or hashlib.sha1(record.id.encode()).hexdigest()
        return self.root / key[:2] / f"{key}.npy"

    def raw(self, corpus: Corpus, record: Utterance) -> torch.Tensor:
        path = self._path(record)
        if path.exists():
            try:
                return torch.from_numpy(np.load(path))
            except (OSError, ValueError):  # truncated by a crash: recompute
                log.warning("vocoder features %s unreadable; recomputed", path)
        wav = audio.load(corpus.audio_path(record), RATE, record.sample_rate)
        features = self.vocoder.wave_to_mel(wav, RATE).float()
        atomic.write_with(path, lambda tmp: np.save(open(tmp, "wb"), features.numpy()))
        return features

    def fit(self, corpus: Corpus, records: Sequence[Utterance]) -> None:
        """Per-dimension mean / std over every training frame (computing missing ones)."""
        from tqdm import tqdm

        total = count = square = None
        for record in tqdm(records, desc=f"{self.vocoder.name} targets", leave=False):
            f = self.raw(corpus, record).double()
            total = f.sum(0) if total is None else total + f.sum(0)
            square = (f**2).sum(0) if square is None else square + (f**2).sum(0)
            count = f.shape[0] if count is None else count + f.shape[0]
        if not count:
            raise ConfigError("no training records to compute vocoder feature statistics from")
        mean = total / count
        self.mean = mean.float()
        self.std = (square / count - mean**2).clamp(min=1e-6).sqrt().float()

    def standardised(self, corpus: Corpus, record: Utterance) -> torch.Tensor:
        assert self.mean is not None and self.std is not None, "fit() first"
        return (self.raw(corpus, record) - self.mean) / self.std

    def to_wave(self, standardised: torch.Tensor) -> torch.Tensor:
        """Vocode standardised predictions (T x D) back to a 16 kHz waveform."""
        assert self.mean is not None and self.std is not None
        return self.vocoder.mel_to_wave(standardised * self.std + self.mean)

    def state(self) -> dict[str, Any]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}  # type: ignore[union-attr]

    def load_state(self, state: dict[str, Any]) -> None:
        self.mean, self.std = torch.tensor(state["mean"]), torch.tensor(state["std"])


def pad_targets(targets: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """B x T x D zero-padded and the frames of each (speechbench.batching's padding)."""
    from speechbench.batching import pad_frames

    return pad_frames(targets)


# ----------------------------------------------------------------------------- prompts


def prompt_log_mel(wav: torch.Tensor) -> torch.Tensor:
    """The shared prompt encoder's input: the griffin-lim evaluator's 80-band log-mel
    (n_mels x T at 100 frames/s)."""
    from speechbench.evaluators.vocoders import log_mel

    return log_mel(wav).T


class PromptPool:
    """Utterances long enough to give a ``seconds`` prompt clip, per (corpus, speaker).

    A record's prompt is another utterance (another sentence) of the same speaker: from
    its own split, else from train (a training prompt for a dev/test record leaks
    nothing; the reverse would). A speaker with no such utterance is one clear error.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.by_speaker: dict[tuple[str, str, str], list[Utterance]] = defaultdict(list)

    def add(self, corpus: str, records: Sequence[Utterance]) -> None:
        for r in records:
            if r.duration >= self.seconds:
                self.by_speaker[(corpus, r.speaker or "", r.split)].append(r)
        for group in self.by_speaker.values():
            group.sort(key=lambda r: r.id)

    def candidates(self, corpus: str, speaker: str, split: str, exclude: set[str]):
        """Eligible prompt utterances of ``speaker`` (own split first, else train)."""
        for where in (split, "train"):
            found = [
                r
                for r in self.by_speaker.get((corpus, speaker, where), [])
                if r.id not in exclude and _sentence(r) not in exclude
            ]
            if found:
                return found
        raise ConfigError(
            f"corpus {corpus}: speaker {speaker or '(none)'} has no other utterance of at "
            f"least {self.seconds:g} s in {split} or train to take a prompt from; "
            "add longer recordings of this speaker or lower downstream.prompt_seconds"
        )

    def check(self, corpus: str, records: Sequence[Utterance]) -> None:
        """Every record has a prompt (fails early, before training)."""
        for r in records:
            self.candidates(corpus, r.speaker or "", r.split, {r.id, _sentence(r)})

    def clip(
        self, corpus: Corpus, speaker: str, split: str, exclude: set[str], train: bool
    ) -> tuple[torch.Tensor, Utterance]:
        """A ``seconds`` waveform clip: a random utterance and offset in training (torch's
        RNG, seeded per epoch by the training loop), the first candidate's start else."""
        pool = self.candidates(corpus.name, speaker, split, exclude)
        pick = pool[int(torch.randint(len(pool), ()).item())] if train else pool[0]
        wav = audio.load(corpus.audio_path(pick), RATE, pick.sample_rate)
        n = int(round(self.seconds * RATE))
        start = int(torch.randint(max(wav.numel() - n, 0) + 1, ()).item()) if train else 0
        return wav[start : start + n], pick


def _sentence(record: Utterance) -> str:
    return str(record.labels.get("sentence", record.text or record.id))


# ----------------------------------------------------------------------------- scoring

CI_METRICS = ("spk_sim", "mcd", "msep", "f0_rmse", "f0_corr", "vde", "dnsmos_ovrl")
REPORTED = ("wer", "cer", "spk_sim", "mcd", "msep", "f0_rmse", "f0_corr", "vde", "dnsmos_ovrl")


@dataclass
class GenItem:
    """One generated utterance and what it is scored against."""

    id: str
    wave: torch.Tensor  # 16 kHz
    text: str  # what it should say
    reference: torch.Tensor | None  # parallel ground truth (target voice, same text)
    speaker_refs: list[torch.Tensor]  # held-out utterances of the target speaker
    other_refs: list[torch.Tensor] | None = None  # e.g. the source speaker (VC diagnostic)


def _with_ci(prefix: str, scores: Any, texts: list[str], bootstrap: int) -> dict[str, float]:
    """Reported means plus 95% bootstrap intervals over items (WER: corpus-level)."""
    from speechbench.metrics.base import get_metric
    from speechbench.metrics.bootstrap import bootstrap_ci, mean_ci

    from speechbench.text import normalize

    out: dict[str, float] = {}
    for key in REPORTED:
        if key in scores.metrics:
            out[f"{key}{prefix}"] = float(scores.metrics[key])
    if bootstrap <= 0:
        return out
    for key in CI_METRICS:
        values = [row.get(key) for row in scores.items]
        values = [v for v in values if v is not None]
        if len(values) >= 2:
            ci = mean_ci(values, n_resamples=bootstrap)
            out[f"{key}{prefix}_ci_low"], out[f"{key}{prefix}_ci_high"] = ci.low, ci.high
    if "wer" in scores.metrics and len(texts) >= 2:
        refs = [normalize(t) for t in texts]
        hyps = [row.get("transcript", "") for row in scores.items]
        ci = bootstrap_ci(get_metric("wer"), refs, hyps, n_resamples=bootstrap)
        out[f"wer{prefix}_ci_low"], out[f"wer{prefix}_ci_high"] = ci.low, ci.high
    return out


def unrelated_wer(texts: list[str], transcripts: list[str]) -> float:
    """WER of each item's text against the transcript of *another* item's speech (the
    next one with a different text): the score of speech that says something else."""
    from speechbench.metrics.recognition import word_error_rate

    from speechbench.text import normalize

    n = len(texts)
    refs, hyps = [], []
    for i in range(n):
        for step in range(1, n):
            j = (i + step) % n
            if normalize(texts[j]) != normalize(texts[i]):
                refs.append(normalize(texts[i]))
                hyps.append(transcripts[j])
                break
    if not refs:
        raise ConfigError("unrelated-speech WER needs items with at least two different texts")
    return float(word_error_rate(refs, hyps))


def check_audible(items: Sequence[GenItem]) -> None:
    """Silent or non-finite generated audio is one clear error naming the items."""
    from speechbench.evaluators.pairs import SILENCE_PEAK

    bad = [
        i.id
        for i in items
        if i.wave.numel() == 0
        or not torch.isfinite(i.wave).all()
        or float(i.wave.abs().max()) < SILENCE_PEAK
    ]
    if bad:
        raise AudioError(
            f"{len(bad)} generated item(s) are silent or not finite (peak below -80 dBFS): "
            f"{', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}; the decoder produced "
            "no audible speech (check the run's training loss)"
        )


def score_generation(
    items: Sequence[GenItem],
    ctx: Any,
    copy_vocoder: Any | None,
    bootstrap: int = 1000,
    other_name: str = "source",
    suffix: str = "",
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Metrics of the generated items and of the copy-synthesis ceiling (``_copy``: each
    item's reference analysed and resynthesised by ``copy_vocoder``), the unrelated-
    speech WER (``wer_unrelated``), and per-item rows. ``suffix`` qualifies every key
    (``_real``: the real target voices)."""
    from speechbench.evaluators.pairs import score_pairs

    check_audible(items)
    texts = [i.text for i in items]
    ids = [i.id for i in items]
    refs = [i.reference for i in items] if all(i.reference is not None for i in items) else None
    evaluators = dict(
        transcriber=ctx.evaluator("whisper-tiny-en"),
        speaker=ctx.evaluator("ge2e"),
        quality=ctx.evaluator("dnsmos"),
    )
    system = score_pairs(
        [i.wave for i in items], refs, sample_rate=RATE, texts=texts,
        speaker_references=[i.speaker_refs for i in items], ids=ids, **evaluators,
    )  # fmt: skip
    metrics = _with_ci(suffix, system, texts, bootstrap)
    rows = system.items
    for key, missing in system.unscored.items():
        metrics[f"unscored_{key}{suffix}"] = float(missing)
    if all(i.other_refs for i in items):
        other = score_pairs(
            [i.wave for i in items], None, sample_rate=RATE,
            speaker_references=[i.other_refs for i in items], ids=ids,
            transcriber=None, speaker=evaluators["speaker"], quality=None, spectral=False,
        )  # fmt: skip
        metrics[f"spk_sim_{other_name}"] = other.metrics["spk_sim"]
        for row, o in zip(rows, other.items, strict=True):
            row[f"spk_sim_{other_name}"] = o["spk_sim"]
    if copy_vocoder is not None and refs is not None:
        copies = [copy_vocoder.copy_synthesis(r, RATE) for r in refs]
        ceiling = score_pairs(
            copies, refs, sample_rate=RATE, texts=texts,
            speaker_references=[i.speaker_refs for i in items], ids=ids, **evaluators,
        )  # fmt: skip
        metrics.update(_with_ci("_copy", ceiling, texts, bootstrap))
        transcripts = [row.get("transcript", "") for row in ceiling.items]
        metrics["wer_unrelated"] = unrelated_wer(texts, transcripts)
        for row, c in zip(rows, ceiling.items, strict=True):
            row["copy"] = {k: c.get(k) for k in ("transcript", "wer", "spk_sim", "mcd", "msep")}
    metrics[f"num_items{suffix}"] = float(len(items))
    return {k: v for k, v in metrics.items() if v is not None and np.isfinite(v)}, rows


class RealVoices:
    """Real target speakers for the speaker-similarity and WER columns: the test-split
    speakers of another corpus (``mini-sv``: held-out real voices of Asterisk and Fish
    Fillets recordings), non-parallel, so no MCD / MSEP. Per speaker: a prompt utterance
    of at least ``seconds`` (its first ``seconds`` are the clip) and up to three other
    utterances as the speaker reference. Nothing of it is trained on."""

    def __init__(self, corpus_name: str, seconds: float) -> None:
        from speechbench import registry

        corpus = registry.get("corpora", corpus_name)()
        if not corpus.is_prepared():
            log.info("preparing corpus %s for the real target voices", corpus_name)
        self.corpus, self.seconds = corpus, seconds
        by_speaker: dict[str, list[Utterance]] = defaultdict(list)
        for r in corpus.prepare():
            if r.split == "test":
                by_speaker[r.speaker or ""].append(r)
        self.voices: list[tuple[str, Utterance, list[Utterance]]] = []
        for speaker, group in sorted(by_speaker.items()):
            group = sorted(group, key=lambda r: r.id)
            long = [r for r in group if r.duration >= seconds]
            if long and len(group) >= 2:
                others = [r for r in group if r.id != long[0].id][:3]
                self.voices.append((speaker, long[0], others))
        if not self.voices:
            raise ConfigError(
                f"corpus {corpus_name} has no test speaker with an utterance of at least "
                f"{seconds:g} s and another to compare with; pass downstream.real_voices=none"
            )

    def load(self, record: Utterance) -> torch.Tensor:
        return audio.load(self.corpus.audio_path(record), RATE, record.sample_rate)

    def clip(self, index: int) -> torch.Tensor:
        return self.load(self.voices[index][1])[: int(round(self.seconds * RATE))]

    def references(self, index: int) -> list[torch.Tensor]:
        return [self.load(r) for r in self.voices[index][2]]


def score_real_voices(
    sources: Sequence[Utterance],
    generate: Any,
    voices: RealVoices,
    ctx: Any,
    bootstrap: int,
    samples: int = 0,
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """``generate(source record, prompt clip) -> wave`` for each source with a real voice
    (round robin), scored as ``*_real``; ``spk_sim_real_natural`` is the same speaker's
    prompt utterance against the same references (the natural-speech ceiling)."""
    from speechbench.evaluators.pairs import score_pairs

    items, outputs = [], []
    for k, source in enumerate(sources):
        index = k % len(voices.voices)
        speaker, prompt, _ = voices.voices[index]
        wave = generate(source, voices.clip(index))
        items.append(GenItem(f"{source.id}->{speaker}", wave, source.text or "", None,
                             voices.references(index)))  # fmt: skip
        outputs.append({"id": items[-1].id, "source": source.id, "target_speaker": speaker,
                        "prompt": prompt.id, "real_voice": True})  # fmt: skip
    metrics, rows = score_generation(items, ctx, None, bootstrap, suffix="_real")
    for out, sample in zip(outputs, write_samples(ctx, items, samples, "real"), strict=False):
        out.update(sample)
    natural = score_pairs(
        [voices.load(v[1]) for v in voices.voices], None, sample_rate=RATE,
        speaker_references=[voices.references(i) for i in range(len(voices.voices))],
        transcriber=None, speaker=ctx.evaluator("ge2e"), quality=None, spectral=False,
    )  # fmt: skip
    metrics["spk_sim_real_natural"] = natural.metrics["spk_sim"]
    metrics["num_real_voices"] = float(len(voices.voices))
    for out, row in zip(outputs, rows, strict=True):
        out.update({k: v for k, v in row.items() if k != "id"})
    return metrics, outputs


def score_outputs(
    options: Any,
    vocoder: Any,
    items: Sequence[GenItem],
    outputs: list[dict[str, Any]],
    real: Sequence[Utterance],
    generate: Callable[[Utterance, torch.Tensor], torch.Tensor],
    ctx: Any,
    folder: str,
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """The test scoring both probes share: score the generated ``items``, add each one's
    scores and kept samples to its row of ``outputs``, then the real-voice rows (when
    ``options.real_voices`` is on), made with ``generate(source, prompt clip)``."""
    metrics, rows = score_generation(items, ctx, vocoder, options.bootstrap)
    samples = write_samples(ctx, items, options.samples, folder)
    for out, row in zip(outputs, rows, strict=True):
        out.update({k: v for k, v in row.items() if k != "id"})
    for out, sample in zip(outputs, samples, strict=False):
        out.update(sample)
    if options.real_voices != "none" and real:
        voices = RealVoices(options.real_voices, options.prompt_seconds)
        real_metrics, real_rows = score_real_voices(
            real, generate, voices, ctx, options.bootstrap, options.samples
        )
        metrics.update(real_metrics)
        outputs.extend(real_rows)
    return metrics, outputs


def write_samples(
    ctx: Any, items: Sequence[GenItem], count: int, folder: str
) -> list[dict[str, str]]:
    """The first ``count`` generated waveforms (and their references) as 16 kHz WAVs."""
    written = []
    if not ctx.sink.enabled:
        return written
    for item in items[:count]:
        name = item.id.replace(">", "")  # "a->b" ids of the real-voice items
        entry = {"id": item.id, "audio": ctx.sink.audio(f"{folder}/{name}.wav", item.wave, RATE)}
        if item.reference is not None:
            entry["reference_audio"] = ctx.sink.audio(
                f"{folder}/{name}.reference.wav", item.reference, RATE
            )
        written.append(entry)
    return written


def seeded_subset(records: Sequence[Utterance], count: int, seed: int) -> list[Utterance]:
    """``count`` records (all when 0 or more than there are), a seeded draw, by id."""
    ordered = sorted(records, key=lambda r: r.id)
    if count <= 0 or count >= len(ordered):
        return ordered
    return sorted(random.Random(seed).sample(ordered, count), key=lambda r: r.id)
