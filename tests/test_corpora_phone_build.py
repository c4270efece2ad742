"""Small mini-phone / mini-vc builds: validation, splits, determinism, restart, bad input.

The "real" part is exercised without Debian downloads: espeak-ng speech written at
8 kHz stands in for an Asterisk recording, which also gives pocketsphinx's forced
alignment an exact reference to be checked against.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from speechbench.audio import resample, write_audio
from speechbench.corpora import espeak, forced_align, mini_phone
from speechbench.corpora.asterisk import Prompt
from speechbench.corpora.base import read_manifest
from speechbench.corpora.mini_phone import MiniPhone
from speechbench.corpora.phones import PHONES, SILENCE, map_intervals, phone_sequence
from speechbench.corpora.prompts import Sentence, sentence_id
from speechbench.errors import CorpusError

TEXTS = [
    "please enter your mailbox number",
    "thank you for calling",
    "the party you are calling is not available",
    "press one to accept the call",
    "your message has been saved",
    "goodbye",
]


SHARED_SPLITS = ("train", "test", "train", "train", "dev", "train")  # as the shared split says


def fake_prompts(folder: Path) -> list[Sentence]:
    """espeak-ng speech at 8 kHz posing as real telephone prompts."""
    sentences = []
    for i, text in enumerate(TEXTS):
        spoken = espeak.synthesize(text, "en-us+f3", rate=160)
        path = folder / f"prompt{i}.wav"
        write_audio(path, resample(spoken.audio, spoken.sample_rate, 8000), 8000)
        prompt = Prompt(f"p{i}", path, text, "en", "allison")
        sentences.append(Sentence(sentence_id(text), text, prompt, SHARED_SPLITS[i]))
    return sentences


class SmallPhone(MiniPhone):
    variants = ("m1", "m3", "f2", "f4", "klatt")
    n_dev_voices = 1
    n_test_voices = 1
    voices_per_train_sentence = 2


@pytest.fixture
def small(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    sentences = fake_prompts(tmp_path / "prompts")
    monkeypatch.setattr(SmallPhone, "sentences", lambda self: sentences)

    def make(name: str = "data") -> SmallPhone:
        return SmallPhone(tmp_path / name)

    return make


def check_tiling(phones: list, duration: float) -> None:
    assert phones[0][1] == 0.0 and phones[-1][2] == pytest.approx(duration, abs=1e-6)
    for a, b in zip(phones, phones[1:], strict=False):
        assert a[1] < a[2] == b[1]


def test_small_build_is_valid_and_splits_hold_out_voices(small) -> None:
    corpus = small()
    records = corpus.prepare()
    assert corpus.manifest_path.exists() and (corpus.root / "ATTRIBUTION").exists()
    stats = json.loads((corpus.root / "stats.json").read_text())
    assert stats["utterances"] == len(records) == 8 + 1 + 1 + len(TEXTS)
    synthetic = [r for r in records if r.labels["source"] == "espeak-ng"]
    real = [r for r in records if r.labels["source"] == "asterisk"]
    assert len(real) == len(TEXTS)
    for record in records:
        assert record.sample_rate == 16000 and record.sha1 and record.language == "en"
        check_tiling(record.phones, record.duration)
        assert set(phone_sequence(record.phones)) <= set(PHONES)
        assert record.text in TEXTS
    voices = {
        split: {r.speaker for r in synthetic if r.split == split}
        for split in ("train", "dev", "test")
    }
    assert len(voices["train"]) == 3 and len(voices["dev"]) == len(voices["test"]) == 1
    assert not (voices["train"] & voices["test"]) and not (voices["train"] & voices["dev"])
    sentence_split = {}
    shared = dict(zip(map(sentence_id, TEXTS), SHARED_SPLITS, strict=True))
    for record in records:  # a sentence lives in one split only: the shared one
        assert sentence_split.setdefault(record.labels["sentence"], record.split) == record.split
        assert record.split == shared[record.labels["sentence"]]
        assert f"text:{record.labels['sentence']}" in record.labels["sources"]
    assert all(r.labels["sources"][0] == f"asterisk-en:{r.labels['prompt']}" for r in real)
    attribution = (corpus.root / "ATTRIBUTION").read_text()
    assert (
        "CC-BY-SA-3.0" in attribution
        and "espeak-ng 1." in attribution
        and "pocketsphinx" in attribution
    )


def test_forced_alignment_agrees_with_exact_espeak_times() -> None:
    text = "the party you are calling is not available"
    spoken = espeak.synthesize(text, "en-us+m3", rate=150)
    audio = resample(spoken.audio, spoken.sample_rate, 16000).numpy()
    phones, words = forced_align.align(audio, text)
    assert [w for w, _, _ in words] == text.split()
    check_tiling(
        [list(p) for p in phones[:-1]] + [[phones[-1][0], phones[-1][1], len(audio) / 16000]],
        len(audio) / 16000,
    )
    exact = {w: s for w, s, _ in spoken.words}
    errors = [abs(s - exact[w]) for w, s, _ in words]
    assert np.median(errors) < 0.04  # within 4 pocketsphinx frames
    exact_phones = phone_sequence(map_intervals(spoken.phones))
    assert len(set(phone_sequence(phones)) & set(exact_phones)) >= 0.8 * len(set(exact_phones))


def test_builds_are_deterministic(small, monkeypatch) -> None:
    monkeypatch.setattr(SmallPhone, "include_real", False)  # alignment is covered above
    first = {r.id: r.sha1 for r in small("a").prepare()}
    second = {r.id: (r.sha1, r.phones) for r in small("b").prepare()}
    assert first == {k: v[0] for k, v in second.items()}


def test_interrupted_build_restarts_and_skips_finished_files(small, monkeypatch) -> None:
    monkeypatch.setattr(SmallPhone, "include_real", False)
    reference = {r.id: r.sha1 for r in small("ref").prepare()}
    calls = []
    real_speak = mini_phone.speak_espeak

    def flaky(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == 4:
            raise KeyboardInterrupt  # the user pressed Ctrl-C mid-build
        return real_speak(*args, **kwargs)

    monkeypatch.setattr(mini_phone, "speak_espeak", flaky)
    corpus = small()
    with pytest.raises(KeyboardInterrupt):
        corpus.prepare()
    assert not corpus.manifest_path.exists()  # never a silently partial corpus
    calls.clear()
    monkeypatch.setattr(mini_phone, "speak_espeak", real_speak)
    counting = []
    monkeypatch.setattr(
        mini_phone, "speak_espeak", lambda *a, **k: counting.append(1) or real_speak(*a, **k)
    )
    records = corpus.prepare()
    assert len(counting) == 10 - 3  # the 3 finished utterances were not spoken again
    assert {r.id: r.sha1 for r in records} == reference


def test_corrupt_file_is_named(small) -> None:
    corpus = small()
    records = corpus.prepare()
    victim = corpus.root / records[2].path
    victim.write_bytes(b"RIFF\x00\x00not really audio")
    corpus.manifest_path.unlink()
    with pytest.raises(CorpusError, match=victim.name):
        corpus.prepare()
    assert not corpus.manifest_path.exists()


def test_wrong_sample_rate_is_named(small) -> None:
    corpus = small()
    records = corpus.prepare()
    victim = corpus.root / records[0].path
    write_audio(victim, np.zeros(8000, np.float32) + 0.1, 8000)
    corpus.manifest_path.unlink()
    with pytest.raises(CorpusError, match=f"{victim.name}.*sample rate"):
        corpus.prepare()


def test_missing_real_recording_is_named(small, tmp_path) -> None:
    (tmp_path / "prompts" / "prompt1.wav").unlink()
    with pytest.raises(CorpusError, match="p1.*prompt1.wav"):
        small().prepare()


def test_mini_vc_small_build_is_parallel(tmp_path, monkeypatch) -> None:
    from speechbench.corpora import festival, piper_tts
    from speechbench.corpora.mini_vc import ESPEAK_SPEAKERS, MiniVc

    if shutil.which("festival") is None:
        pytest.skip("festival not installed (apt-get install festival festvox-kallpc16k)")
    sentences = fake_prompts(tmp_path / "prompts")[:4]  # >= 2 train sentences: prompts

    class SmallVc(MiniVc):
        espeak_speakers = ESPEAK_SPEAKERS[:2]
        festival_voices = festival.VOICES[:1]

    monkeypatch.setattr(SmallVc, "sentences", lambda self: sentences)
    records = SmallVc(tmp_path / "data").prepare()
    speakers = {r.speaker for r in records}
    expected = 3 + int(piper_tts.available())
    assert len(speakers) == expected and len(records) == expected * len(sentences)
    for speaker in speakers:  # parallel: every speaker says every sentence
        assert {r.text for r in records if r.speaker == speaker} == set(TEXTS[:4])
    for record in records:
        check_tiling(record.phones, record.duration)
        assert set(phone_sequence(record.phones)) <= set(PHONES)
        assert record.phones[0][0] == SILENCE
    splits = {}
    for record in records:
        assert splits.setdefault(record.text, record.split) == record.split
    assert read_manifest(SmallVc(tmp_path / "data").manifest_path)[0].labels["alignment"]
    by_path = {r.path: r for r in records}
    for record in records:  # the prompt stream: same speaker, other sentence, no leak
        prompt = by_path[record.streams["prompt"]]
        assert prompt.speaker == record.speaker and prompt.text != record.text
        assert prompt.split in (record.split, "train")
        assert set(record.sha1) == {"main", "prompt"}


@pytest.mark.needs_apt
def test_real_prompt_sentences_from_debian(shared_data, monkeypatch) -> None:
    monkeypatch.setenv("SPEECHBENCH_DATA", str(shared_data))
    from speechbench.corpora.prompts import english_sentences

    sentences = english_sentences()
    assert len(sentences) >= 450
    assert len({s.id for s in sentences}) == len(sentences)
    assert all(s.prompt.path.exists() and s.text == s.text.lower() for s in sentences)
    assert not any("silence" in s.text for s in sentences)
