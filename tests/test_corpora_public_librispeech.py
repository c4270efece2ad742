from pathlib import Path

from public_fakes import assert_bad_file_named, assert_missing_env, by_id, corrupt, text, tone

from speechbench import registry
from speechbench.corpora.public.librispeech import LibriSpeech


def make_librispeech(root: Path) -> Path:
    """Three official parts, one chapter each, the real trans.txt format."""
    corpus = root / "LibriSpeech"
    lines = {
        "train-clean-100": ("19", "198", ["NORTHANGER ABBEY", "CHAPTER ONE"]),
        "dev-clean": ("84", "121123", ["GO DO YOU HEAR"]),
        "test-clean": ("1089", "134686", ["HE HOPED THERE WOULD BE STEW FOR DINNER"]),
    }
    for part, (spk, chapter, texts) in lines.items():
        folder = corpus / part / spk / chapter
        trans = []
        for i, words in enumerate(texts):
            utt = f"{spk}-{chapter}-{i:04d}"
            tone(folder / f"{utt}.flac", 16000, 0.3)
            trans.append(f"{utt} {words}")
        text(folder / f"{spk}-{chapter}.trans.txt", "\n".join(trans) + "\n")
    return corpus


def test_manifest(tmp_path, monkeypatch):
    source = make_librispeech(tmp_path)
    monkeypatch.setenv("SPEECHBENCH_LIBRISPEECH_DIR", str(source))
    corpus = registry.get("corpora", "librispeech")(data_dir=tmp_path / "data")
    records = by_id(corpus.prepare())
    assert sorted(records) == ["1089-134686-0000", "19-198-0000", "19-198-0001", "84-121123-0000"]
    first = records["19-198-0001"]
    assert (first.split, first.speaker, first.text, first.language) == (
        "train",
        "19",
        "CHAPTER ONE",
        "en",
    )
    assert first.sample_rate == 16000 and abs(first.duration - 0.3) < 1e-6
    assert Path(first.path).is_absolute() and Path(first.path).is_file()
    assert first.labels["subset"] == "train-clean-100"
    assert records["84-121123-0000"].split == "dev"
    assert records["1089-134686-0000"].split == "test"
    assert first.sha1 and corpus.manifest() == list(corpus.manifest())


def test_missing_path(tmp_path, monkeypatch):
    assert_missing_env(LibriSpeech, tmp_path, monkeypatch)


def test_corrupt_and_missing_file(tmp_path, monkeypatch):
    source = make_librispeech(tmp_path)
    monkeypatch.setenv("SPEECHBENCH_LIBRISPEECH_DIR", str(source))
    bad = corrupt(source / "dev-clean/84/121123/84-121123-0000.flac")
    assert_bad_file_named(LibriSpeech, bad, tmp_path)
    bad.unlink()  # listed in the transcript but gone: lhotse would skip it silently
    assert_bad_file_named(LibriSpeech, bad, tmp_path)
