"""Extraction networks of the ``tse`` downstream: LiMuSE (GC-equipped TCN) and TasNet.

Both are Conv-TasNet shaped (Luo & Mesgarani, TASLP 2019): a learned encoder (N filters
of L samples, hop L/2) over the C-channel mixture, a separation network that estimates
a mask on the encoder output of the target speaker, and a transposed-conv decoder.

- **LiMuSE** (Liu et al., SLT 2022): the separation network is built of GC-equipped TCN
  blocks. Group communication (Luo, Han & Mesgarani, ICASSP 2021) splits the N-dim
  feature into K groups of N/K; before every TCN block a TAC module (transform ->
  average over groups -> concatenate -> project, with a residual) lets the groups talk;
  the TCN block itself (1x1 conv to H/K, PReLU, gLN, depthwise conv of kernel P,
  PReLU, gLN, 1x1 conv back, residual) is shared by all K groups, which is what makes
  the model small. An *audio block* of R_a repeats of X blocks (dilations 1..2^(X-1))
  runs on the mixture; then the *voiceprint* (a fully connected layer over the pooled
  upstream embedding of the enrollment utterance) is concatenated group by group and a
  *fusion block* of R_f repeats runs on the 2N-dim feature (2H hidden), followed by a
  1x1 mask conv and a ReLU mask. (The authors' code also compresses time with a
  context codec; the issue's model and this one do not.)
- **TasNet** (``gc=False``): the same network with plain TCN blocks of full width
  (N -> H -> N) and no TAC: the "without GC" baseline.
- ``voiceprint=False`` drops the voiceprint and fusion concatenation: the fusion block
  runs on the audio feature alone (the "without voiceprint" ablation).

All 1x1/depthwise convs, TAC and voiceprint projections and the mask conv are
:mod:`speechbench.downstreams.tse_quant` layers (quantizable); the encoder and decoder
stay full precision, as is usual for the first and last layer.
"""

from __future__ import annotations

import torch
from speechbench.downstreams.base import WeightedLayerSum, lengths_mask
from speechbench.downstreams.tse_quant import QConv1d, QLinear
from torch import nn


def gln(channels: int) -> nn.GroupNorm:
    """Global layer norm over channels and time (Conv-TasNet's gLN)."""
    return nn.GroupNorm(1, channels, eps=1e-8)


class TCNBlock(nn.Module):
    """1x1 conv -> PReLU -> gLN -> depthwise conv -> PReLU -> gLN -> 1x1 conv (residual)."""

    def __init__(self, dim: int, hidden: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            QConv1d(dim, hidden, 1),
            nn.PReLU(),
            gln(hidden),
            QConv1d(
                hidden,
                hidden,
                kernel,
                dilation=dilation,
                padding=dilation * (kernel - 1) // 2,
                groups=hidden,
            ),
            nn.PReLU(),
            gln(hidden),
            QConv1d(hidden, dim, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B*K) x D x T
        return x + self.net(x)


class TAC(nn.Module):
    """Transform-average-concatenate across K groups (Luo et al., ICASSP 2020 / 2021).

    ``B x K x D x T -> (B*K) x D x T``: every group is transformed (D -> H'), the mean
    over groups is transformed again, each group's transform is concatenated with it
    and projected back to D, normalised, and added to the input. The projection of the
    concatenation ``W [h; m] = W_h h + W_m m`` is computed in its two halves, so the
    group mean is projected once per frame instead of being copied to every group
    (the same function, K times less work and memory on that half)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.transform = QConv1d(dim, hidden, 1)
        self.act1 = nn.PReLU()
        self.average = QConv1d(hidden, hidden, 1)
        self.act2 = nn.PReLU()
        self.concat = QConv1d(2 * hidden, dim, 1)
        self.act3 = nn.PReLU()
        self.norm = gln(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, groups, dim, frames = x.shape
        flat = x.reshape(batch * groups, dim, frames)
        h = self.act1(self.transform(flat))  # (B*K) x H x T
        mean = h.view(batch, groups, self.hidden, frames).mean(dim=1)  # B x H x T
        mean = self.act2(self.average(mean))
        h, mean = self.concat.effective_input_pair(h, mean)
        weight = self.concat.effective_weight()[:, :, 0]
        w_h, w_m = weight[:, : self.hidden], weight[:, self.hidden :]
        own = torch.einsum("dh,nht->ndt", w_h, h).view(batch, groups, dim, frames)
        shared = torch.einsum("dh,bht->bdt", w_m, mean) + self.concat.bias[None, :, None]
        out = self.act3(own + shared[:, None]).reshape(batch * groups, dim, frames)
        return flat + self.norm(out)


class GCTCN(nn.Module):
    """R repeats of X (TAC -> shared TCN block) over K groups; ``gc=False``: plain TCN."""

    def __init__(
        self, dim: int, hidden: int, groups: int, blocks: int, repeats: int, kernel: int, gc: bool
    ) -> None:
        super().__init__()
        if gc and (dim % groups or hidden % groups):
            raise ValueError(f"dim {dim} and hidden {hidden} must divide into {groups} groups")
        self.groups = groups if gc else 1
        self.gc = gc
        g_dim, g_hidden = dim // self.groups, hidden // self.groups
        dilations = [2**i for _ in range(repeats) for i in range(blocks)]
        self.tcn = nn.ModuleList(TCNBlock(g_dim, g_hidden, kernel, d) for d in dilations)
        self.tac = nn.ModuleList(TAC(g_dim, 3 * g_hidden) for _ in dilations) if gc else None
        self.receptive_frames = 1 + sum((kernel - 1) * d for d in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # B x D x T
        batch, dim, frames = x.shape
        k = self.groups
        for i, block in enumerate(self.tcn):
            x = x.reshape(batch * k, dim // k, frames)
            if self.tac is not None:
                x = self.tac[i](x.view(batch, k, dim // k, frames))
            x = block(x).view(batch, dim, frames)
        return x


class ContextCodec(nn.Module):
    """GC3's context codec around a sequence model (Luo et al., 2021; LiMuSE's code).

    The frame sequence is cut into chunks of ``context`` frames; a 2-block GC-TCN
    encodes each chunk and its mean over time is one summary frame; the inner model
    (the audio or fusion block) runs on the ``context``-times shorter summary sequence;
    its output, added to every frame of the chunk, is decoded by another 2-block GC-TCN
    back to full rate. (The authors' chunks overlap by half; these do not, which halves
    the codec's cost on 2 CPU cores.)"""

    def __init__(
        self,
        dim: int,
        hidden: int,
        groups: int,
        context: int,
        kernel: int,
        gc: bool,
        inner: GCTCN,
    ) -> None:
        super().__init__()
        self.context = context
        self.encoder = GCTCN(dim, hidden, groups, 2, 1, kernel, gc)
        self.inner = inner
        self.decoder = GCTCN(dim, hidden, groups, 2, 1, kernel, gc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # B x D x T
        batch, dim, frames = x.shape
        c = self.context
        x = nn.functional.pad(x, (0, (-frames) % c))
        chunks_n = x.shape[-1] // c
        chunks = x.view(batch, dim, chunks_n, c).permute(0, 2, 1, 3).reshape(-1, dim, c)
        summary = self.encoder(chunks).mean(-1).view(batch, chunks_n, dim).transpose(1, 2)
        seq = self.inner(summary.contiguous())  # B x D x L
        decoded = self.decoder(chunks + seq.transpose(1, 2).reshape(-1, dim, 1))
        out = decoded.view(batch, chunks_n, dim, c).permute(0, 2, 1, 3).reshape(batch, dim, -1)
        return out[..., :frames]


class VoiceprintEncoder(nn.Module):
    """Upstream features of the enrollment (B x L x T x D) -> weighted layer sum ->
    mean over valid frames -> fully connected -> N-dim voiceprint."""

    def __init__(self, upstream_dim: int, num_layers: int, dim: int) -> None:
        super().__init__()
        self.layer_sum = WeightedLayerSum(num_layers)
        self.fc = QLinear(upstream_dim, dim)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.layer_sum(features)  # B x T x D
        mask = lengths_mask(lengths, x.shape[1]).unsqueeze(-1).to(x.dtype)
        pooled = (x * mask).sum(1) / mask.sum(1).clamp_min(1.0)
        return self.fc(pooled)  # B x N


class Extractor(nn.Module):
    """LiMuSE (``gc=True``) or TasNet (``gc=False``) target speaker extractor."""

    def __init__(
        self,
        channels: int,
        upstream_dim: int,
        num_layers: int,
        *,
        filters: int = 128,
        filter_length: int = 16,
        hidden: int = 512,
        kernel: int = 3,
        blocks: int = 6,
        audio_repeats: int = 2,
        fusion_repeats: int = 1,
        groups: int = 16,
        gc: bool = True,
        voiceprint: bool = True,
        context: int = 32,
    ) -> None:
        super().__init__()
        self.filter_length, self.hop = filter_length, filter_length // 2
        self.channels = channels
        self.encoder = nn.Conv1d(channels, filters, filter_length, stride=self.hop, bias=False)
        self.norm = gln(filters)
        audio = GCTCN(filters, hidden, groups, blocks, audio_repeats, kernel, gc)
        self.groups = audio.groups
        self.voiceprint = (
            VoiceprintEncoder(upstream_dim, num_layers, filters) if voiceprint else None
        )
        self.vp_norm = gln(filters) if voiceprint else None
        fused = 2 * filters if voiceprint else filters
        fused_hidden = 2 * hidden if voiceprint else hidden
        fusion = GCTCN(fused, fused_hidden, groups, blocks, fusion_repeats, kernel, gc)
        if context > 1:  # the codec's TCNs are half as wide, as in the authors' code
            self.audio_block: nn.Module = ContextCodec(
                filters, hidden // 2, groups, context, kernel, gc, audio
            )
            self.fusion_block: nn.Module = ContextCodec(
                fused, fused_hidden // 2, groups, context, kernel, gc, fusion
            )
        else:
            self.audio_block, self.fusion_block = audio, fusion
        self.mask = QConv1d(fused, filters, 1)
        self.decoder = nn.ConvTranspose1d(filters, 1, filter_length, stride=self.hop, bias=False)
        # the shortest mixture the model reads whole: one context chunk of frames (or, with
        # no codec, the first TCN block's receptive field)
        first = max(context, 1) if context > 1 else 1 + (kernel - 1)
        self.min_samples = filter_length + (first - 1) * self.hop

    def forward(
        self,
        mixture: torch.Tensor,
        enroll: torch.Tensor | None = None,
        enroll_lengths: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``mixture`` B x C x S (or B x S mono) -> B x S estimate of the target."""
        if mixture.dim() == 2:
            mixture = mixture.unsqueeze(1)
        samples = mixture.shape[-1]
        rest = (samples - self.filter_length) % self.hop
        pad = (self.hop - rest) % self.hop if samples >= self.filter_length else 0
        pad += max(0, self.filter_length - samples)
        x = nn.functional.pad(mixture, (0, pad))
        encoded = torch.relu(self.encoder(x))  # B x N x T
        y = self.audio_block(self.norm(encoded))
        if self.voiceprint is not None:
            assert enroll is not None and enroll_lengths is not None
            batch, dim, frames = y.shape
            vp = self.voiceprint(enroll, enroll_lengths)[:, :, None].expand(-1, -1, frames)
            vp = self.vp_norm(vp.contiguous())
            k = self.groups  # concatenate group by group: each group sees its voiceprint part
            y = torch.cat(
                [y.view(batch, k, dim // k, frames), vp.view(batch, k, dim // k, frames)], dim=2
            ).view(batch, 2 * dim, frames)
        y = self.fusion_block(y)
        masked = torch.relu(self.mask(y)) * encoded
        return self.decoder(masked)[:, 0, :samples]


class StftMaskHead(nn.Module):
    """SUPERB-style mask head (the SE/SS tasks of SUPERB, Yang et al. 2021): upstream
    frames of the *mixture* -> weighted layer sum -> projection -> 2-layer BLSTM ->
    sigmoid mask on the mixture's STFT -> iSTFT with the mixture's phase. One STFT frame
    per upstream frame (hop = sample rate / frame rate, Hann window of twice the hop);
    with ``voiceprint`` the projected enrollment embedding is concatenated to every
    frame, so the head knows whom to keep. Scaled from SUPERB's 3 x 896 BLSTM to
    2 x 256 for 2 CPU cores; trained with the same SI-SDR loss as the TasNets."""

    def __init__(
        self,
        dim: int,
        num_layers: int,
        frame_rate: float,
        sample_rate: int,
        voiceprint: bool = True,
        hidden: int = 256,
    ) -> None:
        super().__init__()
        self.hop = max(1, round(sample_rate / frame_rate))
        self.n_fft = 2 * self.hop
        self.layer_sum = WeightedLayerSum(num_layers)
        self.proj = nn.Linear(dim, hidden)
        self.voiceprint = VoiceprintEncoder(dim, num_layers, hidden) if voiceprint else None
        width = 2 * hidden if voiceprint else hidden
        self.rnn = nn.LSTM(width, hidden, num_layers=2, bidirectional=True, batch_first=True)
        self.out = nn.Linear(2 * hidden, self.n_fft // 2 + 1)
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)

    def forward(
        self,
        mixture: torch.Tensor,
        features: torch.Tensor,
        enroll: torch.Tensor | None = None,
        enroll_lengths: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``mixture`` B x S (mono), ``features`` B x L x T x D -> B x S."""
        samples = mixture.shape[-1]
        spec = torch.stft(
            mixture, self.n_fft, self.hop, window=self.window, return_complex=True
        )  # B x F x T_s
        x = self.proj(self.layer_sum(features)).transpose(1, 2)  # B x H x T_u
        x = nn.functional.interpolate(x, size=spec.shape[-1], mode="nearest").transpose(1, 2)
        if self.voiceprint is not None:
            assert enroll is not None and enroll_lengths is not None
            vp = self.voiceprint(enroll, enroll_lengths)[:, None, :].expand(-1, x.shape[1], -1)
            x = torch.cat([x, vp], dim=-1)
        mask = torch.sigmoid(self.out(self.rnn(x)[0])).transpose(1, 2)  # B x F x T_s
        return torch.istft(spec * mask, self.n_fft, self.hop, window=self.window, length=samples)
