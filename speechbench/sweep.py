"""Sweeps: ``speechbench sweep upstream=mfcc,fbank downstream=asr seed=0,1,2`` on Ray.

The grid is the cross product of every ``KEY=V1,V2,...``; each cell is one ordinary
run (``speechbench.runner.run_config``) executed as a Ray task.

- **Ray, not a home-made pool.** A local Ray instance sized to the machine is started
  by default (small object store: it lives in /dev/shm); ``--address HOST:PORT`` joins
  an existing cluster. A task reserves as many CPUs as its run's ``threads`` (1 when
  ``threads=0``) and each run sets its own torch thread count. Workers are reused (a
  fresh process per run cost ~10 s of imports per cell here); before each run the worker
  resets the kernel's peak-RSS mark, so a run's stored peak memory is its own.
- **The driver alone writes the results store.** A worker runs the cell against a
  private in-memory SQLite store with the real schema and sends the finished (or
  failed) row back; the driver upserts it into ``results.sqlite``. SQLite over a
  network file system is unsafe, and on a cluster the workers may not even see the
  driver's disk.
- **Idempotent and resumable.** A cell whose identity (``config_hash``, the same one
  ``run_config`` computes) has a finished row is skipped. A cell that was interrupted
  (Ctrl-C, ``kill -9`` of the sweep) has no row yet but keeps its run folder, so the
  next sweep resumes it from its last epoch checkpoint; a failed cell is stored with
  its error and does not stop the others.
- **Results made elsewhere count** (``--include runs.jsonl``): a cell whose run id (the
  first 12 characters of its ``config_hash``) is a finished run of an included file (a
  committed leaderboard's ``runs.jsonl`` or another machine's ``results.sqlite``) is
  skipped as "finished in FILE". A machine that starts with an empty store can then
  continue a committed grid instead of recomputing it; the included rows are shown in
  the table but not copied into this store (``leaderboard --include`` merges them).
- **Incompatible pairings are skipped with a reason**: an upstream whose level the
  task cannot read, a nested option the cell's upstream/downstream does not have, or
  a pairing the runner rejects before any work (e.g. a corpus without the fields the
  task needs). They are never run and never stored.
- ``downstream.lr=grid``: each (upstream, task, options) group first trains one seed
  for every value of a small log grid (``LR_GRID``) and scores it on **dev only**; the
  best dev value is recorded in ``<results>/lr_search/choices.json`` and only that
  learning rate's runs are scored on test.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import socket
import sqlite3
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from speechbench import atomic, paths, registry
from speechbench.config import RunSettings, resolve
from speechbench.errors import ConfigError, SpeechbenchError
from speechbench.store import COLUMNS, SCHEMA, ResultsStore

LR_GRID = (1e-2, 3e-3, 1e-3, 3e-4, 1e-4)  # log grid for downstream.lr=grid
OBJECT_STORE_BYTES = 256 * 1024**2  # records are small; /dev/shm is shared with the runs
GRID_WORD = "grid"


# ---------------------------------------------------------------- the grid


@dataclass
class Cell:
    """One point of the grid: its CLI overrides and what the sweep did with it."""

    args: list[str]
    swept: dict[str, str]  # only the keys that take several values, for the table
    status: str = "pending"  # skipped | incompatible | done | failed | pending
    reason: str = ""
    run_id: str = ""
    config_hash: str = ""
    row: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    lr_search: dict[str, Any] | None = None  # downstream.lr=grid: what the search chose


def parse_grid(args: list[str]) -> dict[str, list[str]]:
    """``["upstream=mfcc,fbank", "seed=0,1"]`` -> ``{"upstream": ["mfcc", "fbank"], ...}``;
    ``corpus=a+b,c`` is two cells: joint training on a and b, then c alone."""
    if not args:
        raise ConfigError("empty grid: give KEY=V1,V2 ... (e.g. upstream=mfcc,fbank seed=0,1)")
    grid: dict[str, list[str]] = {}
    for arg in args:
        key, sep, values = arg.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"argument {arg!r} is not KEY=V1,V2,... (e.g. seed=0,1,2)")
        if key in grid:
            raise ConfigError(f"key {key!r} given twice; list all its values once: {key}=a,b")
        items = [v.strip() for v in values.split(",") if v.strip()]
        if key == "corpus":  # a joint-training cell names its corpora with '+'
            items = [",".join(c.strip() for c in v.split("+") if c.strip()) for v in items]
        if not items:
            raise ConfigError(f"empty grid: {key}= has no values, so the product is empty")
        grid[key] = list(dict.fromkeys(items))  # a repeated value is one cell
    return grid


def split_task(value: str) -> tuple[str, str | None]:
    """``asr@mini-phone`` -> (``asr``, ``mini-phone``): a downstream value may name the
    corpus of its cells, so one grid holds ASR on two corpora next to tasks that use
    their default corpus; ``+`` joins corpora for joint training, as in ``corpus=``."""
    name, at, corpus = value.partition("@")
    if not at:
        return name, None
    corpora = ",".join(c.strip() for c in corpus.split("+") if c.strip())
    if not corpora:
        raise ConfigError(f"downstream={value!r}: name a corpus after '@' (e.g. asr@mini-phone)")
    return name.strip(), corpora


def _option_names(kind: str, name: str) -> set[str]:
    return {f.name for f in fields(registry.get(kind, name).Options)}


def _top_level(grid: dict[str, list[str]], key: str) -> list[str]:
    names = grid.get(key) or [str(getattr(RunSettings(), key))]
    return list(dict.fromkeys(split_task(n)[0] for n in names)) if key == "downstream" else names


def check_keys(grid: dict[str, list[str]]) -> None:
    """Every key must exist somewhere in the grid, every plugin name must be registered."""
    top = {f.name for f in fields(RunSettings)}
    if "corpus" in grid and any(split_task(v)[1] for v in grid.get("downstream", [])):
        raise ConfigError(
            "the corpus is given twice: use corpus=... or downstream=TASK@CORPUS, not both"
        )
    for key in grid:
        if "." not in key and key not in top:
            raise ConfigError(f"unknown config key {key!r}; valid keys: {', '.join(sorted(top))}")
    for kind, key in (("upstreams", "upstream"), ("downstreams", "downstream")):
        for name in _top_level(grid, key):
            registry.get(kind, name)  # unknown name: one line naming the valid ones
    for key in grid:
        if "." not in key:
            continue
        group, _, option = key.partition(".")
        if group not in ("upstream", "downstream"):
            raise ConfigError(
                f"unknown config key {key!r}; nested keys start with upstream. or downstream."
            )
        kind = f"{group}s"
        names = _top_level(grid, group)
        if not any(option in _option_names(kind, name) for name in names):
            valid = sorted({o for name in names for o in _option_names(kind, name)})
            raise ConfigError(
                f"unknown config key {key!r} for {group} {', '.join(names)}; valid keys: "
                + ", ".join(f"{group}.{o}" for o in valid)
            )


def expand(
    grid: dict[str, list[str]], budgets: dict[str, dict[str, str]] | None = None
) -> list[Cell]:
    """The cross product, in the order the keys and values were given; a cell of a task
    with a ``budgets`` entry (``grid_file``) gets its overrides, unless the grid itself
    gives that key."""
    check_keys(grid)
    keys = list(grid)
    cells = []
    for values in itertools.product(*(grid[k] for k in keys)):
        args = []
        for key, value in zip(keys, values, strict=True):
            if key == "downstream" and (pair := split_task(value))[1]:
                args += [f"downstream={pair[0]}", f"corpus={pair[1]}"]
            else:
                args.append(f"{key}={value}")
        if budgets:
            given = {a.partition("=")[0] for a in args}
            extra = _task_budget(args, budgets)
            args += [f"{k}={v}" for k, v in extra.items() if k not in given]
        swept = {k: v for k, v in zip(keys, values, strict=True) if len(grid[k]) > 1}
        cells.append(Cell(args, swept))
    return cells


def _task_budget(args: list[str], budgets: dict[str, dict[str, str]]) -> dict[str, str]:
    from speechbench.grid_file import budget_for

    task = _value(args, "downstream") or RunSettings.downstream
    corpus = _value(args, "corpus") or registry.get("downstreams", task).default_corpus
    return budget_for(budgets, task, corpus)


def _value(args: list[str], key: str) -> str | None:
    for arg in args:
        k, _, v = arg.partition("=")
        if k == key:
            return v
    return None


def incompatibility(cell: Cell) -> str:
    """Why this cell cannot run (without touching any data), or '' when it can."""
    upstream = _value(cell.args, "upstream") or RunSettings.upstream
    downstream = _value(cell.args, "downstream") or RunSettings.downstream
    for arg in cell.args:
        key = arg.partition("=")[0]
        group, dot, option = key.partition(".")
        if not dot:
            continue
        name = upstream if group == "upstream" else downstream
        if option not in _option_names(f"{group}s", name):
            return f"{group} {name} has no option {option}"
    from speechbench.runner import check_compatible, corpora_of

    config = resolve(_replace(cell.args, "downstream.lr", "0.001") if _is_grid(cell) else cell.args)
    down_cls = registry.get("downstreams", downstream)
    task = down_cls(config.downstream_options)
    try:  # the runner's own rule, before any corpus is prepared
        for corpus in corpora_of(config, down_cls):
            check_compatible(registry.get("upstreams", upstream), task, corpus)
    except ConfigError as exc:
        return str(exc)
    return ""


def _is_grid(cell: Cell) -> bool:
    return _value(cell.args, "downstream.lr") == GRID_WORD


def _identity(args: list[str]) -> tuple[Any, str]:
    """(resolved config, config_hash) exactly as ``runner.run_config`` computes them."""
    from speechbench.runner import corpora_of, run_identity

    config = resolve(args)
    downstream_cls = registry.get("downstreams", config.settings.downstream)
    upstream_cls = registry.get("upstreams", config.settings.upstream)
    corpora = corpora_of(config, downstream_cls)
    return config, config.hash(run_identity(config, upstream_cls, corpora))


# ---------------------------------------------------------------- worker side


class WorkerStore(ResultsStore):
    """A worker's private store: in-memory SQLite with the real schema, so the runner
    writes exactly the row it would write to ``results.sqlite``; the sweep's driver
    receives that row and is the only one that writes the real store."""

    def __init__(self) -> None:  # noqa: D107 - no file, so no parent __init__
        self.path = Path(":memory:")
        self.read_only = False
        self._conn = sqlite3.connect(":memory:", check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        self._conn.executescript(SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with self._conn:
            yield self._conn

    def find_finished(self, config_hash: str) -> dict[str, Any] | None:
        return None  # the driver decided this cell must run

    def only_row(self) -> dict[str, Any] | None:
        rows = self.runs()
        return rows[-1] if rows else None


def reset_peak_memory() -> None:
    """Make ``ru_maxrss`` (the runner's peak memory) count from now in a reused worker:
    free what the last run left, then reset the kernel's peak-RSS mark (Linux >= 4.0)."""
    import gc

    gc.collect()
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # not Linux: the peak then covers the worker's earlier runs too


def _prepare_worker(args: list[str], env: dict[str, str]) -> None:
    """Per-run state of a reused worker: environment, thread count, peak memory."""
    os.environ.update(env)
    import torch

    threads = _value(args, "threads")
    torch.set_num_threads(_cpus_of(args) if not threads or threads == "0" else int(threads))
    reset_peak_memory()


def execute_cell(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run one cell (inside a Ray worker); never raises for a run's own failure."""
    _prepare_worker(args, env)
    from speechbench.runner import run_config

    store = WorkerStore()
    start = time.perf_counter()
    try:
        config = resolve(args)
        result = run_config(config, store=store)
        return {"outcome": "done", "row": result.row, "seconds": time.perf_counter() - start}
    except ConfigError as exc:  # rejected before any work: an incompatible pairing
        return {"outcome": "incompatible", "reason": str(exc)}
    except Exception as exc:  # noqa: BLE001 - recorded with the cell, the grid goes on
        row = store.only_row()
        return {
            "outcome": "failed",
            "row": row,
            "reason": f"{type(exc).__name__}: {exc}",
            "seconds": time.perf_counter() - start,
        }


def dev_score(args: list[str], env: dict[str, str], workdir: str) -> dict[str, Any]:
    """Train one learning-rate candidate and score it on dev only (never on test).

    The runner's own steps up to fitting (``runner.run_config`` without evaluation, the test
    split left out); the epoch checkpoint lives in ``workdir`` so an interrupted search
    resumes."""
    _prepare_worker(args, env)
    from speechbench.dataset import CorpusData, TaskData, require_streams, split_records
    from speechbench.downstreams.base import UpstreamInfo
    from speechbench.fitting import fit_task
    from speechbench.metric_keys import describe_metrics
    from speechbench.runner import (
        build_upstream,
        check_compatible,
        check_records,
        corpora_of,
        extract_all,
        seed_everything,
    )

    try:
        config = resolve(args)
        settings = config.settings
        downstream_cls = registry.get("downstreams", settings.downstream)
        upstream_cls = registry.get("upstreams", settings.upstream)
        corpora = corpora_of(config, downstream_cls)
        task = downstream_cls(config.downstream_options)
        for corpus in corpora:
            check_compatible(upstream_cls, task, corpus)
        seed_everything(settings.seed)
        data = TaskData({})
        for corpus in corpora:
            records = corpus.prepare()
            check_records(task, corpus, records)
            splits = split_records(records)
            splits["test"] = []  # never extracted, never scored: the choice sees dev only
            data.corpora[corpus.name] = CorpusData(corpus, splits)
        require_streams(data, task)
        upstream = build_upstream(config, upstream_cls, data, corpora[0], task)
        extract_all(config, upstream, task, data)
        Path(workdir).mkdir(parents=True, exist_ok=True)
        _, result = fit_task(task, data, UpstreamInfo.of(upstream), Path(workdir), settings.seed)
        main_records = [
            r for split in data.corpora[corpora[0].name].records.values() for r in split
        ]
        primary = task.primary_metric_for(main_records)
        value = result.best_dev.get(f"dev_{primary}", result.best_dev.get(primary))
        higher = describe_metrics({primary: 0.0}).get(primary, {}).get("higher_is_better")
        return {
            "outcome": "done",
            "metric": primary,
            "higher_is_better": bool(higher),
            "dev": None if value is None else float(value),
            "best_epoch": result.best_epoch,
        }
    except ConfigError as exc:
        return {"outcome": "incompatible", "reason": str(exc)}
    except Exception as exc:  # noqa: BLE001
        return {"outcome": "failed", "reason": f"{type(exc).__name__}: {exc}"}


# ---------------------------------------------------------------- driver side


def _forwarded_env() -> dict[str, str]:
    """Where a local worker finds data, cache and results (a cluster's nodes keep their own)."""
    keep = ("SPEECHBENCH_", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    return {k: v for k, v in os.environ.items() if k.startswith(keep)}


def check_address(address: str, timeout: float = 5.0) -> None:
    """One clear line, fast, when ``--address`` cannot be reached (Ray itself retries long)."""
    host, sep, port = address.rpartition(":")
    if address == "auto":
        return
    if address.startswith("ray://"):
        host, sep, port = address[len("ray://") :].rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(f"--address {address!r}: expected HOST:PORT (e.g. 10.0.0.5:6379)")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise SpeechbenchError(
            f"--address {address}: no Ray cluster reachable there ({exc.strerror or exc})"
        ) from None


def start_ray(address: str | None, num_cpus: int | None = None) -> dict[str, Any]:
    """Join ``address`` or start a local instance sized to this machine."""
    import ray

    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": "WARNING"}
    if address:
        check_address(address)
        os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "error")  # no retry spam, one line
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, RuntimeError, ray.exceptions.RpcError) as exc:
            first = next((line for line in str(exc).splitlines() if line.strip()), "")
            raise SpeechbenchError(
                f"--address {address}: could not join the Ray cluster ({type(exc).__name__}: "
                f"{first[:200]}); same Ray version and authentication token on both sides?"
            ) from None
    else:
        cpus = num_cpus or os.cpu_count() or 1
        store = int(os.environ.get("SPEECHBENCH_RAY_OBJECT_STORE", OBJECT_STORE_BYTES))
        # address="local": always a new instance, never a `ray start` cluster found on this host
        ray.init(address="local", num_cpus=cpus, object_store_memory=store, **quiet)
    return ray.cluster_resources()


def _cpus_of(args: list[str]) -> int:
    threads = _value(args, "threads")
    return max(1, int(threads)) if threads and threads.lstrip("-").isdigit() else 1


@dataclass
class Progress:
    """One bar for the whole grid, with done / running / failed / skipped counts."""

    total: int
    counts: dict[str, int] = field(
        default_factory=lambda: {"done": 0, "running": 0, "failed": 0, "skipped": 0}
    )

    def __post_init__(self) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=self.total, unit="cell", desc="sweep", file=sys.stderr, leave=True)

    def refresh(self) -> None:
        self.bar.set_postfix_str(" ".join(f"{k}={v}" for k, v in self.counts.items()))

    def start(self) -> None:
        self.counts["running"] += 1
        self.refresh()

    def finish(self, status: str, was_running: bool = True) -> None:
        if was_running:
            self.counts["running"] -= 1
        key = {"done": "done", "failed": "failed"}.get(status, "skipped")
        self.counts[key] += 1
        self.refresh()
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def _group_key(config: Any) -> str:
    """What one learning-rate choice is shared by: everything but lr, seed and threads."""
    payload = config.as_dict()
    payload.pop("seed", None)
    payload.pop("threads", None)
    payload["downstream"] = {k: v for k, v in payload["downstream"].items() if k != "lr"}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _replace(args: list[str], key: str, value: str) -> list[str]:
    return [a for a in args if a.partition("=")[0] != key] + [f"{key}={value}"]


class Sweep:
    def __init__(
        self,
        args: list[str],
        address: str | None = None,
        num_cpus: int | None = None,
        lr_grid: tuple[float, ...] = LR_GRID,
        include: tuple[str | Path, ...] = (),
        budgets: dict[str, dict[str, str]] | None = None,
        max_seed_minutes: float | None = None,
    ) -> None:
        from speechbench.grid_file import check_budgets

        self.grid = parse_grid(args)
        check_budgets(budgets or {})
        self.included = included_runs(include)  # bad files fail now, before any work
        self.cells = expand(self.grid, budgets)
        self.max_seed_minutes = max_seed_minutes
        self.address = address
        if address:
            check_address(address)  # one line now, not after a progress bar
        self.num_cpus = num_cpus
        self.lr_grid = tuple(lr_grid)
        self.store = ResultsStore(paths.results_db())
        self.lr_dir = paths.results_dir() / "lr_search"
        self.choices_file = self.lr_dir / "choices.json"
        for cell in self.cells:  # bad values fail now, before Ray starts
            if (reason := incompatibility(cell)) and not cell.reason:
                cell.status, cell.reason = "incompatible", reason
                continue
            probe = (
                _replace(cell.args, "downstream.lr", "0.001")
                if self._wants_grid(cell)
                else cell.args
            )
            _, cell.config_hash = _identity(probe)
        seeds = [int(s) for s in self.grid.get("seed", ["0"]) if s.lstrip("-").isdigit()]
        self.first_seed = min(seeds, default=0)  # a bad seed value failed in resolve above

    @staticmethod
    def _wants_grid(cell: Cell) -> bool:
        return _value(cell.args, "downstream.lr") == GRID_WORD

    # ------------------------------------------------------------ running

    def plan(self) -> list[Cell]:
        """What a sweep would do, without Ray or any training: finished (here or in an
        included file) and incompatible cells are marked, the rest stay ``pending``
        with the run id they would get (``--dry-run``)."""
        for cell in self.cells:
            if cell.status == "pending" and not self._already_done(cell):
                cell.run_id = cell.config_hash[:12]
                cell.reason = "lr chosen on dev first" if self._wants_grid(cell) else "to run"
                if self._seed_rule(cell) == "wait":
                    cell.reason = (
                        f"runs if seed {self.first_seed} takes <= {self.max_seed_minutes:g} min"
                    )
        return self.cells

    # ------------------------------------------------------------ seeds by cost

    def _seed_rule(self, cell: Cell) -> str:
        """``max_seed_minutes``: a later seed runs only when the cell's first seed finished
        within the limit. Returns ``run``, ``wait`` (the first seed has not finished yet) or
        ``skip`` (the cell is marked skipped, with the first seed's minutes as reason)."""
        from speechbench.grid_file import run_minutes

        seed = _value(cell.args, "seed")
        if self.max_seed_minutes is None or seed is None or int(seed) == self.first_seed:
            return "run"
        if self._wants_grid(cell):
            return "run"  # the lr search trains the first seed itself
        _, first_hash = _identity(_replace(cell.args, "seed", str(self.first_seed)))
        first, _ = self._finished(first_hash)
        if not first:
            return "wait"
        minutes = run_minutes(first)
        if minutes is not None and minutes <= self.max_seed_minutes:
            return "run"
        took = "an unknown time" if minutes is None else f"{minutes:.1f} min"
        cell.status = "skipped"
        cell.reason = (
            f"seed {self.first_seed} took {took} > {self.max_seed_minutes:g}: one seed "
            "(grid's max_seed_minutes)"
        )
        return "skip"

    def run(self) -> list[Cell]:
        progress = Progress(len(self.cells))
        self.ray_started = False
        self.interrupted = False
        todo = []
        for cell in self.cells:
            if cell.status == "incompatible":
                progress.finish("skipped", was_running=False)
            elif not self._wants_grid(cell) and self._already_done(cell):
                progress.finish("skipped", was_running=False)
            else:
                todo.append(cell)
        try:
            grid_cells = [c for c in todo if self._wants_grid(c)]
            if grid_cells:
                self._choose_learning_rates(grid_cells, progress)
            waiting = self._run_ready(todo, progress)
            if waiting:  # later seeds whose first seed ran just now
                self._run_ready(waiting, progress, last=True)
        except KeyboardInterrupt:
            # finished cells are stored; running ones keep their checkpoints for next time
            self.interrupted = True
            for cell in self.cells:
                if cell.status == "pending":
                    cell.status, cell.reason = "interrupted", "resumes on the next identical sweep"
        finally:
            progress.close()
            if self.ray_started:
                import ray

                ray.shutdown()
        return self.cells

    def _run_ready(self, cells: list[Cell], progress: Progress, last: bool = False) -> list[Cell]:
        """Run the pending cells that may run now; returns those that wait for their first
        seed (none when ``last``: a first seed that did not finish skips its later seeds)."""
        ready, waiting = [], []
        for cell in cells:
            if cell.status != "pending":
                continue
            if self._already_done(cell):
                progress.finish("skipped", was_running=False)
                continue
            rule = self._seed_rule(cell)
            if rule == "wait" and last:
                cell.status = "skipped"
                cell.reason = f"seed {self.first_seed} did not finish: later seeds not run"
                rule = "skip"
            if rule == "skip":
                progress.finish("skipped", was_running=False)
            elif rule == "wait":
                waiting.append(cell)
            else:
                ready.append(cell)
        self._run_cells(ready, progress)
        return waiting

    def _ensure_ray(self) -> None:
        """Ray starts only when something has to run: a fully done grid never waits for it."""
        import ray

        if self.ray_started or getattr(self, "capacity", None):
            return
        if ray.is_initialized():  # a caller's instance (e.g. a test's): use it, leave it up
            resources = ray.cluster_resources()
        else:
            resources = start_ray(self.address, self.num_cpus)
            self.ray_started = True
        self.capacity = max(1, int(resources.get("CPU", 1)))

    def _refresh_capacity(self) -> None:
        """A cluster may grow or shrink while the sweep runs (at most every 10 s)."""
        import ray

        if time.monotonic() - getattr(self, "_capacity_read", 0.0) < 10.0:
            return
        self._capacity_read = time.monotonic()
        try:
            self.capacity = max(1, int(ray.cluster_resources().get("CPU", self.capacity)))
        except Exception:  # noqa: BLE001 - keep the last known size
            pass

    def _finished(self, config_hash: str) -> tuple[dict[str, Any] | None, str]:
        """The finished row of a config here or in an ``--include`` file, and where."""
        if done := self.store.find_finished(config_hash):
            return done, "finished before"
        if found := self.included.get(config_hash[:12]):
            return found[0], f"finished in {found[1]}"
        return None, ""

    def _already_done(self, cell: Cell) -> bool:
        if self._wants_grid(cell):
            return False
        done, reason = self._finished(cell.config_hash)
        if done:
            cell.status, cell.run_id, cell.row = "skipped", done["run_id"], done
            cell.reason = reason
        return bool(done)

    def _submit_all(self, jobs: list[tuple[Any, tuple, int]], on_done, progress: Progress) -> None:
        """Keep at most as many tasks in flight as the cluster has CPUs for them (so the
        bar's "running" is what runs); Ray schedules and runs them."""
        import ray

        if not jobs:
            return
        self._ensure_ray()
        queue = list(jobs)
        pending: dict[Any, Any] = {}
        used = 0
        while queue or pending:
            while queue and (not pending or used + queue[0][2] <= self.capacity):
                remote, payload, cpus = queue.pop(0)
                ref = remote.options(num_cpus=cpus).remote(*payload[1:])
                pending[ref] = (payload[0], cpus)
                used += cpus
                progress.start()
            finished, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            self._refresh_capacity()
            for ref in finished:
                key, cpus = pending.pop(ref)
                used -= cpus
                try:
                    result = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - a worker died (OOM, signal)
                    result = {"outcome": "failed", "reason": f"{type(exc).__name__}: {exc}"}
                on_done(key, result)

    def _run_cells(self, cells: list[Cell], progress: Progress) -> None:
        import ray

        task = ray.remote(max_retries=0)(execute_cell)
        env = {} if self.address else _forwarded_env()
        by_id = {id(c): c for c in cells}
        jobs = [(task, (id(c), c.args, env), _cpus_of(c.args)) for c in cells]

        def done(key: int, result: dict[str, Any]) -> None:
            cell = by_id[key]
            cell.seconds = result.get("seconds", 0.0)
            cell.reason = result.get("reason", "")
            row = result.get("row")
            if result["outcome"] == "incompatible":
                cell.status = "incompatible"
            else:
                cell.status = result["outcome"]
                if not row and cell.status == "failed":
                    row = self._failure_row(cell, cell.reason)  # the worker died: no row came
                if row and cell.lr_search:
                    row = label_lr_search(row, cell.lr_search)
                if row:
                    self._write(row)
                    cell.run_id, cell.row = row["run_id"], row
            progress.finish(cell.status)

        self._submit_all(jobs, done, progress)

    def _failure_row(self, cell: Cell, reason: str) -> dict[str, Any]:
        """What the store keeps of a cell whose worker died before sending its row."""
        from speechbench.store import now

        config, config_hash = _identity(cell.args)
        settings = config.settings
        corpus = settings.corpus or registry.get("downstreams", settings.downstream).default_corpus
        return {
            "run_id": config_hash[:12],
            "config_hash": config_hash,
            "status": "failed",
            "upstream": settings.upstream,
            "downstream": settings.downstream,
            "corpus": corpus,
            "seed": settings.seed,
            "config": {**config.as_dict(), "corpus": corpus},
            "error": reason.splitlines()[0][:500] if reason else "worker died",
            "finished_at": now(),
        }

    def _write(self, row: dict[str, Any]) -> None:
        """The driver is the only writer of the results store."""
        values = {k: row[k] for k in COLUMNS if k in row and k != "run_id"}
        self.store.upsert(row["run_id"], **values)

    # ------------------------------------------------------------ downstream.lr=grid

    def _load_choices(self) -> dict[str, Any]:
        if self.choices_file.exists():
            return json.loads(self.choices_file.read_text())
        return {}

    def _choose_learning_rates(self, cells: list[Cell], progress: Progress) -> None:
        import ray

        choices = self._load_choices()
        groups: dict[str, list[Cell]] = {}
        probe_args: dict[str, list[str]] = {}
        for cell in cells:
            config = resolve(_replace(cell.args, "downstream.lr", "0.001"))
            key = _group_key(config)
            groups.setdefault(key, []).append(cell)
            first_seed = min(int(_value(c.args, "seed") or 0) for c in groups[key])
            probe_args[key] = _replace(
                _replace(cell.args, "downstream.lr", "0.001"), "seed", str(first_seed)
            )
        jobs = []
        task = ray.remote(max_retries=0)(dev_score)
        env = {} if self.address else _forwarded_env()
        for key, args in probe_args.items():
            entry = choices.setdefault(
                key,
                {
                    "upstream": _value(args, "upstream") or RunSettings.upstream,
                    "downstream": _value(args, "downstream") or RunSettings.downstream,
                    "args": [a for a in args if not a.startswith(("downstream.lr=", "seed="))],
                    "seed": int(_value(args, "seed") or 0),
                    "candidates": {},
                },
            )
            for lr in self.lr_grid:
                if f"{lr:g}" in entry["candidates"]:
                    continue
                cand = _replace(args, "downstream.lr", f"{lr:g}")
                workdir = str(self.lr_dir / key / f"lr{lr:g}")
                jobs.append((task, ((key, f"{lr:g}"), cand, env, workdir), _cpus_of(cand)))
        bar_total = progress.bar.total
        progress.bar.total = bar_total + len(jobs)  # the search's trainings count on the bar
        progress.refresh()

        def done(key: tuple[str, str], result: dict[str, Any]) -> None:
            group, lr = key
            entry = choices[group]
            if result["outcome"] == "done":
                entry["candidates"][lr] = result["dev"]
                entry["metric"], entry["higher_is_better"] = (
                    result["metric"],
                    result["higher_is_better"],
                )
                progress.finish("done")
            else:
                entry.setdefault("errors", {})[lr] = result.get("reason", "")
                progress.finish("failed" if result["outcome"] == "failed" else "skipped")
            atomic.write_json(self.choices_file, choices)

        self._submit_all(jobs, done, progress)
        for key, members in groups.items():
            entry = choices[key]
            scored = {
                lr: v
                for lr, v in entry["candidates"].items()
                if v is not None and not math.isnan(v)
            }
            if not scored:
                why = "; ".join(sorted(set(entry.get("errors", {}).values()))) or "no dev score"
                for cell in members:
                    cell.status, cell.reason = "failed", f"lr search: {why}"
                    progress.finish("failed", was_running=False)
                continue
            sign = 1 if entry.get("higher_is_better") else -1
            order = [f"{lr:g}" for lr in self.lr_grid]
            ranked = sorted(scored, key=lambda lr: order.index(lr) if lr in order else len(order))
            # the best dev score; a tie goes to the value listed first in the grid
            chosen = max(ranked, key=lambda lr: sign * scored[lr])
            if entry.get("chosen") in scored and set(order) <= set(scored):
                chosen = entry["chosen"]  # chosen once: a later sweep keeps the choice
            entry["chosen"] = chosen
            search = {
                "chosen": float(chosen),
                "grid": [float(lr) for lr in order],
                "dev": {lr: scored[lr] for lr in ranked},
                "metric": entry.get("metric"),
                "seed": entry.get("seed"),
            }
            for cell in members:
                cell.args = _replace(cell.args, "downstream.lr", chosen)
                cell.swept = {**cell.swept, "downstream.lr": f"grid->{chosen}"}
                cell.lr_search = search
                _, cell.config_hash = _identity(cell.args)
        atomic.write_json(self.choices_file, choices)


def included_runs(paths_: tuple[str | Path, ...]) -> dict[str, tuple[dict[str, Any], str]]:
    """Run id -> (finished row, file name) of every ``--include`` file; a later file's
    copy of a run wins, as in ``leaderboard.merge_runs``."""
    from speechbench.leaderboard import load_runs

    found: dict[str, tuple[dict[str, Any], str]] = {}
    for path in paths_:
        for row in load_runs(Path(path)):
            if row.get("status", "finished") == "finished":
                found[row["run_id"]] = (row, Path(path).name)
    return found


def label_lr_search(row: dict[str, Any], search: dict[str, Any]) -> dict[str, Any]:
    """A cell whose learning rate the dev search chose is the system ``downstream.lr=grid``
    (one leaderboard row per upstream across tasks, as in SUPERB), not ``lr=<value>``; the
    chosen value and the dev scores behind it stay in the run's labels."""
    from speechbench.runner import system_label

    labels = dict(row.get("labels") or {})
    changed = [
        (g, k, v) for g, k, v in labels.get("changed_options", []) if (g, k) != ("downstream", "lr")
    ]
    changed = sorted(
        [*changed, ("downstream", "lr", GRID_WORD)], key=lambda c: (c[0] != "upstream", c[1])
    )
    labels["changed_options"] = [list(c) for c in changed]
    labels["lr_search"] = search
    return {**row, "labels": labels, "system": system_label(row["upstream"], changed)}


# ---------------------------------------------------------------- the table


def cells_table(cells: list[Cell]) -> str:
    import pandas as pd

    rows = []
    for cell in cells:
        metrics = cell.row.get("metrics") or {}
        primary = cell.row.get("primary_metric") or ""
        value = metrics.get(primary)
        rows.append(
            {
                **{k: v for k, v in cell.swept.items()},
                "status": cell.status,
                "run": cell.run_id or "-",
                "metric": primary or "-",
                "value": f"{value:.4f}" if isinstance(value, float) else "-",
                "note": cell.reason[:90],
            }
        )
    return pd.DataFrame(rows).to_string(index=False) if rows else "(no cells)"


def cells_summary(cells: list[Cell]) -> str:
    """One line of counts by status, e.g. ``12 cells: 9 skipped, 3 pending``."""
    counts: dict[str, int] = {}
    for cell in cells:
        counts[cell.status] = counts.get(cell.status, 0) + 1
    return f"{len(cells)} cells: " + ", ".join(f"{n} {status}" for status, n in counts.items())


def sweep(
    args: list[str],
    address: str | None = None,
    num_cpus: int | None = None,
    lr_grid: tuple[float, ...] = LR_GRID,
    include: tuple[str | Path, ...] = (),
    dry_run: bool = False,
    grid_file: Path | None = None,
) -> tuple[list[Cell], bool]:
    """Run the grid (or only plan it); returns (cells, interrupted). A ``grid_file``
    (``grid_file.load_grid_file``) gives the grid's keys, budgets and seed rule; a key
    given in ``args`` too replaces the file's list."""
    budgets, max_seed_minutes = None, None
    if grid_file is not None:
        from speechbench.grid_file import load_grid_file

        spec = load_grid_file(grid_file)
        given = {a.partition("=")[0].strip() for a in args}
        args = [a for a in spec.args if a.partition("=")[0] not in given] + list(args)
        budgets, max_seed_minutes = spec.budgets, spec.max_seed_minutes
    runner = Sweep(args, address, num_cpus, lr_grid, include, budgets, max_seed_minutes)
    if dry_run:
        return runner.plan(), False
    cells = runner.run()
    return cells, runner.interrupted
