"""On-the-fly remixing of training mixtures for target speaker extraction.

A fixed set of 800 training mixtures is learned by heart (train crops +3 dB, dev +0.6
dB after 10 epochs; docs/tse.md). Dynamic mixing draws new mixtures from the same
sources in every batch, which in speech separation is worth more than a larger model
(Zeghidour & Grangier, "Wavesplit", 2021; Subakan et al., "Attention is all you need in
speech separation", ICASSP 2021). Here every training mixture gives two sources at
every channel, the target ``image`` and the interferer ``mixture - image``, each with
its room geometry already applied; a new mixture is a crop of one mixture's target plus
a crop of any source of the batch spoken by another (real) speaker, at a new
target-to-interferer ratio. The enrollment and reference stay the target's, so the
voiceprint cue is unchanged.

Written here: no separation library remixes image pairs of a multi-channel corpus
under a speaker constraint (Asteroid's and SpeechBrain's dynamic mixing draw dry
single-channel sources from their own file lists).
"""

from __future__ import annotations

import torch


def remix(
    mixtures: torch.Tensor,
    images: torch.Tensor,
    lengths: torch.Tensor,
    target_speakers: list[str],
    interferer_speakers: list[str | None],
    crop: int,
    snr_db: tuple[float, float] = (-5.0, 5.0),
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """New ``crop``-sample mixtures from a batch: ``(mixtures, references, valid)`` of
    shapes B x C x crop, B x crop and B.

    ``mixtures`` and ``images`` are B x C x S (``images``: the target at every channel),
    ``lengths`` the B valid lengths. Mixture k keeps target k (a random crop) and takes
    as interferer a random crop of one of the batch's 2B sources (targets and
    interferers) whose speaker is not target k's speaker, scaled to a ratio uniform in
    ``snr_db`` at channel 0 over the crop. Randomness is torch's (seeded per epoch by
    the trainer). An interferer whose speaker is unknown (None) is only used in its own
    mixture, which is always a candidate.
    """
    batch, channels, _ = mixtures.shape
    sources = torch.cat([images, mixtures - images])  # 2B x C x S
    source_lengths = torch.cat([lengths, lengths])
    speakers = list(target_speakers) + list(interferer_speakers)
    mixed = torch.zeros(batch, channels, crop, dtype=mixtures.dtype)
    references = torch.zeros(batch, crop, dtype=mixtures.dtype)
    valid = torch.zeros(batch, dtype=torch.long)
    for k in range(batch):
        others = [
            j
            for j, s in enumerate(speakers)
            if j == batch + k or (s is not None and s != target_speakers[k])
        ]
        j = others[int(torch.randint(len(others), ()))]
        target, n_target = _random_crop(images[k], int(lengths[k]), crop)
        interferer, _ = _random_crop(sources[j], int(source_lengths[j]), crop)
        ratio = float(torch.empty(()).uniform_(*snr_db))
        mixed[k] = target + interferer * _gain(target[0], interferer[0], ratio)
        references[k], valid[k] = target[0], max(n_target, 1)
    return mixed, references, valid


def _random_crop(signal: torch.Tensor, length: int, crop: int) -> tuple[torch.Tensor, int]:
    """A ``crop``-sample window of the first ``length`` samples of a C x S signal (zero
    padded when shorter) and how many of its samples are real."""
    start = int(torch.randint(max(length - crop, 0) + 1, ()))
    piece = signal[:, start : min(start + crop, length)]
    out = torch.zeros(signal.shape[0], crop, dtype=signal.dtype)
    out[:, : piece.shape[1]] = piece
    return out, piece.shape[1]


def _gain(target: torch.Tensor, interferer: torch.Tensor, snr_db: float) -> float:
    """g with 10 log10(|target|^2 / |g interferer|^2) = snr_db; 1 when either is silent."""
    power_t = float(target.double().pow(2).sum())
    power_i = float(interferer.double().pow(2).sum())
    if power_t <= 0.0 or power_i <= 0.0:
        return 1.0
    return (power_t / (power_i * 10.0 ** (snr_db / 10.0))) ** 0.5
