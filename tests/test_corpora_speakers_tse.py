"""mini-tse and mini-tse-2ch from fake voices: SNR measured back, enrollment, geometry."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf
from speakers_fakes import SPEAKERS, fake_sources

from speechbench.audio import read_audio
from speechbench.corpora import mini_tse, speakers, splits
from speechbench.errors import AudioError, CorpusError

SMALL = {"train": 5, "dev": 2, "test": 4}
SPEEDS = mini_tse.SPEED_FACTORS


@pytest.fixture
def fake_pool(tmp_path, monkeypatch):
    monkeypatch.setenv("SPEECHBENCH_DATA", str(tmp_path / "data"))
    sources = fake_sources(tmp_path / "src", SPEAKERS, per_speaker=12, durations=(1.6, 3.0))
    monkeypatch.setattr(mini_tse.MiniTse, "sources", lambda self: sources)
    monkeypatch.setattr(mini_tse, "MIXTURES", SMALL)
    return sources


def _check_mixtures(corpus, records, sources):
    by_id = {s.id: s for s in sources}
    held_out = {s.speaker for s in sources if splits.speaker_held_out(s.speaker)}
    assert {r.split: 0 for r in records}.keys() == SMALL.keys()
    for r in records:
        labels = r.labels
        target, enroll = by_id[labels["target_id"]], by_id[labels["enroll"]]
        interferer = by_id[labels["interferer_id"]]
        assert labels["enroll"] != labels["target_id"]
        assert enroll.speaker == target.speaker == r.speaker == labels["target_speaker"]
        assert interferer.speaker != target.speaker
        # every source is of the mixture's shared split; test = held-out speakers only
        assert {target.shared_split, interferer.shared_split, enroll.shared_split} == {r.split}
        assert (target.speaker in held_out) == (interferer.speaker in held_out)
        assert (target.speaker in held_out) == (r.split == "test")
        assert labels["sources"] == [target.source_id, interferer.source_id, enroll.source_id]
        assert -5.0 <= labels["snr_db"] <= 5.0
        assert set(r.audio) == set(corpus.streams) == {"main", "enroll", "reference"}
        assert set(r.sha1) == set(r.audio)  # every stream validated and hashed
        mix, _ = read_audio(corpus.audio_path(r), 16000, channels=corpus.channels)
        mix = mix if corpus.channels == 1 else mix[0]
        ref, _ = read_audio(corpus.audio_path(r, "reference"), 16000)
        enrolled, _ = read_audio(corpus.audio_path(r, "enroll"), 16000)
        assert mix.size == ref.size and enrolled.size > 0
        # the target reference is the target utterance itself (a scaled copy), at the
        # mixture's speed factor; train only is perturbed, target and enrollment alike
        speed = labels["target_speed"]
        assert speed in mini_tse.SPEED_FACTORS and labels["interferer_speed"] in SPEEDS
        assert r.split == "train" or speed == labels["interferer_speed"] == 1.0
        assert labels["target_voice"] == mini_tse.pseudo_speaker(target.speaker, speed)
        assert f"/{labels['target_voice']}/" in r.streams["enroll"]
        clean = mini_tse.perturb_speed(speakers.decode(target), speed)
        enroll_clean = mini_tse.perturb_speed(speakers.decode(enroll), speed)
        assert abs(enrolled.size - enroll_clean.size) <= 1
        corr = np.dot(clean, ref) / (np.linalg.norm(clean) * np.linalg.norm(ref))
        if corpus.channels == 1:
            assert corr > 0.999
        assert abs(mini_tse.measured_snr(ref, mix - ref) - labels["snr_db"]) < 0.05


def test_mono_mixtures(fake_pool):
    corpus = mini_tse.MiniTse()
    records = corpus.prepare()
    assert len(records) == sum(SMALL.values())
    _check_mixtures(corpus, records, fake_pool)
    specs = (corpus.root / "mixtures.jsonl").read_text().splitlines()
    assert len(specs) == len(records)
    assert "Licence" in (corpus.root / "ATTRIBUTION").read_text()


def test_two_channel_mixtures(fake_pool):
    corpus = mini_tse.MiniTse2ch()
    records = corpus.prepare()
    _check_mixtures(corpus, records, fake_pool)
    for r in records:
        assert sf.info(str(corpus.audio_path(r))).channels == 2  # one stream, two channels
        mix, _ = read_audio(corpus.audio_path(r), 16000, channels=2)
        assert mix.shape[0] == 2 and not np.allclose(mix[0], mix[1])
        with pytest.raises(AudioError, match="needs 2"):
            read_audio(corpus.audio_path(r, "enroll"), 16000, channels=2)
        assert r.labels["mic_spacing_m"] == 0.07


@pytest.mark.parametrize("angle", [0.0, 60.0, 180.0])
def test_anechoic_delay_matches_geometry(angle):
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(16000).astype(np.float32)
    images = mini_tse.anechoic_images(noise, angle, 1.5)
    # time difference of arrival from the cross-correlation peak (with 8x upsampling)
    from scipy.signal import correlate, resample

    up0, up1 = resample(images[0], 8 * 16000), resample(images[1], 8 * 16000)
    lags = np.arange(-80, 81)
    full = correlate(up0, up1, mode="full")
    centre = up1.size - 1
    lag = lags[np.argmax(full[centre - 80 : centre + 81])] / 8.0
    expected = 0.07 * math.cos(math.radians(angle)) / 343.0 * 16000  # ch0 is behind
    assert abs(lag - expected) < 0.3


def test_restart_skips_existing_mixtures(fake_pool, monkeypatch):
    corpus = mini_tse.MiniTse()
    corpus.prepare()
    corpus.manifest_path.unlink()
    monkeypatch.setattr(
        mini_tse.MiniTse, "_render", lambda *a: pytest.fail("re-rendered a mixture")
    )
    assert len(corpus.prepare()) == sum(SMALL.values())


def test_specs_are_deterministic(fake_pool):
    one = mini_tse.make_specs(fake_pool, SMALL, seed=0)
    two = mini_tse.make_specs(fake_pool, SMALL, seed=0)
    assert one == two
    assert one != mini_tse.make_specs(fake_pool, SMALL, seed=1)


def test_dev_and_test_do_not_depend_on_the_train_draw(fake_pool):
    """Version 3 changed train only: dev/test specs are version 2's draw whatever the
    number of (perturbed) train mixtures, and train uses several speed factors."""
    few = mini_tse.make_specs(fake_pool, SMALL, seed=0)
    many = mini_tse.make_specs(fake_pool, SMALL | {"train": 60}, seed=0)
    assert [s for s in few if s.split != "train"] == [s for s in many if s.split != "train"]
    train = [s for s in many if s.split == "train"]
    assert len(train) == 60 and len({s.target_speed for s in train}) >= 5
    assert all(s.target_speed == s.interferer_speed == 1.0 for s in few if s.split != "train")


@pytest.mark.parametrize("factor", [0.85, 1.15])
def test_speed_perturbation_scales_pitch_and_length(factor):
    """Against an independent reading: a 200 Hz tone comes out at 200 x factor Hz (FFT
    peak) and 1 / factor as long."""
    t = np.arange(16000) / 16000
    tone = np.sin(2 * np.pi * 200.0 * t).astype(np.float32)
    out = mini_tse.perturb_speed(tone, factor)
    assert abs(out.size - 16000 / factor) <= 1
    spectrum = np.abs(np.fft.rfft(out * np.hanning(out.size), n=16 * out.size))
    peak = np.argmax(spectrum) * 16000 / (16 * out.size)
    assert abs(peak - 200.0 * factor) < 1.0
    assert mini_tse.perturb_speed(tone, 1.0) is tone


def test_speaker_with_one_utterance_cannot_enroll(tmp_path, monkeypatch):
    monkeypatch.setattr(splits, "recording_split", lambda source, speaker=None: "train")
    voices = {f"asterisk-{k}": ("en", "asterisk-en") for k in "abc"}
    sources = fake_sources(tmp_path, voices, per_speaker=1)
    with pytest.raises(CorpusError, match="no enrollment"):
        mini_tse.make_specs(sources, {"train": 2, "dev": 0, "test": 0}, seed=0)


def test_stereo_file_on_a_mono_stream_is_rejected(tmp_path):
    """A mono stream refuses a stereo file; a 2-channel stream reads it as C x T."""
    path = tmp_path / "stereo.wav"
    sf.write(str(path), np.zeros((1600, 2), dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="2 channels, this stream is mono"):
        read_audio(path)
    assert read_audio(path, channels=2)[0].shape == (2, 1600)
