"""docs/mos.md's tables rebuild from a committed runs.jsonl: runs that differ only in the
seed are one row (mean ± std), a single run shows its bootstrap interval, and the
upstream's changed options are part of the system name."""

import json


def _run(run_id, seed, srcc, mechanism="mpl", upstream="fbank", changed=()):
    downstream = {"mechanism": mechanism, "loss": "huber", "delta": 1.0}
    downstream["features"] = "stft,sinc,upstream"
    return {
        "run_id": run_id,
        "upstream": upstream,
        "downstream": "mos",
        "corpus": "mini-mos",
        "corpus_version": "3",
        "seed": seed,
        "config": {"upstream": {"name": upstream}, "downstream": downstream},
        "labels": {"changed_options": [list(c) for c in changed]},
        "timings": {"train_s": 300.0},
        "metrics": {
            "srcc_ovrl": srcc,
            "srcc_ovrl_ci_low": srcc - 0.05,
            "srcc_ovrl_ci_high": srcc + 0.05,
            "const_mse_ovrl": 0.405,
        },
    }


def test_seeds_group_into_mean_and_std_and_options_name_the_system(
    tmp_path, benchmark_script, monkeypatch
):
    monkeypatch.setenv("SPEECHBENCH_HOME", str(tmp_path / "empty-home"))
    module = benchmark_script("mos_tables")
    rows = [
        _run("a", 0, 0.80),
        _run("b", 1, 0.70),
        _run("c", 2, 0.75),
        _run("d", 0, 0.60, mechanism="kt"),
        _run("e", 0, 0.10, upstream="mfcc", changed=[("upstream", "cmvn", False)]),
    ]
    runs = tmp_path / "runs.jsonl"
    runs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    groups = module.collect("3", [runs])
    full = "stft,sinc,upstream"
    mpl = groups[("fbank", "mos", "mpl", "huber", 1.0, full)]
    assert sorted(r["run_id"] for r in mpl) == ["a", "b", "c"]
    assert module.cell(mpl, "srcc_ovrl") == "0.750 ± 0.050"  # statistics.stdev of 0.8/0.7/0.75
    kt = groups[("fbank", "mos", "kt", "huber", 1.0, full)]
    assert module.cell(kt, "srcc_ovrl") == "0.600 [0.550, 0.650]"
    assert ("mfcc upstream.cmvn=false", "mos", "mpl", "huber", 1.0, full) in groups
    keys = [("fbank", "mos", m, "huber", 1.0, full) for m in ("scratch", "kt", "mpl")]
    table = module.table(groups, keys, lambda k: f"{k[0]} {k[2]}")
    assert "| fbank kt | 1 | 0.600 [0.550, 0.650] |" in table
    assert "| fbank mpl | 3 | 0.750 ± 0.050 |" in table and "scratch" not in table
