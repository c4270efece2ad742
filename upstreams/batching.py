"""Length-bucketed batching and exact windowing of long audio, shared by model upstreams.

Models see audio in *pieces*: long items are cut into windows the model can take and
every batch holds pieces of similar length whose padded size stays under a budget, so
memory is bounded whatever the corpus. Outputs are stitched back per item in order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from speechbench.batching import length_groups, pad_frames


@dataclass(frozen=True)
class Piece:
    item: int  # index of the utterance in the batch
    start: int  # first sample
    stop: int  # one past the last sample
    frames: int  # frames this piece contributes to the item


def conv_frames(num_samples: int, receptive_field: int, stride: int) -> int:
    """Frames a stack of valid (unpadded) convolutions gives; at least one."""
    return max(1, (num_samples - receptive_field) // stride + 1)


def conv_windows(
    item: int, num_samples: int, receptive_field: int, stride: int, max_frames: int
) -> list[Piece]:
    """Cut one item into windows whose frames add up exactly to the whole item's frames.

    A window of ``k`` frames spans ``k * stride + receptive_field - stride`` samples and
    starts on a frame boundary, so frame ``j`` of window ``i`` is global frame
    ``i * max_frames + j`` computed from exactly the same samples as without windowing
    (up to the model's attention context, which windowing necessarily limits).
    """
    total = conv_frames(num_samples, receptive_field, stride)
    pieces = []
    for first in range(0, total, max_frames):
        frames = min(max_frames, total - first)
        start = first * stride
        stop = min(num_samples, start + frames * stride + receptive_field - stride)
        pieces.append(Piece(item, start, max(stop, start + 1), frames))
    return pieces


def fixed_windows(item: int, num_samples: int, window: int, frames_of: Callable[[int], int]):
    """Cut one item into back-to-back windows of ``window`` samples (e.g. Whisper's 30 s)."""
    pieces = []
    for start in range(0, max(num_samples, 1), window):
        stop = min(num_samples, start + window)
        pieces.append(Piece(item, start, max(stop, start + 1), frames_of(stop - start)))
    return pieces


def buckets(
    lengths: list[int], max_batch_samples: int, equal_lengths: bool = False
) -> list[list[int]]:
    """Group indices sorted by length so each group's padded size ``n * max_len`` fits the budget.

    ``equal_lengths`` puts only pieces of identical length together: for models whose
    output depends on padding (a GroupNorm over time), so features never depend on
    which other utterances shared the batch. (The shared :func:`length_groups`.)
    """
    return length_groups(lengths, max_batch_samples, same_length=equal_lengths)


def run_pieces(
    wavs: torch.Tensor,
    pieces: list[Piece],
    batch_size: int,
    max_batch_samples: int,
    model: Callable[[list[torch.Tensor]], list[torch.Tensor]],
    min_samples: int = 1,
    equal_lengths: bool = False,
) -> list[list[torch.Tensor]]:
    """Run ``model`` on length buckets of pieces; return per item the layers ``T x D``.

    ``model`` takes a list of 1-D waveforms and returns, per layer, a ``B x T' x D``
    tensor with ``T'`` at least each piece's frames; pieces shorter than ``min_samples``
    are zero-padded to it.
    """
    waves = []
    for piece in pieces:
        wave = wavs[piece.item, piece.start : piece.stop]
        if wave.numel() < min_samples:
            wave = torch.nn.functional.pad(wave, (0, min_samples - wave.numel()))
        waves.append(wave)
    outputs: list[list[torch.Tensor] | None] = [None] * len(pieces)
    for group in buckets([w.numel() for w in waves], max_batch_samples, equal_lengths):
        for first in range(0, len(group), batch_size):
            chunk = group[first : first + batch_size]
            layers = model([waves[i] for i in chunk])
            for row, index in enumerate(chunk):
                frames = pieces[index].frames
                outputs[index] = [layer[row, :frames] for layer in layers]
    per_item: dict[int, list[list[torch.Tensor]]] = {}
    for piece, layers in zip(pieces, outputs, strict=True):
        per_item.setdefault(piece.item, []).append(layers)
    stitched = []
    for item in sorted(per_item):
        parts = per_item[item]
        stitched.append([torch.cat([p[k] for p in parts], dim=0) for k in range(len(parts[0]))])
    return stitched


def pad_layers(per_item: list[list[torch.Tensor]]) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Per-item lists of layers ``T_i x D`` -> list of ``B x T x D`` plus frame lengths."""
    num_layers = len(per_item[0])
    padded = []
    for k in range(num_layers):
        layer, lengths = pad_frames([layers[k] for layers in per_item])
        padded.append(layer)
    return padded, lengths
