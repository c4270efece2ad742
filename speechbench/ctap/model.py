"""CTAP: contrastive token-acoustic pretraining (Qiang et al., 2023), built from torch.nn.

Two encoders map speech and phonemes into one frame-level joint space:

- speech encoder (Whisper-encoder-like): log-mel -> conv+GELU -> conv(stride 2)+GELU ->
  sinusoidal positions -> pre-LN transformer layers -> LN -> linear to ``joint_dim`` -> LN = S;
- phoneme encoder (the paper's Eq. 1 order): embedding -> length regulator (every
  phoneme repeated for its duration: ground truth in training, the duration predictor's
  at inference) -> frame positions -> conv+ReLU -> transformer layers at 50 frames/s ->
  LN -> linear to ``joint_dim`` -> LN = P; a token-level conv + transformer path feeds
  the duration predictor;
- prompt encoder (VAE): convs + an SE-ResNet block over a random clip -> (mu, logvar);
- decoder: (S or P) + prompt latent -> transformer layers -> conv layers -> mel frames.

Speech runs at 50 frames/s (10 ms mel hop, then stride 2), like Whisper's encoder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from speechbench._torchaudio import torchaudio
from speechbench.ctap.config import ModelConfig

HOP = 160  # 10 ms at 16 kHz
N_FFT = 400  # 25 ms
SPEECH_STRIDE = 2  # mel frames per speech-encoder frame
FRAME_RATE = 16000 / HOP / SPEECH_STRIDE  # 50 frames/s


def mel_frames(num_samples: torch.Tensor) -> torch.Tensor:
    """Mel frames of centred STFT framing: 1 + n // hop."""
    return num_samples // HOP + 1


def speech_frames(num_mel_frames: torch.Tensor) -> torch.Tensor:
    """Frames after the stride-2 convolution (kernel 3, padding 1): ceil(T / 2)."""
    return (num_mel_frames + 1) // SPEECH_STRIDE


def lengths_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """B x T, True on valid frames."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def sinusoidal_positions(length: int, dim: int) -> torch.Tensor:
    """Fixed sinusoidal position table (T x dim): no maximum length, as in Whisper's encoder."""
    position = torch.arange(length, dtype=torch.float32)[:, None]
    inv = torch.exp(-math.log(10000.0) * torch.arange(0, dim, 2, dtype=torch.float32) / dim)
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(position * inv)
    table[:, 1::2] = torch.cos(position * inv)[:, : dim // 2]
    return table


def transformer(dim: int, layers: int, heads: int, ff_dim: int, dropout: float) -> nn.ModuleList:
    """Pre-LN transformer layers (kept as a list so every layer's output can be read)."""
    return nn.ModuleList(
        nn.TransformerEncoderLayer(
            dim, heads, ff_dim, dropout, activation="gelu", batch_first=True, norm_first=True
        )
        for _ in range(layers)
    )


class LogMel(nn.Module):
    """16 kHz audio -> normalised log-mel (B x n_mels x T), 25 ms window, 10 ms hop.

    The global mean/std are buffers set from the training data, so the checkpoint
    carries its own normalisation.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=config.sample_rate,
            n_fft=N_FFT,
            win_length=N_FFT,
            hop_length=HOP,
            n_mels=config.n_mels,
            center=True,
            power=2.0,
        )
        self.register_buffer("mean", torch.zeros(config.n_mels))
        self.register_buffer("std", torch.ones(config.n_mels))

    def raw(self, wavs: torch.Tensor) -> torch.Tensor:
        return torch.log(self.mel(wavs) + 1e-6)

    def forward(self, wavs: torch.Tensor) -> torch.Tensor:
        return (self.raw(wavs) - self.mean[:, None]) / self.std[:, None]


class SpeechEncoder(nn.Module):
    """Mel (B x n_mels x T100) -> joint embeddings S (B x T50 x joint_dim) and hidden layers."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(config.n_mels, config.d_model, 3, padding=1)
        self.conv2 = nn.Conv1d(config.d_model, config.d_model, 3, stride=SPEECH_STRIDE, padding=1)
        self.layers = transformer(
            config.d_model, config.speech_layers, config.heads, config.ff_dim, config.dropout
        )
        self.norm = nn.LayerNorm(config.d_model)
        self.project = nn.Linear(config.d_model, config.joint_dim)
        self.out_norm = nn.LayerNorm(config.joint_dim)

    def forward(
        self, mel: torch.Tensor, mel_lengths: torch.Tensor
    ) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
        """Returns (S, hidden states [conv output, every layer], frame lengths)."""
        # zero the padding between the convs so a padded batch gives every utterance
        # exactly the features it has alone (conv zero-padding sees the same zeros)
        x = F.gelu(self.conv1(mel)) * lengths_mask(mel_lengths, mel.shape[2])[:, None, :]
        x = F.gelu(self.conv2(x)).transpose(1, 2)
        lengths = speech_frames(mel_lengths)
        x = x + sinusoidal_positions(x.shape[1], x.shape[2]).to(x)
        pad = ~lengths_mask(lengths, x.shape[1])
        hidden = [x]
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=pad)
            hidden.append(x)
        s = self.out_norm(self.project(self.norm(x)))
        return s, hidden, lengths


def length_regulate(
    hidden: torch.Tensor, durations: torch.Tensor, phone_lengths: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Repeat every token ``durations`` times (FastSpeech's length regulator).

    hidden B x N x C, durations B x N (non-negative ints; padding tokens must be 0 or
    masked by ``phone_lengths``) -> (B x T x C padded with zeros, frame lengths B).
    """
    durations = durations.long().clamp(min=0)
    if phone_lengths is not None:
        durations = durations * lengths_mask(phone_lengths, durations.shape[1])
    expanded = [
        torch.repeat_interleave(h, d, dim=0) for h, d in zip(hidden, durations, strict=True)
    ]
    lengths = durations.sum(dim=1)
    out = hidden.new_zeros(hidden.shape[0], max(int(lengths.max()), 1), hidden.shape[2])
    for i, frames in enumerate(expanded):
        out[i, : frames.shape[0]] = frames
    return out, lengths


class DurationPredictor(nn.Module):
    """Two conv+ReLU+LN blocks -> log(1 + frames) per phoneme (FastSpeech 2 style)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        c, k = config.duration_channels, config.duration_kernel
        self.convs = nn.ModuleList(
            [nn.Conv1d(config.d_model, c, k, padding=k // 2), nn.Conv1d(c, c, k, padding=k // 2)]
        )
        self.norms = nn.ModuleList([nn.LayerNorm(c), nn.LayerNorm(c)])
        self.dropout = nn.Dropout(config.dropout)
        self.out = nn.Linear(c, 1)

    def forward(self, hidden: torch.Tensor, phone_lengths: torch.Tensor) -> torch.Tensor:
        keep = lengths_mask(phone_lengths, hidden.shape[1])[:, :, None].to(hidden)
        x = hidden
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = x * keep  # padding must not leak into the last phonemes through the convs
            x = self.dropout(norm(F.relu(conv(x.transpose(1, 2))).transpose(1, 2)))
        return self.out(x).squeeze(-1)

    @staticmethod
    def to_frames(log_durations: torch.Tensor, phone_lengths: torch.Tensor) -> torch.Tensor:
        """Rounded frame counts (at least 1 per real phoneme, 0 on padding)."""
        frames = torch.clamp(torch.round(torch.expm1(log_durations)), min=1).long()
        return frames * lengths_mask(phone_lengths, frames.shape[1])


class PhonemeEncoder(nn.Module):
    """Phoneme ids -> P (B x T x joint_dim), the paper's Eq. 1 order by default.

    ``phone_encoder="frame"`` (the paper): embedding -> length regulator -> sinusoidal
    frame positions -> conv + ReLU -> transformer layers at the speech frame rate -> LN
    -> linear -> LN. Every frame of a phone then has its own vector (its position and
    its neighbourhood differ), which the frame-level contrastive target needs.
    A token-level path (embedding -> conv + ReLU -> ``duration_layers`` transformer
    layers) feeds the duration predictor.

    ``phone_encoder="token"`` is the order of the first shipped checkpoint (conv and
    transformer on tokens, then expansion): every frame of a phone gets one vector, so
    the contrastive loss has a floor of about log(duration). Kept to load that
    checkpoint and as an ablation.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.n_phones <= 0:
            raise ValueError("model.n_phones must be set from the phone vocabulary")
        if config.phone_encoder not in ("frame", "token"):
            raise ValueError(
                f"model.phone_encoder must be 'frame' or 'token', not {config.phone_encoder!r}"
            )
        self.order = config.phone_encoder
        self.embed = nn.Embedding(config.n_phones, config.d_model, padding_idx=0)
        k = config.phone_kernel
        self.conv = nn.Conv1d(config.d_model, config.d_model, k, padding=k // 2)
        self.layers = transformer(
            config.d_model, config.phone_layers, config.heads, config.ff_dim, config.dropout
        )
        self.norm = nn.LayerNorm(config.d_model)
        self.project = nn.Linear(config.d_model, config.joint_dim)
        self.out_norm = nn.LayerNorm(config.joint_dim)
        if self.order == "frame":  # the token-level path of the duration predictor
            self.token_conv = nn.Conv1d(config.d_model, config.d_model, k, padding=k // 2)
            self.token_layers = transformer(
                config.d_model, config.duration_layers, config.heads, config.ff_dim,
                config.dropout,
            )  # fmt: skip
            self.token_norm = nn.LayerNorm(config.d_model)

    def _stack(
        self, x: torch.Tensor, lengths: torch.Tensor, conv: nn.Conv1d, layers: nn.ModuleList
    ) -> torch.Tensor:
        """positions -> conv + ReLU -> transformer layers, padding kept at zero."""
        keep = lengths_mask(lengths, x.shape[1])
        x = (x + sinusoidal_positions(x.shape[1], x.shape[2]).to(x)) * keep[:, :, None]
        x = F.relu(conv(x.transpose(1, 2))).transpose(1, 2)
        for layer in layers:
            x = layer(x, src_key_padding_mask=~keep)
        return x

    def tokens(self, phones: torch.Tensor, phone_lengths: torch.Tensor) -> torch.Tensor:
        """Token states (B x N x d_model): the duration predictor's input."""
        x = self.embed(phones)
        if self.order == "frame":
            return self.token_norm(
                self._stack(x, phone_lengths, self.token_conv, self.token_layers)
            )
        x = F.relu(self.conv(x.transpose(1, 2))).transpose(1, 2)
        x = x + sinusoidal_positions(x.shape[1], x.shape[2]).to(x)
        pad = ~lengths_mask(phone_lengths, x.shape[1])
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=pad)
        return self.norm(x)

    def frames(
        self,
        phones: torch.Tensor,
        phone_lengths: torch.Tensor,
        durations: torch.Tensor,
        tokens: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """P (B x T x joint_dim) and frame lengths for the given durations."""
        if self.order == "token":
            if tokens is None:
                tokens = self.tokens(phones, phone_lengths)
            expanded, lengths = length_regulate(tokens, durations, phone_lengths)
            return self.joint(expanded), lengths
        expanded, lengths = length_regulate(self.embed(phones), durations, phone_lengths)
        x = self.norm(self._stack(expanded, lengths, self.conv, self.layers))
        return self.joint(x), lengths

    def joint(self, frames: torch.Tensor) -> torch.Tensor:
        """Frame-level states -> P in the joint space."""
        return self.out_norm(self.project(frames))


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduction: int = 8) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, max(channels // reduction, 4))
        self.fc2 = nn.Linear(max(channels // reduction, 4), channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # B x C x T
        scale = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean(dim=2)))))
        return x * scale[:, :, None]


class SEResBlock(nn.Module):
    """conv-BN-ReLU-conv-BN, squeeze-excitation, residual add, ReLU (SE-ResNet)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(channels, channels, 3, padding=1)
        self.bn1 = nn.BatchNorm1d(channels)
        self.conv2 = nn.Conv1d(channels, channels, 3, padding=1)
        self.bn2 = nn.BatchNorm1d(channels)
        self.se = SqueezeExcite(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.se(self.bn2(self.conv2(y)))
        return F.relu(x + y)


class PromptEncoder(nn.Module):
    """VAE encoder over a mel clip: (mu, logvar) of a global prompt latent."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        c = config.prompt_channels
        self.conv1 = nn.Conv1d(config.n_mels, c, 3, padding=1)
        self.conv2 = nn.Conv1d(c, c, 3, stride=2, padding=1)
        self.block = SEResBlock(c)
        self.mu = nn.Linear(c, config.prompt_latent)
        self.logvar = nn.Linear(c, config.prompt_latent)

    def forward(self, clip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.relu(self.conv1(clip))
        x = F.relu(self.conv2(x))
        pooled = self.block(x).mean(dim=2)
        return self.mu(pooled), self.logvar(pooled).clamp(-10.0, 10.0)


class MelDecoder(nn.Module):
    """(joint embeddings at 50/s, prompt latent) -> mel at 100/s (2 frames per position)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        d = config.decoder_dim
        self.inp = nn.Linear(config.joint_dim, d)
        self.prompt = nn.Linear(config.prompt_latent, d)
        self.layers = transformer(
            d, config.decoder_layers, config.heads, config.ff_dim, config.dropout
        )
        self.convs = nn.ModuleList(
            nn.Conv1d(d, d, 5, padding=2) for _ in range(config.decoder_conv_layers)
        )
        self.out = nn.Linear(d, config.n_mels * SPEECH_STRIDE)
        self.n_mels = config.n_mels

    def forward(self, z: torch.Tensor, prompt: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.inp(z) + self.prompt(prompt)[:, None, :]
        x = x + sinusoidal_positions(x.shape[1], x.shape[2]).to(x)
        pad = ~lengths_mask(lengths, x.shape[1])
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=pad)
        x = x.transpose(1, 2)
        for conv in self.convs:
            x = x + F.relu(conv(x))
        mel = self.out(x.transpose(1, 2))  # B x T x (n_mels * 2)
        b, t, _ = mel.shape
        return mel.reshape(b, t * SPEECH_STRIDE, self.n_mels).transpose(1, 2)


class PhoneDecoder(nn.Module):
    """Table 1's "+ phoneme decoder": transformer layers over the joint embeddings (S or
    P) -> frame-level phone logits. The paper uses 6 layers; ``phone_decoder_layers``
    (default 1) scales it down like the rest of this model."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        d = config.decoder_dim
        self.inp = nn.Linear(config.joint_dim, d)
        self.layers = transformer(
            d, config.phone_decoder_layers, config.heads, config.ff_dim, config.dropout
        )
        self.out = nn.Linear(d, config.n_phones)

    def forward(self, z: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.inp(z)
        x = x + sinusoidal_positions(x.shape[1], x.shape[2]).to(x)
        pad = ~lengths_mask(lengths, x.shape[1])
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=pad)
        return self.out(x)


@dataclass
class CTAPOutput:
    """Everything the losses need from one forward pass."""

    s: torch.Tensor  # B x T x joint_dim
    p: torch.Tensor  # B x T x joint_dim (ground-truth durations)
    frame_lengths: torch.Tensor  # B
    log_durations: torch.Tensor  # B x N predicted
    mu: torch.Tensor | None = None
    logvar: torch.Tensor | None = None
    mel_from_s: torch.Tensor | None = None  # B x n_mels x 2T
    mel_from_p: torch.Tensor | None = None
    phone_logits: torch.Tensor | None = None  # B x T x n_phones, decoded from S
    phone_logits_p: torch.Tensor | None = None  # B x T x n_phones, decoded from P


class CTAP(nn.Module):
    """The whole pretraining model; ``speech`` and ``phonemes`` are the parts other code uses."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.features = LogMel(config)
        self.speech = SpeechEncoder(config)
        self.phonemes = PhonemeEncoder(config)
        self.durations = DurationPredictor(config)
        # CLIP-style learned temperature, stored as log(1 / tau)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / config.init_temperature)))
        if config.use_decoder:
            self.prompt = PromptEncoder(config)
            self.decoder = MelDecoder(config)
        if config.phoneme_decoder:
            self.phone_decoder = PhoneDecoder(config)

    def encode_speech(
        self, mel: torch.Tensor, mel_lengths: torch.Tensor
    ) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
        return self.speech(mel, mel_lengths)

    def encode_phonemes(
        self,
        phones: torch.Tensor,
        phone_lengths: torch.Tensor,
        durations: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(P frames, frame lengths, predicted log durations); durations None -> predicted."""
        tokens = self.phonemes.tokens(phones, phone_lengths)
        # the duration predictor must not shape the joint space through its gradient
        log_durations = self.durations(tokens.detach(), phone_lengths)
        if durations is None:
            durations = DurationPredictor.to_frames(log_durations, phone_lengths)
        p, frame_lengths = self.phonemes.frames(phones, phone_lengths, durations, tokens)
        return p, frame_lengths, log_durations

    def forward(
        self,
        mel: torch.Tensor,
        mel_lengths: torch.Tensor,
        phones: torch.Tensor,
        phone_lengths: torch.Tensor,
        durations: torch.Tensor,
        prompt_clip: torch.Tensor | None = None,
    ) -> CTAPOutput:
        s, _, lengths = self.encode_speech(mel, mel_lengths)
        p, p_lengths, log_durations = self.encode_phonemes(phones, phone_lengths, durations)
        if not torch.equal(p_lengths, lengths):
            raise ValueError(
                f"phone durations sum to {p_lengths.tolist()} frames but speech has "
                f"{lengths.tolist()}; durations must cover every speech frame"
            )
        p = p[:, : s.shape[1]]
        if p.shape[1] < s.shape[1]:
            p = F.pad(p, (0, 0, 0, s.shape[1] - p.shape[1]))
        out = CTAPOutput(s=s, p=p, frame_lengths=lengths, log_durations=log_durations)
        if self.config.use_decoder:
            if prompt_clip is None:
                prompt_clip = mel
            out.mu, out.logvar = self.prompt(prompt_clip)
            latent = out.mu
            if self.training:
                latent = out.mu + torch.randn_like(out.mu) * torch.exp(0.5 * out.logvar)
            out.mel_from_s = self.decoder(s, latent, lengths)
            out.mel_from_p = self.decoder(p, latent, lengths)
        if self.config.phoneme_decoder:
            out.phone_logits = self.phone_decoder(s, lengths)
            out.phone_logits_p = self.phone_decoder(p, lengths)
        return out
