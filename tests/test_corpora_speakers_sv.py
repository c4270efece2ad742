"""mini-sv built from small fake voices: splits, trials, checksums, restart, bad input."""

from __future__ import annotations

from collections import Counter

import pytest
import soundfile as sf
from speakers_fakes import SPEAKERS, fake_sources

from speechbench.corpora import mini_sv, speakers
from speechbench.corpora.base import sha1_of
from speechbench.errors import CorpusError


@pytest.fixture
def small_sv(tmp_path, monkeypatch):
    monkeypatch.setenv("SPEECHBENCH_DATA", str(tmp_path / "data"))
    sources = fake_sources(tmp_path / "src", SPEAKERS, per_speaker=6)
    monkeypatch.setattr(mini_sv.MiniSv, "sources", lambda self: sources)
    monkeypatch.setattr(mini_sv, "MAX_PER_SPEAKER", 5)
    return mini_sv.MiniSv(), sources


def test_speakers_disjoint_and_trials_balanced(small_sv):
    corpus, _ = small_sv
    records = corpus.prepare()
    by_split = {s: {r.speaker for r in records if r.split == s} for s in ("train", "dev", "test")}
    assert by_split["test"] and by_split["train"]
    assert not by_split["test"] & (by_split["train"] | by_split["dev"])
    full = [r for r in records if r.labels.get("condition", "full") == "full"]
    assert Counter(r.speaker for r in full).most_common(1)[0][1] == 5
    trials = [line.split() for line in (corpus.root / "trials.txt").read_text().splitlines()]
    labels = Counter(t[2] for t in trials)
    assert labels["target"] == labels["nontarget"] > 0
    speaker_of = {r.id: r.speaker for r in records}
    test_ids = {r.id for r in records if r.split == "test"}
    condition = {r.id: r.labels["condition"] for r in records if r.split == "test"}
    for enroll, test, label in trials:
        assert enroll in test_ids and test in test_ids and enroll != test
        assert (speaker_of[enroll] == speaker_of[test]) == (label == "target")
        assert condition[enroll] == "full"  # enrollments stay full length
    # duration conditions: the same trials with the test side cut to 3 s and 1 s
    by_condition = Counter(condition[t] for _, t, _ in trials)
    assert by_condition["3s"] == by_condition["1s"] > 0
    cut = {r.id: r for r in records if r.labels.get("condition") in ("3s", "1s")}
    for record in cut.values():
        assert abs(record.duration - float(record.labels["condition"][:-1])) < 0.01
        full_trials = {(e, lab) for e, t, lab in trials if t == record.labels["source_id"]}
        assert {(e, lab) for e, t, lab in trials if t == record.id} == full_trials
    # the manifest repeats each test record's trials
    in_manifest = sum(len(r.labels["trials"]) for r in records if r.split == "test")
    assert in_manifest == len(trials)
    assert all(r.labels["class"] == r.speaker for r in records if r.split != "test")


def test_manifest_audio_checksums_and_attribution(small_sv):
    corpus, _ = small_sv
    records = corpus.prepare()
    for record in records[:5]:
        info = sf.info(str(corpus.root / record.path))
        assert (info.samplerate, info.channels) == (16000, 1)
        assert record.sha1 == {"main": sha1_of(corpus.root / record.path)}
        assert abs(record.duration - info.frames / 16000) < 1e-3
    attribution = (corpus.root / "ATTRIBUTION").read_text()
    assert "CC-BY-SA-3.0" in attribution and "GPL-2" in attribution
    stats = (corpus.root / "stats.json").read_text()
    assert '"speakers": 8' in stats


def test_split_is_deterministic(small_sv, tmp_path, monkeypatch):
    corpus, _ = small_sv
    first = [(r.id, r.split) for r in corpus.prepare()]
    trials = (corpus.root / "trials.txt").read_text()
    monkeypatch.setenv("SPEECHBENCH_DATA", str(tmp_path / "again"))
    again = mini_sv.MiniSv()
    assert [(r.id, r.split) for r in again.prepare()] == first
    assert (again.root / "trials.txt").read_text() == trials


def test_restart_skips_existing_files(small_sv, monkeypatch):
    corpus, _ = small_sv
    corpus.prepare()
    (corpus.manifest_path).unlink()  # as if interrupted before the manifest
    calls = []
    real_decode = speakers.decode
    monkeypatch.setattr(speakers, "decode", lambda src: calls.append(src) or real_decode(src))
    records = corpus.prepare()
    assert calls == [] and corpus.manifest_path.exists() and records


def test_corrupt_source_is_named_and_no_manifest(small_sv):
    corpus, sources = small_sv
    bad = sources[3].source
    bad.write_bytes(b"RIFF not really a wav file")
    with pytest.raises(CorpusError, match=str(bad)):
        corpus.prepare()
    assert not corpus.manifest_path.exists()


def test_wrong_source_rate_is_named(small_sv):
    corpus, sources = small_sv
    bad = sources[0].source  # an Asterisk voice must be 8 kHz
    wav, _ = sf.read(str(bad))
    sf.write(str(bad), wav, 11025)
    with pytest.raises(CorpusError, match=r"11025 Hz, expected 8000 Hz"):
        corpus.prepare()


def test_corrupt_output_file_is_found_on_validation(small_sv):
    corpus, _ = small_sv
    records = corpus.prepare()
    corpus.manifest_path.unlink()
    victim = corpus.root / records[0].path
    victim.write_bytes(b"")
    with pytest.raises(CorpusError, match=records[0].path):
        corpus.prepare()
    assert not corpus.manifest_path.exists()
