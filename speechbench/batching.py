"""The one length-bucketing and the one padding helper (pure functions).

Every batched loop in speechbench (feature extraction, model upstreams, head training)
groups items of similar length so padding, and so memory, stays bounded by a budget:

- :func:`length_buckets` turns lengths (seconds, samples or frames: any unit) into
  groups of indices, sorted by length, each with at most ``max_items`` items and a
  padded size ``len(group) * longest`` of at most ``max_padded``. An item longer than
  the budget gets a group of its own (it cannot be split here). With ``rng`` the
  groups, not the items inside them, are shuffled, so each batch stays length-sorted.
- :func:`pad` stacks tensors that differ in one (time) dimension into one zero-padded
  batch tensor plus their lengths.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import torch


def length_buckets(
    lengths: Sequence[float],
    *,
    max_items: int | None = None,
    max_padded: float | None = None,
    equal_lengths: bool = False,
    rng: random.Random | None = None,
) -> list[list[int]]:
    """Group indices of ``lengths`` into length-sorted batches under a padding budget.

    ``max_items``: at most this many items per group (None: no limit).
    ``max_padded``: ``len(group) * max(length in group)`` stays at or under this
    (None: no limit); a single item over the budget still forms its own group.
    ``equal_lengths``: only items of identical length share a group (for models whose
    output would otherwise depend on the padding, e.g. a GroupNorm over time).
    ``rng``: shuffle the order of the groups (``rng.shuffle``) for training.

    The sort is stable, so equal lengths keep their input order: the result depends
    only on the lengths and the budget.
    """
    if max_items is not None and max_items < 1:
        raise ValueError(f"max_items must be at least 1, got {max_items}")
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    groups: list[list[int]] = []
    current: list[int] = []
    for index in order:
        longest = lengths[index]  # ascending order: the newest item is the longest
        if current and (
            (equal_lengths and lengths[current[-1]] != longest)
            or (max_items is not None and len(current) >= max_items)
            or (max_padded is not None and (len(current) + 1) * longest > max_padded)
        ):
            groups.append(current)
            current = []
        current.append(index)
    if current:
        groups.append(current)
    if rng is not None:
        rng.shuffle(groups)
    return groups


def pad(
    tensors: Sequence[torch.Tensor], time_dim: int = 0, value: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack tensors that differ only along ``time_dim`` into ``B x ...`` plus lengths.

    ``pad([T_i x D])`` gives ``B x T x D``; ``pad([L x T_i x D], time_dim=1)`` gives
    ``B x L x T x D``; ``pad([1-D waveforms])`` gives ``B x T``. The padded positions
    hold ``value``; the result has the first tensor's dtype and device.
    """
    if not tensors:
        raise ValueError("pad() needs at least one tensor")
    first = tensors[0]
    lengths = torch.tensor([t.shape[time_dim] for t in tensors], dtype=torch.long)
    shape = list(first.shape)
    shape[time_dim] = int(lengths.max())
    out = first.new_full((len(tensors), *shape), value)
    for i, tensor in enumerate(tensors):
        out[i].narrow(time_dim, 0, tensor.shape[time_dim]).copy_(tensor)
    return out, lengths
