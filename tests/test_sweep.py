"""``speechbench sweep``: grids on Ray, idempotent, resumable after kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from speechbench import paths
from speechbench.cli import app
from speechbench.corpora.tiny_synth import TinySynth
from speechbench.store import ResultsStore
from speechbench.sweep import Cell, Sweep, execute_cell, expand, parse_grid

GRID = [
    "upstream=mfcc,fbank",
    "downstream=asr",
    "seed=0,1",
    "corpus=tiny-synth",
    "downstream.max_epochs=2",
]
SPEECHBENCH = [sys.executable, "-m", "speechbench.cli"]


def test_grid_is_the_cross_product_in_order():
    cells = expand(parse_grid(["upstream=mfcc,fbank", "seed=0,1,1", "corpus=tiny-synth"]))
    assert [c.args for c in cells] == [
        ["upstream=mfcc", "seed=0", "corpus=tiny-synth"],
        ["upstream=mfcc", "seed=1", "corpus=tiny-synth"],
        ["upstream=fbank", "seed=0", "corpus=tiny-synth"],
        ["upstream=fbank", "seed=1", "corpus=tiny-synth"],
    ]
    assert cells[1].swept == {"upstream": "mfcc", "seed": "1"}  # corpus is not swept
    # one cell trains jointly on two corpora: '+' inside a value, ',' between values
    joint = expand(parse_grid(["corpus=mini-en+mini-phone,mini-en"]))
    assert [c.args for c in joint] == [["corpus=mini-en,mini-phone"], ["corpus=mini-en"]]


def test_a_task_can_name_its_corpus_so_one_grid_spans_corpora():
    cells = expand(parse_grid(["upstream=mfcc", "downstream=asr,asr@mini-phone,sv,dcasenet@a+b"]))
    assert [c.args for c in cells] == [
        ["upstream=mfcc", "downstream=asr"],
        ["upstream=mfcc", "downstream=asr", "corpus=mini-phone"],
        ["upstream=mfcc", "downstream=sv"],
        ["upstream=mfcc", "downstream=dcasenet", "corpus=a,b"],
    ]
    assert cells[1].swept == {"downstream": "asr@mini-phone"}


@pytest.mark.parametrize(
    "args, expected",
    [
        ([], "empty grid"),
        (["downstream=asr@mini-phone", "corpus=mini-en"], "the corpus is given twice"),
        (["downstream=asr@"], "name a corpus after '@'"),
        (["downstream=nope@mini-en"], "unknown downstream 'nope'"),
        (["seed="], "empty grid: seed= has no values"),
        (["sed=0,1"], "unknown config key 'sed'"),
        (["upstream=mfcc,nope"], "unknown upstream 'nope'"),
        (["downstream.lrr=1,2"], "unknown config key 'downstream.lrr'"),
        (["seed=a,b", "corpus=tiny-synth"], "bad value 'a' for seed"),
        (["seed=0", "seed=1"], "given twice"),
        (["seed=0", "--address", "127.0.0.1:1"], "no Ray cluster reachable"),
        (["seed=0", "--address", "nowhere"], "expected HOST:PORT"),
    ],
)
def test_bad_grids_are_one_line(sb_home, args, expected):
    result = CliRunner().invoke(app, ["sweep", *args])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines


def test_incompatible_pairings_are_skipped_with_a_reason_without_ray(sb_home):
    # ge2e is utterance-level (ASR reads frames); sv has no 'units' option
    cells = Sweep(
        ["upstream=ge2e", "downstream=asr,sv", "downstream.units=char", "corpus=tiny-synth"]
    ).run()
    reasons = {c.args[1]: c.reason for c in cells}
    assert all(c.status == "incompatible" for c in cells)
    assert "utterance-level" in reasons["downstream=asr"]
    assert "has no option units" in reasons["downstream=sv"]
    assert not ResultsStore(paths.results_db()).runs()  # never run, never stored


def test_a_failing_cell_returns_its_row_and_error(sb_home):
    rejected = execute_cell(["upstream=mfcc", "corpus=tiny-synth", "downstream.units=phone"], {})
    assert rejected["outcome"] == "incompatible" and "phone" in rejected["reason"]
    records = TinySynth().prepare()
    TinySynth().audio_path(records[3]).write_bytes(b"garbage")
    result = execute_cell(["upstream=fbank", "corpus=tiny-synth", "downstream.max_epochs=1"], {})
    assert result["outcome"] == "failed" and "AudioError" in result["reason"]
    assert result["row"]["status"] == "failed" and result["row"]["error"]
    # nothing touched the real store: the driver writes it
    assert not ResultsStore(paths.results_db()).runs()


def _sweep_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPEECHBENCH_")}
    env.update(SPEECHBENCH_HOME=str(home), SPEECHBENCH_DOWNLOADS=str(home / "downloads"))
    return env


def _rows(home: Path) -> list[dict]:
    db = home / "results" / "results.sqlite"
    return ResultsStore(db).runs() if db.exists() else []


def test_sweep_on_ray_survives_kill_9_and_then_skips_everything(tmp_path):
    """The issue's done-when: runs on Ray, a kill -9 mid-grid then the same call
    finishes with no duplicate rows, and a further identical call skips every cell."""
    home = tmp_path / "home"
    env = _sweep_env(home)
    command = [*SPEECHBENCH, "sweep", *GRID, "--num-cpus", "2"]
    first = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = time.time() + 240
    while time.time() < deadline and not any(r["status"] == "finished" for r in _rows(home)):
        assert first.poll() is None, first.communicate()
        time.sleep(0.5)
    os.killpg(first.pid, signal.SIGKILL)  # the sweep and every Ray process it started
    first.wait()
    done_before = [r for r in _rows(home) if r["status"] == "finished"]
    assert 1 <= len(done_before) < 4

    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=400)
    assert second.returncode == 0, second.stderr[-2000:]
    rows = _rows(home)
    assert len(rows) == 4 and len({r["run_id"] for r in rows}) == 4
    assert all(r["status"] == "finished" for r in rows)
    *table_lines, summary = second.stdout.strip().splitlines()  # the last line counts cells
    table = "\n".join(table_lines)
    assert summary.startswith("4 cells: ")
    assert "upstream" in table and "seed" in table and table.count("skipped") == len(done_before)
    assert "done=" in second.stderr and "running=" in second.stderr  # the progress bar

    third = subprocess.run(command, env=env, capture_output=True, text=True, timeout=200)
    assert third.returncode == 0, third.stderr[-2000:]
    assert third.stdout.strip().splitlines()[-1] == "4 cells: 4 skipped"
    assert third.stdout.count("finished before") == 4
    assert len(_rows(home)) == 4


@pytest.fixture(scope="module")
def ray_instance():
    ray = pytest.importorskip("ray")
    ray.init(
        address="local", num_cpus=2, object_store_memory=128 * 1024**2, include_dashboard=False
    )
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_lr_grid_picks_on_dev_and_scores_test_once(sb_home, ray_instance):
    args = ["upstream=fbank", "corpus=tiny-synth", "downstream.max_epochs=2", "seed=0,1"]
    cells = Sweep([*args, "downstream.lr=grid"], lr_grid=(1e-2, 1e-3)).run()
    choices = json.loads((paths.results_dir() / "lr_search" / "choices.json").read_text())
    (entry,) = choices.values()
    assert set(entry["candidates"]) == {"0.01", "0.001"} and entry["chosen"] in entry["candidates"]
    assert entry["metric"] == "cer" and entry["seed"] == 0
    rows = ResultsStore(paths.results_db()).runs()
    # test scored only for the chosen learning rate, once per seed
    assert len(rows) == 2 and {r["config"]["downstream"]["lr"] for r in rows} == {
        float(entry["chosen"])
    }
    assert all(isinstance(c, Cell) and c.status == "done" for c in cells)
    # one system, lr=grid, with the choice and its dev evidence in the labels
    assert {r["system"] for r in rows} == {"fbank downstream.lr=grid"}
    assert all(r["labels"]["lr_search"]["chosen"] == float(entry["chosen"]) for r in rows)
    again = Sweep([*args, "downstream.lr=grid"], lr_grid=(1e-2, 1e-3)).run()
    assert [c.status for c in again] == ["skipped", "skipped"]


def test_a_reused_worker_reports_each_runs_own_peak_memory():
    import resource

    import numpy as np

    from speechbench.runner import peak_memory_mb
    from speechbench.sweep import reset_peak_memory

    def resident_mb() -> float:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * resource.getpagesize() / 1024**2

    before = resident_mb()
    big = np.ones(400 * 1024**2 // 8)  # 400 MB, as if an earlier run had been large
    assert peak_memory_mb() > before + 350
    del big
    reset_peak_memory()
    assert peak_memory_mb() < before + 200


def test_a_cell_whose_worker_died_is_stored_as_failed(sb_home):
    sweep = Sweep(["upstream=mfcc", "corpus=tiny-synth", "seed=0,1"])
    cell = sweep.cells[1]
    row = sweep._failure_row(cell, "WorkerCrashedError: the worker died\n(long Ray trace)")
    sweep._write(row)
    (stored,) = ResultsStore(paths.results_db()).runs()
    assert stored["status"] == "failed" and stored["error"] == "WorkerCrashedError: the worker died"
    assert stored["config_hash"] == cell.config_hash and stored["seed"] == 1
    assert Sweep(["upstream=mfcc", "corpus=tiny-synth", "seed=0,1"]).cells[1].status == "pending"


def test_a_searched_learning_rate_labels_the_system_lr_grid_whatever_value_won():
    from speechbench.sweep import label_lr_search

    search = {"chosen": 0.003, "grid": [0.01, 0.003], "dev": {"0.01": 0.5, "0.003": 0.4}}
    row = {
        "upstream": "mfcc",
        "system": "mfcc downstream.hidden=64 downstream.lr=0.003",
        "labels": {"changed_options": [["downstream", "hidden", 64], ["downstream", "lr", 0.003]]},
    }
    labelled = label_lr_search(row, search)
    assert labelled["system"] == "mfcc downstream.hidden=64 downstream.lr=grid"
    assert labelled["labels"]["lr_search"] == search
    # a chosen value equal to the default is not a changed option, but still lr=grid
    default = {"upstream": "fbank", "system": "fbank", "labels": {"changed_options": []}}
    assert label_lr_search(default, search)["system"] == "fbank downstream.lr=grid"
    assert row["system"].endswith("lr=0.003")  # the input row is left alone


def test_runs_of_an_included_file_count_as_done_and_are_not_copied(sb_home, tmp_path):
    """A machine that starts empty continues a committed grid: cells finished in a
    committed runs.jsonl are skipped without Ray, and the local store stays empty."""
    grid = ["upstream=mfcc", "downstream=asr", "seed=0,1", "corpus=tiny-synth"]
    first, second = Sweep(grid).cells
    committed = {
        "run_id": first.config_hash[:12],
        "upstream": "mfcc",
        "downstream": "asr",
        "corpus": "tiny-synth",
        "system": "mfcc",
        "primary_metric": "cer",
        "metrics": {"cer": 0.25},
    }
    runs = tmp_path / "runs.jsonl"
    runs.write_text(json.dumps(committed) + "\n")
    sweep = Sweep([*grid[:2], "seed=0", grid[3]], include=(runs,))
    (cell,) = sweep.run()
    assert not sweep.ray_started
    assert cell.status == "skipped" and cell.reason == "finished in runs.jsonl"
    assert cell.run_id == committed["run_id"] and cell.row["metrics"] == {"cer": 0.25}
    assert not ResultsStore(paths.results_db()).runs()
    # another seed has another identity: an included file never stands in for it
    assert second.config_hash[:12] != committed["run_id"]
    result = CliRunner().invoke(app, ["sweep", *grid, "--include", str(tmp_path / "no.jsonl")])
    assert result.exit_code == 2 and "no.jsonl: no such file" in result.output.strip()


def test_dry_run_plans_the_grid_and_runs_nothing(sb_home, tmp_path):
    grid = ["upstream=mfcc,ge2e", "downstream=asr", "seed=0,1", "corpus=tiny-synth"]
    (done, *_), committed = Sweep(grid).cells, tmp_path / "runs.jsonl"
    record = {"run_id": done.config_hash[:12], "upstream": "mfcc", "downstream": "asr"}
    committed.write_text(json.dumps({**record, "corpus": "tiny-synth", "metrics": {}}) + "\n")
    result = CliRunner().invoke(app, ["sweep", *grid, "--include", str(committed), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "4 cells: 1 skipped, 1 pending, 2 incompatible" in result.output
    assert "finished in runs.jsonl" in result.output and "to run" in result.output
    assert not ResultsStore(paths.results_db()).runs()
    assert not list((paths.results_dir() / "runs").glob("*"))  # nothing started
