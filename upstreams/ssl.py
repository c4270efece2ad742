"""Self-supervised speech models: HuBERT, WavLM, wav2vec 2.0 — every hidden layer.

Two ways in, both real loaders of published formats:

- s3prl: ``upstream.path=FILE`` (an s3prl/converted checkpoint: HuBERT and wav2vec 2.0
  keys ``task_cfg, model_cfg, model_weight[, dictionaries_symbols]``, WavLM keys
  ``cfg, model``) through ``s3prl.nn.S3PRLUpstream("<family>_local")``; or s3prl's
  named model (``upstream.model=hubert_base``) with ``upstream.download=true`` where
  its hub is reachable.
- transformers: ``upstream.path=DIR`` holding ``config.json`` + weights of a
  HubertModel / WavLMModel / Wav2Vec2Model (read with ``local_files_only``).

Output: ``num_layers = encoder layers + 1`` (the CNN/projection output, then each
transformer layer), the SUPERB convention. Frames follow the CNN exactly:
``(n - receptive_field) // stride + 1`` (50 frames/s at 16 kHz for the usual
400-sample field / 320-sample stride). Long audio is cut into windows of
``max_window_seconds`` that reproduce the unwindowed CNN frames, and pieces are batched
by length under a ``batch_seconds`` budget of padded audio.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
from speechbench.upstreams.base import Upstream, checkpoint_digest
from speechbench.upstreams.batching import conv_frames, conv_windows, pad_layers, run_pieces
from torch import nn

from speechbench._torchaudio import torchaudio  # noqa: F401  (before transformers/s3prl)
from speechbench.errors import ConfigError, WeightsUnavailableError
from speechbench.options import option

_TRANSFORMERS_TYPES = {"hubert": "hubert", "wavlm": "wavlm", "wav2vec2": "wav2vec2"}


@dataclass
class SSLOptions:
    # local s3prl checkpoint file, or a transformers model directory
    path: str = ""
    # s3prl named model used when path is empty (needs download=true and a reachable hub)
    model: str = ""
    download: bool = False
    # long audio is windowed; attention sees at most this much context
    max_window_seconds: float = option(20.0, low=0.5)
    # padded audio per forward call, bounds memory
    batch_seconds: float = option(160.0, low=0.0, low_open=True, budget=True)
    batch_size: int = option(16, low=1, budget=True)


def receptive_field_and_stride(feature_extractor: nn.Module) -> tuple[int, int]:
    """Receptive field and hop (samples) of the CNN waveform encoder, from its Conv1d layers."""
    field, stride = 1, 1
    for module in feature_extractor.modules():
        if isinstance(module, nn.Conv1d):
            field += (module.kernel_size[0] - 1) * stride
            stride *= module.stride[0]
    if stride == 1:
        raise ConfigError("the checkpoint has no convolutional waveform encoder")
    return field, stride


class _S3PRLBackend(nn.Module):
    """s3prl's S3PRLUpstream: local checkpoint (``<family>_local``) or a named hub model."""

    def __init__(self, family: str, path: Path | None, model: str) -> None:
        super().__init__()
        from s3prl.nn import S3PRLUpstream

        name = f"{family}_local" if path is not None else model
        try:
            self.upstream = S3PRLUpstream(name, path_or_url=str(path) if path else None)
        except Exception as exc:
            if path is None:  # a named model: s3prl had to download it
                raise WeightsUnavailableError(
                    f"cannot fetch s3prl model {model} ({type(exc).__name__}); pass "
                    f"upstream.path= a local {family} checkpoint or transformers model dir"
                ) from None
            where = path
            raise ConfigError(
                f"{where}: not a loadable {family} checkpoint for s3prl ({exc}); "
                "pass upstream.path= an s3prl-converted checkpoint or a transformers model dir"
            ) from None
        self.upstream.eval()
        self.field, self.stride = receptive_field_and_stride(
            self.upstream.upstream.model.feature_extractor
        )

    def forward(self, waves: list[torch.Tensor]) -> list[torch.Tensor]:
        lengths = torch.tensor([w.numel() for w in waves], dtype=torch.long)
        padded = nn.utils.rnn.pad_sequence(waves, batch_first=True)
        hidden, _ = self.upstream(padded, lengths)
        return list(hidden)


class _TransformersBackend(nn.Module):
    """A local transformers model directory, read without touching the hub."""

    def __init__(self, family: str, path: Path) -> None:
        super().__init__()
        from transformers import AutoConfig, AutoModel

        config = AutoConfig.from_pretrained(path, local_files_only=True)
        if config.model_type != _TRANSFORMERS_TYPES[family]:
            raise ConfigError(
                f"{path}: is a transformers {config.model_type!r} model, not {family}; "
                f"use upstream={config.model_type} or another upstream.path"
            )
        self.model = AutoModel.from_pretrained(path, local_files_only=True)
        self.model.eval()
        preprocessor = path / "preprocessor_config.json"
        settings = json.loads(preprocessor.read_text()) if preprocessor.exists() else {}
        self.normalize = bool(settings.get("do_normalize", False))
        # transformers' convention: group-norm CNNs take zero padding, no attention mask
        self.use_mask = getattr(config, "feat_extract_norm", "group") == "layer"
        self.field, self.stride = receptive_field_and_stride(self.model.feature_extractor)

    def forward(self, waves: list[torch.Tensor]) -> list[torch.Tensor]:
        if self.normalize:
            waves = [(w - w.mean()) / torch.sqrt(w.var(unbiased=False) + 1e-7) for w in waves]
        lengths = torch.tensor([w.numel() for w in waves])
        padded = nn.utils.rnn.pad_sequence(waves, batch_first=True)
        mask = (torch.arange(padded.shape[1])[None] < lengths[:, None]).long()
        output = self.model(
            padded,
            attention_mask=mask if self.use_mask else None,
            output_hidden_states=True,
        )
        return list(output.hidden_states)


SHIPPED_DIR = Path(__file__).resolve().parent / "checkpoints"


class _SSLUpstream(Upstream):
    family: ClassVar[str]
    # a checkpoint shipped in upstreams/checkpoints/ that an empty upstream.path means
    shipped: ClassVar[str] = ""
    sample_rate = 16000
    frame_rate = 50.0
    num_layers = 0  # depends on the checkpoint
    dim = 0
    level = "frame"

    def __init__(self, options: SSLOptions | None = None) -> None:
        super().__init__(options)
        self.backend: nn.Module | None = None
        available, _ = self.weights_available(self.options)
        if available:
            self._load()

    @classmethod
    def weights_available(cls, options=None) -> tuple[bool, str]:
        options = options if options is not None else cls.Options()
        if options.path:
            path = Path(options.path).expanduser()
            if path.exists():
                return True, f"checkpoint {path}"
            return False, f"upstream.path={path} does not exist; give an existing checkpoint"
        if cls.shipped:
            path = SHIPPED_DIR / cls.shipped
            if path.is_file():
                return True, f"shipped checkpoint {path}"
            return False, (
                f"{cls.name}: shipped checkpoint {path} is missing; pretrain it with "
                f"`speechbench pretrain {cls.family} export_dir={SHIPPED_DIR}` or pass "
                "upstream.path= an s3prl checkpoint"
            )
        model = options.model or cls.Options().model
        if options.download:
            return True, f"s3prl will fetch {model} from its hub"
        return False, (
            f"{cls.name}: no checkpoint on this machine; pass upstream.path= an s3prl "
            f"{cls.family} checkpoint (.pt) or a transformers model directory "
            f"(or upstream.download=true to fetch s3prl's {model} where its hub is reachable)"
        )

    def checkpoint_path(self) -> Path | None:
        """upstream.path, else the shipped checkpoint (if the class ships one), else None
        (a named s3prl hub model)."""
        return self.checkpoint_of(self.options)

    @classmethod
    def checkpoint_of(cls, options: SSLOptions) -> Path | None:
        if options.path:
            return Path(options.path).expanduser()
        return SHIPPED_DIR / cls.shipped if cls.shipped else None

    @classmethod
    def weights_identity(cls, options: SSLOptions) -> str | None:
        path = cls.checkpoint_of(options)
        return checkpoint_digest(path) if path is not None and path.exists() else None

    def _require_weights(self) -> nn.Module:
        if self.backend is None:
            _, message = self.weights_available(self.options)
            raise WeightsUnavailableError(message)
        return self.backend

    def _load(self) -> None:
        path = self.checkpoint_path()
        if path is not None and path.is_dir():
            if not (path / "config.json").exists():
                raise ConfigError(
                    f"{path}: a transformers model directory needs config.json; "
                    "or pass an s3prl checkpoint file as upstream.path"
                )
            self.backend = _TransformersBackend(self.family, path)
        else:
            model = self.options.model or type(self).Options().model
            self.backend = _S3PRLBackend(self.family, path, model)
        self.backend.requires_grad_(False)
        self.field, self.hop = self.backend.field, self.backend.stride
        self.frame_rate = self.sample_rate / self.hop
        # a GroupNorm over time (the "default" CNN of base models) sees padding
        self.padding_sensitive = any(isinstance(m, nn.GroupNorm) for m in self.backend.modules())
        probe = self.backend(
            [torch.zeros(self.field + self.hop)]
        )  # one short forward tells layers and dims
        self.num_layers = len(probe)
        self.dim = probe[-1].shape[-1]

    def weights_fingerprint(self) -> str:
        self._require_weights()
        if (path := self.checkpoint_path()) is not None:
            return checkpoint_digest(path)
        return super().weights_fingerprint()

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        self._require_weights()
        return torch.tensor(
            [conv_frames(int(n), self.field, self.hop) for n in lengths], dtype=torch.long
        )

    @torch.no_grad()
    def forward(self, wavs, lengths):
        backend = self._require_weights()
        backend.eval()
        max_frames = max(1, int(self.options.max_window_seconds * self.frame_rate))
        pieces = [
            piece
            for item, n in enumerate(lengths.tolist())
            for piece in conv_windows(item, int(n), self.field, self.hop, max_frames)
        ]
        per_item = run_pieces(
            wavs,
            pieces,
            batch_size=self.options.batch_size,
            max_batch_samples=int(self.options.batch_seconds * self.sample_rate),
            model=backend,
            min_samples=self.field,
            equal_lengths=self.padding_sensitive,
        )
        return pad_layers(per_item)


@dataclass
class HubertOptions(SSLOptions):
    model: str = "hubert_base"


@dataclass
class WavLMOptions(SSLOptions):
    model: str = "wavlm_base_plus"


@dataclass
class Wav2Vec2Options(SSLOptions):
    model: str = "wav2vec2_base_960"


class HuBERT(_SSLUpstream):
    name = "hubert"
    family = "hubert"
    description = "HuBERT, all hidden layers (s3prl checkpoint or transformers dir)"
    Options = HubertOptions


class WavLM(_SSLUpstream):
    name = "wavlm"
    family = "wavlm"
    description = "WavLM, all hidden layers (s3prl checkpoint or transformers dir)"
    Options = WavLMOptions


class Wav2Vec2(_SSLUpstream):
    name = "wav2vec2"
    family = "wav2vec2"
    description = "wav2vec 2.0, all hidden layers (s3prl checkpoint or transformers dir)"
    Options = Wav2Vec2Options


class HuBERTMini(HuBERT):
    name = "hubert-mini"
    description = (
        "HuBERT pretrained here (masked prediction of MFCC clusters; CTAP's data and "
        "budget), loaded through s3prl's hubert_local like any HuBERT checkpoint"
    )
    shipped = "hubert-mini.pt"


class WavLMMini(WavLM):
    name = "wavlm-mini"
    description = (
        "WavLM pretrained here (denoising masked prediction, gated relative position "
        "bias; CTAP's data and budget), loaded through s3prl's wavlm_local"
    )
    shipped = "wavlm-mini.pt"
