import numpy as np
import pytest
import soundfile as sf
import torch

from speechbench.audio import load, read_audio, resample
from speechbench.errors import AudioError


def test_reads_mono_and_resamples(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, 0.1 * np.sin(np.arange(8000) / 5), 8000)
    wav = load(path, 16000, expected_rate=8000)
    assert wav.shape == (16000,)
    tone = torch.sin(2 * torch.pi * 440 * torch.arange(16000) / 16000)
    down = resample(tone, 16000, 8000)
    spectrum = torch.fft.rfft(down).abs()
    assert int(spectrum.argmax()) == 440  # 1 Hz bins over one second: the tone survives


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.write_bytes(b"not audio at all"), "cannot decode audio"),
        (lambda p: sf.write(p, np.zeros(0), 16000), "empty"),
        (lambda p: sf.write(p, np.zeros((100, 2)), 16000), "2 channels"),
        (lambda p: sf.write(p, np.array([0.1, np.nan, 0.2]), 16000, subtype="FLOAT"), "NaN"),
        (
            lambda p: sf.write(p, np.zeros(100), 8000),
            "sample rate is 8000 Hz but the manifest says 16000",
        ),
    ],
)
def test_bad_audio_names_the_file(tmp_path, make, message):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(AudioError, match=message) as info:
        read_audio(path, expected_rate=16000)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="not found"):
        read_audio(tmp_path / "nope.wav")
