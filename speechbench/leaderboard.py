"""Leaderboards: upstream x task tables from the results store.

A task is (downstream, corpus); a cell is the task's primary metric, the mean over
seeds (with the standard deviation when there are several). The best cell per
column (by the metric's direction) is marked. A pairing that cannot work (e.g. an
utterance-level upstream on a frame-level task) shows "n/a", never a number;
a pairing not run yet shows "-".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from speechbench import atomic, registry
from speechbench.errors import ConfigError, SpeechbenchError
from speechbench.metrics.base import get_metric

FORMATS = ("md", "csv", "html")


def results_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """One line per finished run: upstream, task, metric, value, seed."""
    records = []
    for row in rows:
        if row["status"] != "finished" or not row.get("primary_metric"):
            continue
        metric = row["primary_metric"]
        records.append(
            {
                "upstream": row["upstream"],
                "task": f"{row['downstream']}/{row['corpus']}",
                "downstream": row["downstream"],
                "metric": metric,
                "value": row["metrics"].get(metric),
                "seed": row["seed"],
            }
        )
    return pd.DataFrame(
        records, columns=["upstream", "task", "downstream", "metric", "value", "seed"]
    )


def applicable(upstream: str, downstream: str) -> bool:
    try:
        up_level = registry.get("upstreams", upstream).level
        downstream_cls = registry.get("downstreams", downstream)
    except SpeechbenchError:
        return True
    return downstream_cls.accepts_level(up_level)


def leaderboard_table(rows: list[dict[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(display table of strings, numeric table of means) indexed by upstream."""
    frame = results_frame(rows)
    if frame.empty:
        raise SpeechbenchError(
            "no finished runs in the results store; run `speechbench run ...` first"
        )
    stats = frame.groupby(["upstream", "task", "downstream", "metric"])["value"].agg(
        ["mean", "std", "count"]
    )
    stats = stats.reset_index()
    upstreams = sorted(stats["upstream"].unique())
    columns, means, display = [], {}, {}
    for (task, downstream, metric), group in stats.groupby(["task", "downstream", "metric"]):
        spec = get_metric(metric)
        column = f"{task} {metric} {'↑' if spec.higher_is_better else '↓'}"
        columns.append(column)
        by_upstream = group.set_index("upstream")
        best = by_upstream["mean"].max() if spec.higher_is_better else by_upstream["mean"].min()
        means[column], display[column] = {}, {}
        for up in upstreams:
            if up in by_upstream.index:
                cell = by_upstream.loc[up]
                text = f"{cell['mean']:.3f}"
                if cell["count"] > 1:
                    text += f" ± {cell['std']:.3f} (n={int(cell['count'])})"
                if cell["mean"] == best and len(by_upstream) > 1:
                    text = f"**{text}**"
                means[column][up] = cell["mean"]
                display[column][up] = text
            else:
                means[column][up] = float("nan")
                display[column][up] = "-" if applicable(up, downstream) else "n/a"
    shown = pd.DataFrame(display, index=upstreams)[columns]
    shown.index.name = "upstream"
    numeric = pd.DataFrame(means, index=upstreams)[columns]
    numeric.index.name = "upstream"
    return shown, numeric


def render(rows: list[dict[str, Any]], fmt: str) -> str:
    if fmt not in FORMATS:
        raise ConfigError(f"unknown leaderboard format {fmt!r}; valid: {', '.join(FORMATS)}")
    shown, numeric = leaderboard_table(rows)
    if fmt == "md":
        return shown.to_markdown() + "\n"
    if fmt == "csv":
        return numeric.to_csv()
    html = shown.to_html(escape=True)
    return html.replace("<td>**", "<td><b>").replace("**</td>", "</b></td>")


PROVENANCE_FIELDS = (
    "run_id",
    "upstream",
    "downstream",
    "corpus",
    "corpus_version",
    "seed",
    "primary_metric",
    "metrics",
    "config",
    "timings",
    "peak_memory_mb",
    "versions",
    "git_commit",
    "finished_at",
)


def write(
    rows: list[dict[str, Any]], out_dir: Path, formats: tuple[str, ...] = FORMATS
) -> list[Path]:
    """Write the tables plus ``runs.jsonl``: the full record of every run they show."""
    written = []
    for fmt in formats:
        path = Path(out_dir) / f"leaderboard.{fmt}"
        atomic.write_text(path, render(rows, fmt))
        written.append(path)
    finished = [r for r in rows if r["status"] == "finished"]
    provenance = Path(out_dir) / "runs.jsonl"
    lines = [json.dumps({k: r.get(k) for k in PROVENANCE_FIELDS}, sort_keys=True) for r in finished]
    atomic.write_text(provenance, "".join(line + "\n" for line in lines))
    written.append(provenance)
    return written
