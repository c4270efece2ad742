"""Issue 18: every bad input is one `error:` line (exit 2), corrupt state is detected and
moved aside or rebuilt, metric edge cases follow a stated rule (checked against an
independent computation)."""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
from shrink import shrunk
from typer.testing import CliRunner

from speechbench import atomic, paths
from speechbench.cli import app
from speechbench.config import parse_overrides
from speechbench.corpora.base import Utterance, read_manifest, write_manifest
from speechbench.corpora.tiny_synth import TinySynth
from speechbench.errors import ConfigError, CorpusError, SpeechbenchError
from speechbench.store import ResultsStore, display_status

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.fixture(scope="module", autouse=True)
def small_tiny_synth():
    """tiny-synth with 12 files: the runs here only need to start, fail or finish."""
    yield from shrunk(TinySynth, {"sizes": {"train": 8, "dev": 2, "test": 2}})


def one_error_line(args: list[str], *expected: str) -> str:
    """Invoke the CLI; it must fail with exit 2 and exactly one `error:` line."""
    result = runner.invoke(app, args)
    assert result.exit_code == 2, (args, result.output, result.exception)
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], lines
    assert "Traceback" not in result.output
    for text in expected:
        assert text in errors[0], (text, errors[0])
    return errors[0]


# ---------------------------------------------------------------- config


def test_a_key_given_twice_is_one_error_line(sb_home):
    with pytest.raises(ConfigError, match=r"'seed' is given twice \(seed=5 and seed=6\)"):
        parse_overrides(["seed=5", "seed=6"])
    with pytest.raises(ConfigError, match="given twice"):
        parse_overrides(["downstream.lr=1", " downstream.lr =2"])
    one_error_line(["run", "seed=5", "seed=6"], "seed", "twice")


# ---------------------------------------------------------------- manifests


def _good_line(i: int = 0) -> dict:
    return {
        "id": f"u{i}",
        "path": f"audio/u{i}.wav",
        "sample_rate": 16000,
        "duration": 1.0,
        "split": "train",
    }


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", "not a JSON line"),
        ("[1, 2]", "must be a JSON object, got list"),
        ('"text"', "must be a JSON object, got str"),
        (json.dumps({k: v for k, v in _good_line(1).items() if k != "duration"}), "missing"),
        (json.dumps({**_good_line(1), "colour": "red"}), "unknown field(s) ['colour']"),
        (json.dumps({**_good_line(1), "sample_rate": "16k"}), "'sample_rate' has the wrong type"),
        (json.dumps({**_good_line(1), "duration": float("nan")}), "not a positive number"),
        (json.dumps(_good_line(0)), "id 'u0' repeats line 1"),
    ],
)
def test_a_bad_manifest_line_names_file_and_line(tmp_path, line, message):
    path = tmp_path / "corpus" / "1" / "manifest.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(_good_line(0)) + "\n" + line + "\n")
    with pytest.raises(CorpusError) as info:
        read_manifest(path)
    assert f"{path}:2: " in str(info.value) and message in str(info.value)
    assert "speechbench data prepare corpus --force" in str(info.value)


def test_an_empty_manifest_is_not_prepared_and_is_rebuilt(sb_home):
    corpus = TinySynth()
    records = corpus.prepare()
    corpus.manifest_path.write_text("\n \n")
    assert not corpus.is_prepared()
    with pytest.raises(CorpusError, match="manifest has no records"):
        read_manifest(corpus.manifest_path)
    assert len(corpus.prepare()) == len(records) and corpus.is_prepared()


def test_a_corrupt_manifest_fails_a_run_with_one_line(sb_home):
    corpus = TinySynth()
    records = corpus.prepare()
    write_manifest(corpus.manifest_path, records[:3])
    with corpus.manifest_path.open("a") as fh:
        fh.write('{"id": "x"\n')
    one_error_line(
        ["run", "corpus=tiny-synth", "downstream.max_epochs=1"], f"{corpus.manifest_path}:4:"
    )


def test_manifest_round_trip_still_reads_every_field(tmp_path):
    path = tmp_path / "c" / "1" / "manifest.jsonl"
    record = Utterance(**_good_line(0), text="hi", labels={"class": "a"})
    write_manifest(path, [record])
    assert read_manifest(path) == [record]


# ---------------------------------------------------------------- results store


def test_a_corrupt_store_is_moved_aside_and_rebuilt(sb_home, capsys):
    db = paths.results_db()
    db.parent.mkdir(parents=True)
    db.write_bytes(b"this is not sqlite" * 64)
    store = ResultsStore(db)
    warning = capsys.readouterr().err.strip().splitlines()
    assert len(warning) == 1 and str(db) in warning[0] and "moved it to" in warning[0]
    aside = sorted(db.parent.glob("results.sqlite.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == b"this is not sqlite" * 64  # kept
    assert store.runs() == []
    store.upsert("a", config_hash="h", status="finished")
    assert [r["run_id"] for r in ResultsStore(db).runs()] == ["a"]


def test_a_truncated_store_is_moved_aside_from_the_cli(sb_home):
    db = paths.results_db()
    store = ResultsStore(db)
    for i in range(300):
        store.upsert(f"r{i}", config_hash="h", status="finished", config={"pad": "x" * 400})
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 2])
    for side in ("-wal", "-shm"):
        Path(str(db) + side).unlink(missing_ok=True)
    result = runner.invoke(app, ["runs"])
    assert result.exit_code == 0, result.output
    assert "moved it to" in result.output and "(none)" in result.output
    assert list(db.parent.glob("results.sqlite.corrupt-*"))


def test_a_locked_store_is_not_mistaken_for_a_corrupt_one(tmp_path):
    db = tmp_path / "r.sqlite"
    ResultsStore(db).upsert("a", config_hash="h", status="finished")
    error = sqlite3.OperationalError("database is locked")
    from speechbench.store import _is_corruption

    assert not _is_corruption(error)
    assert _is_corruption(sqlite3.DatabaseError("file is not a database"))


def _old_store(path: Path) -> None:
    """A store as made before the pid/host columns existed."""
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE runs (run_id TEXT PRIMARY KEY, config_hash TEXT NOT NULL, "
            "status TEXT NOT NULL, upstream TEXT, downstream TEXT, corpus TEXT, "
            "corpus_version TEXT, seed INTEGER, primary_metric TEXT, metrics TEXT, config TEXT, "
            "timings TEXT, peak_memory_mb REAL, versions TEXT, git_commit TEXT, run_dir TEXT, "
            "error TEXT, started_at TEXT, finished_at TEXT)"
        )
        conn.execute(
            "INSERT INTO runs (run_id, config_hash, status, upstream, downstream, corpus, "
            "primary_metric, metrics, seed) VALUES ('old', 'h', 'finished', 'mfcc', 'asr', "
            "'tiny-synth', 'cer', '{\"cer\": 0.5}', 0)"
        )


def test_an_old_store_gains_the_new_columns_and_keeps_its_rows(tmp_path):
    db = tmp_path / "results.sqlite"
    _old_store(db)
    store = ResultsStore(db)
    row = store.get("old")
    assert row["metrics"] == {"cer": 0.5} and row["pid"] is None
    store.upsert("new", config_hash="h2", status="running")
    assert store.get("new")["pid"] == os.getpid()


def test_a_killed_run_shows_as_stale(sb_home):
    store = ResultsStore(paths.results_db())
    dead = subprocess.Popen(["true"])
    dead.wait()
    store.upsert("dead", config_hash="h1", status="running", pid=dead.pid)
    store.upsert("alive", config_hash="h2", status="running")
    store.upsert("far", config_hash="h3", status="running", pid=dead.pid, host="other-host")
    store.upsert("done", config_hash="h4", status="finished")
    assert store.get("dead")["host"] == socket.gethostname()  # filled in for running rows
    statuses = {r["run_id"]: display_status(r) for r in store.runs()}
    assert statuses == {"dead": "stale", "alive": "running", "far": "running", "done": "finished"}
    listing = runner.invoke(app, ["runs"]).output
    assert re.search(r"dead\s+stale", listing) and re.search(r"alive\s+running", listing)


def test_an_interrupted_run_is_not_stale_and_records_its_pid(sb_home):
    from speechbench.runner import run

    result = run(["upstream=mfcc", "corpus=tiny-synth", "downstream.max_epochs=1"])
    row = ResultsStore(paths.results_db()).get(result.run_id)
    assert row["pid"] == os.getpid() and row["host"] == socket.gethostname()
    assert display_status(row) == "finished"


# ---------------------------------------------------------------- leaderboard --include


def _finished_row(**extra):
    return {
        "run_id": "r1",
        "upstream": "mfcc",
        "downstream": "asr",
        "corpus": "tiny-synth",
        "primary_metric": "cer",
        "metrics": {"cer": 0.5},
        "metric_info": {"cer": {"base": "cer", "higher_is_better": False}},
        "seed": 0,
        **extra,
    }


@pytest.mark.parametrize(
    "line, message",
    [
        ("[1, 2, 3]", "must be a JSON object, got list"),
        (json.dumps({k: v for k, v in _finished_row().items() if k != "metrics"}), "['metrics']"),
        (json.dumps(_finished_row(metrics={"cer": "low"})), "metric 'cer' is 'low', not a number"),
        (json.dumps(_finished_row(metrics=[0.5])), "'metrics' must be an object"),
        (json.dumps(_finished_row(upstream=3)), "field 'upstream' must be a string"),
        (json.dumps(_finished_row(metric_info=[1])), "'metric_info' must be an object"),
        ("{oops", "not a JSON line"),
    ],
)
def test_a_bad_included_jsonl_line_is_one_error_line(sb_home, tmp_path, line, message):
    path = tmp_path / "runs.jsonl"
    path.write_text(json.dumps(_finished_row(run_id="r0")) + "\n" + line + "\n")
    one_error_line(["leaderboard", "--include", str(path)], f"{path}:2:", message)


def test_included_stores_are_opened_read_only(sb_home, tmp_path):
    empty = tmp_path / "empty.sqlite"
    empty.write_bytes(b"")
    one_error_line(["leaderboard", "--include", str(empty)], str(empty), "not a speechbench")
    assert empty.read_bytes() == b""  # no schema was written into it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.sqlite"]

    corrupt = tmp_path / "corrupt.sqlite"
    corrupt.write_bytes(b"garbage" * 200)
    one_error_line(["leaderboard", "--include", str(corrupt)], str(corrupt), "corrupt")
    assert corrupt.read_bytes() == b"garbage" * 200  # never moved aside or rewritten

    old = tmp_path / "old.sqlite"
    _old_store(old)
    before = old.read_bytes()
    from speechbench.leaderboard import load_runs

    assert [r["run_id"] for r in load_runs(old)] == ["old"]
    assert old.read_bytes() == before  # no ALTER TABLE on someone else's store
    with pytest.raises(SpeechbenchError, match="read-only"):
        ResultsStore(old, read_only=True).upsert("x", config_hash="h", status="running")


def test_an_included_store_with_a_non_numeric_metric_is_named(sb_home, tmp_path):
    other = tmp_path / "other.sqlite"
    ResultsStore(other).upsert(
        "bad", config_hash="h", status="finished", upstream="mfcc", downstream="asr",
        corpus="tiny-synth", primary_metric="cer", metrics={"cer": "n/a"},
    )  # fmt: skip
    one_error_line(["leaderboard", "--include", str(other)], "run bad", "metric 'cer'")


def test_leaderboard_out_naming_a_file_is_one_line(sb_home, tmp_path):
    path = tmp_path / "runs.jsonl"
    path.write_text(json.dumps(_finished_row()) + "\n")
    target = tmp_path / "board.md"
    target.write_text("keep me")
    one_error_line(
        ["leaderboard", "--include", str(path), "--out", str(target)], str(target), "folder"
    )
    assert target.read_text() == "keep me"
    one_error_line(["leaderboard", "--include", str(path), "--out", str(target / "sub")])
    ok = runner.invoke(app, ["leaderboard", "--include", str(path), "--out", str(tmp_path / "o")])
    assert ok.exit_code == 0 and (tmp_path / "o" / "leaderboard.md").is_file()


# ---------------------------------------------------------------- score


def test_score_trial_pair_listed_as_target_and_nontarget(tmp_path):
    trials = tmp_path / "trials.txt"
    trials.write_text("a b target\nc d nontarget\na b nontarget\n")
    scores = tmp_path / "scores.txt"
    scores.write_text("a b 1.0\nc d 0.0\n")
    one_error_line(
        ["score", "eer", "--trials", str(trials), "--hyp", str(scores)],
        f"{trials}:3:",
        "'a b' is listed with the other label (first on line 1)",
    )
    trials.write_text("a b target\nc d nontarget\n")
    scores.write_text("a b 1.0\nc d 0.0\na b 2.0\n")
    one_error_line(
        ["score", "eer", "--trials", str(trials), "--hyp", str(scores)],
        f"{scores}:3:",
        "scored twice",
    )


def test_score_duplicate_id_in_a_score_csv(tmp_path):
    ref = tmp_path / "ref.txt"
    ref.write_text("c1 dog\nc2 cat\n")
    hyp = tmp_path / "hyp.csv"
    hyp.write_text("id,dog,cat\nc1,0.9,0.1\nc2,0.2,0.8\nc1,0.1,0.9\n")
    one_error_line(
        ["score", "lwlrap", "--ref", str(ref), "--hyp", str(hyp)], f"{hyp}:4:", "'c1' appears twice"
    )


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"not an npy file at all", "not a readable .npy array"),
        (None, "not a readable .npy array"),  # a pickled object array
        ("strings", "finite numbers"),
    ],
)
def test_score_bad_npy_is_one_line(tmp_path, payload, message):
    for folder in ("ref", "hyp"):
        (tmp_path / folder).mkdir()
        np.save(tmp_path / folder / "u1.npy", np.ones(4))
    bad = tmp_path / "hyp" / "u2.npy"
    np.save(tmp_path / "ref" / "u2.npy", np.ones(4))
    if payload is None:
        np.save(bad, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif payload == "strings":
        np.save(bad, np.array(["a", "b"]))
    else:
        bad.write_bytes(payload)
    one_error_line(
        ["score", "spk_sim", "--ref", str(tmp_path / "ref"), "--hyp", str(tmp_path / "hyp")],
        str(bad),
        message,
    )


def test_score_error_rate_without_reference_events_is_one_line(tmp_path):
    ref = tmp_path / "ref.txt"
    ref.write_text("f1\nf2\n")
    hyp = tmp_path / "hyp.txt"
    hyp.write_text("f1 0.0 1.0 dog\n")
    one_error_line(
        ["score", "segment_er", "--ref", str(ref), "--hyp", str(hyp)], "segment_er is undefined"
    )


# ---------------------------------------------------------------- metric edge cases


def _errors_by_hand(references, estimates, segment=1.0):
    """Segment-based (S, D, I, N) counted by hand: activity per 1 s segment and class."""
    s = d = i = n = 0
    for ref, est in zip(references, estimates, strict=True):
        end = max([off for _, off, _ in ref + est] or [0.0])
        for k in range(int(np.ceil(end / segment))):
            lo, hi = k * segment, (k + 1) * segment

            def active(events, lo=lo, hi=hi):
                return {label for on, off, label in events if on < hi and off > lo}

            r, e = active(ref), active(est)
            fn, fp = len(r - e), len(e - r)
            s += min(fn, fp)
            d += max(0, fn - fp)
            i += max(0, fp - fn)
            n += len(r)
    return s, d, i, n


def test_sed_error_rates_without_reference_events_are_undefined():
    from speechbench.metrics.sed import event_error_rate, sed_metrics, segment_error_rate

    refs, ests = [[], []], [[(0.0, 1.5, "dog")], [(0.2, 0.9, "cat")]]
    assert _errors_by_hand(refs, ests)[3] == 0  # N = 0: (S+D+I)/N has no value
    assert np.isnan(segment_error_rate(refs, ests)) and np.isnan(event_error_rate(refs, ests))
    # with reference events the value is the hand-counted one
    refs2 = [[(0.0, 2.0, "dog")], []]
    s, d, i, n = _errors_by_hand(refs2, ests)
    assert segment_error_rate(refs2, ests) == pytest.approx((s + d + i) / n)
    assert (
        sed_metrics(refs2, ests)["class_wise"]["cat"]["segment_er"]
        != sed_metrics(refs2, ests)["class_wise"]["cat"]["segment_er"]
    )  # NaN: no cat in the reference


def test_sed_bootstrap_over_files_without_events_stays_bounded():
    from speechbench.metrics.base import get_metric
    from speechbench.metrics.bootstrap import bootstrap_ci

    rng = np.random.default_rng(0)
    refs, ests = [], []
    for k in range(12):
        if k % 3 == 0:  # a third of the files have no reference event
            refs.append([])
        else:
            on = float(rng.uniform(0, 3))
            refs.append([(on, on + 1.0, "dog")])
        ests.append([(0.5, 1.5, "dog")] if k % 2 else [])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interval = bootstrap_ci(get_metric("segment_er"), refs, ests, n_resamples=200)
    assert 0.0 <= interval.low <= interval.value <= interval.high <= 3.0  # never ~1e15


def test_si_sdr_of_constant_and_silent_estimates_is_the_floor():
    from speechbench.metrics.separation import DB_CEILING, si_sdr

    rng = np.random.default_rng(0)
    ref = rng.standard_normal(16000)
    with pytest.warns(UserWarning, match="constant"):
        values = si_sdr(np.stack([np.full(16000, 0.1), np.zeros(16000)]), np.stack([ref, ref]))
    assert values.tolist() == [-DB_CEILING, -DB_CEILING]  # both: nothing of the reference


def test_si_sdr_is_exact_for_near_perfect_estimates_with_large_offsets():
    from speechbench.metrics.separation import si_sdr

    rng = np.random.default_rng(1)
    ref = rng.standard_normal(32000)
    centred = ref - ref.mean()
    noise = rng.standard_normal(32000)
    noise -= noise.mean()
    noise -= (noise @ centred) / (centred @ centred) * centred  # orthogonal to the target
    noise /= np.linalg.norm(noise)
    for db, offset in ((20.0, 0.0), (60.0, 1e4), (90.0, 1e3), (45.0, -5e5)):
        amplitude = np.linalg.norm(centred) * 10 ** (-db / 20)
        estimate = 0.7 * (centred + amplitude * noise) + offset  # scale + DC offset
        # closed form: ||s||^2 / ||n||^2 with n orthogonal to s, both zero-mean
        assert float(si_sdr(estimate, ref + 3 * offset)) == pytest.approx(db, abs=1e-6)


def test_a_perfect_utterance_counts_at_the_ceiling_in_the_mean(tmp_path):
    import soundfile as sf
    from speechbench.metrics.separation import DB_CEILING, si_sdr

    rng = np.random.default_rng(2)
    ref = rng.standard_normal(8000)
    assert float(si_sdr(ref, ref)) == DB_CEILING
    for folder in ("ref", "hyp"):
        (tmp_path / folder).mkdir()
    clean = 0.3 * ref / np.abs(ref).max()
    noisy = clean + 0.03 * rng.standard_normal(8000)
    sf.write(tmp_path / "ref" / "a.wav", clean, 16000, subtype="FLOAT")
    sf.write(tmp_path / "hyp" / "a.wav", clean, 16000, subtype="FLOAT")  # perfect
    sf.write(tmp_path / "ref" / "b.wav", clean, 16000, subtype="FLOAT")
    sf.write(tmp_path / "hyp" / "b.wav", noisy, 16000, subtype="FLOAT")
    result = runner.invoke(
        app,
        ["score", "si_sdr", "--ref", str(tmp_path / "ref"), "--hyp", str(tmp_path / "hyp")]
        + ["--format", "json", "--bootstrap", "0"],
    )
    out = json.loads(result.output)
    c = clean.astype(np.float32).astype(np.float64)
    h = noisy.astype(np.float32).astype(np.float64)
    c0, h0 = c - c.mean(), h - h.mean()
    target = (h0 @ c0) / (c0 @ c0) * c0
    b_value = 10 * np.log10(target @ target / ((h0 - target) @ (h0 - target)))
    assert out["value"] == pytest.approx((DB_CEILING + b_value) / 2)  # not just b's value
    assert out["unscored_items"] == 0


def test_declared_pesq_wb_range_holds_what_pesq_returns():
    from pesq import pesq
    from speechbench.metrics.base import get_metric

    low, high = get_metric("pesq_wb").range
    rng = np.random.default_rng(0)
    t = np.arange(32000) / 16000
    speech = 0.3 * np.sin(2 * np.pi * 200 * t) * np.sin(2 * np.pi * 3 * t) ** 2
    worst = pesq(
        16000, speech + 0.005 * rng.standard_normal(t.size), rng.standard_normal(t.size), "wb"
    )
    best = pesq(16000, speech, speech, "wb")
    assert worst < 1.04  # below the range declared before
    assert low <= worst and best <= high
    # P.862.2 mapping 0.999 + 4 / (1 + exp(-1.3669 x + 3.8224)): asymptote and value at x=4.5
    assert low == pytest.approx(0.999) and high == pytest.approx(
        0.999 + 4 / (1 + np.exp(-1.3669 * 4.5 + 3.8224)), abs=1e-3
    )


def test_metrics_doc_states_mse_range_and_the_db_ceiling():
    from speechbench.metrics.base import get_metric

    doc = (REPO / "docs" / "metrics.md").read_text()
    mse_row = next(line for line in doc.splitlines() if "`mse`" in line and line.startswith("|"))
    assert "[0, inf)" in mse_row
    assert get_metric("mse").range == (0.0, float("inf"))
    assert "100 dB" in doc


# ---------------------------------------------------------------- files and security


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_atomic_writes_respect_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic.write_text(tmp_path / "a.txt", "x")
        atomic.write_json(tmp_path / "b.json", {"a": 1})
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == mode
    assert (tmp_path / "b.json").stat().st_mode & 0o777 == mode
    os.chmod(tmp_path / "a.txt", 0o640)
    atomic.write_text(tmp_path / "a.txt", "y")  # replacing keeps the file's mode
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o640


def test_no_torch_load_unpickles_arbitrary_objects():
    """weights_only=True everywhere (training.py is the lead's, cache.py the cache helper's)."""
    offenders = []
    for path in [*REPO.glob("speechbench/**/*.py"), *REPO.glob("upstreams/**/*.py")]:
        if path.name in ("training.py", "cache.py"):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "torch.load(" in line and "weights_only=True" not in line:
                offenders.append(f"{path.relative_to(REPO)}:{number}")
    assert offenders == []
