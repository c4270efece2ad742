"""Deterministic split assignment that keeps groups (same text, same speaker) together."""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Sequence


def _rank(key: Hashable, seed: int) -> str:
    return hashlib.sha1(f"{seed}:{key}".encode()).hexdigest()


def assign_group_splits(
    groups: Sequence[Hashable],
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
) -> dict[Hashable, str]:
    """Map each distinct group to train/dev/test by a seeded hash order.

    Every member of a group lands in one split, so e.g. no prompt text is in two
    splits. Fractions are of distinct groups; the order depends only on the group
    key and the seed, so adding a group moves no other group.
    """
    distinct = sorted(set(groups), key=lambda g: _rank(g, seed))
    n = len(distinct)
    n_test = max(1, round(fractions[2] * n)) if n >= 3 else 0
    n_dev = max(1, round(fractions[1] * n)) if n >= 3 else 0
    assignment: dict[Hashable, str] = {}
    for i, group in enumerate(distinct):
        assignment[group] = "test" if i < n_test else "dev" if i < n_test + n_dev else "train"
    return assignment
