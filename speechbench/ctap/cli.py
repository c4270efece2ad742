"""``speechbench pretrain ctap [key=value ...]``, registered by speechbench/cli.py as
``app.command("pretrain")(pretrain_command)``."""

from __future__ import annotations

from typing import Annotated

import typer

from speechbench.ctap.config import parse_overrides, valid_keys
from speechbench.errors import ConfigError

PRETRAINABLE = ("ctap", "hubert", "wavlm")


def pretrain_command(
    model: Annotated[str, typer.Argument(help="model to pretrain: ctap | hubert | wavlm")],
    overrides: Annotated[
        list[str] | None,
        typer.Argument(
            help="key=value settings, e.g. corpus=mini-phone train.max_minutes=30 "
            "model.d_model=256 out_dir=runs/ctap export_dir=upstreams/checkpoints"
        ),
    ] = None,
) -> None:
    """Pretrain a speech representation model here (progress, checkpoints, resume, loss curve):
    CTAP (contrastive token-acoustic), HuBERT or WavLM (masked prediction)."""
    if model not in PRETRAINABLE:
        raise ConfigError(
            f"unknown model {model!r} to pretrain; valid choices: {', '.join(PRETRAINABLE)}"
        )
    from speechbench.ctap.pretrain import describe

    if model == "ctap":
        from speechbench.ctap.pretrain import pretrain, run_dir

        config = parse_overrides(list(overrides or []))
        keys = ("steps", "wall_minutes", "final_eval")
    else:  # masked prediction: speechbench.pretraining
        from speechbench.pretraining.config import MaskedPretrainConfig
        from speechbench.pretraining.masked import pretrain, run_dir

        base = MaskedPretrainConfig(model_name=model)
        config = parse_overrides(list(overrides or []), base=base, cls=MaskedPretrainConfig)
        if config.model_name != model:
            raise ConfigError(f"model_name={config.model_name}: this command pretrains {model}")
        keys = ("steps", f"{config.train.clock}_minutes", "parameters", "final_eval")
    summary = pretrain(config)
    typer.echo(describe({k: summary.get(k) for k in keys}))
    typer.echo(f"run directory: {run_dir(config)}")


__all__ = ["pretrain_command", "valid_keys"]
