"""mini-lid from fake real voices plus real espeak-ng synthesis: splits, conditions, flags."""

from __future__ import annotations

import shutil
from collections import defaultdict

import numpy as np
import pytest
from speakers_fakes import SPEAKERS, fake_sources

from speechbench.corpora import espeak_cli, fillets, mini_lid, segments, splits
from speechbench.errors import CorpusError

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="apt-get install espeak-ng"
)
TEXTS = {
    "de": [
        f"Das ist das Wrack Nummer {k}, ein seltsames Schiff, das tief unten im Meer liegt."
        for k in range(12)
    ]
}


def fake_shared_split(source: str, speaker: str | None = None) -> str:
    """A predictable stand-in for the shared split: held-out speakers test, else by the
    utterance number (u1 dev, u3 and u7 test: long enough for the 3 s cut)."""
    if splits.speaker_held_out(speaker):
        return "test"
    k = int(source.rsplit("-u", 1)[1])
    return {1: "dev", 3: "test", 7: "test"}.get(k, "train")


@pytest.fixture
def small_lid(tmp_path, monkeypatch):
    monkeypatch.setenv("SPEECHBENCH_DATA", str(tmp_path / "data"))
    sources = fake_sources(tmp_path / "src", SPEAKERS, per_speaker=5, durations=(1.5, 4.5))
    items = [mini_lid.Item(s, s.id, s.language, s.speaker, s.text, False) for s in sources]
    # en: three speakers, es: two, cs: three; add a one-speaker language
    ru = fake_sources(
        tmp_path / "ru", {"asterisk-r": ("ru", "asterisk-en")}, per_speaker=10, durations=(3, 4)
    )
    items += [mini_lid.Item(s, s.id, "ru", s.speaker, s.text, False) for s in ru]
    monkeypatch.setattr(mini_lid, "real_items", lambda: items)
    monkeypatch.setattr(splits, "recording_split", fake_shared_split)
    monkeypatch.setattr(mini_lid, "SYNTHETIC_LANGUAGES", ("de",))
    monkeypatch.setattr(mini_lid, "UTTS_PER_LANGUAGE", 12)
    monkeypatch.setattr(mini_lid, "SYNTH_TEXT_CHARS", (10, 200))
    monkeypatch.setattr(fillets, "dialogue_texts", lambda lang: TEXTS[lang])
    return mini_lid.MiniLid()


@needs_espeak
def test_build_splits_conditions_and_flags(small_lid):
    records = small_lid.prepare()
    full = [r for r in records if r.labels["condition"] == "full"]
    assert {r.language for r in full} == {"en", "es", "cs", "ru", "de"}
    speakers = defaultdict(lambda: defaultdict(set))
    for r in full:
        speakers[r.language][r.split].add(r.speaker)
    # test speakers are unseen wherever a held-out speaker exists (fakes: en asterisk-c,
    # cs big fish and statue; es has none, so it tests on unseen utterances)
    for lang in ("en", "cs", "de"):
        assert speakers[lang]["test"]
        assert not speakers[lang]["test"] & (speakers[lang]["train"] | speakers[lang]["dev"])
        assert not any(r.labels["test_speakers_seen"] for r in full if r.language == lang)
    assert all(r.labels["test_speakers_seen"] for r in full if r.language in ("es", "ru"))
    assert all(r.labels["single_speaker_language"] == (r.language == "ru") for r in records)
    for r in full:  # real recordings keep the shared split
        if not r.labels["synthetic"]:
            (source,) = r.labels["sources"]
            assert r.split == fake_shared_split(source, r.speaker)
    ru_splits = {r.split for r in full if r.language == "ru"}
    assert "test" in ru_splits and "train" in ru_splits
    synthetic = {r.language for r in records if r.labels["synthetic"]}
    assert synthetic == {"de"}
    assert {r.speaker for r in full if r.language == "de"} == {
        f"espeak-de-{v}" for v, _, _ in mini_lid.ESPEAK_VARIANTS
    }
    assert all(r.labels["class"] == r.language for r in records)
    # test conditions: 1 s and 3 s cuts of test utterances only, exact lengths
    by_id = {r.id: r for r in records}
    for r in records:
        if r.labels["condition"] == "full":
            continue
        seconds = {"1s": 1.0, "3s": 3.0}[r.labels["condition"]]
        assert r.split == "test" and abs(r.duration - seconds) < 1e-3
        source = by_id[r.labels["source_id"]]
        assert source.split == "test" and source.labels["condition"] == "full"
        assert source.duration >= seconds
    conditions = {r.labels["condition"] for r in records}
    assert conditions == {"full", "1s", "3s"}
    # the three duration conditions score the same utterances
    test_full = {r.id for r in full if r.split == "test"}
    for condition in ("3s", "1s"):
        cut = {r.labels["source_id"] for r in records if r.labels["condition"] == condition}
        assert cut == test_full


def test_cut_middle_takes_speech_not_silence():
    rate = 16000
    wav = np.zeros(rate * 5, dtype=np.float32)
    wav[rate : 3 * rate] = 0.5 * np.sin(np.arange(2 * rate) * 0.3)  # speech in 1..3 s
    cut = segments.cut_middle(wav, rate, 1.0)
    assert cut.size == rate and np.abs(cut).min() < 0.5 and np.sqrt(np.mean(cut**2)) > 0.3
    assert segments.cut_middle(wav, rate, 3.0) is None  # only 2 s of speech


def test_missing_espeak_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(CorpusError, match="apt-get install espeak-ng"):
        espeak_cli.synthesize("hallo", "de+m1")


@needs_espeak
def test_unknown_espeak_voice_is_named():
    with pytest.raises(CorpusError, match="xx-nope"):
        espeak_cli.synthesize("hallo", "xx-nope")


def test_balance_round_robin_over_speakers():
    items = [mini_lid.Item(None, f"{s}-{k}", "xx", s, None, True) for s in "ab" for k in range(10)]
    items += [mini_lid.Item(None, f"c-{k}", "xx", "c", None, True) for k in range(2)]
    chosen = mini_lid.balance(items, 9, seed=0)
    counts = {s: sum(i.speaker == s for i in chosen) for s in "abc"}
    assert counts == {"a": 4, "b": 3, "c": 2} or counts == {"a": 3, "b": 4, "c": 2}
