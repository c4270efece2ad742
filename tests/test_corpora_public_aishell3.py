from pathlib import Path

from public_fakes import assert_bad_file_named, assert_missing_env, by_id, corrupt, text, tone

from speechbench.corpora.public.aishell3 import Aishell3
from speechbench.corpora.public.local import split_by_hash

CONTENT = {
    "train": {
        "SSB00050001.wav": "广 guang3 州 zhou1 女 nv3 大 da4 学 xue2 生 sheng1",
        "SSB00050002.wav": "登 deng1 山 shan1",
    },
    "test": {"SSB00090001.wav": "你 ni3 好 hao3"},
}


def make_aishell3(root: Path) -> Path:
    corpus = root / "data_aishell3"
    text(
        corpus / "spk-info.txt",
        "# AISHELL-3 speaker info\n# spk\tage\tgender\taccent\n"
        "SSB0005\tA\tfemale\tnorth\nSSB0009\tB\tmale\tsouth\n",
    )
    text(
        corpus / "train/label_train-set.txt",
        "# label file\nSSB00050001|guang3 zhou1 nv3 da4 xue2 sheng1|广 州 女 大 学 生\n"
        "SSB00050002|deng1 shan1|登 山\n",
    )
    for part, lines in CONTENT.items():
        text(
            corpus / part / "content.txt",
            "".join(f"{name}\t{words}\n" for name, words in lines.items()),
        )
        for name in lines:
            tone(corpus / part / "wav" / name[:7] / name, 44100, 0.1)
    return corpus


def test_manifest(tmp_path, monkeypatch):
    monkeypatch.setenv("SPEECHBENCH_AISHELL3_DIR", str(make_aishell3(tmp_path)))
    records = by_id(Aishell3(data_dir=tmp_path / "data").prepare())
    assert sorted(records) == ["SSB00050001", "SSB00050002", "SSB00090001"]
    r = records["SSB00050001"]
    assert (r.text, r.speaker, r.language, r.sample_rate) == (
        "广州女大学生",
        "SSB0005",
        "zh",
        44100,
    )
    assert r.labels["gender"] == "female"
    assert r.split == split_by_hash("SSB00050001", 0.05)
    t = records["SSB00090001"]
    assert (t.split, t.speaker, t.labels["gender"], t.text) == ("test", "SSB0009", "male", "你好")


def test_missing_path(tmp_path, monkeypatch):
    assert_missing_env(Aishell3, tmp_path, monkeypatch)


def test_corrupt_and_missing_file(tmp_path, monkeypatch):
    source = make_aishell3(tmp_path)
    monkeypatch.setenv("SPEECHBENCH_AISHELL3_DIR", str(source))
    bad = corrupt(source / "test/wav/SSB0009/SSB00090001.wav")
    assert_bad_file_named(Aishell3, bad, tmp_path)
    bad.unlink()
    assert_bad_file_named(Aishell3, bad, tmp_path)
