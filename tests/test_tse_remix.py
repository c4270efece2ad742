"""On-the-fly remixing (downstreams/tse_remix.py): which source each new mixture takes,
at what ratio, from which window, read back from sources built to be identifiable."""

from __future__ import annotations

import math

import pytest
import torch
from speechbench.downstreams.tse_remix import remix

B, S, CROP = 4, 50, 20


def _batch(lengths=(S, S, S, S)):
    """Constant sources whose channel-1 / channel-0 ratio names them: target k is
    10 + k, the interferer of mixture k is 20 + k (channel 0 is 1 for both)."""
    images = torch.ones(B, 2, S)
    interferers = torch.ones(B, 2, S)
    for k in range(B):
        images[k, 1] = 10 + k
        interferers[k, 1] = 20 + k
        images[k, :, lengths[k] :] = 0
        interferers[k, :, lengths[k] :] = 0
    return images + interferers, images, torch.tensor(lengths)


def _source_of(mixed, images, k):
    """Which source mixture k's interferer is (its ratio) and the gain applied to it."""
    residual = mixed[k, :, 0] - images[k, :, 0]
    return round(float(residual[1] / residual[0])), float(residual[0])


def test_interferer_is_never_the_targets_speaker_and_ratio_is_in_range():
    torch.manual_seed(0)
    targets = ["a", "a", "b", "c"]
    interferers = ["b", "c", "a", "a"]
    speaker_of = {10 + k: s for k, s in enumerate(targets)} | {
        20 + k: s for k, s in enumerate(interferers)
    }
    chosen = set()
    for _ in range(200):
        mixtures, images, lengths = _batch()
        mixed, refs, valid = remix(mixtures, images, lengths, targets, interferers, CROP)
        assert mixed.shape == (B, 2, CROP) and refs.shape == (B, CROP)
        assert torch.equal(valid, torch.full((B,), CROP))
        for k in range(B):
            assert torch.equal(refs[k], images[k, 0, :CROP])  # the reference is the target
            source, gain = _source_of(mixed, images, k)
            assert speaker_of[source] != targets[k]
            # target power 1 per sample, interferer g^2: ratio -10 log10(g^2) in [-5, 5]
            assert -5.0 - 1e-4 <= -20 * math.log10(gain) <= 5.0 + 1e-4
            chosen.add((k, source))
    # every allowed source is drawn for mixture 0 (target 'a'): targets 12, 13 and
    # interferers 20, 21 (speakers b, c); never 10, 11, 22, 23 (speaker a)
    assert {s for k, s in chosen if k == 0} == {12, 13, 20, 21}


def test_unknown_interferer_speakers_stay_in_their_own_mixture():
    torch.manual_seed(1)
    mixtures, images, lengths = _batch()
    for _ in range(50):
        mixed, _, _ = remix(mixtures, images, lengths, ["a", "a", "a", "a"], [None] * B, CROP)
        assert [_source_of(mixed, images, k)[0] for k in range(B)] == [20, 21, 22, 23]


def test_crops_are_random_windows_within_the_valid_length():
    torch.manual_seed(2)
    ramp = torch.arange(S, dtype=torch.float32) + 1.0
    images = ramp.expand(B, 1, S).clone()
    lengths = torch.tensor([S, S, 30, 10])
    for k in range(B):
        images[k, :, lengths[k] :] = 0
    starts = set()
    for _ in range(400):
        _, refs, valid = remix(images * 2, images, lengths, list("abcd"), list("efgh"), CROP)
        for k in range(B):
            n = int(valid[k])
            assert n == min(CROP, int(lengths[k]))
            start = int(refs[k, 0]) - 1
            assert torch.equal(refs[k, :n], ramp[start : start + n])  # contiguous window
            assert start + n <= lengths[k] and not refs[k, n:].any()  # zero padded
            starts.add((k, start))
    assert {s for k, s in starts if k == 0} == set(range(S - CROP + 1))
    assert {s for k, s in starts if k == 3} == {0}


def test_remix_is_reproducible_under_the_torch_seed():
    mixtures, images, lengths = _batch()
    args = (mixtures, images, lengths, list("abab"), list("baba"), CROP)
    torch.manual_seed(5)
    one = remix(*args)
    torch.manual_seed(5)
    two = remix(*args)
    assert all(torch.equal(x, y) for x, y in zip(one, two, strict=True))


@pytest.mark.parametrize("silent", ["target", "interferer"])
def test_a_silent_source_is_mixed_at_unit_gain(silent):
    mixtures, images, lengths = _batch()
    if silent == "target":
        images = torch.zeros_like(images)
    else:
        mixtures = images.clone()
    mixed, _, _ = remix(mixtures, images, lengths, list("aaaa"), [None] * B, CROP)
    assert torch.isfinite(mixed).all()
    assert torch.allclose(mixed, (mixtures)[:, :, :CROP])
