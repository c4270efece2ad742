"""GE2E upstreams on the real pretrained Resemblyzer encoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _speaker_voices import asterisk_voices, equal_error_rate
from speechbench.upstreams.ge2e import GE2E

from speechbench import audio
from speechbench.registry import get


def _voiced(seconds: float, f0: float, rate: int = 16000) -> np.ndarray:
    """A buzzy harmonic source with syllable-rate amplitude: enough for the VAD to keep it."""
    t = np.arange(int(seconds * rate)) / rate
    wav = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 12))
    return (0.2 * wav * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))).astype(np.float32)


def test_utterance_embedding_shapes_and_determinism(tmp_path):
    assert GE2E.weights_available()[0]
    up = get("upstreams", "ge2e")()
    assert (up.level, up.num_layers, up.dim, up.sample_rate) == ("utterance", 1, 256, 16000)
    path = tmp_path / "eight.wav"
    audio.write_audio(path, _voiced(2.0, 120.0, rate=8000), 8000)
    resampled = audio.load(path, up.sample_rate)  # 8 kHz on disk -> 16 kHz
    assert resampled.numel() == 32000
    other = torch.from_numpy(_voiced(0.9, 210.0))
    wavs = torch.nn.utils.rnn.pad_sequence([resampled, other], batch_first=True)
    lengths = torch.tensor([resampled.numel(), other.numel()])
    (embedding,), frames = up(wavs, lengths)
    assert embedding.shape == (2, 1, 256) and frames.tolist() == [1, 1]
    torch.testing.assert_close(embedding.norm(dim=-1), torch.ones(2, 1))
    (again,), _ = up(wavs, lengths)
    assert torch.equal(embedding, again)
    (alone,), _ = up(other[None], lengths[1:])
    torch.testing.assert_close(alone[0], embedding[1])


def test_partials_are_frames_at_their_rate():
    up = get("upstreams", "ge2e-partials")()
    assert (up.level, up.frame_rate, up.dim) == ("frame", 2.5, 256)
    wav = torch.from_numpy(_voiced(6.0, 140.0))
    (frames,), lengths = up(wav[None], torch.tensor([wav.numel()]))
    # 600 mel frames, 160-frame windows every 40 frames -> 12 full windows + a 3/4-full one
    assert lengths.tolist() == up.frame_lengths(torch.tensor([wav.numel()])).tolist() == [13]
    assert frames.shape == (1, 13, 256)
    assert abs(lengths.item() - 6.0 * up.frame_rate) <= 2
    # the utterance embedding is the normalised mean of partials (Resemblyzer's definition)
    from resemblyzer import VoiceEncoder

    reference = VoiceEncoder("cpu", verbose=False).embed_utterance(wav.numpy(), rate=2.5)
    mean = frames[0].mean(0)
    np.testing.assert_allclose((mean / mean.norm()).numpy(), reference, atol=1e-5)


@pytest.mark.needs_apt
def test_real_voices_are_separated():
    voices = asterisk_voices(per_speaker=8)
    up = GE2E()
    speakers, embeddings = [], []
    for speaker, path in voices:
        wav = audio.load(path, up.sample_rate)
        (embedding,), _ = up(wav[None], torch.tensor([wav.numel()]))
        speakers.append(speaker)
        embeddings.append(embedding[0, 0].numpy())
    eer = equal_error_rate(np.stack(embeddings), speakers)
    print(f"GE2E EER on 4 real voices: {eer:.3f}")
    assert eer < 0.15, f"GE2E EER {eer:.3f} on 4 real voices"
