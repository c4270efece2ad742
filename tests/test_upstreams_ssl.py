"""HuBERT / WavLM / wav2vec 2.0 upstreams on random-weight checkpoints in both formats."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from speechbench.upstreams.batching import conv_frames
from speechbench.upstreams.random_checkpoints import build_s3prl_checkpoint, build_transformers_dir

from speechbench import audio
from speechbench.errors import ConfigError, WeightsUnavailableError
from speechbench.registry import get

FAMILIES = ["hubert", "wavlm", "wav2vec2"]
FORMATS = ["s3prl", "transformers"]


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("ssl")
    built = {}
    for family in FAMILIES:
        built[family, "s3prl"] = build_s3prl_checkpoint(family, root / f"{family}.pt")
        built[family, "transformers"] = build_transformers_dir(family, root / f"{family}_hf")
    return built


def _upstream(family, path, **options):
    cls = get("upstreams", family)
    return cls(cls.Options(path=str(path), **options))


def _speechlike(seconds: float, rate: int = 16000, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    wav = 0.3 * np.sin(2 * np.pi * 150 * t) * (1 + np.sin(2 * np.pi * 3 * t))
    return torch.tensor(wav + 0.01 * rng.standard_normal(t.size), dtype=torch.float32)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("family", FAMILIES)
def test_shapes_layers_frame_rate_determinism(checkpoints, family, fmt):
    up = _upstream(family, checkpoints[family, fmt])
    assert (up.num_layers, up.dim, up.frame_rate, up.level) == (3, 64, 50.0, "frame")
    a, b = _speechlike(2.0), _speechlike(0.77, seed=1)
    wavs = torch.nn.utils.rnn.pad_sequence([a, b], batch_first=True)
    lengths = torch.tensor([a.numel(), b.numel()])
    hidden, frames = up(wavs, lengths)
    assert len(hidden) == up.num_layers
    # 400-sample receptive field, 320-sample hop: 2 s -> 99 frames, 0.77 s -> 38
    assert frames.tolist() == [99, 38] == up.frame_lengths(lengths).tolist()
    assert abs(frames[0].item() - 2.0 * up.frame_rate) <= 1
    assert all(h.shape == (2, 99, 64) for h in hidden)
    again, _ = up(wavs, lengths)
    assert all(torch.equal(x, y) for x, y in zip(hidden, again, strict=True))
    # an item's features do not depend on what else was in the batch
    alone, _ = up(b[None], lengths[1:])
    for h, s in zip(hidden, alone, strict=True):
        torch.testing.assert_close(h[1, :38], s[0], atol=2e-4, rtol=1e-3)


@pytest.mark.parametrize("family", FAMILIES)
def test_long_audio_windows_keep_every_frame(checkpoints, family):
    wav = _speechlike(3.3)
    lengths = torch.tensor([wav.numel()])
    whole = _upstream(family, checkpoints[family, "s3prl"])
    windowed = _upstream(family, checkpoints[family, "s3prl"], max_window_seconds=0.6)
    full, n_full = whole(wav[None], lengths)
    cut, n_cut = windowed(wav[None], lengths)
    assert n_full.item() == n_cut.item() == conv_frames(wav.numel(), 400, 320) == 164
    assert full[0].shape == cut[0].shape
    # 0.6 s windows hold 30 frames; a window spans 30 * 320 + 80 samples from a frame boundary
    for first in (0, 60, 150):
        piece = wav[first * 320 : first * 320 + 30 * 320 + 80]
        alone, n_alone = whole(piece[None], torch.tensor([piece.numel()]))
        for c, a in zip(cut, alone, strict=True):
            torch.testing.assert_close(c[0, first : first + n_alone.item()], a[0])


def test_eight_khz_audio_is_resampled(checkpoints, tmp_path):
    path = tmp_path / "eight.wav"
    audio.write_audio(path, _speechlike(1.5, rate=8000).numpy(), 8000)
    up = _upstream("hubert", checkpoints["hubert", "s3prl"])
    wav = audio.load(path, up.sample_rate)
    assert wav.numel() == 24000
    hidden, frames = up(wav[None], torch.tensor([wav.numel()]))
    assert frames.item() == conv_frames(24000, 400, 320) == 74
    assert hidden[0].shape == (1, 74, 64)


def test_short_audio_gives_one_frame(checkpoints):
    up = _upstream("wavlm", checkpoints["wavlm", "transformers"])
    hidden, frames = up(torch.zeros(1, 100), torch.tensor([100]))
    assert frames.item() == 1 and hidden[0].shape == (1, 1, 64)


@pytest.mark.parametrize("family", FAMILIES)
def test_missing_weights_say_what_to_provide(family, tmp_path):
    cls = get("upstreams", family)
    available, message = cls.weights_available(cls.Options())
    assert not available and "upstream.path=" in message
    up = cls()
    with pytest.raises(WeightsUnavailableError, match="upstream.path="):
        up(torch.zeros(1, 16000), torch.tensor([16000]))
    missing = cls.Options(path=str(tmp_path / "nope.pt"))
    assert not cls.weights_available(missing)[0]
    with pytest.raises(WeightsUnavailableError, match="nope.pt"):
        cls(missing).fingerprint()


def test_wrong_family_or_bad_file_is_a_clear_error(checkpoints, tmp_path):
    with pytest.raises(ConfigError, match="not hubert"):
        _upstream("hubert", checkpoints["wavlm", "transformers"])
    bad = tmp_path / "bad.pt"
    torch.save({"something": 1}, bad)
    with pytest.raises(ConfigError, match="bad.pt"):
        _upstream("hubert", bad)


def test_fingerprint_follows_the_weights(checkpoints, tmp_path):
    other = build_s3prl_checkpoint("hubert", tmp_path / "other.pt", seed=1)
    first = _upstream("hubert", checkpoints["hubert", "s3prl"]).fingerprint()
    assert first == _upstream("hubert", checkpoints["hubert", "s3prl"]).fingerprint()
    assert first != _upstream("hubert", other).fingerprint()


def test_named_s3prl_model_that_cannot_download(monkeypatch):
    from s3prl.upstream.hubert import hubconf

    def offline(*args, **kwargs):
        raise ConnectionError("no route to huggingface.co")

    monkeypatch.setattr(hubconf, "_urls_to_filepaths", offline)
    with pytest.raises(WeightsUnavailableError, match="hubert_base.*upstream.path="):
        get("upstreams", "hubert")(get("upstreams", "hubert").Options(download=True))
