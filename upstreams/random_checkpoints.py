"""Random-weight checkpoints in the exact formats the ssl upstreams load.

No HuBERT / WavLM / wav2vec 2.0 weights can be had offline here, so tests and the
speed benchmark build checkpoints with the real architectures (``tiny`` for tests,
``base`` = the published base sizes for timing) and random weights, written in
s3prl's converted-checkpoint layout or as a transformers model directory.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch

from speechbench._torchaudio import torchaudio  # noqa: F401  (must precede s3prl)

SIZES = {
    # encoder layers, width, FFN width, heads, CNN channels, positional conv kernel
    "tiny": (2, 64, 128, 2, 32, 16),
    "base": (12, 768, 3072, 12, 512, 128),
}


def _conv_layers(channels: int) -> str:
    return f"[({channels},10,5)] + [({channels},3,2)] * 4 + [({channels},2,2)] * 2"


def _common(size: str) -> dict:
    layers, width, ffn, heads, channels, pos_kernel = SIZES[size]
    return {
        "encoder_layers": layers,
        "encoder_embed_dim": width,
        "encoder_ffn_embed_dim": ffn,
        "encoder_attention_heads": heads,
        "conv_feature_layers": _conv_layers(channels),
        "conv_pos": pos_kernel,
        "conv_pos_groups": 16 if width >= 256 else 4,
        "final_dim": 256 if size == "base" else 32,
    }


def build_s3prl_checkpoint(family: str, path: Path, size: str = "tiny", seed: int = 0) -> Path:
    """Write an s3prl ``<family>_local`` checkpoint with random weights to ``path``."""
    torch.manual_seed(seed)
    cfg = _common(size)
    if family == "hubert":
        from s3prl.upstream.hubert.hubert_model import (
            HubertConfig,
            HubertModel,
            HubertPretrainingConfig,
        )

        task_cfg = asdict(HubertPretrainingConfig(normalize=False))
        model_cfg = asdict(HubertConfig(label_rate=50.0, **cfg))
        symbols = [["<s>", "<pad>", "</s>", "<unk>"] + [str(i) for i in range(20)]]
        model = HubertModel(HubertConfig(**model_cfg), HubertPretrainingConfig(), symbols)
        state = {
            "task_cfg": task_cfg,
            "model_cfg": model_cfg,
            "model_weight": model.state_dict(),
            "dictionaries_symbols": symbols,
        }
    elif family == "wav2vec2":
        from s3prl.upstream.wav2vec2.wav2vec2_model import (
            AudioPretrainingConfig,
            Wav2Vec2Config,
            Wav2Vec2Model,
        )

        model_cfg = asdict(Wav2Vec2Config(**cfg))
        model = Wav2Vec2Model(Wav2Vec2Config(**model_cfg))
        state = {
            "task_cfg": asdict(AudioPretrainingConfig(normalize=False)),
            "model_cfg": model_cfg,
            "model_weight": model.state_dict(),
        }
    elif family == "wavlm":
        from s3prl.upstream.wavlm.WavLM import WavLM, WavLMConfig

        wavlm_cfg = {k: v for k, v in cfg.items() if k != "final_dim"}
        wavlm_cfg |= {"relative_position_embedding": True, "num_buckets": 32}
        wavlm_cfg |= {"max_distance": 128, "gru_rel_pos": True, "normalize": False}
        model = WavLM(WavLMConfig(wavlm_cfg))
        state = {"cfg": wavlm_cfg, "model": model.state_dict()}
    else:
        raise ValueError(f"unknown family {family!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def build_transformers_dir(family: str, path: Path, size: str = "tiny", seed: int = 0) -> Path:
    """Write a transformers model directory (config.json + weights) with random weights."""
    import transformers

    torch.manual_seed(seed)
    layers, width, ffn, heads, channels, pos_kernel = SIZES[size]
    classes = {
        "hubert": (transformers.HubertConfig, transformers.HubertModel),
        "wavlm": (transformers.WavLMConfig, transformers.WavLMModel),
        "wav2vec2": (transformers.Wav2Vec2Config, transformers.Wav2Vec2Model),
    }
    config_class, model_class = classes[family]
    config = config_class(
        hidden_size=width,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=ffn,
        conv_dim=(channels,) * 7,
        num_conv_pos_embeddings=pos_kernel,
        num_conv_pos_embedding_groups=16 if width >= 256 else 4,
    )
    model_class(config).eval().save_pretrained(path)
    return path
