"""``speechbench pretrain ctap [key=value ...]``, registered by speechbench/cli.py as
``app.command("pretrain")(pretrain_command)``."""

from __future__ import annotations

from typing import Annotated

import typer

from speechbench.ctap.config import parse_overrides, valid_keys
from speechbench.errors import ConfigError

PRETRAINABLE = ("ctap",)


def pretrain_command(
    model: Annotated[str, typer.Argument(help="model to pretrain: ctap")],
    overrides: Annotated[
        list[str] | None,
        typer.Argument(
            help="key=value settings, e.g. corpus=mini-phone train.max_minutes=30 "
            "model.d_model=256 out_dir=runs/ctap export_dir=upstreams/checkpoints"
        ),
    ] = None,
) -> None:
    """Pretrain a speech representation model here (progress, checkpoints, resume, loss curve)."""
    if model not in PRETRAINABLE:
        raise ConfigError(
            f"unknown model {model!r} to pretrain; valid choices: {', '.join(PRETRAINABLE)}"
        )
    from speechbench.ctap.pretrain import describe, pretrain, run_dir

    config = parse_overrides(list(overrides or []))
    summary = pretrain(config)
    typer.echo(describe({k: summary[k] for k in ("steps", "wall_minutes", "final_eval")}))
    typer.echo(f"run directory: {run_dir(config)}")


__all__ = ["pretrain_command", "valid_keys"]
