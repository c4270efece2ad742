"""The listening page rebuilds from a committed leaderboard: samples of runs this machine
never had come from the board's runs/<id>/samples, and the newest run per system wins."""

import json

import numpy as np
import soundfile as sf


def _run(run_id, task, system, finished_at, wer):
    names = ["converted/a.wav", "converted/a.reference.wav", "converted/b.wav"]
    return {
        "run_id": run_id,
        "downstream": task,
        "upstream": system,
        "system": system,
        "corpus": "mini-vc",
        "finished_at": finished_at,
        "metrics": {"wer": wer, "wer_ci_low": wer - 0.1, "wer_ci_high": wer + 0.1},
        "labels": {"epochs_run": 4},
        "artefacts": [{"kind": "audio", "name": n, "bytes": 3244} for n in names],
    }


def test_the_page_takes_committed_samples_and_the_newest_run_per_system(tmp_path, benchmark_script):
    module = benchmark_script("generation_table")
    board = tmp_path / "leaderboards"
    rows = [
        _run("old", "vc", "fbank", "2026-01-01T00:00:00", 0.9),
        _run("new", "vc", "fbank", "2026-01-02T00:00:00", 0.5),
        _run("hub", "vc", "hubert-mini", "2026-01-01T00:00:00", 1.8),
    ]
    for row in rows:
        samples = board / "runs" / row["run_id"] / "samples"
        samples.mkdir(parents=True)
        for index, name in enumerate(("a.wav", "a.reference.wav", "b.wav")):
            tone = 0.1 * np.sin(np.arange(1600) * (index + 1) / 10.0)
            sf.write(samples / name, tone.astype(np.float32), 16000)
    board.joinpath("runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    runs = module.newest_per_system(module.combined_runs([board / "runs.jsonl"], tmp_path / "x"))
    assert {key: row["run_id"] for key, row in runs.items()} == {
        ("vc", "fbank"): "new",
        ("vc", "hubert-mini"): "hub",
    }
    assert "| fbank | 4 | 50.0% [40.0%, 60.0%] |" in module.table("vc", runs)

    out = tmp_path / "site"
    used = module.page(runs, out, max_mb=1.0, per_run=3, boards=[board])
    copied = sorted(p.name for p in (out / "audio").iterdir())
    assert len(copied) == 6 and used == sum(p.stat().st_size for p in (out / "audio").iterdir())
    index = (out / "index.html").read_text()
    assert index.count("<audio") == 6 and "<h2>vc: hubert-mini</h2>" in index
    assert all(f"src='audio/{name}'" in index for name in copied)

    tight = module.page(runs, tmp_path / "tight", max_mb=0.01, per_run=3, boards=[board])
    assert tight <= 0.01e6 and len(list((tmp_path / "tight" / "audio").iterdir())) < 6
