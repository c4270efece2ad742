"""mini-dcase small build: labels inside clips, energy where the events are, disjoint sources,
restart, bad input. Needs the Debian sound packages (fetched once per session)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from shrink import shrunk

from speechbench.corpora import mini_dcase, sounds
from speechbench.corpora.base import read_manifest
from speechbench.corpora.mini_dcase import CLIP_SECONDS, SCENES, MiniDcase
from speechbench.errors import CorpusError

pytestmark = pytest.mark.needs_apt


SMALL = {
    "LANGUAGES": ("en",),
    "CLIPS_PER_SCENE": {"train": 3, "dev": 3, "test": 3},
    "SPEECH_EVENT_PROMPTS": 12,
    "BABBLE_PROMPTS_PER_POOL": 4,
    "BEDS_PER_SCENE": 1,
}


@pytest.fixture(scope="module")
def small():
    """A few clips per scene; the Debian download is shared by the whole test session."""
    yield from shrunk(MiniDcase, SMALL)


@pytest.fixture(scope="module")
def built(small, tmp_path_factory):
    corpus = MiniDcase(data_dir=tmp_path_factory.mktemp("mini-dcase"))
    return corpus, corpus.prepare()


def frame_energy(wav: np.ndarray, rate: int, hop_s: float = 0.05) -> np.ndarray:
    hop = int(rate * hop_s)
    frames = len(wav) // hop
    return (wav[: frames * hop].reshape(frames, hop) ** 2).mean(axis=1)


def test_labels_are_consistent_and_inside_the_clip(built):
    corpus, records = built
    assert len(records) == sum(SMALL["CLIPS_PER_SCENE"].values()) * len(SCENES)
    assert {r.labels["scene"] for r in records} == set(SCENES)
    for record in records:
        wav, rate = sf.read(corpus.audio_path(record))
        assert rate == 16000 and len(wav) == int(CLIP_SECONDS * rate)
        events = record.labels["events"]
        assert events, record.id
        assert record.labels["tags"] == sorted({e[0] for e in events})
        for label, onset, offset in events:
            assert 0.0 <= onset < offset <= CLIP_SECONDS + 1e-6
            assert label in SCENES[record.labels["scene"]].events


def test_event_regions_carry_the_event_energy(built):
    corpus, records = built
    louder = total = 0
    for record in records:
        wav, rate = sf.read(corpus.audio_path(record))
        energy = frame_energy(wav, rate)
        times = (np.arange(len(energy)) + 0.5) * 0.05
        active = np.zeros(len(energy), bool)
        for _, onset, offset in record.labels["events"]:
            active |= (times >= onset) & (times <= offset)
        if active.all() or not active.any():
            continue
        background = np.median(energy[~active])
        for _, onset, offset in record.labels["events"]:
            inside = energy[(times >= onset) & (times <= offset)]
            if len(inside):
                total += 1
                louder += inside.mean() > 1.5 * background
    assert total >= 10
    assert louder / total > 0.8


def test_event_sources_are_disjoint_between_splits(built):
    corpus, records = built
    used = {
        split: {k for r in records if r.split == split for k in r.labels["sources"]}
        for split in ("train", "dev", "test")
    }
    assert used["train"] and used["test"]
    assert not used["train"] & used["test"] and not used["dev"] & (used["train"] | used["test"])
    staged = {
        pool: {p.stem for p in (corpus.root / "_sources" / pool / "foreground").rglob("*.wav")}
        for pool in ("train", "dev", "test")
    }
    assert staged["train"] and staged["test"] and not staged["train"] & staged["test"]
    assert not staged["dev"] & (staged["train"] | staged["test"])
    shared = sounds.shared_sound_splits()
    for record in records:  # every sound keeps the split all corpora give it
        for source in record.labels["sources"]:
            if source in shared:
                assert shared[source] == record.split, source


def test_manifest_attribution_and_stats(built):
    corpus, records = built
    manifest = read_manifest(corpus.manifest_path)
    assert [r.id for r in manifest] == [r.id for r in records]
    assert all(set(r.sha1) == {"main"} and len(r.sha1["main"]) == 40 for r in manifest)
    attribution = (corpus.root / "ATTRIBUTION").read_text()
    for key in {k for r in records for k in r.labels["event_sources"]}:
        assert key in attribution
    assert "CC-BY-SA-3.0" in attribution and "scaper" in attribution
    assert (corpus.root / "stats.json").exists()


def test_views_are_disjoint_thirds_with_one_label_type_each(built):
    corpus, records = built
    views = {
        cls.view: cls(data_dir=corpus.data_dir).prepare()
        for cls in (mini_dcase.MiniDcaseAsc, mini_dcase.MiniDcaseTag, mini_dcase.MiniDcaseSed)
    }
    ids = {view: {r.id for r in recs} for view, recs in views.items()}
    assert set().union(*ids.values()) == {r.id for r in records}  # every clip in one view
    assert sum(len(v) for v in ids.values()) == len(records)  # ... and only one
    whole = {r.id: r for r in records}
    for view, recs in views.items():
        key = mini_dcase.VIEW_LABEL[view]
        assert {r.split for r in recs} == {"train", "dev", "test"}
        for record in recs:
            assert set(record.labels) == {key, "sources"}
            assert record.labels[key] == whole[record.id].labels[key]
            assert record.split == whole[record.id].split
            assert record.sha1 == whole[record.id].sha1  # the same audio


def test_restart_skips_finished_clips(built, monkeypatch):
    corpus, records = built
    first = corpus.audio_path(records[0])
    stamp = first.stat().st_mtime_ns
    (corpus.root / "labels" / f"{records[-1].id}.json").unlink()  # as if interrupted
    rendered = []
    original = MiniDcase.render_clip

    def counting(self, *args, **kwargs):
        rendered.append(args[4])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(MiniDcase, "render_clip", counting)
    again = corpus.prepare(force=True)
    assert rendered == [records[-1].id]
    assert first.stat().st_mtime_ns == stamp
    assert [r.labels for r in again] == [r.labels for r in records]  # same seed, same clip


def test_wrong_rate_file_is_named_and_no_manifest(built):
    corpus, records = built
    bad = corpus.audio_path(records[1])
    wav, _ = sf.read(bad)
    sf.write(bad, wav[::2], 8000)
    corpus.manifest_path.unlink()
    with pytest.raises(CorpusError, match=f"{records[1].id}.wav.*8000 Hz"):
        corpus.prepare()
    assert not corpus.manifest_path.exists()


def test_missing_source_package_is_named(small, tmp_path, monkeypatch):
    monkeypatch.setattr(sounds, "EVENT_PACKAGES", ("no-such-sound-package-xyz",))
    corpus = mini_dcase.MiniDcase(data_dir=tmp_path)
    with pytest.raises(CorpusError, match="no-such-sound-package-xyz"):
        corpus.prepare()
    assert not corpus.manifest_path.exists()


def test_same_class_overlaps_are_merged():
    merged = mini_dcase.merge_same_class([["a", 0, 2], ["b", 1, 3], ["a", 1.5, 4], ["a", 5, 6]])
    assert merged == [["a", 0, 4], ["b", 1, 3], ["a", 5, 6]]
