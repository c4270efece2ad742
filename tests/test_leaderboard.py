import pytest
from speechbench.upstreams.spectral import Fbank

from speechbench import leaderboard, registry
from speechbench.errors import SpeechbenchError


def _row(up, down, corpus, metric, value, seed=0, status="finished"):
    return {
        "upstream": up,
        "downstream": down,
        "corpus": corpus,
        "primary_metric": metric,
        "metrics": {metric: value},
        "seed": seed,
        "status": status,
    }


@registry.register("upstreams", "utterance-probe")
class UtteranceProbe(Fbank):
    name = "utterance-probe"
    level = "utterance"


def test_best_is_marked_by_direction_seeds_are_averaged_and_na_shown():
    rows = [
        _row("mfcc", "asr", "mini-en", "cer", 0.40),
        _row("fbank", "asr", "mini-en", "cer", 0.30, seed=0),
        _row("fbank", "asr", "mini-en", "cer", 0.34, seed=1),
        _row("mfcc", "asr", "mini-phone", "per", 0.5),
        _row("utterance-probe", "asr", "mini-en", "cer", 0.1, status="failed"),
        _row("utterance-probe", "asr", "other", "wer", 0.9),
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
    """A finished sv run whose stored config sets ``options`` (``up.x``/``down.x``)."""
    row = _row(up, down, "mini-sv", "eer", value, seed=seed)
    upstream = {"name": up, **{k[3:]: v for k, v in options.items() if k.startswith("up_")}}
    downstream = {"name": down, **{k[5:]: v for k, v in options.items() if k.startswith("down_")}}
    row.update(
        run_id=run_id or f"{up}-{down}-{value}",
        finished_at=finished_at,
        config={"upstream": upstream, "downstream": downstream, "seed": seed},
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
    other = _row("fbank", "lid", "mini-lid", "cavg", 0.25)
    other["metrics"].update(cavg_1s=0.28, lid_accuracy=0.5)
    asr = _row("mfcc", "asr", "mini-en", "cer", 0.4)  # reports no cavg_1s: left out
    shown, numeric = leaderboard.leaderboard_table([lid, other, asr], metric="cavg_1s")
    assert list(shown.columns) == ["lid/mini-lid cavg_1s ↓"]  # Cavg's direction
    assert shown.loc["fbank", "lid/mini-lid cavg_1s ↓"] == "**0.280**"
    accuracy, _ = leaderboard.leaderboard_table([lid, other], metric="lid_accuracy")
    assert accuracy.loc["fbank", "lid/mini-lid lid_accuracy ↑"] == "**0.500**"
    with pytest.raises(SpeechbenchError, match="--metric nope: not a metric"):
        leaderboard.leaderboard_table([lid], metric="nope")
    with pytest.raises(SpeechbenchError, match="no finished run reported 'wer'"):
        leaderboard.leaderboard_table([lid], metric="wer")
