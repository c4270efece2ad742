"""Compute spent on the committed leaderboard grid, by upstream and task and by phase.

    python benchmarks/grid_breakdown.py --runs leaderboards/runs.jsonl \
        --out benchmarks/results/grid.json

Not a test. Every run row stores its phase timings (``speechbench/runner.py`` ``phase``):
wall seconds ``prepare_s / extract_s / train_s / eval_s`` and, for runs made after the
CPU columns were added, the same phases' CPU seconds (``*_cpu_s``). This sums them over
the rows a leaderboard shows, so the numbers describe exactly the committed grid. A run
that found its features in the cache spent (almost) nothing on extraction: extraction is
charged to the first run of each (upstream, corpus), which is what the cache buys.
Rows made before CPU time was recorded count toward wall time only; their number is
reported next to every CPU total so the total is never read as complete when it is not.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from speechbench.leaderboard import task_of

PHASES = ("prepare", "extract", "train", "eval")


def breakdown(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Wall and CPU seconds per phase, in total and per (upstream, task) cell."""

    def empty() -> dict[str, Any]:
        return {
            "runs": 0,
            "runs_with_cpu": 0,
            "wall_s": dict.fromkeys(PHASES, 0.0),
            "cpu_s": dict.fromkeys(PHASES, 0.0),
        }

    total, cells = empty(), defaultdict(empty)
    by_upstream, by_task = defaultdict(empty), defaultdict(empty)
    for row in rows:
        timings = row.get("timings") or {}
        has_cpu = all(f"{p}_cpu_s" in timings for p in PHASES)
        keys = (row["upstream"], task_of(row))
        for entry in (total, cells[keys], by_upstream[keys[0]], by_task[keys[1]]):
            entry["runs"] += 1
            entry["runs_with_cpu"] += has_cpu
            for p in PHASES:
                entry["wall_s"][p] += float(timings.get(f"{p}_s") or 0.0)
                if has_cpu:
                    entry["cpu_s"][p] += float(timings[f"{p}_cpu_s"])
    return {
        "total": total,
        "by_upstream": dict(sorted(by_upstream.items())),
        "by_task": dict(sorted(by_task.items())),
        "cells": {f"{u} | {t}": v for (u, t), v in sorted(cells.items())},
    }


def shares(entry: dict[str, Any], kind: str = "wall_s") -> dict[str, float]:
    spent = sum(entry[kind].values())
    return {p: (entry[kind][p] / spent if spent else 0.0) for p in PHASES}


def table(groups: dict[str, dict[str, Any]], title: str) -> str:
    out = [
        f"| {title} | runs | wall h | CPU h (runs with CPU) | extract | train | eval |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, entry in groups.items():
        wall = sum(entry["wall_s"].values()) / 3600
        cpu = sum(entry["cpu_s"].values()) / 3600
        share = shares(entry)
        cpu_text = f"{cpu:.2f} ({entry['runs_with_cpu']})" if entry["runs_with_cpu"] else "n/a (0)"
        out.append(
            f"| {name} | {entry['runs']} | {wall:.2f} | {cpu_text} "
            f"| {share['extract']:.0%} | {share['train']:.0%} | {share['eval']:.0%} |"
        )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("leaderboards/runs.jsonl"))
    parser.add_argument("--out", type=Path, default=None, help="write the raw numbers as JSON")
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.runs.read_text().splitlines() if line.strip()]
    report = {"benchmark": "grid", "runs_file": str(args.runs), **breakdown(rows)}
    print(table({"all": report["total"]}, "grid"))
    print()
    print(table(report["by_upstream"], "upstream"))
    print()
    print(table(report["by_task"], "task"))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
