"""mini-mos small build: labels, SNR, DNSMOS ordering, disjoint splits, restart, bad input.
Needs the Debian Asterisk and sound packages (fetched once per session)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from shrink import shrunk

from speechbench.corpora import degrade, noises
from speechbench.corpora.asterisk import asterisk_prompts
from speechbench.corpora.base import read_manifest
from speechbench.corpora.mini_mos import (
    CLEAN_DURATIONS,
    CLEAN_RMS,
    NOISE_SOURCES,
    MiniMos,
    dnsmos_scores,
    speech_distortion_index,
)
from speechbench.corpora.sounds import read_sound
from speechbench.errors import CorpusError

pytestmark = pytest.mark.needs_apt
RATE = 16000
SMALL = {
    "LANGUAGES": ("en",),
    "CLEAN_PER_SPLIT": {"train": 1, "dev": 1, "test": 1},
    "BABBLE_PROMPTS_PER_SPLIT": 3,
    "VERSIONS_PER_CLEAN": 2,
}


@pytest.fixture(scope="module")
def small():
    """A few files; the Debian download is shared by the whole test session."""
    yield from shrunk(MiniMos, SMALL)


@pytest.fixture(scope="module")
def built(small, tmp_path_factory):
    corpus = MiniMos(data_dir=tmp_path_factory.mktemp("mini-mos"))
    return corpus, corpus.prepare()


@pytest.fixture(scope="module")
def clean_prompt(small):
    # a length DNSMOS scores in one window (see MiniMos.plan), so the test stays fast
    prompt = next(
        p
        for p in asterisk_prompts("en")
        if CLEAN_DURATIONS[0][0] <= sf.info(str(p.path)).duration < CLEAN_DURATIONS[0][1]
    )
    wav = read_sound(prompt.path, RATE)
    return wav * (CLEAN_RMS / np.sqrt(np.mean(wav**2)))


def test_records_and_labels(built):
    corpus, records = built
    assert len(records) == 3 * 2
    for record in records:
        wav, rate = sf.read(corpus.audio_path(record))
        assert rate == RATE and record.duration == pytest.approx(len(wav) / RATE, abs=1e-3)
        labels = record.labels
        assert set(labels["mos"]) == {"sig", "bak", "ovrl", "p808"}
        assert all(1.0 <= v <= 5.0 for v in labels["mos"].values())
        assert labels["pesq_wb"] is None or 1.0 <= labels["pesq_wb"] <= 4.65
        assert 0.0 <= labels["stoi"] <= 1.0 and labels["sdi"] >= 0.0
        assert record.language == "en" and record.speaker == "allison" and record.text
        if labels["degradation"] in ("noise", "enhanced"):
            assert -5 <= labels["snr_db"] <= 30
            kind = labels["noise_source"].partition("/")[0]
            assert kind in NOISE_SOURCES[record.split]
        if labels["degradation"] == "clean":
            assert labels["pesq_wb"] > 4.4 and labels["sdi"] < 1e-3


def test_splits_disjoint_by_clean_utterance_and_noise(built):
    _, records = built
    owner: dict[str, str] = {}
    for record in records:
        assert record.labels["sources"][0].startswith("asterisk-core-sounds-en-wav:")
        for key in (record.labels["clean_id"], *record.labels["sources"]):
            assert owner.setdefault(key, record.split) == record.split, key


def test_dnsmos_prefers_clean_to_0db_noise(clean_prompt):
    noise = noises.coloured_noise("pink", len(clean_prompt), np.random.default_rng(0))
    noisy = degrade.mix_at_snr(clean_prompt, noise, 0.0)
    clean_scores, noisy_scores = dnsmos_scores(clean_prompt), dnsmos_scores(noisy)
    assert clean_scores["ovrl"] > noisy_scores["ovrl"] + 0.8
    assert clean_scores["bak"] > noisy_scores["bak"] + 1.0


def test_every_noise_source_mixes_at_the_drawn_snr(built, clean_prompt):
    corpus, _ = built
    babble, events = _context(corpus)
    rng = np.random.default_rng(5)
    for split, kinds in NOISE_SOURCES.items():
        for kind in kinds:
            if kind not in ("white", "pink", "brown", "hum", "traffic", "wind"):
                if not corpus.noise_files(kind, split, babble, events):
                    continue  # no recording of this kind in this split
                kind = f"{kind}/{split}"
            source = kind
            noise = corpus._noise(source, len(clean_prompt), rng, babble, events)
            assert np.isfinite(noise).all() and np.std(noise) > 0, source
            target = float(rng.uniform(-5, 30))
            noisy = degrade.mix_at_snr(clean_prompt, noise, target)
            measured = degrade.snr_db(clean_prompt, noisy - clean_prompt)
            assert measured == pytest.approx(target, abs=0.05), source
    noisy, info = corpus._render(clean_prompt, "noise", "test", rng, babble, events)
    assert degrade.snr_db(clean_prompt, noisy - clean_prompt) == pytest.approx(
        info["snr_db"], abs=0.05
    )


def _context(corpus):
    from speechbench.corpora.sounds import event_sources

    _, babble = corpus.plan()
    return babble, event_sources()


def test_degradations_change_the_signal_as_labelled(built, clean_prompt):
    corpus, _ = built
    context = _context(corpus)
    rng = np.random.default_rng(1)
    out, info = corpus._render(clean_prompt, "packet_loss", "train", rng, *context)
    assert np.mean(out == 0) > 0.5 * info["loss_rate"]
    out, info = corpus._render(clean_prompt, "clipping", "train", rng, *context)
    assert np.max(np.abs(out)) < np.max(np.abs(clean_prompt))
    out, info = corpus._render(clean_prompt, "bandlimit", "train", rng, *context)
    assert speech_distortion_index(clean_prompt, out) > 0.05
    out, info = corpus._render(clean_prompt, "clean", "train", rng, *context)
    assert np.array_equal(out, clean_prompt)


def test_manifest_attribution_and_stats(built):
    corpus, records = built
    manifest = read_manifest(corpus.manifest_path)
    assert [r.id for r in manifest] == [r.id for r in records]
    assert all(r.sha1 for r in manifest)
    attribution = (corpus.root / "ATTRIBUTION").read_text()
    assert "asterisk-core-sounds-en-wav" in attribution and "CC-BY-SA-3.0" in attribution
    assert "speechmos" in attribution


def test_restart_skips_finished_files(built, monkeypatch):
    corpus, records = built
    stamp = corpus.audio_path(records[0]).stat().st_mtime_ns
    (corpus.root / "labels" / f"{records[-1].id}.json").unlink()  # as if interrupted
    rendered = []
    original = MiniMos._render

    def counting(self, clean, condition, *args):
        rendered.append(condition)
        return original(self, clean, condition, *args)

    monkeypatch.setattr(MiniMos, "_render", counting)
    monkeypatch.setattr(MiniMos, "BUILD_JOBS", 1)  # in this process, so the count sees it
    again = corpus.prepare(force=True)
    assert rendered == [records[-1].labels["degradation"]]
    assert corpus.audio_path(records[0]).stat().st_mtime_ns == stamp
    # same seed, same labels: the first build labelled in 2 worker processes, this one in 1
    assert again[-1].labels == records[-1].labels


def test_empty_audio_is_named_and_no_manifest(built):
    corpus, records = built
    sf.write(corpus.audio_path(records[0]), np.zeros(0, np.float32), RATE)
    corpus.manifest_path.unlink()
    with pytest.raises(CorpusError, match=f"{records[0].id}.wav.*empty"):
        corpus.prepare()
    assert not corpus.manifest_path.exists()


def test_unknown_language_is_named(small, tmp_path, monkeypatch):
    monkeypatch.setattr(MiniMos, "LANGUAGES", ("xx",))
    with pytest.raises(CorpusError, match="'xx'"):
        MiniMos(data_dir=tmp_path).prepare()
