"""GRID and Libri2Mix on tiny trees of the real layout."""

from pathlib import Path

import pytest
from public_fakes import assert_bad_file_named, assert_missing_env, by_id, corrupt, text, tone

from speechbench.corpora.public.grid import Grid
from speechbench.corpora.public.librimix import Libri2Mix
from speechbench.corpora.public.local import split_by_hash
from speechbench.errors import CorpusError

ALIGN = (
    "0 23750 sil\n23750 29500 bin\n29500 34000 blue\n34000 35500 at\n35500 41000 f\n"
    "41000 47250 two\n47250 53000 now\n53000 74500 sil\n"
)


def make_grid(root: Path) -> Path:
    corpus = root / "grid"
    for speaker, utt in (("s1", "bbaf2n"), ("s3", "bbaf2n"), ("s3", "lgaz8p")):
        tone(corpus / "audio_25k" / speaker / f"{utt}.wav", 25000, 3.0)
        text(corpus / "alignments" / speaker / f"{utt}.align", ALIGN)
    return corpus


def test_grid_manifest(tmp_path, monkeypatch):
    monkeypatch.setenv("SPEECHBENCH_GRID_DIR", str(make_grid(tmp_path)))
    records = by_id(Grid(data_dir=tmp_path / "data").prepare())
    assert sorted(records) == ["s1_bbaf2n", "s3_bbaf2n", "s3_lgaz8p"]
    r = records["s3_bbaf2n"]
    assert (r.text, r.speaker, r.sample_rate) == ("bin blue at f two now", "s3", 25000)
    assert r.labels["words"][1] == ["bin", 0.95, 1.18]
    assert r.labels["words"][-1][2] == pytest.approx(2.98)  # inside the 3 s file
    assert records["s1_bbaf2n"].split == "test"
    assert r.split == split_by_hash("s3_bbaf2n", 0.05)


def test_grid_errors(tmp_path, monkeypatch):
    assert_missing_env(Grid, tmp_path, monkeypatch)
    source = make_grid(tmp_path)
    monkeypatch.setenv("SPEECHBENCH_GRID_DIR", str(source))
    bad = corrupt(source / "audio_25k/s3/lgaz8p.wav")
    assert_bad_file_named(Grid, bad, tmp_path)
    tone(bad, 25000, 3.0)
    (source / "alignments/s3/lgaz8p.align").unlink()
    with pytest.raises(CorpusError, match="lgaz8p.align"):
        Grid(data_dir=tmp_path / "data-2").prepare()


MIXES = {
    "train-100": ["103-1240-0003_1235-135887-0017"],
    "dev": ["1272-128104-0000_2277-149896-0015"],
    "test": ["1089-134686-0000_121-127105-0031", "2961-960-0004_8455-210777-0046"],
}


def make_libri2mix(root: Path) -> Path:
    corpus = root / "Libri2Mix"
    base = corpus / "wav16k" / "min"
    for subset, ids in MIXES.items():
        rows = ["mixture_ID,mixture_path,source_1_path,source_2_path,length"]
        for mix_id in ids:
            for folder in ("mix_clean", "s1", "s2"):
                tone(base / subset / folder / f"{mix_id}.wav", 16000, 0.25)
            # paths as written on the machine that generated the mixtures
            rows.append(
                f"{mix_id},/gen/Libri2Mix/wav16k/min/{subset}/mix_clean/{mix_id}.wav,"
                f"/gen/s1/{mix_id}.wav,/gen/s2/{mix_id}.wav,4000"
            )
        text(base / "metadata" / f"mixture_{subset}_mix_clean.csv", "\n".join(rows) + "\n")
    return corpus


def test_libri2mix_manifest(tmp_path, monkeypatch):
    source = make_libri2mix(tmp_path)
    monkeypatch.setenv("SPEECHBENCH_LIBRI2MIX_DIR", str(source))
    records = by_id(Libri2Mix(data_dir=tmp_path / "data").prepare())
    assert {k: r.split for k, r in records.items()} == {
        i: {"train-100": "train"}.get(s, s) for s, ids in MIXES.items() for i in ids
    }
    r = records["1272-128104-0000_2277-149896-0015"]
    base = source / "wav16k/min/dev"
    assert r.path == str(base / "mix_clean" / f"{r.id}.wav")
    assert r.labels["sources"] == [
        str(base / "s1" / f"{r.id}.wav"),
        str(base / "s2" / f"{r.id}.wav"),
    ]
    assert r.labels["speakers"] == ["1272", "2277"] and r.sample_rate == 16000


def test_libri2mix_errors(tmp_path, monkeypatch):
    assert_missing_env(Libri2Mix, tmp_path, monkeypatch)
    source = make_libri2mix(tmp_path)
    monkeypatch.setenv("SPEECHBENCH_LIBRI2MIX_DIR", str(source))
    mix_id = MIXES["test"][1]
    bad = corrupt(source / "wav16k/min/test/s2" / f"{mix_id}.wav")  # a source, not the mixture
    assert_bad_file_named(Libri2Mix, bad, tmp_path)
    tone(bad, 16000, 0.5)  # a source longer than its mixture
    assert_bad_file_named(Libri2Mix, bad, tmp_path)
