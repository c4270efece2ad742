"""DCASENet Table 2's structure from stored runs: single-task baselines, joint combinations
and fine-tuned results per architecture, mean and 95% t-interval over seeds.

    python benchmarks/dcase_table2.py            # reads $SPEECHBENCH_HOME's results store

Rows come only from finished ``dcasenet`` runs on the mini-dcase views; a cell shows
``mean ± half-width (n seeds)`` (no interval for one seed). Columns: ASC accuracy, TAG
lwlrap, SED segment ER (primary) and F1; "joint" values are the joint network before
fine-tuning (``*_joint`` keys), "fine-tuned" the per-task fine-tuned networks.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from typing import Any

import numpy as np
from scipy import stats

from speechbench import paths
from speechbench.store import ResultsStore

COLUMNS = (
    ("asc", "accuracy", "mini-dcase-asc"),
    ("tag", "lwlrap", "mini-dcase-tag"),
    ("sed", "segment_er", "mini-dcase-sed"),
    ("sed", "segment_f1", "mini-dcase-sed"),
)


def cell(values: list[float]) -> str:
    if not values:
        return "-"
    mean = float(np.mean(values))
    if len(values) == 1:
        return f"{mean:.3f} (1)"
    half = stats.t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1) / np.sqrt(len(values))
    return f"{mean:.3f} ± {half:.3f} ({len(values)})"


def value(metrics: dict[str, float], metric: str, corpus: str, qualifier: str, multi: bool):
    key = f"{metric}_{qualifier}" if qualifier else metric
    return metrics.get(f"{key}@{corpus}" if multi else key)


def system_of(row: dict[str, Any]) -> tuple[str, str, bool] | None:
    config = row["config"]
    opts = config.get("downstream_options") or config.get("downstream") or {}
    if not isinstance(opts, dict):
        return None
    tasks = opts.get("tasks", "asc,tag,sed")
    return str(opts.get("arch", "v3")), str(tasks), bool(opts.get("mixup", True))


THREE_TASKS = "ASC+TAG+SED"
Cells = dict[tuple[str, str], dict[str, list[float]]]


def collect(rows: list[dict[str, Any]], upstream: str) -> Cells:
    """(system, tasks / stage) -> "task metric" -> one value per finished seed."""
    cells: Cells = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row["downstream"] != "dcasenet" or row["status"] != "finished":
            continue
        if row["upstream"] != upstream or row["labels"].get("changed_options") is None:
            continue
        system = system_of(row)
        if system is None:
            continue
        arch, tasks, mixup = system
        metrics = row["metrics"]
        multi = "," in row["corpus"]
        name = f"{arch}{'' if mixup else ' no mixup'}"
        if "," not in tasks:
            label = (f"{name} single task", "")  # per architecture: v1 reads ASC elsewhere than v3
            stages = [("", "")]
        else:
            label = (name, tasks.replace(",", "+").upper())
            stages = [("joint", "joint"), ("fine-tuned", "")]
        for stage, qualifier in stages:
            for task, metric, corpus in COLUMNS:
                if task not in tasks.split(","):
                    continue
                found = value(metrics, metric, corpus, qualifier, multi)
                if found is not None:
                    cells[(label[0], f"{label[1]} {stage}".strip())][f"{task} {metric}"].append(
                        float(found)
                    )
    return cells


def table(cells: Cells) -> str:
    header = "| system | tasks / stage | " + " | ".join(f"{t} {m}" for t, m, _ in COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 2)]
    for (system, stage), found in sorted(cells.items()):
        lines.append(
            f"| {system} | {stage} | "
            + " | ".join(cell(found.get(f"{t} {m}", [])) for t, m, _ in COLUMNS)
            + " |"
        )
    return "\n".join(lines)


def comparisons(cells: Cells) -> str:
    """Three-task joint and fine-tuned networks against the same architecture's
    single-task network, per task: mean difference (positive = better), Welch's 95%
    interval and p over seeds. Where a run has one seed there is no test."""
    lines = [
        "| architecture | task | stage | difference vs single task | 95% CI | p (Welch) | n |",
        "|---|---|---|---|---|---|---|",
    ]
    for (system, stage), found in sorted(cells.items()):
        if not stage.startswith(THREE_TASKS):
            continue
        stage_name = stage.removeprefix(THREE_TASKS).strip()
        base = cells.get((f"{system} single task", ""), {})
        for task, metric, _ in COLUMNS[:3]:
            key = f"{task} {metric}"
            ours, theirs = found.get(key, []), base.get(key, [])
            if not ours or not theirs:
                continue
            sign = -1.0 if metric.endswith("_er") else 1.0  # an error rate improves downwards
            diff = sign * (np.mean(ours) - np.mean(theirs))
            n = f"{len(ours)} vs {len(theirs)}"
            if min(len(ours), len(theirs)) < 2:
                lines.append(f"| {system} | {key} | {stage_name} | {diff:+.3f} | - | - | {n} |")
                continue
            test = stats.ttest_ind(ours, theirs, equal_var=False)
            low, high = test.confidence_interval(0.95)
            low, high = sorted((sign * low, sign * high))
            lines.append(
                f"| {system} | {key} | {stage_name} | {diff:+.3f} | [{low:+.3f}, {high:+.3f}] "
                f"| {test.pvalue:.3f} | {n} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", default="mel128")
    args = parser.parse_args()
    cells = collect(ResultsStore(paths.results_db()).runs(), args.upstream)
    print(table(cells))
    print()
    print(comparisons(cells))


if __name__ == "__main__":
    main()
