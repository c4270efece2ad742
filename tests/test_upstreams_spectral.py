import math

import pytest
import torch
from speechbench.upstreams.spectral import MFCC, Fbank, FbankOptions, MFCCOptions


def _mel(f: float) -> float:
    return 1127.0 * math.log(1.0 + f / 700.0)


def test_shapes_frame_count_and_lengths_follow_kaldi_framing():
    wavs = torch.randn(2, 16000) * 0.1
    lengths = torch.tensor([16000, 8000])
    hidden, frame_lengths = MFCC()(wavs, lengths)
    assert len(hidden) == 1 and hidden[0].shape == (2, 98, 39)
    assert frame_lengths.tolist() == [98, 48]  # 1 + (n - 400) // 160
    hidden, _ = Fbank()(wavs, lengths)
    assert hidden[0].shape == (2, 98, 80)


def test_cmvn_normalises_each_dimension():
    hidden, lengths = Fbank()(torch.randn(1, 32000) * 0.1, torch.tensor([32000]))
    feats = hidden[0][0, : lengths[0]]
    assert feats.mean(0).abs().max() < 1e-4
    assert (feats.std(0, unbiased=False) - 1).abs().max() < 1e-2


def test_fbank_peak_lies_in_the_mel_band_of_a_pure_tone():
    # Independent check: a 1 kHz tone must peak in the triangular filter whose
    # centre (evenly spaced on the mel scale from 20 Hz to 8 kHz) is nearest 1 kHz.
    t = torch.arange(16000) / 16000
    wav = (0.5 * torch.sin(2 * math.pi * 1000 * t)).unsqueeze(0)
    upstream = Fbank(FbankOptions(num_mel_bins=40, cmvn=False))
    feats = upstream(wav, torch.tensor([16000]))[0][0][0]
    low, high = _mel(20.0), _mel(8000.0)
    centres = [low + (i + 1) * (high - low) / 41 for i in range(40)]
    expected = min(range(40), key=lambda i: abs(centres[i] - _mel(1000.0)))
    assert abs(int(feats.mean(0).argmax()) - expected) <= 1


def test_deltas_of_a_stationary_signal_are_near_zero_and_options_change_dims():
    wav = (0.3 * torch.sin(2 * math.pi * 300 * torch.arange(16000) / 16000)).unsqueeze(0)
    feats = MFCC(MFCCOptions(cmvn=False))(wav, torch.tensor([16000]))[0][0][0]
    middle = feats[10:-10]
    assert middle[:, 13:].abs().mean() < 0.05 * middle[:, :13].abs().mean()
    assert MFCC(MFCCOptions(deltas=False)).dim == 13


def test_deterministic_with_a_stable_fingerprint():
    wav = torch.randn(1, 8000)
    a = MFCC()(wav, torch.tensor([8000]))[0][0]
    b = MFCC()(wav, torch.tensor([8000]))[0][0]
    assert torch.equal(a, b)
    assert MFCC().fingerprint() == MFCC().fingerprint()


@pytest.mark.parametrize("n", [10, 399, 400])
def test_very_short_audio_gives_one_frame(n):
    hidden, lengths = MFCC()(torch.randn(1, n), torch.tensor([n]))
    assert lengths.tolist() == [1] and hidden[0].shape[1] == 1
