"""Leaderboards: system x task tables from the results store.

A task is (downstream, corpus); a cell is the task's primary metric, the mean over
seeds (with the standard deviation when there are several). The best cell per
column (by the metric's direction) is marked. A pairing that cannot work (e.g. an
utterance-level upstream on a frame-level task) shows "n/a", never a number;
a pairing not run yet shows "-".

A row is a *system*: the upstream plus every option that differs from its default
(``ivector downstream.backend=plda`` is its own row, never averaged with the cosine
runs). Budget and execution options (epochs, batch sizes, threads, seed) do not make
a new system; of several runs of one system, task and seed the newest counts.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from speechbench import atomic, registry
from speechbench.errors import ConfigError, SpeechbenchError
from speechbench.metrics.base import get_metric

FORMATS = ("md", "csv", "html")


# Options that set a run's budget or how it executes, not which system it is.
BUDGET_KEYS = frozenset(
    {
        "seed",
        "max_epochs",
        "min_epochs",
        "patience",
        "bootstrap",
        "batch_size",
        "batch_partials",
        "max_batch_frames",
        "threads",
        "extract_batch_seconds",
    }
)


def _default_options(family: str, name: str) -> dict[str, Any] | None:
    try:
        options_cls = registry.get(family, name).Options
    except SpeechbenchError:  # a plugin that is not installed here: no defaults to diff
        return None
    return asdict(options_cls()) if is_dataclass(options_cls) else None


def _short(value: Any) -> str:
    if isinstance(value, str) and ("/" in value or "\\" in value):
        return Path(value).name  # a checkpoint path: its file name is enough to tell
    return str(value).lower() if isinstance(value, bool) else str(value)


def changed_options(row: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """``(upstream|downstream, option, value)`` for the run's non-default, non-budget
    options."""
    config = row.get("config") or {}
    changed = []
    for family, key in (("upstreams", "upstream"), ("downstreams", "downstream")):
        options = config.get(key) or {}
        defaults = _default_options(family, options.get("name", row[key]))
        if defaults is None:
            continue
        for option, value in sorted(options.items()):
            if option in BUDGET_KEYS or option not in defaults or value == defaults[option]:
                continue
            changed.append((key, option, value))
    return changed


def system_label(row: dict[str, Any], changed: list[tuple[str, str, Any]] | None = None) -> str:
    """The upstream name plus its run's changed options (``changed_options``), as CLI
    overrides."""
    changed = changed_options(row) if changed is None else changed
    overrides = [f"{key}.{option}={_short(value)}" for key, option, value in changed]
    return " ".join([row["upstream"], *overrides])


def applicable(
    upstream: str, downstream: str, downstream_options: frozenset[str] = frozenset()
) -> bool:
    """Can this system run this task: the upstream's level fits and the downstream has
    every downstream option the system sets (``backend`` means nothing to ASR)?"""
    try:
        up_level = registry.get("upstreams", upstream).level
        downstream_cls = registry.get("downstreams", downstream)
    except SpeechbenchError:
        return True
    defaults = _default_options("downstreams", downstream) or {}
    return downstream_cls.accepts_level(up_level) and downstream_options <= set(defaults)


CONDITION_SUFFIX = re.compile(r"_\d+s$")  # cavg_3s: Cavg on the 3 s condition


def metric_spec(name: str):
    """The registered metric a reported value is an instance of (``cavg_1s`` -> ``cavg``)."""
    try:
        return get_metric(CONDITION_SUFFIX.sub("", name))
    except SpeechbenchError:
        raise ConfigError(
            f"--metric {name}: not a metric; give one of `speechbench list metrics`, "
            "optionally with a condition suffix such as _3s"
        ) from None


def results_frame(rows: list[dict[str, Any]], metric: str | None = None) -> pd.DataFrame:
    """One line per finished run: system, upstream, task, metric, value, seed.

    ``metric`` picks that reported metric instead of each task's primary one; runs that
    did not report it are left out."""
    records = []
    for row in rows:
        if row["status"] != "finished" or not row.get("primary_metric"):
            continue
        if metric is not None and metric not in row["metrics"]:
            continue
        metric_name = metric or row["primary_metric"]
        changed = changed_options(row)
        records.append(
            {
                "system": system_label(row, changed),
                "downstream_options": frozenset(
                    option for key, option, _ in changed if key == "downstream"
                ),
                "upstream": row["upstream"],
                "task": f"{row['downstream']}/{row['corpus']}",
                "downstream": row["downstream"],
                "metric": metric_name,
                "value": row["metrics"].get(metric_name),
                "seed": row["seed"],
                "finished_at": row.get("finished_at") or "",
            }
        )
    columns = ["system", "upstream", "task", "downstream", "metric", "value", "seed"]
    frame = pd.DataFrame(records, columns=[*columns, "downstream_options", "finished_at"])
    # a re-run of the same system, task and seed replaces the older result
    frame = frame.sort_values("finished_at", kind="stable")
    frame = frame.drop_duplicates(["system", "task", "metric", "seed"], keep="last")
    return frame[[*columns, "downstream_options"]]


def leaderboard_table(
    rows: list[dict[str, Any]], metric: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(display table of strings, numeric table of means) indexed by system."""
    if metric is not None:
        metric_spec(metric)  # an unknown name fails before anything is computed
    frame = results_frame(rows, metric)
    if frame.empty and metric is not None:
        raise SpeechbenchError(f"no finished run reported {metric!r}")
    if frame.empty:
        raise SpeechbenchError(
            "no finished runs in the results store; run `speechbench run ...` first"
        )
    stats = frame.groupby(["system", "task", "downstream", "metric"])["value"].agg(
        ["mean", "std", "count"]
    )
    stats = stats.reset_index()
    upstream_of = dict(zip(frame["system"], frame["upstream"], strict=True))
    options_of = dict(zip(frame["system"], frame["downstream_options"], strict=True))
    systems = sorted(upstream_of)
    columns, means, display = [], {}, {}
    for (task, downstream, metric), group in stats.groupby(["task", "downstream", "metric"]):
        spec = metric_spec(metric)
        column = f"{task} {metric} {'↑' if spec.higher_is_better else '↓'}"
        columns.append(column)
        by_system = group.set_index("system")
        best = by_system["mean"].max() if spec.higher_is_better else by_system["mean"].min()
        means[column], display[column] = {}, {}
        for system in systems:
            if system in by_system.index:
                cell = by_system.loc[system]
                text = f"{cell['mean']:.3f}"
                if cell["count"] > 1:
                    text += f" ± {cell['std']:.3f} (n={int(cell['count'])})"
                if cell["mean"] == best and len(by_system) > 1:
                    text = f"**{text}**"
                means[column][system] = cell["mean"]
                display[column][system] = text
            else:
                means[column][system] = float("nan")
                fits = applicable(upstream_of[system], downstream, options_of[system])
                display[column][system] = "-" if fits else "n/a"
    shown = pd.DataFrame(display, index=systems)[columns]
    shown.index.name = "system"
    numeric = pd.DataFrame(means, index=systems)[columns]
    numeric.index.name = "system"
    return shown, numeric


def render(rows: list[dict[str, Any]], fmt: str, metric: str | None = None) -> str:
    if fmt not in FORMATS:
        raise ConfigError(f"unknown leaderboard format {fmt!r}; valid: {', '.join(FORMATS)}")
    shown, numeric = leaderboard_table(rows, metric)
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


_RUN_TEXT_FIELDS = ("run_id", "upstream", "downstream", "corpus")


def _check_run(record: Any, where: str) -> dict[str, Any]:
    """One included run record, or a one-line error naming ``where`` and what is wrong."""
    if not isinstance(record, dict):
        raise ConfigError(
            f"{where}: a run record must be a JSON object, got {type(record).__name__}"
        )
    missing = [k for k in (*_RUN_TEXT_FIELDS, "metrics") if k not in record]
    if missing:
        raise ConfigError(
            f"{where}: a run record needs {missing}; regenerate it (leaderboard --out)"
        )
    for key in _RUN_TEXT_FIELDS:
        if not isinstance(record[key], str):
            raise ConfigError(f"{where}: field {key!r} must be a string, got {record[key]!r}")
    metrics = record["metrics"]
    if not isinstance(metrics, dict):
        raise ConfigError(f"{where}: 'metrics' must be an object of name: number")
    for name, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: metric {name!r} is {value!r}, not a number")
    primary = record.get("primary_metric")
    if primary is not None and not isinstance(primary, str):
        raise ConfigError(f"{where}: 'primary_metric' must be a metric name, got {primary!r}")
    for key in ("config",):
        if record.get(key) is not None and not isinstance(record[key], dict):
            raise ConfigError(f"{where}: {key!r} must be an object")
    return record


def load_runs(path: Path) -> list[dict[str, Any]]:
    """Runs from another results store (``results.sqlite``) or a leaderboard's
    ``runs.jsonl``, to combine results made on several machines into one table.

    The file is only read (a store is opened read-only); a line or row that is not a
    usable run record is a one-line error naming the file and line (or run id)."""
    from speechbench.store import ResultsStore

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--include {path}: no such file; give a results.sqlite or runs.jsonl")
    if path.suffix == ".jsonl":
        rows = []
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"--include {path}: not UTF-8 text") from None
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}:{number}: not a JSON line ({exc.msg})") from None
            rows.append({"status": "finished", **_check_run(record, f"{path}:{number}")})
        return rows
    if path.suffix in {".sqlite", ".db"}:
        rows = ResultsStore(path, read_only=True).runs()
        for row in rows:
            if row.get("status") == "finished":
                _check_run(row, f"{path}: run {row.get('run_id')}")
        return rows
    raise ConfigError(f"--include {path}: expected a results .sqlite or a runs .jsonl file")


def merge_runs(*sources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Union by run id; a later source's copy of a run replaces an earlier one."""
    merged: dict[str, dict[str, Any]] = {}
    for rows in sources:
        merged.update({row["run_id"]: row for row in rows})
    return list(merged.values())


def write(
    rows: list[dict[str, Any]], out_dir: Path, formats: tuple[str, ...] = FORMATS
) -> list[Path]:
    """Write the tables plus ``runs.jsonl``: the full record of every run they show."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(
            f"--out {out_dir}: is a file; give a folder (leaderboard.* and runs.jsonl go in it)"
        )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ConfigError(f"--out {out_dir}: a parent of it is a file; give a folder") from None
    # render every table first, so an error leaves no half-written set of files
    texts = {out_dir / f"leaderboard.{fmt}": render(rows, fmt) for fmt in formats}
    finished = [r for r in rows if r["status"] == "finished"]
    lines = [json.dumps({k: r.get(k) for k in PROVENANCE_FIELDS}, sort_keys=True) for r in finished]
    texts[out_dir / "runs.jsonl"] = "".join(line + "\n" for line in lines)
    for path, text in texts.items():
        atomic.write_text(path, text)
    return list(texts)
