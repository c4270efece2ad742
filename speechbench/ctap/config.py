"""Typed CTAP configuration with ``key=value`` overrides (omegaconf structured configs).

Keys are dotted: ``model.d_model=256``, ``train.max_steps=500``, ``corpus=mini-phone``.
An unknown key or a value of the wrong type is a :class:`ConfigError` that lists the
valid keys, so a typo never silently trains the wrong model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from speechbench.errors import ConfigError


@dataclass
class ModelConfig:
    """Architecture and loss options. Defaults are the small model shipped as ``upstream=ctap``."""

    sample_rate: int = 16000
    n_mels: int = 80
    # speech encoder (Whisper-encoder-like): 2 convs (the 2nd strides 2 -> 50 frames/s)
    d_model: int = 192
    speech_layers: int = 4
    heads: int = 4
    ff_dim: int = 512
    dropout: float = 0.1
    # joint embedding space of S (speech) and P (phonemes)
    joint_dim: int = 192
    # phoneme encoder: embedding -> length regulator -> conv + ReLU -> transformer at the
    # frame rate ("frame", the paper's Eq. 1); "token": conv + transformer on tokens, then
    # expansion (the first shipped checkpoint; every frame of a phone identical)
    phone_encoder: str = "frame"
    # frame positions of the phoneme encoder: "absolute" (the paper; shipped) or
    # "within_phone" (index inside the phone: no utterance-wide clock, see docs/ctap.md)
    phone_positions: str = "absolute"
    phone_layers: int = 3
    phone_kernel: int = 5
    duration_layers: int = 1  # transformer layers of the token path (phone_encoder=frame)
    # duration predictor (FastSpeech-style regression; the paper uses a diffusion model)
    duration_channels: int = 192
    duration_kernel: int = 3
    # prompt encoder (VAE): convs + an SE-ResNet block over a random clip
    prompt_seconds: float = 3.0
    prompt_channels: int = 128
    prompt_latent: int = 64
    kl_margin: float = 2.0  # Delta in max(0, KL - Delta), KL in nats summed over latent dims
    # mel decoder: transformer layers + conv layers
    use_decoder: bool = True
    decoder_dim: int = 128
    decoder_layers: int = 1
    decoder_conv_layers: int = 2
    # ablations of the paper's Table 1 (docs/ctap.md): use_decoder=false ("w/o decoder"),
    # embed_mse_weight > 0 ("L_mse(embed)": MSE between S and P; with
    # contrastive_weight=0 it replaces the contrastive loss), phoneme_decoder=true
    # ("+ phoneme decoder": transformer layers on S and on P, a frame-level CE on each)
    embed_mse_weight: float = 0.0
    phoneme_decoder: bool = False
    phone_decoder_layers: int = 1  # the paper's phoneme decoder has 6
    # loss weights
    mse_weight: float = 1.0
    kl_weight: float = 1.0
    duration_weight: float = 1.0
    contrastive_weight: float = 1.0
    init_temperature: float = 0.07
    # phone vocabulary size; set from the data (the vocabulary is saved with checkpoints)
    n_phones: int = 0


@dataclass
class TrainConfig:
    """Optimisation and budget. ``max_minutes`` stops early and still saves everything."""

    max_steps: int = 3000
    max_minutes: float = 55.0
    batch_frames: int = 1500  # speech frames (50/s) per batch, i.e. about 30 s of audio
    max_seconds: float = 6.0  # longer utterances are randomly cropped
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 200
    grad_clip: float = 1.0
    checkpoint_every: int = 100
    log_every: int = 10
    eval_every: int = 250
    eval_utterances: int = 64
    threads: int = 2
    # the clock max_minutes counts: "wall" (elapsed) or "cpu" (process CPU time, the fair
    # budget on a shared, loaded machine; with threads=1 it is one core's minutes)
    clock: str = "wall"


@dataclass
class PretrainConfig:
    """Everything one pretraining run needs; saved next to its checkpoints."""

    model_name: str = "ctap"
    corpus: str = "mini-phone"  # one corpus or a comma-separated list; only records with phones
    train_split: str = "train"
    eval_split: str = "dev"
    out_dir: str = ""  # default: $SPEECHBENCH_HOME/pretrain/ctap
    resume: bool = True  # continue from out_dir/last.pt when it exists
    seed: int = 0
    export_dir: str = ""  # also write the shipped files (fp16 weights, config, curve) here
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def valid_keys(cls: type = PretrainConfig, prefix: str = "") -> list[str]:
    """Every dotted key a user may set."""
    keys: list[str] = []
    for f in fields(cls):
        default = f.default_factory() if callable(f.default_factory) else f.default
        if is_dataclass(default):
            keys.extend(valid_keys(type(default), f"{prefix}{f.name}."))
        else:
            keys.append(f"{prefix}{f.name}")
    return keys


def parse_overrides(overrides: list[str], base: Any = None, cls: type = PretrainConfig) -> Any:
    """Apply ``key=value`` strings to the defaults of ``cls`` (or ``base``); bad keys raise
    ConfigError. Every ``speechbench pretrain`` model's config is parsed here."""
    keys = valid_keys(cls)
    for item in overrides:
        key, sep, _ = item.partition("=")
        if not sep or not key:
            raise ConfigError(
                f"bad argument {item!r}: expected key=value; valid keys: {', '.join(keys)}"
            )
        if key.strip() not in keys:
            raise ConfigError(f"unknown key {key!r}; valid keys: {', '.join(keys)}")
    schema = OmegaConf.structured(base if base is not None else cls())
    try:
        merged = OmegaConf.merge(schema, OmegaConf.from_dotlist(list(overrides)))
        config = OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        message = str(exc).splitlines()[0]
        raise ConfigError(f"bad config value: {message}; valid keys: {', '.join(keys)}") from None
    assert isinstance(config, cls)
    return config


def model_config_from_dict(data: dict[str, Any]) -> ModelConfig:
    """Rebuild a ModelConfig from a saved dict; keys unknown to this version are an error."""
    names = {f.name for f in fields(ModelConfig)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"checkpoint model config has keys {unknown} this speechbench does not know; "
            "upgrade speechbench or re-export the checkpoint"
        )
    if "phone_encoder" not in data:  # saved before the key existed: the token-level order
        data = {**data, "phone_encoder": "token"}
    return ModelConfig(**data)


def to_dict(config: Any) -> dict[str, Any]:
    return asdict(config)
