"""Typed configuration of masked-prediction pretraining (HuBERT, WavLM), ``key=value``.

Defaults are the shipped ``hubert-mini`` / ``wavlm-mini``: the HuBERT-Base shape (a
7-layer CNN waveform encoder with strides 5,2,2,2,2,2,2 -> 50 frames/s, a convolutional
relative position embedding, a post-LN transformer) scaled to the parameter count and
the CPU budget of the shipped CTAP checkpoint (about 4.2 M parameters, 22 CPU-minutes
on one core). Overrides are checked by the same parser as ``pretrain ctap``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

FAMILIES = ("hubert", "wavlm")


@dataclass
class MaskedModelConfig:
    """Architecture, targets and masking (HuBERT-Base values in comments)."""

    # 512: the CNN keeps its 7 layers and strides; at 64 channels a 32 s batch costs about
    # 1.6 CPU-s forward + backward (128: 2.3 s), so the 22-minute budget buys ~800 steps,
    # the same order as CTAP's 1013
    conv_channels: int = 64
    encoder_layers: int = 5  # 12
    embed_dim: int = 256  # 768
    ffn_dim: int = 992  # 3072; 992 makes 4.24 M parameters, the shipped CTAP has 4.22 M
    heads: int = 4  # 12
    final_dim: int = 64  # 256: the projection the cluster embeddings live in
    conv_pos: int = 64  # 128: kernel of the convolutional position embedding
    conv_pos_groups: int = 16
    dropout: float = 0.1
    # targets of iteration 1: k-means of MFCC-39 at 100 frames/s (the paper: 100 clusters)
    clusters: int = 100
    kmeans_frames: int = 200_000  # frames the k-means is fitted on (a seeded sample)
    # span masking: p = 8 % of frames start a span of 10 (fairseq's mask_prob = p x span)
    mask_start_prob: float = 0.08
    mask_length: int = 10
    # the HuBERT paper's alpha: loss = alpha x CE(masked) + (1 - alpha) x CE(unmasked frames).
    # 1.0 is HuBERT-Base's choice; at this tiny budget alpha = 1 collapses (every frame of
    # the top layer the same vector, predicting the cluster prior: docs/pretraining.md), so
    # the shipped models use 0.5, a value the paper also studies (Sec. IV-C, Table VI).
    alpha: float = 0.5
    feature_penalty: float = 10.0  # weight of the CNN output's L2 penalty (fairseq HuBERT)
    # WavLM: gated relative position bias and denoising with utterance mixing
    num_buckets: int = 320
    max_distance: int = 800
    mix_prob: float = 0.2  # share of utterances mixed with an interferer (the paper: 20 %)
    mix_noise_share: float = 0.5  # of the mixed ones: noise instead of another utterance
    mix_max_ratio: float = 0.5  # the interferer covers at most this share of the utterance
    mix_db: float = 5.0  # energy ratio main/interferer uniform in [-mix_db, mix_db] dB


@dataclass
class MaskedTrainConfig:
    """Optimisation and budget; ``max_minutes`` on ``clock`` counts across resumes."""

    max_steps: int = 100_000
    max_minutes: float = 22.0
    clock: str = "cpu"  # "cpu": this process's CPU time (fair on a shared machine)
    batch_seconds: float = 32.0  # audio per batch
    max_seconds: float = 4.0  # random crops of at most this long
    lr: float = 5e-4
    weight_decay: float = 0.01
    warmup_steps: int = 100
    grad_clip: float = 10.0
    checkpoint_every: int = 50
    log_every: int = 10
    eval_every: int = 200
    eval_utterances: int = 64
    threads: int = 1


@dataclass
class MaskedPretrainConfig:
    """Everything one run needs; saved next to its checkpoints."""

    model_name: str = "hubert"  # hubert | wavlm
    corpus: str = "mini-phone"  # the same train-split records as the shipped CTAP
    train_split: str = "train"
    eval_split: str = "dev"
    out_dir: str = ""  # default: $SPEECHBENCH_HOME/pretrain/<model_name>
    resume: bool = True
    seed: int = 0
    export_dir: str = ""  # also write <model_name>-mini.pt in the s3prl format here
    model: MaskedModelConfig = field(default_factory=MaskedModelConfig)
    train: MaskedTrainConfig = field(default_factory=MaskedTrainConfig)
