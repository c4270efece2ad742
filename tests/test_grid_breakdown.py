"""The grid breakdown sums exactly the phase timings of the rows it is given."""

import pytest


def _row(upstream, downstream, cpu=True, **wall):
    timings = {f"{p}_s": wall.get(p, 0.0) for p in ("prepare", "extract", "train", "eval")}
    if cpu:
        timings.update({f"{p}_cpu_s": v / 2 for p, v in wall.items()})
        timings.update({f"{p}_cpu_s": timings.get(f"{p}_cpu_s", 0.0) for p in ("prepare", "eval")})
    return {
        "upstream": upstream,
        "downstream": downstream,
        "corpus": "c",
        "corpus_version": "2",
        "timings": timings,
    }


def test_breakdown_sums_by_upstream_task_and_phase(benchmark_script):
    grid = benchmark_script("grid_breakdown")
    rows = [
        _row("mfcc", "asr", extract=10.0, train=30.0),
        _row("mfcc", "sv", extract=0.0, train=20.0, eval=40.0),
        _row("ctap", "asr", cpu=False, extract=60.0, train=40.0),
    ]
    report = grid.breakdown(rows)
    total = report["total"]
    assert total["runs"] == 3 and total["runs_with_cpu"] == 2
    assert total["wall_s"]["train"] == pytest.approx(90.0)
    assert total["cpu_s"]["train"] == pytest.approx(25.0)  # the CPU-less ctap row adds nothing
    assert report["by_upstream"]["mfcc"]["wall_s"]["eval"] == pytest.approx(40.0)
    assert report["by_task"]["asr/c v2"]["wall_s"]["extract"] == pytest.approx(70.0)
    share = grid.shares(report["by_upstream"]["ctap"])
    assert share["extract"] == pytest.approx(0.6) and share["train"] == pytest.approx(0.4)
    assert "n/a (0)" in grid.table(report["by_upstream"], "upstream")  # ctap has no CPU time
