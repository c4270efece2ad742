"""The one pretraining step loop (CTAP, HuBERT, WavLM): budget, schedule, logging, evals,
checkpoints.

A pretraining run owns its model, data and losses; this loop owns what they share: it
stops at ``max_steps`` or when ``max_minutes`` run out on the chosen clock (counted
across resumes), applies warm-up + cosine learning rates on whichever budget ends first,
clips gradients, refuses a non-finite loss, averages every loss term over
``log_every`` steps into the history, and calls the run's ``evaluate`` and
``checkpoint`` every ``eval_every`` / ``checkpoint_every`` steps.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from speechbench.errors import ConfigError


@dataclass
class Progress:
    """What a checkpoint keeps of the loop, and resumes from."""

    step: int = 0
    elapsed: float = 0.0  # seconds on the budget clock, across resumes
    history: list[dict[str, float]] = field(default_factory=list)
    evals: list[dict[str, float]] = field(default_factory=list)


def budget_clock(name: str) -> Callable[[], float]:
    """The clock ``train.max_minutes`` is counted on (seconds)."""
    if name == "wall":
        return time.monotonic
    if name == "cpu":
        return time.process_time
    raise ConfigError(f"train.clock must be 'wall' or 'cpu', not {name!r}")


def lr_factor(step: int, warmup: int, progress: float) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to 10 % of the peak.

    ``progress`` in [0, 1] is the larger of steps/max_steps and minutes/max_minutes, so
    the schedule completes whichever budget runs out first (a slow, shared machine still
    ends with a small learning rate)."""
    if step < warmup:
        return (step + 1) / max(warmup, 1)
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, max(0.0, progress))))


def train_steps(
    progress: Progress,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    train: Any,  # a TrainConfig: max_steps, max_minutes, clock, lr, warmup_steps, ...
    epoch: Callable[[], Iterable[Any]],
    loss_terms: Callable[[Any], dict[str, torch.Tensor]],
    evaluate: Callable[[], None],
    checkpoint: Callable[[], None],
    desc: str,
    postfix: tuple[str, ...] = (),
    extra: Callable[[], dict[str, float]] | None = None,
) -> None:
    """Run optimiser steps until a budget runs out, then evaluate the final step.

    ``epoch()`` yields one pass of batches (called again when it ends); ``loss_terms``
    maps a batch to named losses with the optimised one under ``"total"``; ``extra``
    adds logged values (e.g. a learned temperature) to each history record."""
    budget = train.max_minutes * 60.0

    def set_lr() -> None:
        done = max(progress.step / max(train.max_steps, 1), progress.elapsed / max(budget, 1e-9))
        for group in optimizer.param_groups:
            group["lr"] = train.lr * lr_factor(progress.step, train.warmup_steps, done)

    def exhausted() -> bool:
        return progress.step >= train.max_steps or progress.elapsed >= budget

    set_lr()
    model.train()
    if progress.step == 0 and not progress.evals:
        evaluate()
    clock = budget_clock(train.clock)
    started = clock() - progress.elapsed
    running: dict[str, float] = {}
    seen = 0
    bar = tqdm(total=train.max_steps, initial=progress.step, desc=desc, unit="step")
    while not exhausted():
        for batch in epoch():
            if exhausted():
                break
            terms = loss_terms(batch)
            total = float(terms["total"].detach())
            if not math.isfinite(total):
                raise ConfigError(
                    f"{desc} diverged at step {progress.step} (loss {total}); lower train.lr "
                    "and start again with resume=false"
                )
            optimizer.zero_grad(set_to_none=True)
            terms["total"].backward()
            nn.utils.clip_grad_norm_(model.parameters(), train.grad_clip)
            optimizer.step()
            progress.step += 1
            progress.elapsed = clock() - started
            set_lr()
            for key, value in terms.items():
                running[key] = running.get(key, 0.0) + float(value.detach())
            seen += 1
            bar.update(1)
            step = progress.step
            if step % train.log_every == 0 or step == train.max_steps:
                record = {key: value / seen for key, value in running.items()}
                record.update(extra() if extra else {})
                progress.history.append(
                    {"step": float(step), "lr": optimizer.param_groups[0]["lr"], **record}
                )
                bar.set_postfix({k: f"{v:.3f}" for k, v in record.items() if k in postfix})
                running, seen = {}, 0
            if step % train.eval_every == 0:
                evaluate()
            if step % train.checkpoint_every == 0:
                checkpoint()
    bar.close()
    if not progress.evals or progress.evals[-1]["step"] != progress.step:
        evaluate()
