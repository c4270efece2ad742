"""Grid files (``speechbench sweep --grid FILE``): per-task budgets and seeds by cost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from speechbench import paths
from speechbench.cli import app
from speechbench.grid_file import budget_for, load_grid_file, run_minutes
from speechbench.store import ResultsStore
from speechbench.sweep import Sweep, expand, parse_grid

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "grid.toml"
    path.write_text(text)
    return path


def test_a_grid_file_is_the_grid_its_budgets_and_seed_rule(tmp_path):
    spec = load_grid_file(
        write(
            tmp_path,
            'upstream = ["mfcc", "fbank"]\nseed = [0, 1]\nthreads = 1\n'
            '"downstream.voiceprint" = [true, false]\nmax_seed_minutes = 10\n'
            '[budget]\nasr = { "downstream.max_epochs" = 5 }\n'
            '"asr@mini-phone" = { "downstream.max_epochs" = 10, "downstream.min_epochs" = 10 }\n',
        )
    )
    assert spec.args == [
        "upstream=mfcc,fbank",
        "seed=0,1",
        "threads=1",
        "downstream.voiceprint=true,false",
    ]
    assert spec.max_seed_minutes == 10.0
    assert budget_for(spec.budgets, "asr", "mini-en") == {"downstream.max_epochs": "5"}
    assert budget_for(spec.budgets, "asr", "mini-phone") == {
        "downstream.max_epochs": "10",
        "downstream.min_epochs": "10",
    }
    assert budget_for(spec.budgets, "sv", "mini-sv") == {}


def test_budgets_reach_only_their_task_and_never_replace_a_swept_key():
    budgets = {
        "asr": {"downstream.max_epochs": "5"},
        "asr@mini-phone": {"downstream.min_epochs": "9"},
    }
    cells = expand(parse_grid(["upstream=mfcc", "downstream=asr,asr@mini-phone,sv"]), budgets)
    assert [c.args for c in cells] == [
        ["upstream=mfcc", "downstream=asr", "downstream.max_epochs=5"],
        [
            "upstream=mfcc",
            "downstream=asr",
            "corpus=mini-phone",
            "downstream.max_epochs=5",
            "downstream.min_epochs=9",
        ],
        ["upstream=mfcc", "downstream=sv"],
    ]
    swept = expand(parse_grid(["downstream=asr", "downstream.max_epochs=1,2"]), budgets)
    assert [c.args[-1] for c in swept] == ["downstream.max_epochs=1", "downstream.max_epochs=2"]
    assert all(sum(a.startswith("downstream.max_epochs") for a in c.args) == 1 for c in swept)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("upstream = [", "not valid TOML"),
        ("[extra]\nx = 1", "[extra] is not a grid section"),
        ("upstream = []", "upstream must be a value or a list"),
        ("max_seed_minutes = -1", "max_seed_minutes must be > 0"),
        ('max_seed_minutes = "ten"', "max_seed_minutes must be a number"),
        ("[budget]\nasr = 4", 'budget."asr" must be a table'),
        ('[budget]\nasr = { "downstream.lr" = 0.1 }', "downstream.lr: not a budget option"),
        ('[budget]\nnope = { "downstream.max_epochs" = 1 }', "unknown downstream 'nope'"),
    ],
)
def test_a_bad_grid_file_is_one_line(sb_home, tmp_path, text, expected):
    path = write(tmp_path, 'upstream = ["mfcc"]\n' + text if "[" in text[:1] else text)
    result = CliRunner().invoke(app, ["sweep", "--grid", str(path), "--dry-run"])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
    missing = CliRunner().invoke(app, ["sweep", "--grid", str(tmp_path / "no.toml")])
    assert missing.exit_code == 2 and "no.toml: no such file" in missing.output


def test_later_seeds_follow_the_first_seeds_measured_cost(sb_home, tmp_path):
    grid = ["upstream=mfcc", "downstream=asr", "seed=0,1", "corpus=tiny-synth"]
    first, later = Sweep(grid).cells

    def committed(seconds: float) -> Path:
        row = {
            "run_id": first.config_hash[:12],
            "upstream": "mfcc",
            "downstream": "asr",
            "corpus": "tiny-synth",
            "metrics": {"cer": 0.3},
            "timings": {"extract_s": seconds / 2, "train_s": seconds / 2, "audio_s": 1e6},
        }
        path = tmp_path / f"runs{seconds:g}.jsonl"
        path.write_text(json.dumps(row) + "\n")
        return path

    assert run_minutes({"timings": {"extract_s": 60.0, "train_s": 240.0, "train_cpu_s": 1e4}}) == 5
    cheap = Sweep(grid, include=(committed(120),), max_seed_minutes=10).plan()
    assert [c.status for c in cheap] == ["skipped", "pending"] and cheap[1].reason == "to run"
    dear = Sweep(grid, include=(committed(1200),), max_seed_minutes=10).plan()
    assert dear[1].status == "skipped"
    assert dear[1].reason == "seed 0 took 20.0 min > 10: one seed (grid's max_seed_minutes)"
    unknown = Sweep(grid, max_seed_minutes=10).plan()
    assert unknown[1].reason == "runs if seed 0 takes <= 10 min"
    assert later.config_hash != first.config_hash


def test_sweep_with_a_grid_file_runs_the_first_seed_then_applies_the_rule(sb_home, tmp_path):
    """End to end on Ray: the budget reaches the run's config; seed 1 waits for seed 0 and
    is skipped because seed 0 took longer than the (tiny) limit; the same call again
    skips both."""
    path = write(
        tmp_path,
        'upstream = "mfcc"\ndownstream = "asr"\ncorpus = "tiny-synth"\nseed = [0, 1]\n'
        "max_seed_minutes = 0.0001\n"
        '[budget]\nasr = { "downstream.max_epochs" = 1 }\n',
    )
    result = CliRunner().invoke(app, ["sweep", "--grid", str(path)])
    assert result.exit_code == 0, result.output
    assert "2 cells: 1 done, 1 skipped" in result.output
    assert "> 0.0001: one seed" in result.output
    (row,) = ResultsStore(paths.results_db()).runs()
    assert row["seed"] == 0 and row["config"]["downstream"]["max_epochs"] == 1
    again = CliRunner().invoke(app, ["sweep", "--grid", str(path), "seed=0"])
    assert again.exit_code == 0 and "1 cells: 1 skipped" in again.output


def test_the_committed_grid_file_loads_and_names_known_plugins(sb_home):
    spec = load_grid_file(REPO / "leaderboards" / "grid.toml")
    cells = expand(parse_grid(spec.args), spec.budgets)
    assert len(cells) > 100 and spec.max_seed_minutes == 10
    phone = [c for c in cells if "corpus=mini-phone" in c.args][0]
    assert "downstream.max_epochs=10" in phone.args and "downstream.min_epochs=10" in phone.args
