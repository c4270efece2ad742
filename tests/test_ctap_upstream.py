"""The shipped CTAP checkpoint: present, small, loads with no download, deterministic."""

from __future__ import annotations

import json

import numpy as np
import torch
from speechbench.upstreams.ctap import SHIPPED, CTAPUpstream

from speechbench import registry


def speech_like(seconds: float, seed: int) -> torch.Tensor:
    """A few harmonic 'vowels' with noise bursts: enough structure for non-trivial features."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    wav = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / 16000) / k for k in range(1, 8))
    wav *= 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2
    wav += 0.05 * rng.standard_normal(t.shape)
    return torch.tensor(0.1 * wav, dtype=torch.float32)


def test_shipped_files_are_there_and_small():
    assert SHIPPED.is_file()
    assert SHIPPED.stat().st_size <= 20 * 1024 * 1024
    meta = json.loads(SHIPPED.with_suffix(".json").read_text())
    assert meta["corpus_versions"]
    assert meta["steps"] > 0 and meta["wall_minutes"] > 0
    png = SHIPPED.with_name("ctap_loss_curve.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_shipped_checkpoint_loads_through_the_registry_and_is_deterministic():
    cls = registry.get("upstreams", "ctap")
    assert cls is CTAPUpstream
    first, second = cls(), cls()
    assert first.sample_rate == 16000 and first.frame_rate == 50.0
    assert first.fingerprint() == second.fingerprint()
    wavs = torch.stack([speech_like(1.5, 0), speech_like(1.5, 1)])
    wavs[1, 16000:] = 0.0
    lengths = torch.tensor([24000, 16000])
    layers_a, frames_a = first(wavs, lengths)
    first.train()  # a frozen upstream ignores train mode: no dropout
    layers_b, frames_b = first(wavs, lengths)
    layers_c, _ = second(wavs, lengths)
    assert len(layers_a) == first.num_layers
    assert (
        frames_a.tolist() == frames_b.tolist() == [76, 51]
    )  # 1 + 24000 // 160 = 151 mel frames -> 76
    for a, b, c in zip(layers_a, layers_b, layers_c, strict=True):
        assert a.shape == (2, 76, first.dim)
        assert torch.isfinite(a).all()
        assert torch.equal(a, b) and torch.equal(a, c)
    # the layers are not all the same thing
    assert not torch.allclose(layers_a[0], layers_a[-1])


def test_shipped_phoneme_encoder_and_duration_predictor():
    from speechbench.corpora.phones import PHONES

    upstream = CTAPUpstream()
    assert set(PHONES) <= set(upstream.vocabulary.symbols)
    phones = [["sil", "h", "ɛ", "l", "oʊ", "sil"]]
    p, frames = upstream.encode_phonemes(phones)  # predicted durations
    assert 6 <= int(frames[0]) <= 6 * 40
    assert p.shape == (1, int(frames[0]), upstream.model.config.joint_dim)
    p2, frames2 = upstream.encode_phonemes(phones, [[5, 3, 4, 3, 6, 5]])
    assert frames2.tolist() == [26]
    # the phoneme encoder runs after the length regulator (Eq. 1): frames of one phone differ
    assert upstream.model.config.phone_encoder == "frame"
    assert not torch.allclose(p2[0, 5], p2[0, 7])
