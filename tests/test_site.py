"""Leaderboard statistics (intervals, significance, overall score) and the static site,
including a headless-Chromium check that the page renders and sorts."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from speechbench import leaderboard as lb
from speechbench import leaderboard_stats as st
from speechbench import site

REPO = Path(__file__).resolve().parents[1]


def _row(run_id, upstream, downstream, corpus, metric, value, seed=0, run_dir=None, **metrics):
    return {
        "run_id": run_id,
        "status": "finished",
        "upstream": upstream,
        "downstream": downstream,
        "corpus": corpus,
        "seed": seed,
        "primary_metric": metric,
        "metrics": {metric: value, **metrics},
        "config": {"upstream": {"name": upstream}, "downstream": {"name": downstream}},
        "timings": {"extract_s": 2.0, "cache_hits": 0},
        "peak_memory_mb": 100.0 + len(upstream),
        "finished_at": f"2026-12-01T00:00:0{seed}",
        "run_dir": str(run_dir) if run_dir else None,
        # what a v2 run records for the leaderboard
        "system": upstream,
        "labels": {
            "changed_options": [],
            "upstream_level": "utterance" if upstream == "ge2e" else "frame",
            "task_levels": ["frame"] if downstream == "asr" else ["frame", "utterance"],
            "task_options": ["lr"],
        },
        "metric_info": {
            key: {"base": metric, "higher_is_better": False} for key in [metric, *metrics]
        },
    }


def _rows():
    rows = []
    for seed, (m, f, c) in enumerate([(0.50, 0.40, 0.30), (0.52, 0.44, 0.31), (0.48, 0.42, 0.29)]):
        rows.append(_row(f"m{seed}", "mfcc", "asr", "mini-en", "cer", m, seed))
        rows.append(_row(f"f{seed}", "fbank", "asr", "mini-en", "cer", f, seed))
        rows.append(_row(f"c{seed}", "ctap", "asr", "mini-en", "cer", c, seed))
    rows.append(
        _row("fs", "fbank", "sv", "mini-sv", "eer", 0.20, eer_ci_low=0.18, eer_ci_high=0.22)
    )
    rows.append(_row("cs", "ctap", "sv", "mini-sv", "eer", 0.10, eer_ci_low=0.08, eer_ci_high=0.12))
    rows.append(_row("gs", "ge2e", "sv", "mini-sv", "eer", 0.05))
    return rows


REFERENCES = {
    "version": 1,
    "columns": {
        "asr/mini-en cer": {
            "task": "asr",
            "metric": "cer",
            "higher_is_better": False,
            "fbank": 0.42,
            "reference": 0.30,
        },
        "sv/mini-sv eer": {
            "task": "sv",
            "metric": "eer",
            "higher_is_better": False,
            "fbank": 0.20,
            "reference": 0.05,
        },
    },
}


def test_cells_intervals_na_and_not_run(sb_home):
    board = st.build_board(_rows(), references=REFERENCES)
    cell = board.cells[("mfcc", "asr/mini-en cer")]
    from scipy import stats

    half = stats.t.ppf(0.975, 2) * np.std([0.50, 0.52, 0.48], ddof=1) / math.sqrt(3)
    assert cell.n == 3 and cell.interval == "t"
    assert cell.mean == pytest.approx(0.50) and cell.high - cell.mean == pytest.approx(half)
    single = board.cells[("ctap", "sv/mini-sv eer")]
    assert (single.n, single.interval, single.low, single.high) == (1, "bootstrap", 0.08, 0.12)
    assert board.cells[("ge2e", "sv/mini-sv eer")].interval == ""  # no CI stored: none shown
    assert board.status[("ge2e", "asr/mini-en cer")] == "n/a"  # utterance-level on ASR
    assert board.status[("mfcc", "sv/mini-sv eer")] == "not run"
    assert board.cells[("ctap", "asr/mini-en cer")].is_best
    # means agree with the lead's leaderboard table
    _, numeric = lb.leaderboard_table(_rows())
    assert numeric.loc["mfcc"].iloc[0] == pytest.approx(cell.mean)
    assert "seed=0,1,2" in cell.command() and "upstream=mfcc" in cell.command()


def test_overall_score_superb_style_and_rank(sb_home):
    board = st.build_board(_rows(), references=REFERENCES)
    # fbank scores 0 by construction; ctap: asr 1000*(42-30.33)/(42-30)... error metrics as 100-x
    assert board.overall["fbank"] == pytest.approx(0.0, abs=1e-9)
    asr = 1000 * ((100 - 30.0) - (100 - 42.0)) / ((100 - 30.0) - (100 - 42.0))
    sv = 1000 * ((100 - 10.0) - (100 - 20.0)) / ((100 - 5.0) - (100 - 20.0))
    assert board.overall["ctap"] == pytest.approx((asr + sv) / 2)
    assert board.overall["mfcc"] is None and board.overall["ge2e"] is None  # a task missing
    assert board.overall_rank["ctap"] == pytest.approx((1 + 2) / 2)  # asr 1st, sv 2nd of 3
    assert board.overall_rank["mfcc"] is None


def _sv_run(folder: Path, run_id: str, upstream: str, scores, labels) -> dict:
    folder.mkdir(parents=True)
    lines = [
        {"id": f"t{i}", "trials": [["e", "target" if y else "nontarget", float(s)]]}
        for i, (s, y) in enumerate(zip(scores, labels, strict=True))
    ]
    (folder / "predictions.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    (folder / "training.json").write_text(json.dumps({"layer_weights": [0.1, 0.6, 0.3]}))
    from speechbench.metrics.verification import equal_error_rate

    return _row(
        run_id, upstream, "sv", "mini-sv", "eer", equal_error_rate(scores, labels), 0, folder
    )


def test_paired_bootstrap_marks_ties_and_says_when_items_are_missing(sb_home, tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    good = labels * 2.0 + rng.normal(0, 0.7, 400)
    close = good + rng.normal(0, 0.05, 400)  # nearly the same scores: a tie
    bad = labels * 0.3 + rng.normal(0, 1.0, 400)
    rows = [
        _sv_run(tmp_path / "a", "a", "ctap", good, labels),
        _sv_run(tmp_path / "b", "b", "fbank", close, labels),
        _sv_run(tmp_path / "c", "c", "mfcc", bad, labels),
        _row("d", "ivector", "sv", "mini-sv", "eer", 0.45),  # no run folder here
    ]
    board = st.build_board(rows, references={}, n_resamples=200)
    cells = {s: board.cells[(s, "sv/mini-sv eer")] for s in board.systems}
    best = min(cells.values(), key=lambda c: c.mean)
    assert best.is_best and best.system in {"ctap", "fbank"}
    other = "fbank" if best.system == "ctap" else "ctap"
    assert cells[other].tied is True and "tied with best" in cells[other].note
    assert cells["mfcc"].tied is False and cells["mfcc"].p_value < 0.05
    assert cells["ivector"].tied is None and cells["ivector"].note == st.NO_ITEMS
    assert st.layer_weights(rows[0]) == [0.1, 0.6, 0.3]


def test_ties_use_the_first_common_seed_where_both_runs_kept_items(sb_home, tmp_path):
    """Seed 0 of both systems predates predictions.jsonl (no folder); seed 1 has items:
    the test runs on seed 1 instead of giving up."""
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, 400)
    good = labels * 2.0 + rng.normal(0, 0.7, 400)
    bad = labels * 0.3 + rng.normal(0, 1.0, 400)
    rows = [
        _row("a0", "ctap", "sv", "mini-sv", "eer", 0.10, 0),
        _row("c0", "mfcc", "sv", "mini-sv", "eer", 0.30, 0),
        _sv_run(tmp_path / "a1", "a1", "ctap", good, labels),
        _sv_run(tmp_path / "c1", "c1", "mfcc", bad, labels),
    ]
    for row in rows[2:]:
        row["seed"] = row["config"]["seed"] = 1
        row["finished_at"] = "2026-12-01T00:00:01"
    board = st.build_board(rows, references={}, n_resamples=200)
    cell = board.cells[("mfcc", "sv/mini-sv eer")]
    assert cell.n == 2 and cell.tied is False
    assert "worse than best" in cell.note and "seed 1" in cell.note


def test_committed_board_keeps_items_and_layer_weights(sb_home, tmp_path, monkeypatch):
    """A fresh clone has no run folders: the site's gzipped copies still give the ties."""
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 300)
    good = labels * 2.0 + rng.normal(0, 0.7, 300)
    rows = [
        _sv_run(tmp_path / "a", "a", "ctap", good, labels),
        _sv_run(tmp_path / "b", "b", "fbank", good + rng.normal(0, 0.05, 300), labels),
        _sv_run(tmp_path / "c", "c", "mfcc", labels * 0.3 + rng.normal(0, 1, 300), labels),
    ]
    before = st.build_board(rows, references={}, n_resamples=200)
    site.write_site(rows, tmp_path / "out", references={})
    assert (tmp_path / "out" / "runs" / "a" / st.COMMITTED_ITEMS).is_file()
    for name in "abc":
        shutil.rmtree(tmp_path / name)
    assert st.per_item(rows[0]) is None and st.layer_weights(rows[0]) is None
    monkeypatch.setattr(st, "COMMITTED_RUNS", tmp_path / "out" / "runs")
    after = st.build_board(rows, references={}, n_resamples=200)
    for key, cell in before.cells.items():
        assert (after.cells[key].tied, after.cells[key].p_value) == (cell.tied, cell.p_value)
    assert st.layer_weights(rows[0]) == [0.1, 0.6, 0.3]


def test_asr_items_use_the_corpus_references(sb_home, tmp_path):
    from speechbench.downstreams.asr import ASR

    from speechbench.corpora.tiny_synth import TinySynth

    records = TinySynth().prepare()
    asr = ASR()
    asr.setup([r for r in records if r.split == "train"])
    test = [r for r in records if r.split == "test"]
    refs = {r.id: asr.reference(r) for r in test}
    rows = []
    for run_id, hyp in (("perfect", lambda t: t), ("empty", lambda t: "")):
        folder = tmp_path / run_id
        folder.mkdir()
        lines = [{"id": i, "prediction": hyp(t)} for i, t in refs.items()]
        (folder / "predictions.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
        value = 0.0 if run_id == "perfect" else 1.0
        row = _row(
            run_id, "mfcc" if run_id == "perfect" else "fbank", "asr", "tiny-synth", "cer", value
        )
        row["run_dir"] = str(folder)
        row["config"]["downstream"] = {"name": "asr"}
        rows.append(row)
    items = st.per_item(rows[0])
    assert items.kind == "text" and set(items.data) == set(refs)
    board = st.build_board(rows, references={}, n_resamples=200)
    worse = board.cells[("fbank", "asr/tiny-synth cer")]
    assert worse.tied is False and worse.p_value == 0.0


def test_committed_asr_items_are_resolved_for_a_clone_without_the_corpus(
    sb_home, tmp_path, monkeypatch
):
    """ASR items need the corpus references: the committed copy resolves them, so a
    machine with neither the run folders nor the corpus still gives the same test."""
    from speechbench.downstreams.asr import ASR

    from speechbench import paths
    from speechbench.corpora.tiny_synth import TinySynth

    records = TinySynth().prepare()
    asr = ASR()
    asr.setup([r for r in records if r.split == "train"])
    refs = {r.id: asr.reference(r) for r in records if r.split == "test"}
    rows = []
    for run_id, system, hyp in (("good", "mfcc", lambda t: t), ("half", "fbank", lambda t: t[::2])):
        folder = tmp_path / run_id
        folder.mkdir()
        lines = [{"id": i, "prediction": hyp(t)} for i, t in refs.items()]
        (folder / "predictions.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
        row = _row(run_id, system, "asr", "tiny-synth", "cer", 0.0 if run_id == "good" else 0.5)
        row["run_dir"] = str(folder)
        row["config"]["downstream"] = {"name": "asr"}
        rows.append(row)
    before = st.build_board(rows, references={}, n_resamples=200)
    site.write_site(rows, tmp_path / "out", references={})
    assert (tmp_path / "out" / "runs" / "half" / st.COMMITTED_RESOLVED).is_file()
    for name in ("good", "half"):
        shutil.rmtree(tmp_path / name)
    shutil.rmtree(paths.data_dir() / "tiny-synth")
    monkeypatch.setattr(st, "COMMITTED_RUNS", tmp_path / "out" / "runs")
    items = st.per_item(rows[1])
    assert items.kind == "text" and items.data == {i: (t, t[::2]) for i, t in refs.items()}
    after = st.build_board(rows, references={}, n_resamples=200)
    cell = ("fbank", "asr/tiny-synth cer")
    assert after.cells[cell].p_value == before.cells[cell].p_value == 0.0
    # a damaged copy leaves the cell untested rather than failing the board
    (tmp_path / "out" / "runs" / "half" / st.COMMITTED_RESOLVED).write_bytes(b"not gzip")
    assert st.per_item(rows[1]) is None


def _item_run(folder: Path, run_id, upstream, downstream, corpus, metric, value, lines) -> dict:
    """A finished run whose folder holds only predictions.jsonl, higher-is-better metric."""
    folder.mkdir(parents=True)
    (folder / "predictions.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    row = _row(run_id, upstream, downstream, corpus, metric, value, 0, folder)
    row["config"]["downstream"] = {"name": downstream}
    base = metric if metric == "si_sdri" else metric.split("_")[0]  # srcc_ovrl -> srcc
    row["metric_info"] = {metric: {"base": base, "higher_is_better": True}}
    return row


def test_scene_tag_mos_and_tse_items_give_paired_ties(sb_home, tmp_path):
    from dcase_fakes import TonesAsc, TonesTag, register_fakes
    from speechbench.metrics.classification import accuracy
    from speechbench.metrics.tagging import lwlrap

    register_fakes()
    rng = np.random.default_rng(0)
    # ASC: a perfect system, one that misses 1 of 8 test clips (tied), one that misses 5
    test = [r for r in TonesAsc().prepare() if r.split == "test"]
    classes = sorted({r.labels["scene"] for r in test})
    truth = [classes.index(r.labels["scene"]) for r in test]
    rows = []
    for run_id, wrong in (("all", 0), ("one", 1), ("five", 5)):
        guess = [(t + (i < wrong)) % 2 for i, t in enumerate(truth)]
        lines = [
            {"id": r.id, "prediction": np.eye(2)[g].tolist()}
            for r, g in zip(test, guess, strict=True)
        ]
        value = accuracy(truth, guess)
        rows.append(_item_run(tmp_path / run_id, run_id, run_id, "asc", "tones-asc",
                              "accuracy", value, lines))  # fmt: skip
    items = st.per_item(rows[2])
    assert items.kind == "pairs" and sorted(v[0] for v in items.data.values()) == sorted(truth)
    board = st.build_board(rows, references={}, n_resamples=300)
    cells = {s: board.cells[(s, "asc/tones-asc accuracy")] for s in board.systems}
    assert cells["all"].is_best and cells["one"].tied is True
    assert cells["five"].tied is False and cells["five"].p_value < 0.05
    # TAG: lwlrap recomputed from the stored sigmoid scores and the corpus' tags
    test = [r for r in TonesTag().prepare() if r.split == "test"]
    tags = sorted({t for r in TonesTag().prepare() if r.split == "train" for t in r.labels["tags"]})
    hot = np.array([[float(t in r.labels["tags"]) for t in tags] for r in test])
    rows = []
    for run_id, noise in (("clean", 0.0), ("noisy", 5.0)):
        scores = hot + noise * rng.random(hot.shape)
        lines = [{"id": r.id, "prediction": s.tolist()} for r, s in zip(test, scores, strict=True)]
        rows.append(_item_run(tmp_path / run_id, run_id, run_id, "tag", "tones-tag", "lwlrap",
                              lwlrap(hot, scores), lines))  # fmt: skip
    items = st.per_item(rows[0])
    assert np.array_equal(np.stack([v[0] for v in items.data.values()]), hot)
    # MOS: the target comes from the column's key, null truths are left out
    truth = rng.normal(3.0, 0.8, 60)
    rows = []
    for run_id, noise in (("good", 0.1), ("close", 0.12), ("poor", 1.5)):
        pred = truth + rng.normal(0, noise, 60)
        lines = [
            {"id": f"u{i}", "truth": {"ovrl": t, "sig": None}, "prediction": {"ovrl": p, "sig": 3}}
            for i, (t, p) in enumerate(zip(truth, pred, strict=True))
        ]
        from scipy.stats import spearmanr

        value = float(spearmanr(truth, pred)[0])
        rows.append(_item_run(tmp_path / run_id, run_id, run_id, "mos", "mini-mos",
                              "srcc_ovrl", value, lines))  # fmt: skip
    assert st.per_item(rows[0], "srcc_sig").data == {}  # every sig truth is null
    assert st.per_item(rows[0], "pesq") is None
    board = st.build_board(rows, references={}, n_resamples=300)
    cells = {s: board.cells[(s, "mos/mini-mos srcc_ovrl")] for s in board.systems}
    assert cells["good"].is_best and cells["close"].tied is True
    assert cells["poor"].tied is False
    # TSE: per-mixture SI-SDRi, compared as paired means
    base = rng.normal(2.0, 3.0, 50)
    rows = []
    for run_id, shift in (("tse-a", 0.0), ("tse-b", -0.05), ("tse-c", -3.0)):
        lines = [{"id": f"m{i}", "si_sdri": v + shift} for i, v in enumerate(base)]
        rows.append(_item_run(tmp_path / run_id, run_id, run_id, "tse", "mini-tse", "si_sdri",
                              float(np.mean(base + shift)), lines))  # fmt: skip
    assert st.per_item(rows[0], "pesq_wb") is None
    board = st.build_board(rows, references={}, n_resamples=300)
    cells = {s: board.cells[(s, "tse/mini-tse si_sdri")] for s in board.systems}
    assert cells["tse-a"].is_best and cells["tse-c"].tied is False
    assert cells["tse-c"].p_value == 0.0 and cells["tse-b"].p_value == 0.0  # constant shift


def test_site_files_and_markup(sb_home, tmp_path):
    import soundfile as sf

    rows = _rows()
    (tmp_path / "run" / "artefacts").mkdir(parents=True)
    sf.write(tmp_path / "run" / "artefacts" / "u1.wav", np.zeros(1600), 16000)
    (tmp_path / "run" / "training.json").write_text(json.dumps({"layer_weights": [0.2, 0.5, 0.3]}))
    rows[0].update(run_dir=str(tmp_path / "run"), artefacts=[{"name": "u1.wav", "kind": "audio"}])
    written = site.write_site(rows, tmp_path / "out", references=REFERENCES)
    names = {p.name for p in written}
    assert {"leaderboard.md", "leaderboard.csv", "index.html"} <= names
    page = (tmp_path / "out" / "index.html").read_text()
    assert not re.search(r"(src|href)=\"https?:", page)  # nothing fetched from the network
    assert "<svg" in page and "Task × system" in page and "cer ↓" in page
    assert ">n/a<" in page and ">not run<" in page
    assert "<figure>" in page and "mfcc · asr/mini-en" in page  # its layer-weight profile
    assert 'href="runs/m0/config.json"' in page
    assert 'href="runs/m0/samples/u1.wav"' in page  # an audio sample to listen to
    assert (tmp_path / "out" / "runs" / "m0" / "samples" / "u1.wav").is_file()
    assert json.loads((tmp_path / "out" / "runs" / "m0" / "config.json").read_text())["run_id"]
    md = (tmp_path / "out" / "leaderboard.md").read_text()
    assert "**0.300 ± " in md and "(n=3)" in md
    csv_text = (tmp_path / "out" / "leaderboard.csv").read_text()
    assert csv_text.splitlines()[0].startswith("system,task,metric")


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _dom(url: str, tmp_path: Path) -> str:
    command = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--dump-dom",
        url,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout


def _system_order(dom: str) -> list[str]:
    body = dom.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return re.findall(r"<tr><td data-v=\"([^\"]+)\"", body)


@pytest.mark.skipif(_chromium() is None, reason="Debian chromium not installed (.ci installs it)")
def test_page_renders_and_sorts_in_headless_chromium(sb_home, tmp_path):
    out = tmp_path / "site"
    site.write_site(_rows(), out, references=REFERENCES)
    page = (out / "index.html").as_uri()
    dom = _dom(page, tmp_path)
    assert 'data-ready="yes"' in dom  # the inline script ran
    assert _system_order(dom) == ["ctap", "fbank", "ge2e", "mfcc"]
    # sort by the ASR column, best (lowest CER) first; n/a rows sink to the bottom
    by_cer = _system_order(_dom(page + "#sort=asr-mini-en-cer", tmp_path))
    assert by_cer == ["ctap", "fbank", "mfcc", "ge2e"]
    by_cer_desc = _system_order(_dom(page + "#sort=asr-mini-en-cer:desc", tmp_path))
    assert by_cer_desc == ["mfcc", "fbank", "ctap", "ge2e"]
    assert 'data-sorted="asr-mini-en-cer:desc"' in _dom(
        page + "#sort=asr-mini-en-cer:desc", tmp_path
    )
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1400,900",
            f"--screenshot={shot}",
            page,
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def test_committed_runs_render(sb_home, tmp_path):
    rows = lb.load_runs(REPO / "leaderboards" / "runs.jsonl")
    site.write_site(rows, tmp_path / "board")
    page = (tmp_path / "board" / "index.html").read_text()
    for expected in ("overall", "mean rank", "params", "extract ×RT", "peak MB", "whisper-tiny-en"):
        assert expected in page
    board = json.loads((tmp_path / "board" / "board.json").read_text())
    assert "fbank" in board["overall"]  # undefined (None) while a task lacks fbank's row
    # on the tasks the versioned reference points cover, fbank scores 0 by definition
    refs = json.loads((REPO / "leaderboards" / "reference_points.json").read_text())
    covered = {key.rsplit(" ", 1)[0] for key in refs["columns"]}
    kept = [r for r in rows if lb.task_of(r) in covered]
    site.write_site(kept, tmp_path / "covered")
    covered_board = json.loads((tmp_path / "covered" / "board.json").read_text())
    assert covered_board["overall"]["fbank"] == pytest.approx(0.0, abs=0.05)  # rounded points
