"""HuBERT and WavLM masked-prediction pretraining, small enough for 2 CPU cores.

The models are s3prl's own implementations (``s3prl.upstream.hubert.hubert_model.
HubertModel`` and ``s3prl.upstream.wavlm.WavLM.WavLM``, fairseq ports), so the shipped
checkpoints are exactly what s3prl's ``hubert_local`` / ``wavlm_local`` loaders read:
the rows of ``hubert-mini`` and ``wavlm-mini`` take the code path a user's HuBERT-Base
checkpoint takes.

- **Targets** (HuBERT iteration 1, Hsu et al. 2021): k-means clusters of MFCC-39 frames
  at 100 frames/s, fitted on the train split only; the model's 50 frames/s outputs
  predict every second label (fairseq's ``label_rate`` / ``feat2tar_ratio``).
- **Objective**: span masking (p = 8 % of frames start a span of 10), cross-entropy
  over the masked frames of the cosine similarity (temperature 0.1) between projected
  outputs and learned cluster embeddings, plus the CNN feature penalty.
- **WavLM** (Chen et al. 2022) adds gated relative position bias (in the encoder, by its
  config) and denoising masked prediction: a share of the utterances is mixed with a
  segment of another training utterance or of noise at -5..5 dB, and the targets stay
  those of the main utterance.

The loop shares the CTAP loop's pieces (``speechbench.ctap.pretrain``: the budget
clock, learning-rate schedule, atomic checkpoints, train-split-only corpus loading);
a run lives in ``out_dir`` and resumes from ``last.pt``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from speechbench import atomic, audio, paths
from speechbench._torchaudio import torchaudio  # noqa: F401  (before s3prl)
from speechbench.corpora.base import Utterance
from speechbench.ctap.pretrain import SOURCES, load_corpora, save_checkpoint, write_sources
from speechbench.errors import ConfigError
from speechbench.pretraining.config import FAMILIES, MaskedModelConfig, MaskedPretrainConfig
from speechbench.pretraining.loop import Progress, train_steps

SAMPLE_RATE = 16000
HOP = 320  # CNN stride: 50 frames/s
FIELD = 400  # CNN receptive field
LABEL_HOP = 160  # MFCC targets: 100 frames/s
LOGIT_TEMPERATURE = 0.1
CHECKPOINT = "last.pt"


# ---------------------------------------------------------------- configs of s3prl's models


def conv_layers(channels: int) -> str:
    """HuBERT-Base's CNN (7 layers, kernels 10,3,3,3,3,2,2, strides 5,2,2,2,2,2,2)."""
    return f"[({channels},10,5)] + [({channels},3,2)] * 4 + [({channels},2,2)] * 2"


def common_cfg(model: MaskedModelConfig) -> dict[str, Any]:
    return {
        "extractor_mode": "default",
        "conv_feature_layers": conv_layers(model.conv_channels),
        "encoder_layers": model.encoder_layers,
        "encoder_embed_dim": model.embed_dim,
        "encoder_ffn_embed_dim": model.ffn_dim,
        "encoder_attention_heads": model.heads,
        "conv_pos": model.conv_pos,
        "conv_pos_groups": model.conv_pos_groups,
        "dropout": model.dropout,
        "attention_dropout": model.dropout,
        "activation_dropout": 0.0,
        "encoder_layerdrop": 0.0,
        "mask_prob": model.mask_start_prob * model.mask_length,
        "mask_length": model.mask_length,
        "normalize": False,
    }


def hubert_cfgs(model: MaskedModelConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """(task_cfg, model_cfg) dicts of s3prl's HubertPretrainingConfig / HubertConfig."""
    from s3prl.upstream.hubert.hubert_model import HubertConfig, HubertPretrainingConfig

    task = asdict(HubertPretrainingConfig(label_rate=SAMPLE_RATE / LABEL_HOP, normalize=False))
    settings = {k: v for k, v in common_cfg(model).items() if k != "normalize"}
    config = asdict(
        HubertConfig(
            label_rate=SAMPLE_RATE / LABEL_HOP,
            final_dim=model.final_dim,
            logit_temp=LOGIT_TEMPERATURE,
            **settings,
        )
    )
    return task, config


def wavlm_cfg(model: MaskedModelConfig) -> dict[str, Any]:
    """The dict s3prl's WavLMConfig reads: relative position bias with the GRU gate."""
    return {
        **common_cfg(model),
        "relative_position_embedding": True,
        "num_buckets": model.num_buckets,
        "max_distance": model.max_distance,
        "gru_rel_pos": True,
        "layer_norm_first": False,
    }


def cluster_symbols(clusters: int) -> list[list[str]]:
    return [[str(i) for i in range(clusters)]]


class HubertPretrainer(nn.Module):
    """s3prl's HubertModel, trained through its own fairseq forward (masked logits)."""

    family = "hubert"

    def __init__(self, model: MaskedModelConfig) -> None:
        super().__init__()
        from s3prl.upstream.hubert.hubert_model import (
            HubertConfig,
            HubertModel,
            HubertPretrainingConfig,
        )

        self.task_cfg, self.model_cfg = hubert_cfgs(model)
        self.symbols = cluster_symbols(model.clusters)
        self.net = HubertModel(
            HubertConfig(**self.model_cfg), HubertPretrainingConfig(**self.task_cfg), self.symbols
        )
        self.feature_penalty = model.feature_penalty
        self.alpha = model.alpha

    def forward(self, wavs: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        padding = torch.zeros(wavs.shape, dtype=torch.bool)
        out = self.net(wavs, target_list=[labels], padding_mask=padding, mask=True)
        logits = out["logit_m_list"][0]  # the positive is column 0 (fairseq's compute_nce)
        masked = F.cross_entropy(logits.float(), logits.new_zeros(len(logits), dtype=torch.long))
        unmasked_logits = out["logit_u_list"][0]
        unmasked = F.cross_entropy(
            unmasked_logits.float(),
            unmasked_logits.new_zeros(len(unmasked_logits), dtype=torch.long),
        )
        return {
            "masked_ce": masked,
            "unmasked_ce": unmasked.detach(),
            "feature_pen": out["features_pen"],
            "total": mixed_loss(masked, unmasked, self.alpha)
            + self.feature_penalty * out["features_pen"],
            "masked_acc": (logits.argmax(-1) == 0).float().mean().detach(),
        }

    def export(self) -> dict[str, Any]:
        """s3prl's converted HuBERT layout (``hubert_local``), weights in fp16."""
        return {
            "task_cfg": self.task_cfg,
            "model_cfg": self.model_cfg,
            "model_weight": half(self.net.state_dict()),
            "dictionaries_symbols": self.symbols,
        }


class WavLMPretrainer(nn.Module):
    """s3prl's WavLM encoder plus HuBERT's prediction head (projection and cluster
    embeddings, which WavLM's release does not ship), run step by step so the mask is known."""

    family = "wavlm"

    def __init__(self, model: MaskedModelConfig) -> None:
        super().__init__()
        from s3prl.upstream.wavlm.WavLM import WavLM, WavLMConfig

        self.cfg = wavlm_cfg(model)
        self.net = WavLM(WavLMConfig(self.cfg))
        self.final_proj = nn.Linear(model.embed_dim, model.final_dim)
        self.label_embs = nn.Parameter(torch.empty(model.clusters, model.final_dim).uniform_())
        self.feature_penalty = model.feature_penalty
        self.alpha = model.alpha

    def forward(self, wavs: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        net = self.net
        features = net.feature_extractor(wavs).transpose(1, 2)
        penalty = features.float().pow(2).mean()
        features = net.layer_norm(features)
        if net.post_extract_proj is not None:
            features = net.post_extract_proj(features)
        features = net.dropout_input(features)
        padding = torch.zeros(features.shape[:2], dtype=torch.bool)
        x, mask = net.apply_mask(features, padding)
        x, _ = net.encoder(x, padding_mask=padding)
        frames = min(x.shape[1], labels.shape[1] // 2)  # 100/s labels -> every second one
        mask = mask[:, :frames]
        frame_labels = labels[:, : 2 * frames : 2]
        hidden = x[:, :frames]
        logits = self.cluster_logits(hidden[mask])
        masked = F.cross_entropy(logits.float(), frame_labels[mask])
        unmasked = F.cross_entropy(self.cluster_logits(hidden[~mask]).float(), frame_labels[~mask])
        return {
            "masked_ce": masked,
            "unmasked_ce": unmasked.detach(),
            "feature_pen": penalty,
            "total": mixed_loss(masked, unmasked, self.alpha) + self.feature_penalty * penalty,
            "masked_acc": (logits.argmax(-1) == frame_labels[mask]).float().mean().detach(),
        }

    def cluster_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Cosine similarity to each cluster embedding over a temperature (HuBERT's head)."""
        projected = self.final_proj(hidden)
        similarity = F.cosine_similarity(projected[:, None, :], self.label_embs[None], dim=-1)
        return similarity / LOGIT_TEMPERATURE

    def export(self) -> dict[str, Any]:
        """s3prl's WavLM layout (``wavlm_local``: ``cfg``, ``model``), weights in fp16."""
        return {"cfg": self.cfg, "model": half(self.net.state_dict())}


def mixed_loss(masked: torch.Tensor, unmasked: torch.Tensor, alpha: float) -> torch.Tensor:
    """The HuBERT paper's eq. 3: alpha on the masked frames, 1 - alpha on the others."""
    if alpha == 1.0:
        return masked
    if not torch.isfinite(unmasked):  # no unmasked frame in the batch: CE of nothing
        return alpha * masked
    return alpha * masked + (1.0 - alpha) * unmasked


def build(family: str, model: MaskedModelConfig) -> nn.Module:
    if family not in FAMILIES:
        raise ConfigError(f"model_name={family!r}: valid masked-prediction models: {FAMILIES}")
    return HubertPretrainer(model) if family == "hubert" else WavLMPretrainer(model)


def half(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.half() if v.is_floating_point() else v for k, v in state.items()}


# ---------------------------------------------------------------- targets


def mfcc39(wav: torch.Tensor) -> torch.Tensor:
    """MFCC-13 + deltas + delta-deltas at 100 frames/s (25 ms windows), the features of
    HuBERT's first iteration; frame i starts at sample 160 i, so frame 2 i lines up with
    the CNN's frame i."""
    from torchaudio.compliance import kaldi

    mfcc = kaldi.mfcc(wav[None] * 32768.0, sample_frequency=SAMPLE_RATE, num_ceps=13)
    deltas = torchaudio.functional.compute_deltas(mfcc.T[None])[0]
    return torch.cat([mfcc.T, deltas, torchaudio.functional.compute_deltas(deltas[None])[0]]).T


def fit_kmeans(features: Sequence[torch.Tensor], clusters: int, frames: int, seed: int):
    """k-means (scikit-learn's MiniBatchKMeans) on a seeded sample of training frames."""
    from sklearn.cluster import MiniBatchKMeans

    stacked = torch.cat(list(features)).numpy()
    rng = np.random.default_rng(seed)
    if stacked.shape[0] > frames:
        stacked = stacked[rng.choice(stacked.shape[0], frames, replace=False)]
    kmeans = MiniBatchKMeans(
        n_clusters=clusters, random_state=seed, batch_size=10_000, n_init=3, max_iter=100
    )
    return kmeans.fit(stacked)


def cluster_labels(kmeans, features: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(kmeans.predict(features.numpy()).astype(np.int64))


# ---------------------------------------------------------------- batches


def crop_batches(
    lengths: Sequence[int], batch_seconds: float, max_seconds: float, rng: random.Random
) -> list[tuple[list[int], int]]:
    """Shuffled batches of similar-length utterances, each with one crop length (samples,
    a whole number of CNN hops plus its field) that every member has: no padding, so the
    CNN's GroupNorm never sees zeros."""
    cap = int(max_seconds * SAMPLE_RATE)
    order = sorted(range(len(lengths)), key=lambda i: (min(lengths[i], cap), rng.random()))
    batches: list[tuple[list[int], int]] = []
    current: list[int] = []
    for i in order:
        crop = min(min(lengths[j] for j in [*current, i]), cap)
        if current and crop * (len(current) + 1) > batch_seconds * SAMPLE_RATE:
            shortest = min(min(lengths[j] for j in current), cap)
            batches.append((current, shortest))
            current = []
        current.append(i)
    if current:
        batches.append((current, min(min(lengths[j] for j in current), cap)))
    out = []
    for members, crop in batches:
        frames = (crop - FIELD) // HOP + 1
        if frames >= 2:
            out.append((members, FIELD + (frames - 1) * HOP))
    rng.shuffle(out)
    return out


def crop(
    wavs: Sequence[torch.Tensor],
    labels: Sequence[torch.Tensor],
    members: list[int],
    length: int,
    rng: random.Random,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random crops (starting on a CNN hop) of waveforms and their 100/s labels."""
    label_frames = (length - FIELD) // LABEL_HOP + 1
    out_wavs, out_labels = [], []
    for i in members:
        hops = (wavs[i].numel() - length) // HOP
        start = rng.randint(0, max(hops, 0)) * HOP
        out_wavs.append(wavs[i][start : start + length])
        first = start // LABEL_HOP
        piece = labels[i][first : first + label_frames]
        if piece.numel() < label_frames:  # the last frame's window may pass the end
            piece = F.pad(piece, (0, label_frames - piece.numel()), value=int(piece[-1]))
        out_labels.append(piece)
    return torch.stack(out_wavs), torch.stack(out_labels)


def mix_utterances(
    wavs: torch.Tensor, model: MaskedModelConfig, rng: random.Random
) -> torch.Tensor:
    """WavLM's utterance mixing: with probability ``mix_prob`` an utterance gets a segment
    (at most ``mix_max_ratio`` of it) of another utterance of the batch or of noise, at an
    energy ratio uniform in +-``mix_db`` dB; its targets stay the main utterance's."""
    out = wavs.clone()
    batch, length = wavs.shape
    for i in range(batch):
        if rng.random() >= model.mix_prob:
            continue
        size = rng.randint(1, max(1, int(model.mix_max_ratio * length)))
        start = rng.randint(0, length - size)
        if batch > 1 and rng.random() >= model.mix_noise_share:
            other = rng.choice([j for j in range(batch) if j != i])
            offset = rng.randint(0, length - size)
            interferer = wavs[other, offset : offset + size]
        else:
            generator = torch.Generator().manual_seed(rng.randrange(2**31))
            interferer = torch.randn(size, generator=generator)
        main_energy = wavs[i].pow(2).mean().clamp_min(1e-8)
        int_energy = interferer.pow(2).mean().clamp_min(1e-8)
        ratio_db = rng.uniform(-model.mix_db, model.mix_db)
        scale = torch.sqrt(main_energy / (int_energy * 10 ** (ratio_db / 10)))
        out[i, start : start + size] += scale * interferer
    return out


# ---------------------------------------------------------------- the loop


def _numpy_state() -> tuple:
    """numpy's RNG state with its key array as a tensor (loads with weights_only=True)."""
    kind, keys, pos, gauss, cached = np.random.get_state()
    return (kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(gauss), float(cached))


def run_dir(config: MaskedPretrainConfig) -> Path:
    return Path(config.out_dir) if config.out_dir else paths.home() / "pretrain" / config.model_name


def load_audio(
    records: Sequence[Utterance], roots: dict[str, Path], desc: str
) -> list[torch.Tensor]:
    return [
        audio.load(roots[r.id] / r.path, SAMPLE_RATE, r.sample_rate)
        for r in tqdm(records, desc=desc, unit="utt", leave=False)
    ]


@torch.no_grad()
def masked_accuracy(model: nn.Module, wavs, labels, seed: int) -> dict[str, float]:
    """Held-out masked-frame cluster prediction (the same masks every time: seeded)."""
    model.eval()
    state = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    np.random.seed(seed)  # fairseq's compute_mask_indices draws from numpy
    torch.manual_seed(seed)
    rng = random.Random(seed)
    totals = {"masked_ce": 0.0, "masked_acc": 0.0}
    batches = crop_batches([w.numel() for w in wavs], 32.0, 4.0, rng)
    for members, length in batches:
        x, y = crop(wavs, labels, members, length, rng)
        terms = model(x, y)
        for key in totals:
            totals[key] += float(terms[key]) * len(members)
    random.setstate(state[0])
    np.random.set_state(state[1])
    torch.set_rng_state(state[2])
    model.train()
    count = sum(len(m) for m, _ in batches) or 1
    return {key: value / count for key, value in totals.items()}


def pretrain(config: MaskedPretrainConfig) -> dict[str, Any]:
    """Train (or resume) one masked-prediction model; returns the run summary."""
    torch.set_num_threads(max(1, config.train.threads))
    if config.model_name not in FAMILIES:
        raise ConfigError(f"model_name={config.model_name!r}: valid choices {FAMILIES}")
    if not 0.0 < config.model.alpha <= 1.0:
        raise ConfigError(f"model.alpha={config.model.alpha}: expected a weight in (0, 1]")
    out = run_dir(config)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / CHECKPOINT
    resume_state = None
    if config.resume and ckpt_path.exists():
        try:
            resume_state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        except Exception as exc:  # truncated or corrupt
            raise ConfigError(
                f"{ckpt_path}: cannot load the checkpoint ({type(exc).__name__}); delete it "
                "or use resume=false to start over"
            ) from None
        if resume_state["config"]["model"] != asdict(config.model):
            raise ConfigError(
                f"{ckpt_path} was trained with a different model config; use another "
                "out_dir=... or resume=false to start over"
            )

    train_records, eval_records, roots, _, versions = load_corpora(config)
    eval_records = eval_records[: config.train.eval_utterances]
    train_wavs = load_audio(train_records, roots, "train audio")
    eval_wavs = load_audio(eval_records, roots, "eval audio")
    targets_path = out / "targets.pt"
    if targets_path.exists():
        targets = torch.load(targets_path, weights_only=True)
    else:  # iteration 1: MFCC k-means, fitted on train only
        train_mfcc = [mfcc39(w) for w in tqdm(train_wavs, desc="mfcc", leave=False)]
        kmeans = fit_kmeans(
            train_mfcc, config.model.clusters, config.model.kmeans_frames, config.seed
        )
        targets = {
            "train": [cluster_labels(kmeans, f) for f in train_mfcc],
            "eval": [cluster_labels(kmeans, mfcc39(w)) for w in eval_wavs],
            "inertia_per_frame": float(kmeans.inertia_) / config.model.kmeans_frames,
        }
        atomic.write_with(targets_path, lambda tmp: torch.save(targets, tmp))

    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    model = build(config.model_name, config.model)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.train.lr, weight_decay=config.train.weight_decay
    )
    rng = random.Random(config.seed)
    progress = Progress()
    if resume_state is not None:
        model.load_state_dict(resume_state["model"])
        optimizer.load_state_dict(resume_state["optimizer"])
        progress.step, progress.elapsed = resume_state["step"], resume_state["elapsed_seconds"]
        progress.history, progress.evals = resume_state["history"], resume_state["evals"]
        rng.setstate(resume_state["python_rng"])
        torch.set_rng_state(resume_state["torch_rng"])
        kind, keys, pos, gauss, cached = resume_state["numpy_rng"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, gauss, cached))

    base = {
        "config": asdict(config),
        "corpus_versions": versions,
        "train_utterances": len(train_wavs),
        "train_hours": sum(w.numel() for w in train_wavs) / SAMPLE_RATE / 3600,
        "parameters": sum(p.numel() for p in model.net.parameters()),
        "parameters_with_head": sum(p.numel() for p in model.parameters()),
        "kmeans_inertia_per_frame": targets["inertia_per_frame"],
        "torch": str(torch.__version__),
    }
    base["train_sources"] = write_sources(out, train_records)
    wall = time.monotonic()

    def state() -> dict[str, Any]:
        return {
            "config": asdict(config),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "step": progress.step,
            "elapsed_seconds": progress.elapsed,
            "history": progress.history,
            "evals": progress.evals,
            "python_rng": rng.getstate(),
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": _numpy_state(),
            "summary": {
                **base,
                "steps": progress.step,
                f"{config.train.clock}_minutes": round(progress.elapsed / 60.0, 2),
                "wall_minutes_this_call": round((time.monotonic() - wall) / 60.0, 2),
                "final_eval": progress.evals[-1] if progress.evals else None,
                "final_train": progress.history[-1] if progress.history else None,
            },
        }

    def evaluate() -> None:
        if eval_wavs:
            result = masked_accuracy(model, eval_wavs, targets["eval"], config.seed)
            progress.evals.append({"step": float(progress.step), **result})
            tqdm.write(f"step {progress.step}: held-out masked accuracy {result['masked_acc']:.3f}")

    lengths = [w.numel() for w in train_wavs]

    def epoch():
        batches = crop_batches(lengths, config.train.batch_seconds, config.train.max_seconds, rng)
        for members, length in batches:
            wavs, labels = crop(train_wavs, targets["train"], members, length, rng)
            if model.family == "wavlm":
                wavs = mix_utterances(wavs, config.model, rng)
            yield wavs, labels

    train_steps(
        progress,
        model=model,
        optimizer=optimizer,
        train=config.train,
        epoch=epoch,
        loss_terms=lambda batch: model(*batch),
        evaluate=evaluate,
        checkpoint=lambda: save_checkpoint(ckpt_path, state()),
        desc=f"{config.model_name} pretrain",
        postfix=("masked_ce", "masked_acc"),
    )
    final = state()
    save_checkpoint(ckpt_path, final)
    history, evals = progress.history, progress.evals
    atomic.write_json(out / "history.json", {"train": history, "eval": evals})
    if history:
        save_curve(history, evals, out / "loss_curve.png", config.model_name)
    atomic.write_json(out / "summary.json", final["summary"])
    if config.export_dir:
        export(model, final["summary"], history, evals, Path(config.export_dir), out)
    return final["summary"]


def export(model, summary, history, evals, dest: Path, out: Path) -> Path:
    """``<family>-mini.pt`` in s3prl's format, its summary json, curve and source list."""
    dest.mkdir(parents=True, exist_ok=True)
    name = f"{model.family}-mini"
    path = dest / f"{name}.pt"
    save_checkpoint(path, model.export())
    atomic.write_json(dest / f"{name}.json", summary)
    if history:
        save_curve(history, evals, dest / f"{name}_loss_curve.png", model.family)
    atomic.write_text(dest / f"{name}.{SOURCES}", (out / SOURCES).read_text())
    return path


def save_curve(history, evals, path: Path, family: str) -> None:
    """Masked cross-entropy (train) and masked accuracy (train, held-out), as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    steps = [h["step"] for h in history]
    left.plot(steps, [h["masked_ce"] for h in history], label="masked CE (train)")
    left.set_xlabel("step")
    left.set_title(f"{family} masked prediction")
    left.legend(fontsize=8)
    right.plot(steps, [h["masked_acc"] for h in history], label="train")
    if evals:
        right.plot(
            [e["step"] for e in evals],
            [e["masked_acc"] for e in evals],
            marker="o",
            label="held-out",
        )
    right.set_xlabel("step")
    right.set_ylim(0, 1)
    right.set_title("masked-frame cluster accuracy")
    right.legend(fontsize=8)
    fig.tight_layout()
    atomic.write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=90))
    plt.close(fig)
