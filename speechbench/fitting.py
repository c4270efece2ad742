"""Fitters: how a head gets its parameters, behind one small interface.

A task lists its fitters in order (``Downstream.fitters``): the shared gradient loop
(:class:`speechbench.training.GradientFitter`), and/or closed-form fitters such as a
PLDA back-end or a GMM-UBM (:class:`ClosedFormFitter`). Each fitter gets the head, the
task (with its data bound) and a :class:`FitContext` (run folder for checkpoints, seed,
evaluation context) and returns a :class:`TrainResult`; results of several fitters are
merged into the run's training record.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from speechbench.artefacts import EvalContext
    from speechbench.downstreams.base import Downstream

log = logging.getLogger("speechbench.fitting")


@dataclass
class TrainResult:
    best_epoch: int
    best_dev: dict[str, float]
    epochs_run: int
    history: list[dict[str, Any]] = field(default_factory=list)
    stages: list[dict[str, Any]] = field(default_factory=list)

    def merged(self, other: TrainResult) -> TrainResult:
        """The later fitter's dev scores, both fitters' history and stage records."""
        return TrainResult(
            best_epoch=other.best_epoch if other.epochs_run else self.best_epoch,
            best_dev=other.best_dev or self.best_dev,
            epochs_run=self.epochs_run + other.epochs_run,
            history=self.history + other.history,
            stages=self.stages + other.stages,
        )


@dataclass
class FitContext:
    run_dir: Path
    seed: int
    eval_ctx: EvalContext
    corpora: list[str]


class Fitter(ABC):
    name: str = "fitter"

    @abstractmethod
    def fit(self, task: Downstream, head: nn.Module, ctx: FitContext) -> TrainResult:
        """Fit ``head`` (in place) on the task's bound training data."""


def dev_scores(task: Downstream, head: nn.Module, ctx: FitContext, corpus: str) -> dict[str, float]:
    """The task's metrics on one corpus' dev split with the head as it is now."""
    return evaluate_split(task, head, corpus, "dev", ctx.eval_ctx)[0]


class ClosedFormFitter(Fitter):
    """Fits by a function of the task's data, no gradient (a back-end, a GMM), then
    scores dev once so the run records its dev metrics like any other."""

    def __init__(self, name: str, fit: Callable[[nn.Module], None]) -> None:
        self.name = name
        self._fit = fit

    def fit(self, task: Downstream, head: nn.Module, ctx: FitContext) -> TrainResult:
        start = time.perf_counter()
        with torch.no_grad():
            self._fit(head)
        scores = dev_scores(task, head, ctx, ctx.corpora[0])
        entry = {"fitter": self.name, "epoch": 0, **{f"dev_{k}": v for k, v in scores.items()}}
        seconds = round(time.perf_counter() - start, 2)
        log.info("%s fitted in %.1fs: %s", self.name, seconds, entry)
        return TrainResult(
            best_epoch=0,
            best_dev=entry,
            epochs_run=0,
            history=[entry],
            stages=[{"name": self.name, "kind": "closed-form", "seconds": seconds}],
        )


def fit_task(
    task: Downstream,
    data: Any,
    upstream: Any,
    run_dir: Path,
    seed: int = 0,
) -> tuple[nn.Module, TrainResult]:
    """Bind ``task`` to ``data`` (a :class:`speechbench.dataset.TaskData`), build its head
    for ``upstream`` (an ``UpstreamInfo``), run its fitters in order and ``finalize``."""
    from speechbench.artefacts import EvalContext, Sink

    task.bind(data, seed)
    head = task.build_head(upstream)
    ctx = FitContext(Path(run_dir), seed, EvalContext(Sink(None), task.evaluators), data.names)
    result: TrainResult | None = None
    for fitter in task.fitters(upstream):
        fitted = fitter.fit(task, head, ctx)
        result = fitted if result is None else result.merged(fitted)
    if result is None:
        raise TypeError(f"downstream {task.name} declares no fitter")
    head = task.finalize(head)
    head.eval()
    return head, result


def evaluate_split(
    task: Downstream, head: nn.Module, corpus: str, stage: str, eval_ctx: EvalContext
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Metrics and per-record outputs of one corpus' ``stage`` split (dev or test)."""
    from speechbench.dataset import materialized

    opts = task.options
    plans = task.data.batches(task, corpus, stage, stage, opts.batch_size, opts.max_batch_frames)
    head.eval()
    return task.evaluate(head, materialized(plans), stage, eval_ctx)
