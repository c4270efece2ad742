from pathlib import Path

from public_fakes import assert_bad_file_named, assert_missing_env, by_id, corrupt, text, tone

from speechbench.corpora.public.local import split_by_hash
from speechbench.corpora.public.voxceleb import VoxCeleb1
from speechbench.corpora.public.voxlingua import VoxLingua107


def make_voxceleb1(root: Path) -> Path:
    corpus = root / "voxceleb1"
    files = {
        "id10001/1zcIwhmdeo4/00001.wav": "1",
        "id10001/1zcIwhmdeo4/00002.wav": "2",
        "id10002/6WO410QOeuo/00001.wav": "3",
    }
    for rel in files:
        tone(corpus / "wav" / rel, 16000, 0.2)
    tone(corpus / "wav/id10002/6WO410QOeuo/00009.wav", 16000, 0.2)  # not in the list
    text(corpus / "iden_split.txt", "".join(f"{n} {rel}\n" for rel, n in files.items()))
    text(
        corpus / "vox1_meta.csv",
        "VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet\n"
        "id10001\tA.J._Buckley\tm\tIreland\tdev\nid10002\tA.R._Rahman\tm\tIndia\ttest\n",
    )
    return corpus


def test_voxceleb1_manifest(tmp_path, monkeypatch):
    monkeypatch.setenv("SPEECHBENCH_VOXCELEB1_DIR", str(make_voxceleb1(tmp_path)))
    records = by_id(VoxCeleb1(data_dir=tmp_path / "data").prepare())
    assert sorted(records) == [
        "id10001-1zcIwhmdeo4-00001",
        "id10001-1zcIwhmdeo4-00002",
        "id10002-6WO410QOeuo-00001",
    ]
    assert [records[k].split for k in sorted(records)] == ["train", "dev", "test"]
    r = records["id10002-6WO410QOeuo-00001"]
    assert r.speaker == "id10002" and r.sample_rate == 16000
    assert r.labels == {"gender": "m", "nationality": "India", "verification_set": "test"}


def test_voxceleb1_errors(tmp_path, monkeypatch):
    assert_missing_env(VoxCeleb1, tmp_path, monkeypatch)
    source = make_voxceleb1(tmp_path)
    monkeypatch.setenv("SPEECHBENCH_VOXCELEB1_DIR", str(source))
    bad = corrupt(source / "wav/id10001/1zcIwhmdeo4/00002.wav")
    assert_bad_file_named(VoxCeleb1, bad, tmp_path)
    bad.unlink()
    assert_bad_file_named(VoxCeleb1, bad, tmp_path)


def make_voxlingua(root: Path) -> Path:
    corpus = root / "voxlingua107"
    for lang, video in (("et", "-2B1TNYcKgo"), ("et", "Ab3xZ"), ("fi", "Qq9_pL")):
        tone(corpus / lang / f"{video}__U__S0---0009.930-0014.430.wav", 16000, 0.2)
    tone(corpus / "dev" / "fi" / "zzTop1__U__S3---0001.000-0004.000.wav", 16000, 0.2)
    return corpus


def test_voxlingua_manifest(tmp_path, monkeypatch):
    monkeypatch.setenv("SPEECHBENCH_VOXLINGUA107_DIR", str(make_voxlingua(tmp_path)))
    records = by_id(VoxLingua107(data_dir=tmp_path / "data").prepare())
    assert len(records) == 4
    test = records["dev-fi-zzTop1__U__S3---0001.000-0004.000"]
    assert (test.split, test.language, test.labels["video"]) == ("test", "fi", "zzTop1")
    train = records["train-et-Ab3xZ__U__S0---0009.930-0014.430"]
    assert train.language == "et" and train.split == split_by_hash("Ab3xZ", 0.02)
    assert {r.language for r in records.values()} == {"et", "fi"}


def test_voxlingua_errors(tmp_path, monkeypatch):
    assert_missing_env(VoxLingua107, tmp_path, monkeypatch)
    source = make_voxlingua(tmp_path)
    monkeypatch.setenv("SPEECHBENCH_VOXLINGUA107_DIR", str(source))
    bad = corrupt(source / "fi" / "Qq9_pL__U__S0---0009.930-0014.430.wav")
    assert_bad_file_named(VoxLingua107, bad, tmp_path)
