"""CTAP losses: frame-level contrastive, mel MSE over both paths, KL with a margin, and
the ablation terms of the paper's Table 1 (embedding MSE, phoneme CE), plus duration."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from speechbench.ctap.config import ModelConfig
from speechbench.ctap.model import CTAPOutput, lengths_mask


def valid_frames(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """B x T x d -> (sum of lengths) x d: the paper's reshape to (B*T) x d without padding."""
    return x[lengths_mask(lengths, x.shape[1])]


def frame_contrastive_loss(
    s: torch.Tensor, p: torch.Tensor, lengths: torch.Tensor, logit_scale: torch.Tensor
) -> torch.Tensor:
    """Symmetric InfoNCE over all valid frames of the batch: the only positive of a speech
    frame is the phoneme frame at the same position of the same utterance (and back)."""
    s_flat = F.normalize(valid_frames(s, lengths), dim=-1)
    p_flat = F.normalize(valid_frames(p, lengths), dim=-1)
    scale = logit_scale.exp().clamp(max=100.0)
    logits = scale * s_flat @ p_flat.T
    target = torch.arange(logits.shape[0], device=logits.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def masked_mel_mse(
    pred: torch.Tensor, target: torch.Tensor, mel_lengths: torch.Tensor
) -> torch.Tensor:
    """MSE over valid mel frames; pred may be one frame longer (stride-2 rounding)."""
    t = min(pred.shape[2], target.shape[2])
    pred, target = pred[:, :, :t], target[:, :, :t]
    mask = lengths_mask(mel_lengths.clamp(max=t), t)[:, None, :].to(pred)
    return ((pred - target) ** 2 * mask).sum() / (mask.sum() * pred.shape[1]).clamp(min=1.0)


def kl_with_margin(mu: torch.Tensor, logvar: torch.Tensor, margin: float) -> torch.Tensor:
    """Mean over utterances of max(0, KL(q_i || N(0, I)) - margin), KL summed over latent
    dims. The margin applies to each utterance: an utterance above it gets a gradient
    even when the batch mean is below it."""
    kl = 0.5 * (mu**2 + logvar.exp() - 1.0 - logvar).sum(dim=1)
    return torch.clamp(kl - margin, min=0.0).mean()


def duration_loss(
    log_durations: torch.Tensor, durations: torch.Tensor, phone_lengths: torch.Tensor
) -> torch.Tensor:
    """MSE in log(1 + frames), over real phonemes only."""
    mask = lengths_mask(phone_lengths, durations.shape[1])
    target = torch.log1p(durations.float())
    return F.mse_loss(log_durations[mask], target[mask])


def frame_phone_targets(
    phones: torch.Tensor, durations: torch.Tensor, phone_lengths: torch.Tensor, num_frames: int
) -> torch.Tensor:
    """Phone id of every speech frame (B x T); padding frames get -100 (ignored by CE)."""
    targets = torch.full((phones.shape[0], num_frames), -100, dtype=torch.long)
    for i in range(phones.shape[0]):
        n = int(phone_lengths[i])
        ids = torch.repeat_interleave(phones[i, :n], durations[i, :n].long())
        targets[i, : min(ids.shape[0], num_frames)] = ids[:num_frames]
    return targets


def ctap_losses(
    out: CTAPOutput,
    config: ModelConfig,
    logit_scale: torch.Tensor,
    mel: torch.Tensor,
    mel_lengths: torch.Tensor,
    phones: torch.Tensor,
    phone_lengths: torch.Tensor,
    durations: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """Every loss term and their weighted ``total`` (contrastive + MSE + KL [+ ablations])."""
    terms: dict[str, torch.Tensor] = {}
    terms["contrastive"] = frame_contrastive_loss(out.s, out.p, out.frame_lengths, logit_scale)
    total = config.contrastive_weight * terms["contrastive"]
    if config.use_decoder:
        assert out.mel_from_s is not None and out.mel_from_p is not None
        assert out.mu is not None and out.logvar is not None
        terms["mse"] = 0.5 * (
            masked_mel_mse(out.mel_from_s, mel, mel_lengths)
            + masked_mel_mse(out.mel_from_p, mel, mel_lengths)
        )
        terms["kl"] = kl_with_margin(out.mu, out.logvar, config.kl_margin)
        total = total + config.mse_weight * terms["mse"] + config.kl_weight * terms["kl"]
    if config.embed_mse_weight > 0:
        mask = lengths_mask(out.frame_lengths, out.s.shape[1])
        terms["embed_mse"] = F.mse_loss(out.s[mask], out.p[mask])
        total = total + config.embed_mse_weight * terms["embed_mse"]
    if config.phoneme_decoder:  # two CE losses, from S and from P (the paper's Table 1)
        assert out.phone_logits is not None and out.phone_logits_p is not None
        targets = frame_phone_targets(phones, durations, phone_lengths, out.phone_logits.shape[1])
        targets = targets.reshape(-1).to(out.phone_logits.device)
        n = out.phone_logits.shape[-1]
        terms["phone_ce"] = F.cross_entropy(
            out.phone_logits.reshape(-1, n), targets, ignore_index=-100
        )
        terms["phone_ce_p"] = F.cross_entropy(
            out.phone_logits_p.reshape(-1, n), targets, ignore_index=-100
        )
        total = total + terms["phone_ce"] + terms["phone_ce_p"]
    terms["duration"] = duration_loss(out.log_durations, durations, phone_lengths)
    terms["total"] = total + config.duration_weight * terms["duration"]
    return terms
