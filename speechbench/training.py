"""The one gradient training loop every task shares (SUPERB-style protocol), as a fitter.

Per stage of the task's schedule (``Downstream.schedule``: one stage by default; e.g.
joint training over several corpora, then fine-tuning on one): the task's optimiser
(AdamW on the head by default) and optional scheduler, gradient clipping, a dev
evaluation after every epoch on the task's *selection* metric (cheap; "loss" = mean dev
loss, over every corpus of a joint stage unless the stage names ``select_on``), early
stopping (not before ``min_epochs``), best dev state restored at the end of
the stage. A checkpoint is written atomically after every epoch and marked done at the
end of a stage, so an interrupted run resumes in the stage and epoch where it was.
Checkpoints load with ``weights_only=True``; an unreadable one is moved aside with one
log line and its stage starts again.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from speechbench import atomic
from speechbench.dataset import materialized
from speechbench.downstreams.base import Batch, Downstream, StageSpec
from speechbench.fitting import FitContext, Fitter, TrainResult, dev_scores
from speechbench.options import check_options

log = logging.getLogger("speechbench.training")
LOSS = "loss"  # selection metric meaning: mean loss on dev, lower is better

LossFn = Callable[[nn.Module, Batch], torch.Tensor]


def _is_better(score: float, best: float | None, higher_is_better: bool) -> bool:
    if math.isnan(score):
        return False
    if best is None:
        return True
    return score > best if higher_is_better else score < best


def load_checkpoint(path: Path) -> dict[str, Any] | None:
    """A checkpoint's payload, or None when absent; an unreadable (truncated, foreign)
    file is moved aside with one warning so the stage restarts instead of failing."""
    if not path.exists():
        return None
    try:
        return torch.load(path, weights_only=True)
    except Exception as exc:  # truncated zip, pickle of a foreign object, ...
        aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
        path.replace(aside)
        log.warning(
            "checkpoint %s is unreadable (%s); moved to %s, stage restarts", path, exc, aside
        )
        return None


def selection_direction(metric: str) -> bool:
    """higher_is_better of a selection metric."""
    if metric == LOSS:
        return False
    from speechbench.metrics.base import get_metric

    return get_metric(metric).higher_is_better


def mean_loss(loss: LossFn, head: nn.Module, plans) -> float:
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in materialized(plans):
            total += float(loss(head, batch)) * len(batch)
            count += len(batch)
    return total / max(count, 1)


class GradientFitter(Fitter):
    name = "gradient"

    def __init__(self, loss: LossFn, on_epoch: Callable[[dict[str, Any]], None] | None = None):
        self.loss = loss
        self.on_epoch = on_epoch

    def fit(self, task: Downstream, head: nn.Module, ctx: FitContext) -> TrainResult:
        stages = task.schedule(ctx.corpora)
        result: TrainResult | None = None
        for stage in stages:
            path = (
                ctx.run_dir / "checkpoint.pt"
                if len(stages) == 1
                else ctx.run_dir / f"checkpoint-{stage.name}.pt"
            )
            stage_result = self._stage(task, head, ctx, stage, path)
            result = stage_result if result is None else result.merged(stage_result)
        assert result is not None
        return result

    def _stage(
        self, task: Downstream, head: nn.Module, ctx: FitContext, stage: StageSpec, path: Path
    ) -> TrainResult:
        opts = dataclasses.replace(task.options, **stage.overrides)
        check_options(opts, "downstream.")
        data = task.data
        select_on = stage.select_on or stage.corpora[0]
        metric = task.selection_metric_for(data.records("train", select_on))
        higher = selection_direction(metric)
        optimizer = task.configure_optimizer(head, opts)
        scheduler = task.configure_scheduler(optimizer, opts)
        state: dict[str, Any] = {
            "epoch": 0,
            "best": None,
            "best_epoch": 0,
            "bad_epochs": 0,
            "history": [],
            "done": False,
        }
        best_head = {k: v.clone() for k, v in head.state_dict().items()}
        saved = load_checkpoint(path)
        if saved is not None:
            head.load_state_dict(saved["head"])
            optimizer.load_state_dict(saved["optimizer"])
            if scheduler is not None and saved.get("scheduler") is not None:
                scheduler.load_state_dict(saved["scheduler"])
            best_head, state = saved["best_head"], saved["state"]
            log.info("stage %s: resumed from %s at epoch %d", stage.name, path, state["epoch"])
        rng = random.Random(ctx.seed)
        for _ in range(state["epoch"]):  # same batch order as an uninterrupted run
            rng.random()
        start = time.perf_counter()
        while not state["done"] and (
            state["epoch"] < opts.max_epochs
            and (state["epoch"] < opts.min_epochs or state["bad_epochs"] < opts.patience)
        ):
            epoch = state["epoch"] + 1
            torch.manual_seed(ctx.seed * 1000 + epoch)
            epoch_rng = random.Random(rng.random())
            plans = [
                plan
                for corpus in stage.corpora
                for plan in data.batches(
                    task,
                    corpus,
                    "train",
                    "train",
                    opts.batch_size,
                    opts.max_batch_frames,
                    random.Random(epoch_rng.random()) if len(stage.corpora) > 1 else epoch_rng,
                )
            ]
            if len(stage.corpora) > 1:  # per-corpus batches, interleaved
                epoch_rng.shuffle(plans)
            head.train()
            total, count = 0.0, 0
            desc = f"{stage.name} epoch {epoch}"
            for batch in tqdm(materialized(plans), total=len(plans), desc=desc, leave=False):
                loss = self.loss(head, batch)
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(head.parameters(), opts.grad_clip)
                optimizer.step()
                total += loss.item() * len(batch)
                count += len(batch)
            head.eval()
            if metric == LOSS:  # a joint stage without select_on: its corpora's dev, pooled
                dev_plans = [
                    plan
                    for corpus in ((stage.select_on,) if stage.select_on else stage.corpora)
                    for plan in data.batches(
                        task, corpus, "dev", "dev", opts.batch_size, opts.max_batch_frames
                    )
                ]
                scores = {LOSS: mean_loss(self.loss, head, dev_plans)}
            else:
                scores = dev_scores(task, head, ctx, select_on)
            score = scores[metric]
            entry = {
                "stage": stage.name,
                "epoch": epoch,
                "train_loss": total / max(count, 1),
                "lr": optimizer.param_groups[0]["lr"],
                **{f"dev_{k}": v for k, v in scores.items()},
            }
            state["history"].append(entry)
            if _is_better(score, state["best"], higher):
                state.update(best=score, best_epoch=epoch, bad_epochs=0)
                best_head = {k: v.clone() for k, v in head.state_dict().items()}
            else:
                state["bad_epochs"] += 1
            if scheduler is not None:
                if _takes_metric(scheduler):  # it minimises: flip a higher-is-better score
                    scheduler.step(-score if higher else score)
                else:
                    scheduler.step()
            state["epoch"] = epoch
            log.info("epoch %d %s", epoch, entry)
            if self.on_epoch:
                self.on_epoch(entry)
            self._save(path, head, optimizer, scheduler, best_head, state)
        head.load_state_dict(best_head)
        if not state["done"]:
            state["done"] = True
            self._save(path, head, optimizer, scheduler, best_head, state)
        best_dev = next((h for h in state["history"] if h["epoch"] == state["best_epoch"]), {})
        record = {
            "name": stage.name,
            "kind": "gradient",
            "corpora": list(stage.corpora),
            "selection_metric": metric,
            "best_epoch": state["best_epoch"],
            "epochs_run": state["epoch"],
            "seconds": round(time.perf_counter() - start, 2),
        }
        return TrainResult(
            state["best_epoch"], best_dev, state["epoch"], state["history"], [record]
        )

    @staticmethod
    def _save(path, head, optimizer, scheduler, best_head, state) -> None:
        payload = {
            "head": head.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "best_head": best_head,
            "state": state,
        }
        atomic.write_with(path, lambda tmp: torch.save(payload, tmp))


def _takes_metric(scheduler: Any) -> bool:
    """ReduceLROnPlateau-style schedulers step on the (lower-is-better) dev score."""
    return isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
