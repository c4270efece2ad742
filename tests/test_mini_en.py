"""The real default corpus: Asterisk's English prompts from Debian."""

import json

import pytest
import soundfile as sf

from speechbench.corpora.mini_en import MiniEn
from speechbench.runner import run

pytestmark = pytest.mark.needs_apt


@pytest.fixture(scope="module")
def mini_en(shared_data):
    corpus = MiniEn(shared_data)
    corpus.prepare()
    return corpus


def test_manifest_statistics_and_splits(mini_en):
    records = mini_en.manifest()
    # every transcribed speech prompt of the voice (563) except the 15 whose text is in
    # a more held-out shared split through another recording of it (version 2)
    assert len(records) == 548
    assert {r.split for r in records} == {"train", "dev", "test"}
    texts = {
        split: {r.text for r in records if r.split == split} for split in ("train", "dev", "test")
    }
    assert not (texts["train"] & texts["test"]) and not (texts["train"] & texts["dev"])
    assert not (texts["dev"] & texts["test"])
    minutes = sum(r.duration for r in records) / 60
    assert 20 < minutes < 35
    info = sf.info(mini_en.audio_path(records[0]))
    assert info.samplerate == 16000 and info.channels == 1
    assert all(r.sha1 and r.speaker == "allison" and r.language == "en" for r in records)
    assert "CC-BY-SA-3.0" in (mini_en.root / "ATTRIBUTION").read_text()
    stats = json.loads((mini_en.root / "stats.json").read_text())
    assert stats["utterances"] == 548 and stats["speakers"] == 1

    assert all(len(r.labels["sources"]) == 2 for r in records)  # recording + text


def test_short_run_on_mini_en_reports_wer_and_cer(sb_shared, mini_en):
    result = run(["upstream=mfcc", "downstream=asr", "downstream.max_epochs=1"])
    assert set(result.row["metrics"]) == {"wer", "cer"}
    assert result.row["corpus"] == "mini-en" and result.row["corpus_version"] == MiniEn.version


@pytest.mark.slow
def test_default_fbank_asr_learns_on_mini_en(sb_shared, mini_en):
    """The acceptance run: default config, test CER must reach 0.5 or better."""
    result = run(["upstream=fbank", "downstream=asr"])
    assert result.row["metrics"]["cer"] <= 0.5, result.row["metrics"]
