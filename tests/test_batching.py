import random

import pytest
import torch

from speechbench.batching import length_groups, pad_frames, pad_stack


def _reference(lengths, max_items, max_padded):
    """The greedy rule the three old copies implemented (training.make_batches)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    groups, current = [], []
    for i in order:
        if current and (len(current) >= max_items or (len(current) + 1) * lengths[i] > max_padded):
            groups.append(current)
            current = []
        current.append(i)
    return groups + ([current] if current else [])


def test_groups_respect_budget_and_match_the_old_rule():
    rng = random.Random(0)
    lengths = [rng.randint(1, 500) for _ in range(300)]
    groups = length_groups(lengths, 2000, 16)
    assert sorted(i for g in groups for i in g) == list(range(300))
    for group in groups:
        assert len(group) <= 16
        assert len(group) == 1 or len(group) * max(lengths[i] for i in group) <= 2000
    assert groups == _reference(lengths, 16, 2000)


def test_item_over_budget_gets_its_own_group():
    assert length_groups([5, 100, 6], 20) == [[0, 2], [1]]
    assert length_groups([3, 1, 2], float("inf")) == [[1, 2, 0]]
    assert length_groups([], 10) == []


def test_same_length_and_stable_ties():
    assert length_groups([4, 2, 4, 2], float("inf"), same_length=True) == [[1, 3], [0, 2]]
    assert length_groups([1, 1, 1, 1], float("inf"), 2) == [[0, 1], [2, 3]]


def test_rng_shuffles_whole_groups_reproducibly():
    lengths = list(range(1, 41))
    plain = length_groups(lengths, float("inf"), 4)
    shuffled = length_groups(lengths, float("inf"), 4, random.Random(3))
    assert shuffled == length_groups(lengths, float("inf"), 4, random.Random(3))
    assert sorted(map(tuple, shuffled)) == sorted(map(tuple, plain)) and shuffled != plain
    expected = list(plain)
    random.Random(3).shuffle(expected)  # the same draw training's rng.shuffle(groups) makes
    assert shuffled == expected


def test_pad_stack_and_pad_frames():
    padded, lengths = pad_stack([torch.ones(3), torch.ones(5)])
    assert padded.shape == (2, 5) and lengths.tolist() == [3, 5]
    assert padded[0, 3:].abs().sum() == 0 and padded[0, :3].eq(1).all()
    layered = [torch.randn(2, 4, 3), torch.randn(2, 7, 3)]  # L x T x D
    padded, lengths = pad_frames(layered)
    assert padded.shape == (2, 2, 7, 3) and lengths.tolist() == [4, 7]
    assert torch.equal(padded[0, :, :4], layered[0]) and padded[0, :, 4:].abs().sum() == 0
    half = pad_stack([torch.ones(2, 4, dtype=torch.float16)], value=-1.0)[0]
    assert half.dtype == torch.float16 and half.shape == (1, 2, 4)
    with pytest.raises(ValueError):
        pad_stack([])
