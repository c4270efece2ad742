"""mini-tse and mini-tse-2ch from fake voices (and a few real espeak-ng voices): SNR
measured back, enrollment, geometry, synthetic training voices."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from speakers_fakes import SPEAKERS, fake_sources

from speechbench.audio import read_audio
from speechbench.corpora import mini_tse, speakers, splits
from speechbench.errors import AudioError, CorpusError

SMALL = {"train": 6, "dev": 2, "test": 4}
SPEEDS = mini_tse.SPEED_FACTORS
# two variants at two pitches: 4 synthetic voices in 2 families
FEW_VOICES = tuple(v for v in mini_tse.SYNTH_VOICES if v.variant in ("m1", "f1") and v.pitch < 60)


@pytest.fixture
def fake_pool(tmp_path, monkeypatch):
    monkeypatch.setenv("SPEECHBENCH_DATA", str(tmp_path / "data"))
    sources = fake_sources(tmp_path / "src", SPEAKERS, per_speaker=12, durations=(1.6, 3.0))
    monkeypatch.setattr(mini_tse.MiniTse, "sources", lambda self: sources)
    monkeypatch.setattr(mini_tse, "MIXTURES", SMALL)
    monkeypatch.setattr(mini_tse, "SYNTH_VOICES", FEW_VOICES)
    monkeypatch.setattr(mini_tse, "SYNTH_UTTS_PER_VOICE", 3)
    monkeypatch.setattr(mini_tse, "SYNTH_TEXT_CHARS", (10, 160))  # fake texts are short
    return sources


def _synthetic(corpus, sources):
    """The corpus's synthetic utterances (already written: read back, not re-synthesised)."""
    return mini_tse.synthesize_voices(corpus.root, sources, mini_tse.SEED)


def _check_mixtures(corpus, records, sources):
    synthetic = _synthetic(corpus, sources)
    by_id = {s.id: s for s in sources + synthetic}
    held_out = {s.speaker for s in sources if splits.speaker_held_out(s.speaker)}
    assert {r.split: 0 for r in records}.keys() == SMALL.keys()
    n_synth = sum(r.labels["synthetic_target"] for r in records)
    assert n_synth == round(SMALL["train"] * mini_tse.SYNTH_SHARE)
    for r in records:
        labels = r.labels
        target, enroll = by_id[labels["target_id"]], by_id[labels["enroll"]]
        interferer = by_id[labels["interferer_id"]]
        assert labels["enroll"] != labels["target_id"]
        assert enroll.speaker == target.speaker == r.speaker == labels["target_speaker"]
        assert mini_tse.voice_family(interferer.speaker) != mini_tse.voice_family(target.speaker)
        synth = [s.origin == mini_tse.SYNTH_ORIGIN for s in (target, interferer, enroll)]
        assert labels["synthetic_target"] == synth[0] == synth[2]
        assert labels["synthetic_interferer"] == synth[1]
        assert r.split == "train" or not any(synth)  # synthetic voices train only
        if synth[0]:
            assert target.speaker.startswith("espeak-") and r.speaker == target.speaker
        # every real source is of the mixture's shared split; test = held-out speakers only
        real = [s for s, fake in zip((target, interferer, enroll), synth, strict=True) if not fake]
        assert all(s.shared_split == r.split for s in real)
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
        clean = mini_tse.perturb_speed(mini_tse.decode_source(target), speed)
        enroll_clean = mini_tse.perturb_speed(mini_tse.decode_source(enroll), speed)
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


def _stand_in_voices(voices=mini_tse.SYNTH_VOICES, per_voice=4):
    """Synthetic utterances without synthesis (spec drawing needs ids and durations)."""
    return [
        speakers.SourceUtt(
            id=f"syn-{v.speaker}-{j}",
            source=Path(f"{v.speaker}-{j}.wav"),
            language=v.language,
            speaker=v.speaker,
            text="a sentence",
            text_exact=True,
            origin=mini_tse.SYNTH_ORIGIN,
            duration=1.6 + 0.5 * j,
        )
        for v in voices
        for j in range(per_voice)
    ]


def test_synthetic_targets_leave_version_3_mixtures_alone(fake_pool):
    """Version 4: dev, test and the first train mixtures are version 3's specs; the rest
    of train has synthetic targets, enrolled with another sentence of the same voice,
    against a synthetic voice of another variant or a real pseudo-speaker."""
    counts = SMALL | {"train": 200}
    v4 = mini_tse.make_specs(fake_pool, counts, seed=0, synthetic=_stand_in_voices())
    n_real = counts["train"] - round(counts["train"] * mini_tse.SYNTH_SHARE)
    v3 = mini_tse.make_specs(fake_pool, counts | {"train": n_real}, seed=0)
    assert v4[:n_real] == v3[:n_real]  # version 3's train mixtures, same ids
    assert [s for s in v4 if s.split != "train"] == [s for s in v3 if s.split != "train"]
    synth = v4[n_real : counts["train"]]
    assert [s.id for s in synth] == [f"tse-train-{k:04d}" for k in range(n_real, 200)]
    assert all(s.split == "train" and s.target_id.startswith("syn-") for s in synth)
    assert all(s.target_speed == 1.0 for s in synth)
    by_id = {u.id: u for u in _stand_in_voices() + fake_pool}
    kinds = {by_id[s.interferer_id].origin == mini_tse.SYNTH_ORIGIN for s in synth}
    assert kinds == {True, False}  # both kinds of interferer
    for s in synth:
        target, enroll = by_id[s.target_id], by_id[s.enroll_id]
        interferer = by_id[s.interferer_id]
        assert enroll.speaker == target.speaker and enroll.id != target.id
        assert mini_tse.voice_family(interferer.speaker) != mini_tse.voice_family(target.speaker)
        if interferer.origin != mini_tse.SYNTH_ORIGIN:
            assert interferer.shared_split == "train"
            assert not splits.speaker_held_out(interferer.speaker)
        else:
            assert s.interferer_speed == 1.0
    assert len({by_id[s.target_id].speaker for s in synth}) >= 30  # many voices used


def test_synthetic_voices_are_distinct_and_named():
    voices = mini_tse.SYNTH_VOICES
    assert len(voices) == 48 == len({v.speaker for v in voices})
    assert len({(v.variant, v.pitch) for v in voices}) == 48
    assert {v.language for v in voices} == {"en", "es", "fr", "it", "nl", "cs"}
    assert voices[0].speaker == "espeak-en-m1-p20"
    assert mini_tse.voice_family("espeak-cs-m3-p80") == mini_tse.voice_family("espeak-en-m3-p20")
    assert mini_tse.voice_family("espeak-en-m3-p20") != mini_tse.voice_family("espeak-en-m4-p20")
    assert mini_tse.voice_family("asterisk-a") == "asterisk-a"


def test_synthetic_voices_read_train_transcripts_only(fake_pool, tmp_path):
    """Each voice reads real train transcripts (never a dev or test recording's text),
    and its files are espeak-ng speech at 16 kHz with source ids of their own."""
    synthetic = mini_tse.synthesize_voices(tmp_path / "corpus", fake_pool, seed=0)
    train_texts = {
        s.text
        for s in fake_pool
        if s.shared_split == "train" and not splits.speaker_held_out(s.speaker)
    }
    assert len(synthetic) == len(FEW_VOICES) * 3
    for utt in synthetic:
        assert utt.text in train_texts
        assert utt.source_id == f"espeak-ng:{utt.speaker}/{utt.id}"
        assert sf.info(str(utt.source)).samplerate == 16000 and utt.duration > 0.5
    # restart: the files are kept, not synthesised again
    first = {u.id: u.source.stat().st_mtime_ns for u in synthetic}
    again = mini_tse.synthesize_voices(tmp_path / "corpus", fake_pool, seed=0)
    assert {u.id: u.source.stat().st_mtime_ns for u in again} == first


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
