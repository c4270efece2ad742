"""The retrieval diagnostic, checked on embeddings whose answer is known."""

from __future__ import annotations

import torch

from speechbench.ctap.config import ModelConfig
from speechbench.ctap.data import Example, PhoneVocabulary, frame_alignment
from speechbench.ctap.diagnostics import retrieval_accuracy
from speechbench.ctap.model import CTAP


class OracleCTAP(CTAP):
    """S = one-hot of the frame's phone (+ optional noise); P = one-hot of the phone."""

    def __init__(self, noise: float) -> None:
        super().__init__(
            ModelConfig(n_mels=20, d_model=16, joint_dim=16, heads=2, ff_dim=16, n_phones=6)
        )
        self.noise = noise
        self.current_tokens: torch.Tensor | None = None

    def encode_speech(self, mel, mel_lengths):
        lengths = (mel_lengths + 1) // 2
        tokens = self.current_tokens[:, : int(lengths.max())]
        s = torch.nn.functional.one_hot(tokens, 6).float()
        return s + self.noise * torch.randn_like(s), [], lengths

    def encode_phonemes(self, phones, phone_lengths, durations=None):
        from speechbench.ctap.model import length_regulate

        one_hot = torch.nn.functional.one_hot(phones, 6).float()
        frames, lengths = length_regulate(one_hot, durations, phone_lengths)
        return frames, lengths, torch.zeros(phones.shape)


def examples(vocab: PhoneVocabulary) -> list[Example]:
    out = []
    for i, phones in enumerate(
        [[["a", 0, 0.1], ["b", 0.1, 0.3]], [["c", 0, 0.2], ["a", 0.2, 0.24], ["d", 0.24, 0.4]]]
    ):
        t50 = int(phones[-1][2] * 50)
        token, segment = frame_alignment(phones, vocab, t50)
        out.append(Example(f"u{i}", torch.zeros(20, 2 * t50), token, segment))
    return out


def test_perfect_embeddings_retrieve_the_right_phone_and_noise_hits_chance(monkeypatch):
    vocab = PhoneVocabulary(["a", "b", "c", "d"])
    data = examples(vocab)
    model = OracleCTAP(noise=0.0)
    from speechbench.ctap import diagnostics

    real_whole = diagnostics._whole

    def whole(batch_examples, m):
        batch = real_whole(batch_examples, m)
        m.current_tokens = batch.frame_tokens
        return batch

    monkeypatch.setattr(diagnostics, "_whole", whole)
    result = retrieval_accuracy(model, data)
    assert result["phone_top1"] == 1.0
    assert result["frames"] == 15 + 20  # 0.3 s + 0.4 s at 50/s
    # identical copies of a phone tie, so exact-frame retrieval is rare
    assert result["frame_top1"] < 0.5
    tokens = torch.cat([e.frame_token for e in data])
    counts = torch.bincount(tokens).float()
    assert abs(result["phone_chance"] - float((counts**2).sum() / counts.sum() ** 2)) < 1e-6
    model.noise = 100.0
    torch.manual_seed(0)
    noisy = retrieval_accuracy(model, data)
    assert noisy["phone_top1"] < 0.6
