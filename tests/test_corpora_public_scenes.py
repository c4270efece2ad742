"""TAU Urban Acoustic Scenes 2020 Mobile and FSDKaggle2019 on tiny trees of the real layout."""

from pathlib import Path

from public_fakes import assert_bad_file_named, assert_missing_env, by_id, corrupt, text, tone

from speechbench.corpora.public.fsdkaggle import FsdKaggle2019
from speechbench.corpora.public.local import split_by_hash
from speechbench.corpora.public.tau_asc import TauAsc2020Mobile

TAU_FILES = {  # filename -> (scene, identifier, device, fold)
    "audio/airport-barcelona-0-0-a.wav": ("airport", "barcelona-0", "a", "train"),
    "audio/bus-lyon-1-40-s2.wav": ("bus", "lyon-1", "s2", "train"),
    "audio/park-helsinki-241-7211-b.wav": ("park", "helsinki-241", "b", "evaluate"),
}


def make_tau(root: Path) -> Path:
    corpus = root / "TAU-urban-acoustic-scenes-2020-mobile-development"
    meta = ["filename\tscene_label\tidentifier\tsource_label"]
    folds = {"train": ["filename\tscene_label"], "evaluate": ["filename\tscene_label"]}
    for name, (scene, ident, device, fold) in TAU_FILES.items():
        tone(corpus / name, 44100, 0.1)
        meta.append(f"{name}\t{scene}\t{ident}\t{device}")
        folds[fold].append(f"{name}\t{scene}")
    text(corpus / "meta.csv", "\n".join(meta) + "\n")
    for fold, lines in folds.items():
        text(corpus / "evaluation_setup" / f"fold1_{fold}.csv", "\n".join(lines) + "\n")
    return corpus


def test_tau_manifest(tmp_path, monkeypatch):
    monkeypatch.setenv("SPEECHBENCH_TAU_ASC2020_DIR", str(make_tau(tmp_path)))
    records = by_id(TauAsc2020Mobile(data_dir=tmp_path / "data").prepare())
    assert sorted(records) == [
        "airport-barcelona-0-0-a",
        "bus-lyon-1-40-s2",
        "park-helsinki-241-7211-b",
    ]
    park = records["park-helsinki-241-7211-b"]
    assert park.split == "test" and park.sample_rate == 44100
    assert park.labels == {
        "scene": "park",
        "device": "b",
        "city": "helsinki",
        "location": "helsinki-241",
    }
    assert records["bus-lyon-1-40-s2"].split == split_by_hash("lyon-1", 0.1)


def test_tau_errors(tmp_path, monkeypatch):
    assert_missing_env(TauAsc2020Mobile, tmp_path, monkeypatch)
    source = make_tau(tmp_path)
    monkeypatch.setenv("SPEECHBENCH_TAU_ASC2020_DIR", str(source))
    bad = corrupt(source / "audio/bus-lyon-1-40-s2.wav")
    assert_bad_file_named(TauAsc2020Mobile, bad, tmp_path)
    tone(bad, 22050, 0.1)  # one file at another rate than the rest
    assert_bad_file_named(TauAsc2020Mobile, bad, tmp_path)
    bad.write_bytes(bad.read_bytes()[:44])  # a header and no samples
    assert_bad_file_named(TauAsc2020Mobile, bad, tmp_path)


def make_fsd(root: Path) -> Path:
    corpus = root / "FSDKaggle2019"
    meta = corpus / "FSDKaggle2019.meta"
    text(
        meta / "train_curated_post_competition.csv",
        'fname,labels,freesound_id,license\n0006ae4e.wav,"Bark",61059,CC-BY\n'
        '0019ef41.wav,"Raindrop,Walk_and_footsteps",68583,CC0\n',
    )
    text(
        meta / "test_post_competition.csv",
        'fname,labels,usage,freesound_id,license\n4260ebea.wav,"Chewing_and_mastication",'
        "Public,389785,CC-BY\n",
    )
    for name in ("0006ae4e.wav", "0019ef41.wav"):
        tone(corpus / "FSDKaggle2019.audio_train_curated" / name, 44100, 0.1)
    tone(corpus / "FSDKaggle2019.audio_test" / "4260ebea.wav", 44100, 0.1)
    return corpus


def test_fsd_manifest(tmp_path, monkeypatch):
    monkeypatch.setenv("SPEECHBENCH_FSDKAGGLE2019_DIR", str(make_fsd(tmp_path)))
    records = by_id(FsdKaggle2019(data_dir=tmp_path / "data").prepare())
    assert sorted(records) == ["test-4260ebea", "train_curated-0006ae4e", "train_curated-0019ef41"]
    two = records["train_curated-0019ef41"]
    assert two.labels["tags"] == ["Raindrop", "Walk_and_footsteps"]
    assert two.labels["license"] == "CC0" and two.split == split_by_hash("0019ef41", 0.1)
    assert records["test-4260ebea"].split == "test"
    assert records["test-4260ebea"].labels["tags"] == ["Chewing_and_mastication"]


def test_fsd_errors(tmp_path, monkeypatch):
    assert_missing_env(FsdKaggle2019, tmp_path, monkeypatch)
    source = make_fsd(tmp_path)
    monkeypatch.setenv("SPEECHBENCH_FSDKAGGLE2019_DIR", str(source))
    bad = corrupt(source / "FSDKaggle2019.audio_test" / "4260ebea.wav")
    assert_bad_file_named(FsdKaggle2019, bad, tmp_path)
