"""A sweep's grid written down: ``speechbench sweep --grid leaderboards/grid.toml``.

The committed leaderboard is one grid, and a grid that spans every task needs two rules
a command line cannot say well:

- **Budgets per task** (``[budget]``): a task, or a task on one corpus
  (``"asr@mini-phone"``), runs with the same budget overrides for every upstream
  (epochs, crops: only options its plugin marks ``budget``), so systems are compared on
  equal budgets without changing the task's default for ``speechbench run``.
- **Seeds by cost** (``max_seed_minutes``): the grid's first seed runs everywhere; the
  other seeds run only for cells whose first seed took at most that many minutes (the
  stored run's measured stages: prepare + extract + train + eval), as DCASE asks for
  three trainings where they are affordable.

TOML through the standard library's ``tomllib``; the checks here are what it cannot know
(which keys a grid may hold, which options are budgets).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from speechbench.errors import ConfigError

GRID_KEYS = ("budget", "max_seed_minutes")  # besides KEY = [values] lists of the grid
TIMED_STAGES = ("prepare_s", "extract_s", "train_s", "eval_s")


@dataclass(frozen=True)
class GridFile:
    """What a grid file holds: the ``KEY=V1,V2`` lists, budgets and the seed rule."""

    args: list[str]  # the grid as command-line arguments, e.g. ["upstream=mfcc,fbank"]
    budgets: dict[str, dict[str, str]] = field(default_factory=dict)
    max_seed_minutes: float | None = None


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def load_grid_file(path: Path) -> GridFile:
    """Parse a grid file; a bad file, key or value is one line naming the file and key."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--grid {path}: no such file; give a TOML grid (docs/sweep.md)")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--grid {path}: not valid TOML ({exc})") from None
    args = []
    for key, values in data.items():
        if key in GRID_KEYS:
            continue
        if isinstance(values, dict):
            raise ConfigError(f"{path}: [{key}] is not a grid section; sections are: [budget]")
        values = values if isinstance(values, list) else [values]
        if not values or any(isinstance(v, (list, dict)) for v in values):
            raise ConfigError(f"{path}: {key} must be a value or a list of values")
        args.append(f"{key}=" + ",".join(_value_text(v) for v in values))
    budgets: dict[str, dict[str, str]] = {}
    for task, overrides in (data.get("budget") or {}).items():
        if not isinstance(overrides, dict) or not overrides:
            raise ConfigError(
                f'{path}: budget."{task}" must be a table of overrides, e.g. '
                '{ "downstream.max_epochs" = 4 }'
            )
        budgets[task] = {k: _value_text(v) for k, v in overrides.items()}
    limit = data.get("max_seed_minutes")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, float))):
        raise ConfigError(f"{path}: max_seed_minutes must be a number of minutes, got {limit!r}")
    if limit is not None and limit <= 0:
        raise ConfigError(f"{path}: max_seed_minutes must be > 0, got {limit}")
    return GridFile(args, budgets, None if limit is None else float(limit))


def check_budgets(budgets: dict[str, dict[str, str]], source: str = "--grid") -> None:
    """Every budget names a registered task and only options that task marks ``budget``."""
    from speechbench import registry
    from speechbench.options import budget_keys

    for task, overrides in budgets.items():
        name = task.partition("@")[0]
        cls = registry.get("downstreams", name)
        allowed = budget_keys(cls.Options)
        for key in overrides:
            group, dot, option = key.partition(".")
            if group != "downstream" or not dot or option not in allowed:
                raise ConfigError(
                    f'{source}: budget."{task}" {key}: not a budget option of downstream '
                    f"{name}; budget options: "
                    + ", ".join(f"downstream.{o}" for o in sorted(allowed))
                )


def budget_for(budgets: dict[str, dict[str, str]], task: str, corpus: str) -> dict[str, str]:
    """The overrides of ``task`` on ``corpus``: ``task@corpus`` on top of ``task``."""
    return {**budgets.get(task, {}), **budgets.get(f"{task}@{corpus}", {})}


def run_minutes(row: dict[str, Any]) -> float | None:
    """A finished run's measured cost in minutes (its timed stages), or None if unknown."""
    timings = row.get("timings") or {}
    stages = [timings[k] for k in TIMED_STAGES if isinstance(timings.get(k), (int, float))]
    return sum(stages) / 60.0 if stages else None
