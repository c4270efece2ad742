"""The one training loop every downstream shares (SUPERB-style protocol).

AdamW on the head only (the upstream is frozen: its features come from the cache),
gradient clipping, evaluation on dev after every epoch, early stopping on the
downstream's primary metric (not before ``min_epochs``), best dev state restored at
the end. A checkpoint is written atomically after every epoch, so an interrupted run
resumes where it was.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from speechbench import atomic
from speechbench.corpora.base import Utterance
from speechbench.downstreams.base import Batch, Downstream

log = logging.getLogger("speechbench.training")


def make_batches(
    records: list[Utterance],
    features: dict[str, torch.Tensor],
    targets: dict[str, Any],
    batch_size: int,
    max_batch_frames: int,
    rng: random.Random | None = None,
) -> list[Batch]:
    """Length-sorted batches (bounded padded frames), shuffled as whole batches."""
    order = sorted(records, key=lambda r: features[r.id].shape[1])
    groups: list[list[Utterance]] = []
    current: list[Utterance] = []
    for record in order:
        frames = features[record.id].shape[1]
        if current and (
            len(current) >= batch_size or (len(current) + 1) * frames > max_batch_frames
        ):
            groups.append(current)
            current = []
        current.append(record)
    if current:
        groups.append(current)
    if rng is not None:
        rng.shuffle(groups)
    batches = []
    for group in groups:
        feats = [features[r.id].float() for r in group]  # each L x T x D
        lengths = torch.tensor([f.shape[1] for f in feats])
        padded = torch.zeros(len(feats), feats[0].shape[0], int(lengths.max()), feats[0].shape[2])
        for i, f in enumerate(feats):
            padded[i, :, : f.shape[1]] = f
        batches.append(Batch(padded, lengths, group, [targets[r.id] for r in group]))
    return batches


@dataclass
class TrainResult:
    best_epoch: int
    best_dev: dict[str, float]
    epochs_run: int
    history: list[dict[str, Any]] = field(default_factory=list)


def _is_better(score: float, best: float | None, higher_is_better: bool) -> bool:
    if math.isnan(score):
        return False
    if best is None:
        return True
    return score > best if higher_is_better else score < best


def train_head(
    downstream: Downstream,
    head: nn.Module,
    train: tuple[list[Utterance], dict[str, torch.Tensor]],
    dev: tuple[list[Utterance], dict[str, torch.Tensor]],
    primary_metric: str,
    higher_is_better: bool,
    checkpoint_path: Path,
    seed: int,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    opts = downstream.options
    train_targets = {r.id: downstream.target(r) for r in train[0]}
    dev_targets = {r.id: downstream.target(r) for r in dev[0]}
    dev_batches = make_batches(dev[0], dev[1], dev_targets, opts.batch_size, opts.max_batch_frames)
    optimizer = torch.optim.AdamW(head.parameters(), lr=opts.lr, weight_decay=opts.weight_decay)
    state: dict[str, Any] = {
        "epoch": 0,
        "best": None,
        "best_epoch": 0,
        "bad_epochs": 0,
        "history": [],
    }
    best_head = {k: v.clone() for k, v in head.state_dict().items()}
    if checkpoint_path.exists():
        saved = torch.load(checkpoint_path, weights_only=False)
        head.load_state_dict(saved["head"])
        optimizer.load_state_dict(saved["optimizer"])
        best_head = saved["best_head"]
        state = saved["state"]
        log.info("resumed from %s at epoch %d", checkpoint_path, state["epoch"])
    rng = random.Random(seed)
    for _ in range(state["epoch"]):  # same batch order as an uninterrupted run
        rng.random()
    while state["epoch"] < opts.max_epochs and (
        state["epoch"] < opts.min_epochs or state["bad_epochs"] < opts.patience
    ):
        epoch = state["epoch"] + 1
        torch.manual_seed(seed * 1000 + epoch)
        batches = make_batches(
            train[0],
            train[1],
            train_targets,
            opts.batch_size,
            opts.max_batch_frames,
            random.Random(rng.random()),
        )
        head.train()
        total, count = 0.0, 0
        for batch in tqdm(batches, desc=f"train epoch {epoch}", unit="batch", leave=False):
            loss = downstream.loss(head, batch)
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(head.parameters(), opts.grad_clip)
            optimizer.step()
            total += loss.item() * len(batch.records)
            count += len(batch.records)
        head.eval()
        dev_scores, _ = downstream.evaluate(head, dev_batches)
        score = dev_scores[primary_metric]
        entry = {
            "epoch": epoch,
            "train_loss": total / max(count, 1),
            **{f"dev_{k}": v for k, v in dev_scores.items()},
        }
        state["history"].append(entry)
        if _is_better(score, state["best"], higher_is_better):
            state.update(best=score, best_epoch=epoch, bad_epochs=0)
            best_head = {k: v.clone() for k, v in head.state_dict().items()}
        else:
            state["bad_epochs"] += 1
        state["epoch"] = epoch
        log.info("epoch %d %s", epoch, entry)
        if on_epoch:
            on_epoch(entry)
        payload = {
            "head": head.state_dict(),
            "optimizer": optimizer.state_dict(),
            "best_head": best_head,
            "state": state,
        }
        atomic.write_with(checkpoint_path, lambda tmp, p=payload: torch.save(p, tmp))
    head.load_state_dict(best_head)
    best_dev = next((h for h in state["history"] if h["epoch"] == state["best_epoch"]), {})
    return TrainResult(state["best_epoch"], best_dev, state["epoch"], state["history"])
