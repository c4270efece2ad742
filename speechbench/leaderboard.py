"""Leaderboards: system x task tables read from the results store alone.

A task is (downstream, corpus); a cell is the task's primary metric (or ``--metric``),
the mean over seeds (with the standard deviation when there are several). The best cell
per column (by the metric's direction) is marked. A pairing that cannot work (e.g. an
utterance-level upstream on a frame-level task) shows "n/a", never a number; a pairing
not run yet shows "-".

Everything here comes from what each run recorded when it ran (``speechbench.runner``):
its system label (the upstream plus every non-default, non-budget option, as CLI
overrides: ``ivector downstream.backend=plda`` is its own row), the structured parse of
each reported metric key (base metric, condition, target, ..., and its direction), and
the applicability facts (the upstream's level, the levels and options the task takes).
No plugin code is imported, so changing a plugin default never relabels old runs. Of
several runs of one system, task and seed the newest counts; a gradient-trained run that
trained no epoch is never a result.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd

from speechbench import atomic
from speechbench.errors import ConfigError, SpeechbenchError

FORMATS = ("md", "csv", "html")


def system_of(row: dict[str, Any]) -> str:
    """The system label the run stored (runs from before labels were stored: upstream)."""
    return row.get("system") or row["upstream"]


def changed_options(row: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """``(upstream|downstream, option, value)`` the run recorded as its changed options."""
    labels = row.get("labels") or {}
    return [tuple(item) for item in labels.get("changed_options", [])]


def effective_seed(row: dict[str, Any]) -> int:
    """The seed a run's randomness really followed: runs from before every seeded part
    followed the run seed recorded their plugin's own fixed seed here, so such seeds
    count once, not as independent repeats."""
    labels = row.get("labels") or {}
    return int(labels.get("effective_seed", row.get("seed") or 0))


def metric_facts(row: dict[str, Any], key: str) -> dict[str, Any]:
    return (row.get("metric_info") or {}).get(key) or {}


def trained_nothing(row: dict[str, Any]) -> bool:
    labels = row.get("labels") or {}
    return "gradient" in (labels.get("fitters") or []) and labels.get("epochs_run") == 0


def applicable(system_row: dict[str, Any], task_row: dict[str, Any]) -> bool:
    """Can the system of ``system_row`` run the task of ``task_row``, by what both runs
    recorded (the one compatibility rule, ``downstreams.base.check_inputs``, applied when
    they ran)? Unknown facts count as applicable."""
    system, task = system_row.get("labels") or {}, task_row.get("labels") or {}
    level, levels = system.get("upstream_level"), task.get("task_levels")
    if level and levels and level not in levels:
        return False
    options = task.get("task_options")
    wanted = {option for group, option, _ in changed_options(system_row) if group == "downstream"}
    return options is None or wanted <= set(options)


def task_of(row: dict[str, Any]) -> str:
    """``downstream/corpus vVERSION``: results on two versions of a corpus (other splits,
    other files) are two tasks, never averaged into one cell."""
    corpus = str(row["corpus"]).replace(",", "+")
    parts = str(row.get("corpus_version") or "").split(",")
    version = "+".join(re.sub(r"(\.0)+$", "", p) for p in parts if p)  # "1.0" and "1" alike
    return f"{row['downstream']}/{corpus}" + (f" v{version}" if version else "")


def _version_key(version: str) -> tuple:
    from packaging.version import InvalidVersion, Version

    parts = []
    for part in (version or "0").split(","):
        try:
            parts.append((0, Version(part), ""))
        except InvalidVersion:
            parts.append((1, Version("0"), part))
    return tuple(parts)


def newest_versions(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Only the runs on the newest version of each (downstream, corpus) in ``rows``: once
    a corpus is rebuilt, its old rows leave the table until re-run, rather than standing
    next to new ones as if comparable."""
    newest: dict[tuple[str, str], tuple] = {}
    for row in rows:
        key = (row["downstream"], row["corpus"])
        version = _version_key(str(row.get("corpus_version") or ""))
        newest[key] = max(newest.get(key, version), version)
    return [
        r
        for r in rows
        if _version_key(str(r.get("corpus_version") or ""))
        == newest[(r["downstream"], r["corpus"])]
    ]


def results_frame(
    rows: list[dict[str, Any]], metric: str | None = None, all_versions: bool = False
) -> pd.DataFrame:
    """One line per finished run: system, task, metric, value, direction, seed.

    ``metric`` picks that reported key instead of each task's primary one; runs that did
    not report it are left out. Only the newest corpus version of each task counts unless
    ``all_versions``."""
    finished = [r for r in rows if r["status"] == "finished"]
    records = []
    for row in finished if all_versions else newest_versions(finished):
        if row["status"] != "finished" or not row.get("primary_metric") or trained_nothing(row):
            continue
        key = metric or row["primary_metric"]
        if key not in (row.get("metrics") or {}):
            continue
        value = row["metrics"][key]
        records.append(
            {
                "system": system_of(row),
                "task": task_of(row),
                "metric": key,
                "value": float(value) if value is not None else float("nan"),
                "higher_is_better": metric_facts(row, key).get("higher_is_better"),
                "seed": effective_seed(row),
                "finished_at": row.get("finished_at") or "",
                "row": row,
            }
        )
    columns = ["system", "task", "metric", "value", "higher_is_better", "seed"]
    frame = pd.DataFrame(records, columns=[*columns, "finished_at", "row"])
    # a re-run of the same system, task and seed replaces the older result
    frame = frame.sort_values("finished_at", kind="stable")
    frame = frame.drop_duplicates(["system", "task", "metric", "seed"], keep="last")
    return frame[[*columns, "row"]]


def _direction(group: pd.DataFrame, metric: str) -> bool:
    known = {v for v in group["higher_is_better"] if v is not None and not pd.isna(v)}
    if len(known) != 1:
        raise SpeechbenchError(
            f"runs disagree on (or never recorded) whether higher {metric} is better; "
            "re-run them with this version"
        )
    return bool(known.pop())


def leaderboard_table(
    rows: list[dict[str, Any]], metric: str | None = None, all_versions: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(display table of strings, numeric table of means) indexed by system."""
    frame = results_frame(rows, metric, all_versions)
    if frame.empty and metric is not None:
        reported = sorted({k for r in rows for k in (r.get("metrics") or {})})
        raise ConfigError(
            f"--metric {metric}: no finished run reported it; reported keys: "
            f"{', '.join(reported[:30]) or '(none)'}"
        )
    if frame.empty:
        raise SpeechbenchError(
            "no finished runs in the results store; run `speechbench run ...` first"
        )
    stats = frame.groupby(["system", "task", "metric"])["value"].agg(["mean", "std", "count"])
    stats = stats.reset_index()
    example = {s: g.iloc[-1] for s, g in frame.groupby("system")}  # a run of each system
    systems = sorted(example)
    columns, means, display = [], {}, {}
    for (task, metric_key), group in stats.groupby(["task", "metric"]):
        task_runs = frame[(frame["task"] == task) & (frame["metric"] == metric_key)]
        higher = _direction(task_runs, metric_key)
        column = f"{task} {metric_key} {'↑' if higher else '↓'}"
        columns.append(column)
        by_system = group.set_index("system")
        best = by_system["mean"].max() if higher else by_system["mean"].min()
        task_row = task_runs.iloc[-1]["row"]
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
                fits = applicable(example[system]["row"], task_row)
                display[column][system] = "-" if fits else "n/a"
    shown = pd.DataFrame(display, index=systems)[columns]
    shown.index.name = "system"
    numeric = pd.DataFrame(means, index=systems)[columns]
    numeric.index.name = "system"
    return shown, numeric


def render(
    rows: list[dict[str, Any]], fmt: str, metric: str | None = None, all_versions: bool = False
) -> str:
    if fmt not in FORMATS:
        raise ConfigError(f"unknown leaderboard format {fmt!r}; valid: {', '.join(FORMATS)}")
    shown, numeric = leaderboard_table(rows, metric, all_versions)
    if fmt == "md":
        return shown.to_markdown() + "\n"
    if fmt == "csv":
        return numeric.to_csv()
    html = shown.to_html(escape=True)
    return html.replace("<td>**", "<td><b>").replace("**</td>", "</b></td>")


PROVENANCE_FIELDS = (
    "run_id",
    "system",
    "labels",
    "metric_info",
    "corpora",
    "artefacts",
    "evaluators",
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
    "upstream_params",
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
    for key in ("config", "labels", "metric_info"):
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


def combined_runs(
    include: list[Path] | tuple = (), store: Path | None = None
) -> list[dict[str, Any]]:
    """The runs of each ``include`` file (a committed ``runs.jsonl`` or another store)
    merged with this machine's results store, whose copy of a run wins: the one way the
    leaderboard and the benchmark tables combine committed results with new ones. A store
    that does not exist yet adds nothing (and is not created)."""
    from speechbench import paths
    from speechbench.store import ResultsStore

    store = Path(store) if store is not None else paths.results_db()
    sources = [load_runs(path) for path in include]
    if store.is_file():
        sources.append(ResultsStore(store).runs())
    return merge_runs(*sources)


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
