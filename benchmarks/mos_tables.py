"""docs/mos.md tables (MTQ-Net paper's Tables 1-3) and Fig. 2 from the results store.

    SPEECHBENCH_HOME=... python benchmarks/mos_tables.py [--figure docs/mos_delta.png]
        [--include leaderboards/runs.jsonl]

Reads every finished ``mos`` / ``mos-ssl`` run on mini-mos from the store (plus, with
``--include``, the runs of a committed leaderboard, so the tables can be rebuilt on a
machine whose store does not hold them; a run in both is counted once), groups runs
that differ only in the seed, and prints mean ± std over seeds (n = seeds) of
SRCC / LCC / MSE per target, with the single-seed 95% bootstrap interval when n = 1.
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from typing import Any

from speechbench.leaderboard import combined_runs

TARGETS = ("sig", "bak", "ovrl")


def _system(row: dict[str, Any]) -> tuple:
    down = row["config"]["downstream"]
    up = row["config"]["upstream"]
    changed = (row.get("labels") or {}).get("changed_options") or []
    # the upstream and its non-default options (e.g. fbank upstream.cmvn=false)
    upstream = " ".join(
        [up["name"], *(f"upstream.{k}={str(v).lower()}" for g, k, v in changed if g == "upstream")]
    )
    if row["downstream"] == "mos-ssl":
        return (upstream, "mos-ssl", "-", down["loss"], down["delta"], "upstream")
    return (upstream, "mos", down["mechanism"], down["loss"], down["delta"], down["features"])


def collect(
    corpus_version: str | None = None, include: list[str] = ()
) -> dict[tuple, list[dict[str, Any]]]:
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for row in combined_runs(include):
        if row.get("status", "finished") != "finished":
            continue
        if row["downstream"] not in ("mos", "mos-ssl") or row["corpus"] != "mini-mos":
            continue
        if corpus_version and str(row["corpus_version"]) != corpus_version:
            continue
        groups[_system(row)].append(row)
    return groups


def cell(rows: list[dict[str, Any]], key: str, digits: int = 3) -> str:
    values = [r["metrics"][key] for r in rows if key in r["metrics"]]
    if not values:
        return "-"
    if len(values) == 1:
        low, high = (
            rows[0]["metrics"].get(f"{key}_ci_low"),
            rows[0]["metrics"].get(f"{key}_ci_high"),
        )
        ci = f" [{low:.{digits}f}, {high:.{digits}f}]" if low is not None else ""
        return f"{values[0]:.{digits}f}{ci}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


# the docs' columns: the primary metric first, then what a reader compares it with
COMPACT = ("srcc_ovrl", "lcc_ovrl", "mse_ovrl", "srcc_sig", "srcc_bak", "srcc_ovrl_cond")
FULL = tuple(f"{m}_{t}" for t in TARGETS for m in ("srcc", "lcc", "mse"))


def table(groups, keys: list[tuple], label, columns: tuple[str, ...] = COMPACT) -> str:
    header = "| system | n | " + " | ".join(c.upper().replace("_", " ") for c in columns)
    lines = [header + " | const MSE OVRL | train min (mean) |"]
    lines.append("|" + "---|" * (2 + len(columns) + 2))
    for key in keys:
        rows = groups.get(key)
        if not rows:
            continue
        metrics = " | ".join(cell(rows, c) for c in columns)
        minutes = statistics.mean(r["timings"].get("train_s", 0) for r in rows) / 60
        const = cell(rows[:1], "const_mse_ovrl")
        lines.append(f"| {label(key)} | {len(rows)} | {metrics} | {const} | {minutes:.1f} |")
    return "\n".join(lines)


def delta_figure(groups, upstream: str, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    points = sorted(
        (k[4], rows)
        for k, rows in groups.items()
        if k[0] == upstream
        and k[1] == "mos"
        and k[2] == "mpl"
        and k[3] == "huber"
        and k[5] == "stft,sinc,upstream"
    )
    if not points:
        return
    figure = Figure(figsize=(5, 3.5), dpi=100)
    axes = figure.add_subplot()
    for target in TARGETS:
        values = [[r["metrics"][f"srcc_{target}"] for r in rows] for _, rows in points]
        means = [statistics.mean(v) for v in values]
        # the std over seeds where a delta has several, no bar where it has one
        spread = [statistics.stdev(v) if len(v) > 1 else 0.0 for v in values]
        axes.errorbar(
            [d for d, _ in points],
            means,
            yerr=spread,
            marker="o",
            capsize=3,
            label=target.upper(),
        )
    seeds = sorted({len(rows) for _, rows in points})
    axes.set_xlabel(f"Huber delta (mean ± std over {'/'.join(map(str, seeds))} seeds)")
    axes.set_ylabel("SRCC (test, mini-mos)")
    axes.set_title(f"MTQ-Net (MPL) on {upstream}: SRCC vs delta")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--figure", default="")
    parser.add_argument("--version", default="3")
    parser.add_argument("--include", action="append", default=[], help="runs.jsonl to add")
    parser.add_argument("--all-metrics", action="store_true", help="SRCC/LCC/MSE of all targets")
    args = parser.parse_args()
    columns = FULL if args.all_metrics else COMPACT
    groups = collect(args.version, args.include)
    full = "stft,sinc,upstream"
    upstreams = sorted({k[0] for k in groups})
    print("Table 1 (mechanisms, Huber delta 1):\n")
    keys = [(u, "mos", m, "huber", 1.0, full) for u in upstreams for m in ("scratch", "kt", "mpl")]
    print(table(groups, keys, lambda k: f"{k[0]} {k[2]}", columns))
    print("\nTable 2 (losses under MPL):\n")
    keys = [
        (u, "mos", "mpl", loss, 1.0, full) for u in upstreams for loss in ("mse", "mae", "huber")
    ]
    print(table(groups, keys, lambda k: f"{k[0]} {k[3]}", columns))
    print("\nFig. 2 data (Huber delta under MPL):\n")
    keys = [(u, "mos", "mpl", "huber", d, full) for u in upstreams for d in (0.5, 0.75, 1.0, 1.25)]
    print(table(groups, keys, lambda k: f"{k[0]} delta {k[4]}", columns))
    print("\nTable 3 (MTQ-Net vs MOS-SSL) and feature streams:\n")
    keys = [
        (u, "mos", "mpl", "huber", 1.0, f)
        for u in upstreams
        for f in (full, "upstream", "stft,sinc")
    ]
    keys += [(u, "mos-ssl", "-", "mae", 1.0, "upstream") for u in upstreams]
    print(table(groups, keys, lambda k: f"{k[0]} {k[1]} ({k[5]})", columns))
    if args.figure:
        delta_figure(groups, "fbank", args.figure)


if __name__ == "__main__":
    main()
