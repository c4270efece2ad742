"""TMHINT-QI and BVCC: every rating kept, means and systems checked."""

from pathlib import Path

import pytest
from public_fakes import assert_bad_file_named, assert_missing_env, by_id, corrupt, text, tone

from speechbench.corpora.public.local import split_by_hash
from speechbench.corpora.public.mos import Bvcc, TmhintQi
from speechbench.errors import CorpusError


def make_tmhint(root: Path) -> Path:
    corpus = root / "TMHINTQI"
    text(
        corpus / "raw_data.csv",
        "idx,method,uttr,snr,noise,quality_score,intelligibility_score,file_name\n"
        "0,Noisy,1,-2,babycry,2,3,Noisy_-2_babycry_001\n"
        "1,Noisy,1,-2,babycry,3,5,Noisy_-2_babycry_001\n"
        "2,FCN,7,5,street,4,,FCN_5_street_007\n"
        "3,FCN,7,5,street,,4,FCN_5_street_007\n"
        "4,Clean,9,,clean,5,5,Clean_009\n",
    )
    tone(corpus / "train" / "Noisy_-2_babycry_001.wav", 16000, 0.1)
    tone(corpus / "train" / "FCN_5_street_007.wav", 16000, 0.1)
    tone(corpus / "test" / "Clean_009.wav", 16000, 0.1)
    return corpus


def test_tmhint_manifest(tmp_path, monkeypatch):
    monkeypatch.setenv("SPEECHBENCH_TMHINT_QI_DIR", str(make_tmhint(tmp_path)))
    records = by_id(TmhintQi(data_dir=tmp_path / "data").prepare())
    noisy = records["Noisy_-2_babycry_001"].labels["mos"]
    assert noisy["mean"] == pytest.approx(2.5) and noisy["ratings"] == [2.0, 3.0]
    assert noisy["intelligibility_mean"] == pytest.approx(4.0)
    assert noisy["system"] == "Noisy-SNR-2-babycry"
    fcn = records["FCN_5_street_007"]
    assert fcn.labels["mos"]["ratings"] == [4.0]  # the row without a quality score is skipped
    assert fcn.labels["mos"]["intelligibility_ratings"] == [4.0]
    assert fcn.split == split_by_hash("FCN_5_street_007", 0.1)
    assert records["Clean_009"].split == "test"


def test_tmhint_errors(tmp_path, monkeypatch):
    assert_missing_env(TmhintQi, tmp_path, monkeypatch)
    source = make_tmhint(tmp_path)
    monkeypatch.setenv("SPEECHBENCH_TMHINT_QI_DIR", str(source))
    bad = corrupt(source / "train" / "FCN_5_street_007.wav")
    assert_bad_file_named(TmhintQi, bad, tmp_path)
    bad.unlink()  # rated but in neither folder
    assert_bad_file_named(TmhintQi, bad, tmp_path)


def bvcc_line(system: str, utt: str, rating: int, listener: str) -> str:
    return f"{system},{utt},{rating},,{{}}_18-29_{listener}_Female_xx_yy_No\n"


def make_bvcc(root: Path) -> Path:
    data = root / "main" / "DATA"
    sets = {
        "TRAINSET": [
            ("sys64e2f", "sys64e2f-utt491a78a.wav", 3, "KO2"),
            ("sys64e2f", "sys64e2f-utt491a78a.wav", 4, "ZA7"),
        ],
        "DEVSET": [("sys7ab3c", "sys7ab3c-uttc2e86f6.wav", 1, "KO2")],
        "TESTSET": [
            ("sys04e63", "sys04e63-utt0f1d6f1.wav", 5, "QR1"),
            ("sys04e63", "sys04e63-utt0f1d6f1.wav", 4, "AB9"),
            ("sys04e63", "sys04e63-utt0f1d6f1.wav", 4, "KO2"),
        ],
    }
    for name, rows in sets.items():
        text(data / "sets" / name, "".join(bvcc_line(*row) for row in rows))
        for _, utt, _, _ in rows:
            if not (data / "wav" / utt).exists():
                tone(data / "wav" / utt, 16000, 0.1)
    return root / "main"


def test_bvcc_manifest(tmp_path, monkeypatch):
    monkeypatch.setenv("SPEECHBENCH_BVCC_DIR", str(make_bvcc(tmp_path)))  # release root is fine
    records = by_id(Bvcc(data_dir=tmp_path / "data").prepare())
    assert {k: r.split for k, r in records.items()} == {
        "sys64e2f-utt491a78a": "train",
        "sys7ab3c-uttc2e86f6": "dev",
        "sys04e63-utt0f1d6f1": "test",
    }
    mos = records["sys04e63-utt0f1d6f1"].labels["mos"]
    assert mos["mean"] == pytest.approx(13 / 3) and sorted(mos["ratings"]) == [4, 4, 5]
    assert mos["system"] == "sys04e63" and sorted(mos["listeners"]) == ["AB9", "KO2", "QR1"]


def test_bvcc_errors(tmp_path, monkeypatch):
    assert_missing_env(Bvcc, tmp_path, monkeypatch)
    source = make_bvcc(tmp_path)
    monkeypatch.setenv("SPEECHBENCH_BVCC_DIR", str(source))
    bad = corrupt(source / "DATA" / "wav" / "sys7ab3c-uttc2e86f6.wav")
    assert_bad_file_named(Bvcc, bad, tmp_path)
    tone(bad, 16000, 0.1)
    with open(source / "DATA" / "sets" / "DEVSET", "a") as fh:
        fh.write("not,a,rating\n")
    with pytest.raises(CorpusError, match="DEVSET:2"):
        Bvcc(data_dir=tmp_path / "data-2").prepare()
