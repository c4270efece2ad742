import pytest

from speechbench import leaderboard
from speechbench.config import resolve
from speechbench.errors import SpeechbenchError
from speechbench.metric_keys import describe_metrics
from speechbench.runner import system_label

LEVELS = {"asr": ["frame"], "sv": ["frame", "utterance"], "lid": ["frame", "utterance"]}
TASK_OPTIONS = {
    "asr": ["lr", "units", "hidden"],
    "sv": ["lr", "head", "backend", "max_epochs"],
    "lid": ["lr", "head"],
}


def _row(up, down, corpus, metric, value, seed=0, status="finished", level="frame"):
    """A stored run as the runner records it (labels, structured metric keys)."""
    metrics = {metric: value}
    return {
        "upstream": up,
        "downstream": down,
        "corpus": corpus,
        "primary_metric": metric,
        "metrics": metrics,
        "metric_info": describe_metrics(metrics),
        "system": up,
        "labels": {
            "changed_options": [],
            "upstream_level": level,
            "task_levels": LEVELS[down],
            "task_options": TASK_OPTIONS[down],
        },
        "seed": seed,
        "status": status,
    }


def test_best_is_marked_by_direction_seeds_are_averaged_and_na_shown():
    rows = [
        _row("mfcc", "asr", "mini-en", "cer", 0.40),
        _row("fbank", "asr", "mini-en", "cer", 0.30, seed=0),
        _row("fbank", "asr", "mini-en", "cer", 0.34, seed=1),
        _row("mfcc", "asr", "mini-phone", "per", 0.5),
        _row("utterance-probe", "asr", "mini-en", "cer", 0.1, status="failed", level="utterance"),
        _row("utterance-probe", "sv", "mini-sv", "eer", 0.2, level="utterance"),
    ]
    shown, numeric = leaderboard.leaderboard_table(rows)
    column = "asr/mini-en cer ↓"
    assert numeric.loc["fbank", column] == pytest.approx(0.32)
    assert shown.loc["fbank", column].startswith("**0.320 ± 0.028 (n=2)")
    assert shown.loc["mfcc", column] == "0.400"
    assert shown.loc["utterance-probe", column] == "n/a"  # cannot run: not a number
    assert shown.loc["fbank", "asr/mini-phone per ↓"] == "-"  # could run, not run yet
    md = leaderboard.render(rows, "md")
    assert "| fbank" in md and "**0.320" in md
    assert "<b>0.320" in leaderboard.render(rows, "html")
    assert "0.32" in leaderboard.render(rows, "csv")


def test_empty_store_and_bad_format_are_user_errors():
    with pytest.raises(SpeechbenchError, match="no finished runs"):
        leaderboard.leaderboard_table([])
    with pytest.raises(SpeechbenchError, match="valid: md, csv, html"):
        leaderboard.render([_row("mfcc", "asr", "x", "cer", 0.1)], "pdf")


def _configured(up, down, value, finished_at, seed=0, run_id=None, **options):
    """A finished sv run resolved from ``options`` (``up_x``/``down_x`` overrides), with
    the changed options and system label the runner stores for it."""
    row = _row(up, down, "mini-sv", "eer", value, seed=seed)
    args = [f"upstream={up}", f"downstream={down}"]
    args += [f"upstream.{k[3:]}={v}" for k, v in options.items() if k.startswith("up_")]
    args += [f"downstream.{k[5:]}={v}" for k, v in options.items() if k.startswith("down_")]
    changed = resolve(args).changed_options()
    row["labels"]["changed_options"] = [list(c) for c in changed]
    row.update(
        run_id=run_id or f"{up}-{down}-{value}",
        finished_at=finished_at,
        system=system_label(up, changed),
        config={"seed": seed},
    )
    return row


def test_a_changed_option_is_its_own_system_and_budget_options_are_not():
    rows = [
        _configured("mfcc", "sv", 0.12, "2026-01-01T00:00:00", down_max_epochs=4),
        _configured("mfcc", "sv", 0.15, "2026-01-01T00:00:01", down_backend="plda"),
        _configured("mfcc", "sv", 0.11, "2026-01-01T00:00:02", down_head="tdnn", down_lr=1e-3),
        _configured("mfcc", "lid", 0.2, "2026-01-01T00:00:03", up_deltas=False),
    ]
    rows[3]["corpus"], rows[3]["primary_metric"] = "mini-lid", "cavg"
    rows[3]["metrics"] = {"cavg": 0.2}
    rows[3]["metric_info"] = describe_metrics(rows[3]["metrics"])
    rows[3]["labels"].update(task_levels=LEVELS["lid"], task_options=TASK_OPTIONS["lid"])
    shown, numeric = leaderboard.leaderboard_table(rows)
    sv = "sv/mini-sv eer ↓"
    assert list(shown.index) == [
        "mfcc",  # max_epochs is a budget, lr=1e-3 is the default: neither names a system
        "mfcc downstream.backend=plda",
        "mfcc downstream.head=tdnn",
        "mfcc upstream.deltas=false",
    ]
    assert numeric.loc["mfcc downstream.backend=plda", sv] == pytest.approx(0.15)
    assert shown.loc["mfcc downstream.head=tdnn", sv] == "**0.110**"
    # lid has no `backend` option: that system cannot run it; lid has a `head` option
    assert shown.loc["mfcc downstream.backend=plda", "lid/mini-lid cavg ↓"] == "n/a"
    assert shown.loc["mfcc downstream.head=tdnn", "lid/mini-lid cavg ↓"] == "-"
    assert shown.loc["mfcc upstream.deltas=false", sv] == "-"


def test_the_newest_run_of_a_system_and_seed_replaces_older_ones_seeds_still_average():
    rows = [
        _configured("fbank", "sv", 0.30, "2026-01-02T00:00:00", run_id="new"),
        _configured("fbank", "sv", 0.90, "2026-01-01T00:00:00", run_id="old"),
        _configured("fbank", "sv", 0.20, "2026-01-01T00:00:00", seed=1, run_id="seed1"),
    ]
    _, numeric = leaderboard.leaderboard_table(rows)
    assert numeric.loc["fbank", "sv/mini-sv eer ↓"] == pytest.approx(0.25)


def test_runs_from_a_runs_jsonl_and_another_store_merge_by_run_id(tmp_path):
    import json

    from speechbench.store import ResultsStore

    board = tmp_path / "board"
    first = _configured("mfcc", "sv", 0.12, "2026-01-01T00:00:00", run_id="a")
    leaderboard.write([first], board)
    from_jsonl = leaderboard.load_runs(board / "runs.jsonl")
    assert [(r["run_id"], r["status"]) for r in from_jsonl] == [("a", "finished")]

    store = ResultsStore(tmp_path / "other" / "results.sqlite")
    second = _configured("ge2e", "sv", 0.08, "2026-01-01T00:00:00", run_id="b")
    store.upsert("b", config_hash="h", **{k: v for k, v in second.items() if k != "run_id"})
    from_store = leaderboard.load_runs(store.path)
    merged = leaderboard.merge_runs(from_jsonl, from_store, [dict(first, metrics={"eer": 0.5})])
    by_id = {r["run_id"]: r for r in merged}
    assert sorted(by_id) == ["a", "b"] and by_id["a"]["metrics"]["eer"] == 0.5

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"run_id": "x"}) + "\n")
    with pytest.raises(SpeechbenchError, match=r"bad.jsonl:1: a run record needs"):
        leaderboard.load_runs(bad)
    with pytest.raises(SpeechbenchError, match="no such file"):
        leaderboard.load_runs(tmp_path / "missing.jsonl")
    (tmp_path / "runs.txt").write_text("")
    with pytest.raises(SpeechbenchError, match=r"expected a results \.sqlite or a runs \.jsonl"):
        leaderboard.load_runs(tmp_path / "runs.txt")


def test_a_secondary_metric_by_name_with_its_condition_suffix_and_direction():
    lid = _row("mfcc", "lid", "mini-lid", "cavg", 0.2)
    lid["metrics"].update(cavg_1s=0.30, lid_accuracy=0.4)
    lid["metric_info"] = describe_metrics(lid["metrics"])
    other = _row("fbank", "lid", "mini-lid", "cavg", 0.25)
    other["metrics"].update(cavg_1s=0.28, lid_accuracy=0.5)
    other["metric_info"] = describe_metrics(other["metrics"])
    asr = _row("mfcc", "asr", "mini-en", "cer", 0.4)  # reports no cavg_1s: left out
    shown, numeric = leaderboard.leaderboard_table([lid, other, asr], metric="cavg_1s")
    assert list(shown.columns) == ["lid/mini-lid cavg_1s ↓"]  # Cavg's direction
    assert shown.loc["fbank", "lid/mini-lid cavg_1s ↓"] == "**0.280**"
    accuracy, _ = leaderboard.leaderboard_table([lid, other], metric="lid_accuracy")
    assert accuracy.loc["fbank", "lid/mini-lid lid_accuracy ↑"] == "**0.500**"
    assert lid["metric_info"]["cavg_1s"] == {
        "base": "cavg",
        "condition": "1s",
        "higher_is_better": False,
    }
    with pytest.raises(SpeechbenchError, match="--metric nope: no finished run reported it"):
        leaderboard.leaderboard_table([lid], metric="nope")
    with pytest.raises(SpeechbenchError, match="reported keys: cavg, cavg_1s"):
        leaderboard.leaderboard_table([lid], metric="wer")


def test_labels_come_from_the_store_not_from_live_plugin_defaults():
    row = _configured("mfcc", "sv", 0.12, "2026-01-01T00:00:00", down_backend="plda")
    row["labels"]["changed_options"] = []  # what was stored when it ran wins
    row["system"] = "mfcc as-stored"
    shown, _ = leaderboard.leaderboard_table([row])
    assert list(shown.index) == ["mfcc as-stored"]


def test_a_run_that_trained_no_epoch_is_never_a_result():
    good = _row("mfcc", "sv", "mini-sv", "eer", 0.2, seed=0)
    junk = _row("fbank", "sv", "mini-sv", "eer", 0.5, seed=0)
    junk["labels"].update(fitters=["gradient", "closed-form"], epochs_run=0)
    shown, _ = leaderboard.leaderboard_table([good, junk])
    assert list(shown.index) == ["mfcc"]


def test_identical_effective_seeds_count_once():
    runs = [_row("ivector", "sv", "mini-sv", "eer", v, seed=s) for s, v in enumerate((0.2, 0.3))]
    for run, when in zip(runs, ("2026-01-01", "2026-01-02"), strict=True):
        run["labels"]["effective_seed"] = 0  # the plugin's own fixed seed drove both
        run["finished_at"] = when
    shown, numeric = leaderboard.leaderboard_table(runs)
    assert numeric.iloc[0, 0] == pytest.approx(0.3) and "n=" not in shown.iloc[0, 0]


def test_corpus_versions_are_separate_tasks_and_the_table_shows_the_newest():
    def versioned(up, value, version, seed=0):
        return {**_row(up, "asr", "mini-en", "cer", value, seed=seed), "corpus_version": version}

    rows = [
        versioned("mfcc", 0.40, "1.0"),
        versioned("mfcc", 0.44, "1", seed=1),  # "1" and "1.0" are one version
        versioned("fbank", 0.30, "1"),
        versioned("mfcc", 0.50, "2"),
        versioned("mfcc", 0.52, "10"),  # versions compare as numbers, not strings
    ]
    shown, numeric = leaderboard.leaderboard_table(rows)
    assert list(numeric.columns) == ["asr/mini-en v10 cer ↓"]  # v1 rows left the table
    assert "fbank" not in shown.index  # not re-run on v10 yet
    _, every = leaderboard.leaderboard_table(rows, all_versions=True)
    assert set(every.columns) == {f"asr/mini-en v{v} cer ↓" for v in ("1", "2", "10")}
    assert every.loc["mfcc", "asr/mini-en v1 cer ↓"] == pytest.approx(0.42)  # never with v2
    assert every.loc["mfcc", "asr/mini-en v2 cer ↓"] == pytest.approx(0.50)


def test_upstream_peak_memory_is_the_extraction_peak_not_the_heads():
    from speechbench.leaderboard_stats import upstream_extras

    def run(upstream, peak, extract_peak=None, cache_hits=0):
        timings = {"cache_hits": cache_hits, "extract_s": 1.0, "audio_s": 10.0}
        if extract_peak is not None:
            timings["extract_peak_mb"] = extract_peak
        return {
            "status": "finished",
            "upstream": upstream,
            "corpus": "tiny-synth",
            "peak_memory_mb": peak,
            "timings": timings,
        }

    rows = [
        run("fbank", 15000.0, extract_peak=900.0),  # a TTS head on top: 15 GB
        run("fbank", 2000.0, extract_peak=1200.0),
        run("fbank", 800.0, extract_peak=5000.0, cache_hits=3),  # read the cache: not counted
        run("mfcc", 9000.0),  # recorded before extract_peak_mb existed
        run("mfcc", 3000.0),
    ]
    extras = upstream_extras(rows)
    assert extras["fbank"]["peak_mb"] == 1200.0
    assert extras["fbank"]["peak_source"] == "extraction"
    assert extras["mfcc"]["peak_mb"] == 3000.0
    assert "upper bound" in extras["mfcc"]["peak_source"]


def test_combined_runs_let_the_local_store_win_and_never_create_a_missing_store(tmp_path):
    from speechbench.store import ResultsStore

    board = tmp_path / "board"
    committed = _configured("mfcc", "sv", 0.12, "2026-01-01T00:00:00", run_id="a")
    leaderboard.write([committed, _configured("ge2e", "sv", 0.2, "2026-01-01", run_id="c")], board)
    missing = tmp_path / "none" / "results.sqlite"
    only_board = leaderboard.combined_runs([board / "runs.jsonl"], missing)
    assert sorted(r["run_id"] for r in only_board) == ["a", "c"] and not missing.exists()

    store = ResultsStore(tmp_path / "results.sqlite")
    rerun = _configured("mfcc", "sv", 0.10, "2026-01-02T00:00:00", run_id="a")
    store.upsert("a", config_hash="h", **{k: v for k, v in rerun.items() if k != "run_id"})
    by_id = {r["run_id"]: r for r in leaderboard.combined_runs([board / "runs.jsonl"], store.path)}
    assert sorted(by_id) == ["a", "c"] and by_id["a"]["metrics"]["eer"] == 0.10
