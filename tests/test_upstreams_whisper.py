"""Whisper encoders: the real shipped tiny.en (CTranslate2) and local checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from speechbench.upstreams.whisper import (
    MAX_FRAMES,
    Whisper,
    WhisperTinyEn,
    openai_to_transformers_encoder,
    whisper_frames,
)

from speechbench import audio
from speechbench.errors import ConfigError, WeightsUnavailableError
from speechbench.registry import get


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def _tone(seconds: float, rate: int = 16000, freq: float = 220.0) -> torch.Tensor:
    t = np.arange(int(seconds * rate)) / rate
    wav = 0.3 * np.sin(2 * np.pi * freq * t) * (1 + np.sin(2 * np.pi * 2 * t))
    return torch.tensor(wav, dtype=torch.float32)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    from transformers import WhisperConfig, WhisperModel

    torch.manual_seed(0)
    config = WhisperConfig(
        d_model=64,
        encoder_layers=2,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=256,
        decoder_ffn_dim=128,
        num_mel_bins=80,
    )
    path = tmp_path_factory.mktemp("whisper") / "tiny"
    WhisperModel(config).eval().save_pretrained(path)
    return path


def _openai_checkpoint(tiny_dir, path):
    """Write the same random encoder in openai-whisper's layout (names inverted by hand)."""
    from transformers import WhisperModel

    encoder = WhisperModel.from_pretrained(tiny_dir, local_files_only=True).get_encoder()
    inverse = {
        "self_attn.q_proj": "attn.query",
        "self_attn.k_proj": "attn.key",
        "self_attn.v_proj": "attn.value",
        "self_attn.out_proj": "attn.out",
        "self_attn_layer_norm": "attn_ln",
        "fc1": "mlp.0",
        "fc2": "mlp.2",
        "final_layer_norm": "mlp_ln",
    }
    state = {}
    for key, value in encoder.state_dict().items():
        if key == "embed_positions.weight":
            key = "positional_embedding"
        elif key.startswith("layer_norm."):
            key = key.replace("layer_norm.", "ln_post.")
        elif key.startswith("layers."):
            _, index, rest = key.split(".", 2)
            for new, old in inverse.items():
                if rest.startswith(new + "."):
                    rest = old + rest[len(new) :]
                    break
            key = f"blocks.{index}.{rest}"
        state["encoder." + key] = value
    dims = {"n_mels": 80, "n_audio_ctx": 1500, "n_audio_state": 64}
    dims |= {"n_audio_head": 2, "n_audio_layer": 2}
    torch.save({"dims": dims, "model_state_dict": state}, path)
    return path


def test_frames_map_back_to_the_real_length():
    assert whisper_frames(16000) == 50
    assert whisper_frames(100) == 1
    assert whisper_frames(30 * 16000) == MAX_FRAMES
    up = WhisperTinyEn.__new__(WhisperTinyEn)  # frame arithmetic needs no weights
    lengths = torch.tensor([16000 * 45, 16000 * 3 + 5])
    assert Whisper.frame_lengths(up, lengths).tolist() == [1500 + 750, 151]


def test_transformers_whisper_all_layers(tiny_dir):
    up = get("upstreams", "whisper")(Whisper.Options(path=str(tiny_dir)))
    assert (up.num_layers, up.dim, up.frame_rate) == (3, 64, 50.0)
    a, b = _tone(31.0), _tone(1.3, freq=300)
    wavs = torch.nn.utils.rnn.pad_sequence([a, b], batch_first=True)
    lengths = torch.tensor([a.numel(), b.numel()])
    hidden, frames = up(wavs, lengths)
    assert frames.tolist() == [1550, 65] == up.frame_lengths(lengths).tolist()
    assert len(hidden) == 3 and all(h.shape == (2, 1550, 64) for h in hidden)
    again, _ = up(wavs, lengths)
    assert all(torch.equal(x, y) for x, y in zip(hidden, again, strict=True))
    alone, _ = up(b[None], lengths[1:])
    torch.testing.assert_close(alone[-1][0], hidden[-1][1, :65], atol=1e-4, rtol=1e-4)


def test_openai_checkpoint_matches_transformers(tiny_dir, tmp_path):
    path = _openai_checkpoint(tiny_dir, tmp_path / "tiny.pt")
    from_openai = Whisper(Whisper.Options(path=str(path)))
    from_transformers = Whisper(Whisper.Options(path=str(tiny_dir)))
    wav = _tone(2.0)[None]
    lengths = torch.tensor([32000])
    x, _ = from_openai(wav, lengths)
    y, _ = from_transformers(wav, lengths)
    for a, b in zip(x, y, strict=True):
        torch.testing.assert_close(a, b)
    assert not openai_to_transformers_encoder({"decoder.token_embedding.weight": torch.ones(1)})


def test_whisper_without_checkpoint_is_clear(tmp_path):
    assert not Whisper.weights_available()[0]
    with pytest.raises(WeightsUnavailableError, match="upstream.path="):
        Whisper()(torch.zeros(1, 16000), torch.tensor([16000]))
    bad = tmp_path / "bad.pt"
    torch.save({"x": 1}, bad)
    with pytest.raises(ConfigError, match="bad.pt"):
        Whisper(Whisper.Options(path=str(bad)))


def test_real_tiny_en_offline(tmp_path):
    available, message = WhisperTinyEn.weights_available()
    assert available, message
    up = get("upstreams", "whisper-tiny-en")()
    assert (up.num_layers, up.dim, up.frame_rate, up.level) == (1, 384, 50.0, "frame")
    # 8 kHz audio on disk is resampled to the upstream's 16 kHz
    path = tmp_path / "eight.wav"
    audio.write_audio(path, _tone(2.5, rate=8000).numpy(), 8000)
    wav = audio.load(path, up.sample_rate)
    short = _tone(0.7, freq=400)
    wavs = torch.nn.utils.rnn.pad_sequence([wav, short], batch_first=True)
    lengths = torch.tensor([wav.numel(), short.numel()])
    hidden, frames = up(wavs, lengths)
    assert frames.tolist() == [125, 35] and hidden[0].shape == (2, 125, 384)
    again, _ = up(wavs, lengths)
    assert torch.equal(hidden[0], again[0])
    assert torch.isfinite(hidden[0]).all()
    # the real encoder tells a 220 Hz tone from a 400 Hz one and from silence
    silence, _ = up(torch.zeros(1, 16000), torch.tensor([16000]))
    tone = hidden[0][0, :35].mean(0)
    other = hidden[0][1, :35].mean(0)
    assert torch.dist(tone, other) > 0.1 and torch.dist(tone, silence[0][0].mean(0)) > 0.1
    assert len(up.fingerprint().split("-")) == 2


def test_tiny_en_without_30s_padding_keeps_frames():
    up = WhisperTinyEn(WhisperTinyEn.Options(pad_to_30s=False))
    a, b = _tone(1.3), _tone(0.5, freq=300)
    wavs = torch.nn.utils.rnn.pad_sequence([a, b], batch_first=True)
    lengths = torch.tensor([a.numel(), b.numel()])
    hidden, frames = up(wavs, lengths)
    assert frames.tolist() == [65, 25] and hidden[0].shape == (2, 65, 384)
    alone, _ = up(b[None], lengths[1:])
    torch.testing.assert_close(alone[0][0], hidden[0][1, :25])
