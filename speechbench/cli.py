"""The ``speechbench`` command line (typer).

User errors (unknown names or keys, bad values, missing corpora, bad audio) print
one line ``error: ...`` and exit with status 2; only bugs show a traceback.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from speechbench import cache, paths, registry
from speechbench.errors import ConfigError, SpeechbenchError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Benchmark speech/audio representations: upstream x downstream x metric.",
)
data_app = typer.Typer(no_args_is_help=True, help="Prepare and inspect corpora.")
cache_app = typer.Typer(no_args_is_help=True, help="Inspect or clear the feature cache.")
app.add_typer(data_app, name="data")
app.add_typer(cache_app, name="cache")
F = TypeVar("F", bound=Callable[..., Any])


def user_errors(fn: F) -> F:
    """Turn a SpeechbenchError into one clear line and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SpeechbenchError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def _table(rows: list[dict[str, Any]]) -> str:
    import pandas as pd

    return pd.DataFrame(rows).to_string(index=False) if rows else "(none)"


@app.command()
@user_errors
def run(
    args: list[str] = typer.Argument(
        None,
        help="KEY=VALUE settings, e.g. upstream=fbank downstream=asr seed=1 downstream.lr=1e-3",
    ),
    force: bool = typer.Option(
        False, "--force", help="run again even if an identical run finished"
    ),
) -> None:
    """Extract features, train the downstream head, evaluate on test, store the run."""
    from speechbench.runner import run as run_one

    result = run_one(args or [], force=force)
    row = result.row
    if result.reused:
        typer.echo(f"already done: run {result.run_id} (use --force to run again)")
    typer.echo(
        f"run {row['run_id']}: upstream={row['upstream']} downstream={row['downstream']} "
        f"corpus={row['corpus']} seed={row['seed']}"
    )
    typer.echo(_table([{"metric": k, "value": round(v, 4)} for k, v in row["metrics"].items()]))
    typer.echo("timings: " + ", ".join(f"{k}={v}" for k, v in row["timings"].items()))


@app.command(context_settings={"allow_interspersed_args": True})
@user_errors
def sweep(
    args: list[str] = typer.Argument(
        None,
        help="KEY=V1,V2 ... e.g. upstream=mfcc,fbank downstream=asr seed=0,1,2 "
        "(downstream.lr=grid picks the learning rate on dev)",
    ),
    address: str = typer.Option(
        None, "--address", help="join the Ray cluster at HOST:PORT (default: a local instance)"
    ),
    num_cpus: int = typer.Option(
        None, "--num-cpus", help="CPUs of the local Ray instance (default: all of this machine)"
    ),
    lr_grid: str = typer.Option(
        None, "--lr-grid", help="learning rates for downstream.lr=grid, e.g. 1e-2,1e-3,1e-4"
    ),
    include: list[Path] = typer.Option(
        None,
        "--include",
        help="runs.jsonl or results.sqlite whose finished runs count as done (repeatable), "
        "e.g. leaderboards/runs.jsonl",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="print what would be skipped or run, and run nothing"
    ),
    grid_path: Path = typer.Option(
        None,
        "--grid",
        help="TOML grid: KEY = [values], per-task [budget] and max_seed_minutes, e.g. "
        "leaderboards/grid.toml",
    ),
) -> None:
    """Run the cross product of KEY=V1,V2 values on Ray; finished cells are skipped."""
    from speechbench import sweep as sweeping

    grid = sweeping.LR_GRID
    if lr_grid is not None:
        try:
            grid = tuple(float(v) for v in lr_grid.split(",") if v.strip())
        except ValueError:
            raise ConfigError(f"--lr-grid {lr_grid!r}: expected numbers like 1e-2,1e-3") from None
        if not grid:
            raise ConfigError("--lr-grid is empty")
    cells, interrupted = sweeping.sweep(
        args or [],
        address=address,
        num_cpus=num_cpus,
        lr_grid=grid,
        include=tuple(include or ()),
        dry_run=dry_run,
        grid_file=grid_path,
    )
    typer.echo(sweeping.cells_table(cells))
    typer.echo(sweeping.cells_summary(cells))
    if interrupted:
        raise typer.Exit(130)
    if any(c.status == "failed" for c in cells):
        raise typer.Exit(1)


def _describe(kind: str, name: str) -> dict[str, Any]:
    obj = registry.get(kind, name)
    if kind == "upstreams":
        ok, why = obj.weights_available()
        return {
            "name": name,
            "level": obj.level,
            "layers": obj.num_layers or "?",
            "dim": obj.dim or "?",
            "frames/s": obj.frame_rate or "-",
            "weights": "yes" if ok else f"no: {why}",
            "description": obj.description,
        }
    if kind == "downstreams":
        return {
            "name": name,
            "corpus": obj.default_corpus,
            "needs": ",".join(obj.requires),
            "reads": ",".join(f"{s}:{i.kind}" for s, i in obj().inputs("test").items()),
            "upstream level": obj.upstream_level,
            "metrics": ",".join(obj.metrics),
            "primary": obj.primary_metric,
            "description": obj.description,
        }
    if kind == "metrics":
        return {
            "name": name,
            "better": "higher" if obj.higher_is_better else "lower",
            "range": f"[{obj.range[0]}, {obj.range[1]}]",
            "level": obj.level,
            "reference": "yes" if obj.needs_reference else "no",
            "definition": obj.definition,
        }
    if kind == "evaluators":
        ok, why = obj.weights_available()
        return {
            "name": name,
            "kind": obj.kind,
            "rate": obj.sample_rate,
            "weights": "yes" if ok else f"no: {why}",
            "description": obj.description,
        }
    corpus = obj()
    return {
        "name": name,
        "version": obj.version,
        "provides": ",".join(obj.provides),
        "streams": ",".join(f"{s}x{c}" if c > 1 else s for s, c in obj.streams.items()),
        "license": obj.license,
        "prepared": "yes" if corpus.is_prepared() else "no",
        "description": obj.description,
    }


@app.command("list")
@user_errors
def list_plugins(
    kind: str = typer.Argument(
        None, help="upstreams | downstreams | metrics | corpora | evaluators"
    ),
) -> None:
    """List registered plugins, one line each, with what each needs and provides."""
    kinds = [kind] if kind else list(registry.KINDS)
    for k in kinds:
        registry._check_kind(k)
        typer.echo(f"== {k}")
        typer.echo(_table([_describe(k, name) for name in registry.names(k)]))


@app.command()
@user_errors
def leaderboard(
    fmt: str = typer.Option("md", "--format", help="md | csv | html"),
    out: Path = typer.Option(
        None,
        "--out",
        help="write leaderboard.{md,csv,html}, runs.jsonl and a static site (index.html)",
    ),
    include: list[Path] = typer.Option(
        None,
        "--include",
        help="also read runs from this results.sqlite or runs.jsonl (repeatable)",
    ),
    metric: str = typer.Option(
        None, "--metric", help="show this metric (e.g. min_dcf, cavg_1s) instead of the primary"
    ),
    all_versions: bool = typer.Option(
        False,
        "--all-versions",
        help="also show runs on older corpus versions (as their own columns)",
    ),
) -> None:
    """System x task table of primary metrics from the results store."""
    from speechbench import leaderboard as lb

    rows = lb.combined_runs(include or [])
    if out is not None:
        if metric is not None:
            raise ConfigError("--out writes the primary-metric leaderboard; drop --metric")
        from speechbench import site

        written = lb.write(rows, out)
        # the statistics site (intervals, significance, overall score) replaces the plain
        # md/csv/html tables; lb.write still writes runs.jsonl
        written += site.write_site(rows, out)
        for path in dict.fromkeys(written):
            typer.echo(f"wrote {path}")
    else:
        typer.echo(lb.render(rows, fmt, metric, all_versions), nl=False)


@app.command()
@user_errors
def runs() -> None:
    """All runs in the results store."""
    from speechbench.store import ResultsStore, display_status

    rows = ResultsStore(paths.results_db()).runs()
    typer.echo(
        _table(
            [
                {
                    "run": r["run_id"],
                    # a `running` row whose process is gone (kill -9) shows as stale
                    "status": display_status(r),
                    "upstream": r["upstream"],
                    "downstream": r["downstream"],
                    "corpus": r["corpus"],
                    "seed": r["seed"],
                    "primary": r["primary_metric"] or "",
                    "value": round(r["metrics"].get(r["primary_metric"], float("nan")), 4)
                    if r["primary_metric"]
                    else "",
                    "finished": r["finished_at"] or "",
                }
                for r in rows
            ]
        )
    )


@app.command()
@user_errors
def show(run_id: str) -> None:
    """Everything stored about one run."""
    from speechbench.store import ResultsStore

    row = ResultsStore(paths.results_db()).get(run_id)
    if row is None:
        raise SpeechbenchError(f"no run {run_id!r}; `speechbench runs` lists them")
    typer.echo(json.dumps(row, indent=2, sort_keys=True))


@data_app.command("prepare")
@user_errors
def data_prepare(name: str, force: bool = typer.Option(False, "--force", help="rebuild")) -> None:
    """Build a corpus into the data folder (restartable; manifest written last)."""
    corpus = registry.get("corpora", name)()
    records = corpus.prepare(force=force)
    typer.echo(f"{name} v{corpus.version}: {len(records)} utterances in {corpus.root}")


@data_app.command("list")
@user_errors
def data_list() -> None:
    """Corpora with hours, utterances, speakers, languages, classes and licence."""
    rows = []
    for name in registry.names("corpora"):
        corpus = registry.get("corpora", name)()
        stats_file = corpus.root / "stats.json"
        stats = (
            json.loads(stats_file.read_text())
            if corpus.is_prepared() and stats_file.exists()
            else {}
        )
        rows.append(
            {
                "name": name,
                "version": corpus.version,
                "prepared": "yes" if stats else "no",
                "hours": stats.get("hours", ""),
                "utts": stats.get("utterances", ""),
                "speakers": stats.get("speakers", ""),
                "languages": len(stats.get("languages", [])) if stats else "",
                "classes": stats.get("classes", ""),
                "license": corpus.license,
            }
        )
    typer.echo(f"data folder: {paths.data_dir()}")
    typer.echo(_table(rows))


@data_app.command("check-leaks")
@user_errors
def data_check_leaks() -> None:
    """Is any source recording in train of one corpus (or in CTAP pretraining) and in
    dev/test of another? Checks the prepared corpora; exit 2 when there is a leak."""
    from speechbench.corpora.leaks import check_corpora_on_disk

    report = check_corpora_on_disk()
    typer.echo(f"data folder: {paths.data_dir()}")
    typer.echo("\n".join(report.lines()) or "(no prepared corpus)")
    if report.leaks:
        raise SpeechbenchError(
            f"{len(report.leaks)} source(s) are in more than one split across corpora "
            "(see LEAK lines); rebuild the corpora listed with the current speechbench"
        )
    typer.echo("no leaks")


@cache_app.command("ls")
@user_errors
def cache_ls() -> None:
    """Feature cache entries (upstream, corpus, split, size)."""
    entries = cache.list_entries()
    typer.echo(f"cache folder: {cache.features_root()}")
    typer.echo(
        _table(
            [
                {
                    "key": e["key"],
                    "upstream": e["upstream"],
                    "corpus": e["corpus"],
                    "version": e["corpus_version"],
                    "split": e["split"],
                    "items": e["items"],
                    "MB": round(e["bytes"] / 1e6, 1),
                    "created": e["created"],
                }
                for e in entries
            ]
        )
    )


@cache_app.command("clear")
@user_errors
def cache_clear(
    upstream: str = typer.Option(None, "--upstream", help="only this upstream"),
) -> None:
    """Delete cached features (all, or one upstream's)."""
    typer.echo(f"removed {cache.clear(upstream)} cache entries")


def _register_plugin_commands() -> None:
    """Commands whose code lives with their feature (metric scoring, CTAP pretraining)."""
    from speechbench.ctap.cli import pretrain_command
    from speechbench.score import score_command

    app.command("score", help=score_command.__doc__)(user_errors(score_command))
    app.command("pretrain", help=pretrain_command.__doc__)(user_errors(pretrain_command))


_register_plugin_commands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
