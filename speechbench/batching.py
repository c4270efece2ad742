"""The one length-bucketing rule and the one padding helper.

Feature extraction, model upstreams and head training all batch items of similar
length so that padding (and so memory) stays bounded: sort by length, then close a
group when one more item would exceed ``max_items`` or make the padded size
``items x longest`` exceed ``max_units`` (samples, frames or seconds: whatever the
lengths count). Written here because it is a few lines and every caller needs the same
guarantee; torch's samplers do not bound padded size.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import torch


def length_groups(
    lengths: Sequence[float],
    max_units: float,
    max_items: int | None = None,
    rng: random.Random | None = None,
    same_length: bool = False,
) -> list[list[int]]:
    """Indices grouped by ascending length so each group's padded size fits ``max_units``.

    An item longer than ``max_units`` gets a group of its own. ``same_length`` groups only
    equal lengths (for models whose output depends on padding). ``rng`` shuffles the
    order of whole groups (training), never the items inside one.
    """
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    groups: list[list[int]] = []
    current: list[int] = []
    for index in order:
        longest = lengths[index]  # ascending: the newest item is the longest
        full = max_items is not None and len(current) >= max_items
        too_big = (len(current) + 1) * longest > max_units
        other_length = same_length and bool(current) and lengths[current[-1]] != longest
        if current and (full or too_big or other_length):
            groups.append(current)
            current = []
        current.append(index)
    if current:
        groups.append(current)
    if rng is not None:
        rng.shuffle(groups)
    return groups


def pad_stack(
    items: Sequence[torch.Tensor], value: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack tensors ``... x T_i`` padded along their LAST axis: ``B x ... x T`` + lengths
    (torch's ``pad_sequence`` with time moved first and back)."""
    if not items:
        raise ValueError("pad_stack needs at least one tensor")
    lengths = torch.tensor([int(t.shape[-1]) for t in items], dtype=torch.long)
    padded = torch.nn.utils.rnn.pad_sequence(
        [t.movedim(-1, 0) for t in items], batch_first=True, padding_value=value
    )
    return padded.movedim(1, -1), lengths


def pad_frames(items: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack ``... x T_i x D`` tensors (time second to last) into ``B x ... x T x D``."""
    padded, lengths = pad_stack([t.transpose(-1, -2) for t in items])
    return padded.transpose(-1, -2), lengths
