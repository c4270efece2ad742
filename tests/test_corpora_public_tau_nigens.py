from pathlib import Path

import numpy as np
import soundfile as sf
from public_fakes import assert_bad_file_named, assert_missing_env, by_id, corrupt, text, tone

from speechbench.corpora.public.tau_nigens import TauNigensDcase2020, frames_to_events

NAMES = ["fold1_room1_mix001_ov1", "fold2_room2_mix011_ov2", "fold3_room1_mix021_ov1"]


def make_nigens(root: Path) -> Path:
    corpus = root / "tau-nigens"
    for i, name in enumerate(NAMES):
        tone(corpus / "foa_dev" / f"{name}.wav", 24000, 1.0, channels=4, freq=200 + 100 * i)
    # real format: frame (100 ms), class, track, azimuth, elevation; no header
    text(
        corpus / "metadata_dev" / f"{NAMES[0]}.csv",
        "2,6,0,-50,10\n3,6,0,-48,10\n4,6,0,-46,10\n7,6,0,-40,10\n3,13,1,90,-20\n",
    )
    text(corpus / "metadata_dev" / f"{NAMES[1]}.csv", "0,0,0,10,0\n1,0,0,10,0\n")
    text(corpus / "metadata_dev" / f"{NAMES[2]}.csv", "5,11,0,0,0\n")
    return corpus


def test_frames_to_events_merges_runs_per_track():
    rows = [(2, 6, 0, 0, 0), (3, 6, 0, 0, 0), (5, 6, 0, 0, 0), (3, 6, 1, 0, 0)]
    assert frames_to_events(rows) == [
        ["female speech", 0.2, 0.4],
        ["female speech", 0.3, 0.4],
        ["female speech", 0.5, 0.6],
    ]


def test_manifest(tmp_path, monkeypatch):
    source = make_nigens(tmp_path)
    monkeypatch.setenv("SPEECHBENCH_TAU_NIGENS_DIR", str(source))
    corpus = TauNigensDcase2020(data_dir=tmp_path / "data")
    records = by_id(corpus.prepare())
    assert [records[n].split for n in NAMES] == ["test", "dev", "train"]
    first = records[NAMES[0]]
    assert first.labels["events"] == [
        ["female speech", 0.2, 0.5],
        ["piano", 0.3, 0.4],
        ["female speech", 0.7, 0.8],
    ]
    assert first.labels["doa"][0] == [0.2, "female speech", 0, -50, 10]
    assert (first.labels["room"], first.labels["overlap"]) == (1, 1)
    assert first.sample_rate == 24000 and abs(first.duration - 1.0) < 1e-6
    mono, rate = sf.read(str(corpus.audio_path(first)))
    original, _ = sf.read(str(source / "foa_dev" / f"{NAMES[0]}.wav"))
    assert mono.ndim == 1 and rate == 24000
    assert np.max(np.abs(mono - original[:, 0])) < 1e-4  # the W channel, 16-bit
    assert records[NAMES[2]].labels["events"] == [["male speech", 0.5, 0.6]]


def test_errors(tmp_path, monkeypatch):
    assert_missing_env(TauNigensDcase2020, tmp_path, monkeypatch)
    source = make_nigens(tmp_path)
    monkeypatch.setenv("SPEECHBENCH_TAU_NIGENS_DIR", str(source))
    bad = corrupt(source / "foa_dev" / f"{NAMES[1]}.wav")
    assert_bad_file_named(TauNigensDcase2020, bad, tmp_path)
    bad.unlink()
    assert_bad_file_named(TauNigensDcase2020, bad, tmp_path)
