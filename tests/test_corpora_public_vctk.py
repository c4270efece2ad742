from pathlib import Path

import pytest
from public_fakes import assert_bad_file_named, assert_missing_env, by_id, corrupt, text, tone

from speechbench.corpora.public.local import split_by_hash
from speechbench.corpora.public.vctk import Vctk

SENTENCES = {
    "p225_001": "Please call Stella.",
    "p225_002": "Ask her to bring these things.",
    "p226_001": "Six spoons of fresh snow peas.",
}


def make_vctk(root: Path, release: str) -> Path:
    corpus = root / f"VCTK-{release}"
    p = "p" if release == "0.92" else ""
    text(
        corpus / "speaker-info.txt",
        "ID  AGE  GENDER  ACCENTS  REGION COMMENTS\n"
        f"{p}225  23  F    English    Southern  England\n"
        f"{p}226  22  M    English    Surrey\n",
    )
    for utt, sentence in SENTENCES.items():
        spk = utt.split("_")[0]
        text(corpus / "txt" / spk / f"{utt}.txt", sentence + "\n")
        if release == "0.92":
            for mic in ("mic1", "mic2"):
                tone(corpus / "wav48_silence_trimmed" / spk / f"{utt}_{mic}.flac", 48000, 0.1)
        else:
            tone(corpus / "wav48" / spk / f"{utt}.wav", 48000, 0.1)
    return corpus


@pytest.mark.parametrize("release", ["0.92", "0.80"])
def test_manifest(tmp_path, monkeypatch, release):
    monkeypatch.setenv("SPEECHBENCH_VCTK_DIR", str(make_vctk(tmp_path, release)))
    records = by_id(Vctk(data_dir=tmp_path / "data").prepare())
    suffix = "_mic2" if release == "0.92" else ""
    assert sorted(records) == [f"{u}{suffix}" for u in sorted(SENTENCES)]
    r = records[f"p226_001{suffix}"]
    assert (r.speaker, r.text, r.sample_rate, r.language) == (
        "p226",
        "Six spoons of fresh snow peas.",
        48000,
        "en",
    )
    assert r.labels["gender"] == "M" and r.labels["accent"] == "English"
    assert r.labels["release"] == release
    for utt, rec in records.items():
        assert rec.split == split_by_hash(utt.removesuffix("_mic2"), 0.05, 0.05)


def test_missing_path(tmp_path, monkeypatch):
    assert_missing_env(Vctk, tmp_path, monkeypatch)


def test_corrupt_and_missing_file(tmp_path, monkeypatch):
    source = make_vctk(tmp_path, "0.92")
    monkeypatch.setenv("SPEECHBENCH_VCTK_DIR", str(source))
    bad = corrupt(source / "wav48_silence_trimmed/p225/p225_002_mic2.flac")
    assert_bad_file_named(Vctk, bad, tmp_path)
    bad.unlink()
    assert_bad_file_named(Vctk, bad, tmp_path)
