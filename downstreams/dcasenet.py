"""DCASENet (Jung et al., "DCASENet: an integrated pretrained deep neural network for
detecting and classifying acoustic scenes and events", ICASSP 2021): one CRNN trained
jointly on ASC, audio tagging and SED from three different corpora, then fine-tuned per
task (Table 2's structure).

**Shape.** The paper's network is a CRNN: convolution blocks with batch normalisation
on log-mel input, then a bidirectional GRU, then task-specific layers. Fig. 1's three
ways of attaching the tasks (``downstream.arch``):

- ``v1``: SED first: CNN -> BiGRU -> an SED layer (frame-level); TAG and ASC are read
  in parallel from the pooled SED layer.
- ``v2``: ASC after the CNN blocks (pooled CNN output); the events (SED frame-level and
  TAG pooled) after the BiGRU.
- ``v3``: task-specific layers whose outputs are concatenated back into the main path:
  an ASC layer on the CNN output is concatenated to the BiGRU input; a TAG layer on the
  BiGRU output is concatenated to the SED layer's input.

**Scaled to 2 CPU cores** (same shape, smaller): 3 conv blocks (3x3 conv, BN, ReLU,
average pooling; ``channels`` 16/32/64 instead of the paper's much wider blocks), time
pooled once by 2 (25 frames/s inside; SED outputs are repeated back to the upstream's
frame rate), frequency reduced 4x per block (the first conv strides 2 in frequency),
one BiGRU layer of ``gru`` = 64 units per direction, task layers of 64 units; 0.15 M
parameters. Input: any frame-level
upstream (``mel128`` is the paper's input; its rows are "from scratch").

**Training.** ``downstream.tasks`` (any subset of asc,tag,sed) selects the tasks; each
run corpus serves the selected tasks whose labels it carries (the ``mini-dcase-*``
views: one task each; the whole ``mini-dcase``: all three on the same clips). One task
is a single-task baseline (one stage). Several tasks: a ``joint`` stage over per-corpus
batches (each batch adds the losses of its corpus' tasks), then, with
``downstream.finetune=true``, one ``finetune-TASK`` stage per task on its own corpus at
``finetune_lr``, each starting from the joint network (the head keeps a copy per task,
so fine-tuning one task does not move the others). Test metrics are reported for the
fine-tuned networks (``accuracy``, ``lwlrap``, ``segment_er``...) and for the joint
network before fine-tuning (``accuracy_joint``...), per corpus (``@corpus``). Every
stage selects its epoch on the mean dev loss of its corpora. Mixup (Zhang et al. 2018)
of input features and targets within a batch is on by default (``downstream.mixup``).
SED post-processing (median filter, per-class thresholds) is tuned on dev after
training for each reported network, as in the ``sed`` downstream.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from speechbench.downstreams.base import (
    Batch,
    GradientTrained,
    StageSpec,
    TrainOptions,
    UpstreamInfo,
    WeightedLayerSum,
    lengths_mask,
)
from speechbench.downstreams.scenes import (
    DEFAULT_POST,
    LABEL_KEY,
    VIEW_CORPUS,
    SedPost,
    SedPostprocess,
    _unknown,
    checked_events,
    class_set,
    event_priors,
    frame_targets,
    has_labels,
    masked_bce,
    mean_max_pool,
    require_labels,
    score_asc,
    score_tag,
    sed_scores,
    trivial_sed_scores,
)
from torch import nn

from speechbench.corpora.base import Utterance
from speechbench.errors import ConfigError, CorpusError
from speechbench.fitting import Fitter
from speechbench.options import option

TASKS = ("asc", "tag", "sed")
ARCHS = ("v1", "v2", "v3")
JOINT = "joint"


@dataclass
class DCASENetOptions(TrainOptions):
    arch: str = option("v3", choices=ARCHS)
    # comma-separated subset of asc,tag,sed
    tasks: str = "asc,tag,sed"
    mixup: bool = True
    mixup_alpha: float = option(0.2, low=0.0, low_open=True, high=10.0)
    finetune: bool = True
    finetune_lr: float = option(2e-4, low=0.0, low_open=True, high=10.0)
    finetune_epochs: int = option(4, low=1, budget=True)
    channels: int = option(16, low=1, high=256)
    gru: int = option(64, low=1, high=1024)
    task_dim: int = option(64, low=1, high=1024)
    dropout: float = option(0.2, low=0.0, high=0.95)
    bootstrap: int = option(200, low=0, budget=True)
    lr: float = 1e-3
    max_epochs: int = 12  # ~45-60 s per joint epoch over the three views on 1 thread
    patience: int = 4


def selected_tasks(spec: str) -> tuple[str, ...]:
    tasks = tuple(t.strip() for t in spec.split(",") if t.strip())
    bad = [t for t in tasks if t not in TASKS]
    if not tasks or bad or len(set(tasks)) != len(tasks):
        raise ConfigError(
            f"bad value {spec!r} for downstream.tasks: a comma-separated subset of "
            f"{','.join(TASKS)} without repeats"
        )
    return tuple(t for t in TASKS if t in tasks)


# ---------------------------------------------------------------- the network
class ConvBlocks(nn.Module):
    """B x T x D -> B x T/2 x F: 3 conv blocks (3x3 conv, BN, ReLU, avg pool, dropout)."""

    # (time, frequency) pooling per block; the first conv also strides 2 in frequency
    # (3.4x cheaper than convolving all 128 bands at full resolution, same output grid)
    POOLS = ((2, 2), (1, 4), (1, 4))
    STRIDES = ((1, 2), (1, 1), (1, 1))

    def __init__(self, dim: int, channels: int, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 1
        for k, (pool, stride) in enumerate(zip(self.POOLS, self.STRIDES, strict=True)):
            c_out = channels * 2**k
            layers += [
                nn.Conv2d(c_in, c_out, 3, padding=1, stride=stride),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
                nn.AvgPool2d(pool, ceil_mode=True),
                nn.Dropout(dropout),
            ]
            c_in = c_out
        self.net = nn.Sequential(*layers)
        freq = dim
        for (_, f), (_, step) in zip(self.POOLS, self.STRIDES, strict=True):
            freq = math.ceil(math.ceil(freq / step) / f)
        self.out_dim = c_in * freq

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.net(x.unsqueeze(1))  # B x C x T' x F'
        return y.permute(0, 2, 1, 3).flatten(2)


def _gru(x: torch.Tensor, lengths: torch.Tensor, gru: nn.GRU) -> torch.Tensor:
    packed = nn.utils.rnn.pack_padded_sequence(
        x, lengths.cpu().clamp(1, x.shape[1]), batch_first=True, enforce_sorted=False
    )
    out, _ = gru(packed)
    return nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])[0]


class DCASENetCore(nn.Module):
    """One CRNN with the task outputs of ``arch``; forward gives every task's logits:
    asc B x C, tag B x C, sed B x T x C (at the input frame rate)."""

    def __init__(
        self, dim: int, num_layers: int, classes: dict[str, int], opts: DCASENetOptions
    ) -> None:
        super().__init__()
        self.arch = opts.arch
        self.layer_sum = WeightedLayerSum(num_layers)
        self.norm = nn.BatchNorm1d(dim)
        self.cnn = ConvBlocks(dim, opts.channels, opts.dropout)
        c, g, h = self.cnn.out_dim, 2 * opts.gru, opts.task_dim
        n = {t: max(classes.get(t, 1), 1) for t in TASKS}
        drop = nn.Dropout(opts.dropout)
        if self.arch == "v1":
            self.gru = nn.GRU(c, opts.gru, batch_first=True, bidirectional=True)
            self.sed_layer = nn.Sequential(nn.Linear(g, h), nn.ReLU(), drop)
            self.sed_out = nn.Linear(h, n["sed"])
            self.tag_out = nn.Linear(2 * h, n["tag"])
            self.asc_out = nn.Linear(2 * h, n["asc"])
        elif self.arch == "v2":
            self.asc_out = nn.Sequential(drop, nn.Linear(2 * c, n["asc"]))
            self.gru = nn.GRU(c, opts.gru, batch_first=True, bidirectional=True)
            self.sed_out = nn.Linear(g, n["sed"])
            self.tag_out = nn.Sequential(drop, nn.Linear(2 * g, n["tag"]))
        else:  # v3
            self.asc_layer = nn.Sequential(nn.Linear(c, h), nn.ReLU(), drop)
            self.asc_out = nn.Linear(2 * h, n["asc"])
            self.gru = nn.GRU(c + h, opts.gru, batch_first=True, bidirectional=True)
            self.tag_layer = nn.Sequential(nn.Linear(g, h), nn.ReLU(), drop)
            self.tag_out = nn.Linear(2 * h, n["tag"])
            self.sed_layer = nn.Sequential(nn.Linear(g + h, h), nn.ReLU(), drop)
            self.sed_out = nn.Linear(h, n["sed"])

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        frames = features.shape[2]
        mask = lengths_mask(lengths, frames).unsqueeze(-1)
        x = self.layer_sum(features) * mask
        x = self.norm(x.transpose(1, 2)).transpose(1, 2) * mask
        c = self.cnn(x)  # B x T/2 x F
        inner = ((lengths + 1) // 2).clamp(1, c.shape[1])
        c = c * lengths_mask(inner, c.shape[1]).unsqueeze(-1)
        out: dict[str, torch.Tensor] = {}
        if self.arch == "v1":
            s = self.sed_layer(_gru(c, inner, self.gru))
            out["sed"] = self.sed_out(s)
            pooled = mean_max_pool(s, inner)
            out["tag"], out["asc"] = self.tag_out(pooled), self.asc_out(pooled)
        elif self.arch == "v2":
            out["asc"] = self.asc_out(mean_max_pool(c, inner))
            r = _gru(c, inner, self.gru)
            out["sed"] = self.sed_out(r)
            out["tag"] = self.tag_out(mean_max_pool(r, inner))
        else:
            a = self.asc_layer(c)
            out["asc"] = self.asc_out(mean_max_pool(a, inner))
            r = _gru(torch.cat([c, a], dim=-1), inner, self.gru)
            t = self.tag_layer(r)
            out["tag"] = self.tag_out(mean_max_pool(t, inner))
            out["sed"] = self.sed_out(self.sed_layer(torch.cat([r, t], dim=-1)))
        # back to the upstream's frame rate: each inner frame covers two input frames
        out["sed"] = out["sed"].repeat_interleave(2, dim=1)[:, :frames]
        return out


class DCASENetHead(nn.Module):
    """The joint network and, for fine-tuning, one copy per task (started from the joint
    weights when its stage begins). ``active`` names the network being trained."""

    def __init__(self, core: DCASENetCore, finetuned: Sequence[str]) -> None:
        super().__init__()
        self.joint = core
        self.finetuned = nn.ModuleDict({t: copy.deepcopy(core) for t in finetuned})
        self.layer_sum = core.layer_sum
        self.active = JOINT

    def net(self, name: str) -> DCASENetCore:
        return self.joint if name == JOINT else self.finetuned[name]


# ---------------------------------------------------------------- the task
class DCASENet(GradientTrained):
    name = "dcasenet"
    description = "DCASENet CRNN (v1/v2/v3), joint ASC+TAG+SED over 3 corpora, then fine-tuned"
    Options = DCASENetOptions
    default_corpus = ",".join(VIEW_CORPUS[t] for t in TASKS)
    upstream_level = "frame"
    metrics = (
        "accuracy",
        "uar",
        "lwlrap",
        "map",
        "segment_er",
        "segment_f1",
        "event_f1",
        "psds1",
        "psds1_st0",
    )
    primary_metric = "accuracy"
    selection_metric = "loss"

    def __init__(self, options: DCASENetOptions | None = None) -> None:
        super().__init__(options)
        self.tasks = selected_tasks(self.options.tasks)
        self.tasks_of: dict[str, list[str]] = {}  # corpus -> tasks it serves
        self.corpus_of: dict[str, str] = {}  # task -> corpus
        self.classes: dict[str, list[str]] = {}
        self.frame_rate = 0.0
        self.priors = np.zeros(0)
        self.post: dict[str, SedPost] = {}
        self._stages: list[StageSpec] = []
        self._stage_calls = 0

    # ---- data
    def setup(self, train: list[Utterance]) -> None:
        for name in self.data.names:
            every = [r for s in ("train", "dev", "test") for r in self.data.records(s, name)]
            served = [t for t in self.tasks if every and has_labels(every[0], t)]
            if not served:
                keys = ", ".join(f"labels.{LABEL_KEY[t]}" for t in self.tasks)
                raise CorpusError(
                    f"corpus {name} carries none of {keys} that downstream.tasks="
                    f"{','.join(self.tasks)} needs; run with corpus="
                    f"{','.join(VIEW_CORPUS[t] for t in self.tasks)}"
                )
            for task in served:
                require_labels(name, every, task, self.name)
                if task in self.corpus_of:
                    raise ConfigError(
                        f"corpora {self.corpus_of[task]} and {name} both carry "
                        f"labels.{LABEL_KEY[task]}; give one corpus per task"
                    )
                self.corpus_of[task] = name
            self.tasks_of[name] = served
        missing = [t for t in self.tasks if t not in self.corpus_of]
        if missing:
            raise CorpusError(
                f"downstream.tasks={','.join(self.tasks)} includes {','.join(missing)} but no "
                f"corpus of the run has its labels; add corpus="
                f"{','.join(VIEW_CORPUS[t] for t in missing)}"
            )
        for task, corpus in self.corpus_of.items():
            self.classes[task] = class_set(self.data.records("train", corpus), task)
        if "sed" in self.tasks:
            for split in ("train", "dev", "test"):
                for record in self.data.records(split, self.corpus_of["sed"]):
                    checked_events(record, self.classes["sed"])
        self.index = {t: {c: i for i, c in enumerate(v)} for t, v in self.classes.items()}

    @property
    def sed_classes(self) -> list[str]:
        return self.classes["sed"]

    @property
    def finetuned_tasks(self) -> tuple[str, ...]:
        return self.tasks if (self.options.finetune and len(self.tasks) > 1) else ()

    def primary_metric_for(self, records: list[Utterance]) -> str:
        first = next(t for t in self.tasks if records and has_labels(records[0], t))
        return {"asc": "accuracy", "tag": "lwlrap", "sed": "segment_er"}[first]

    def target(self, record: Utterance) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for task in self.tasks:
            if not has_labels(record, task) or task not in self.classes:
                continue
            if task == "asc":
                scene = str(record.labels["scene"])
                _unknown(record, "asc", [scene], self.classes["asc"])
                out[task] = self.index["asc"][scene]
            elif task == "tag":
                tags = [str(t) for t in record.labels["tags"]]
                _unknown(record, "tag", tags, self.classes["tag"])
                out[task] = [self.index["tag"][t] for t in tags]
            else:
                out[task] = checked_events(record, self.classes["sed"])
        return out

    def collate(self, targets: list[dict[str, Any]], frames: dict[str, torch.Tensor]):
        batch: dict[str, torch.Tensor] = {}
        lengths = frames["main"].tolist()
        for task in targets[0]:
            if task == "asc":
                batch[task] = F.one_hot(
                    torch.tensor([t[task] for t in targets]), len(self.classes["asc"])
                ).float()
            elif task == "tag":
                hot = torch.zeros(len(targets), len(self.classes["tag"]))
                for i, t in enumerate(targets):
                    hot[i, t[task]] = 1.0
                batch[task] = hot
            else:
                longest = max(lengths)
                batch[task] = torch.stack(
                    [
                        F.pad(
                            frame_targets(t[task], n, self.frame_rate, self.index["sed"]),
                            (0, 0, 0, longest - n),
                        )
                        for t, n in zip(targets, lengths, strict=True)
                    ]
                )
        return batch

    # ---- model and schedule
    def build_head(self, upstream: UpstreamInfo) -> nn.Module:
        self.frame_rate = float(upstream.frame_rate)
        if "sed" in self.tasks:
            self.priors = event_priors(
                self.data.records("train", self.corpus_of["sed"]), self.classes["sed"]
            )
        sizes = {t: len(v) for t, v in self.classes.items()}
        core = DCASENetCore(upstream.dim, upstream.num_layers, sizes, self.options)
        return DCASENetHead(core, self.finetuned_tasks)

    def fitters(self, upstream: UpstreamInfo) -> list[Fitter]:
        fitters = super().fitters(upstream)
        if "sed" in self.tasks:
            fitters.append(SedPostprocess(("", JOINT) if "sed" in self.finetuned_tasks else ("",)))
        return fitters

    def schedule(self, corpora: Sequence[str]) -> list[StageSpec]:
        if len(self.tasks) == 1:
            stages = [StageSpec("train", tuple(corpora))]
        else:
            stages = [StageSpec(JOINT, tuple(corpora))]
            for task in self.finetuned_tasks:
                corpus = self.corpus_of[task]
                stages.append(
                    StageSpec(
                        f"finetune-{task}",
                        (corpus,),
                        select_on=corpus,
                        overrides={
                            "lr": self.options.finetune_lr,
                            "max_epochs": self.options.finetune_epochs,
                            "min_epochs": 0,
                        },
                    )
                )
        self._stages, self._stage_calls = stages, 0
        return stages

    def configure_optimizer(self, head: nn.Module, options: Any) -> torch.optim.Optimizer:
        """Called once per stage, in schedule order (also for stages a resumed run skips):
        a fine-tuning stage starts its task's copy from the joint network and trains it."""
        stage = self._stages[min(self._stage_calls, len(self._stages) - 1)].name
        self._stage_calls += 1
        task = stage.removeprefix("finetune-") if stage.startswith("finetune-") else JOINT
        if task != JOINT:
            head.finetuned[task].load_state_dict(head.joint.state_dict())
        head.active = task
        params = [p for p in head.net(task).parameters() if p.requires_grad]
        return torch.optim.AdamW(params, lr=options.lr, weight_decay=options.weight_decay)

    # ---- loss
    def loss(self, head: nn.Module, batch: Batch) -> torch.Tensor:
        features, lengths = batch.features["main"], batch.lengths["main"]
        targets = dict(batch.targets)
        if head.training and self.options.mixup and len(batch) > 1:
            lam = float(
                torch.distributions.Beta(self.options.mixup_alpha, self.options.mixup_alpha)
                .sample()
                .clamp(0.0, 1.0)
            )
            perm = torch.randperm(len(batch))
            features = lam * features + (1 - lam) * features[perm]
            lengths = torch.maximum(lengths, lengths[perm])
            targets = {t: lam * v + (1 - lam) * v[perm] for t, v in targets.items()}
        out = head.net(head.active)(features, lengths)
        total = features.new_zeros(())
        for task in self.tasks_of[batch.corpus]:
            if head.active != JOINT and task != head.active:
                continue  # a fine-tuning stage trains its own task only
            if task == "asc":
                total = (
                    total
                    + torch.sum(-targets[task] * F.log_softmax(out[task], dim=1), dim=1).mean()
                )
            elif task == "tag":
                total = total + F.binary_cross_entropy_with_logits(out[task], targets[task])
            else:
                total = total + masked_bce(out[task], targets[task], lengths)
        return total

    # ---- prediction and scoring
    def _networks(self, task: str) -> list[tuple[str, str]]:
        """(metric qualifier, network) pairs reported for a task."""
        if task in self.finetuned_tasks:
            return [("", task), (JOINT, JOINT)]
        return [("", JOINT)]

    def predict(self, head: nn.Module, batch: Batch) -> list[dict[str, Any]]:
        lengths = batch.lengths["main"].tolist()
        found: list[dict[str, Any]] = [{} for _ in batch.records]
        for task in self.tasks_of[batch.corpus]:
            for qualifier, network in self._networks(task):
                out = head.net(network)(batch.features["main"], batch.lengths["main"])[task]
                key = f"{task}{'_' + qualifier if qualifier else ''}"
                if task == "asc":
                    values = torch.softmax(out, dim=1).numpy()
                elif task == "tag":
                    values = torch.sigmoid(out).numpy()
                else:
                    probs = torch.sigmoid(out).numpy()
                    values = [p[:n] for p, n in zip(probs, lengths, strict=True)]
                for item, value in zip(found, values, strict=True):
                    item[key] = value
        return found

    def evaluate(self, head: nn.Module, batches: Iterable[Batch], stage, ctx):
        predictions: list[dict[str, Any]] = []
        records: list[Utterance] = []
        corpus = ""
        with torch.no_grad():
            for batch in batches:
                corpus = batch.corpus
                predictions.extend(self.predict(head, batch))
                records.extend(batch.records)
        metrics = self._score(predictions, records, stage, corpus) if records else {}
        outputs = [
            {"id": r.id, **self._output(p, r)} for r, p in zip(records, predictions, strict=True)
        ]
        return metrics, outputs

    def score(self, predictions, records, stage):
        corpus = next(n for n in self.data.names if records[0] in self.data.records(
            records[0].split, n))  # fmt: skip
        return self._score(predictions, records, stage, corpus)

    def _score(self, predictions, records, stage, corpus: str) -> dict[str, float]:
        result: dict[str, float] = {}
        boot = self.options.bootstrap
        for task in self.tasks_of[corpus]:
            targets = [self.target(r)[task] for r in records]
            for qualifier, _ in self._networks(task):
                key = f"{task}{'_' + qualifier if qualifier else ''}"
                values = [p[key] for p in predictions]
                if task == "asc":
                    result.update(
                        score_asc(np.stack(values), np.array(targets), stage, boot, qualifier)
                    )
                elif task == "tag":
                    truth = np.zeros((len(records), len(self.classes["tag"])))
                    for i, hot in enumerate(targets):
                        truth[i, hot] = 1.0
                    result.update(score_tag(np.stack(values), truth, stage, boot, qualifier))
                else:
                    post = self.post.get(qualifier, DEFAULT_POST)
                    durations = [r.duration for r in records]
                    result.update(
                        sed_scores(
                            values, targets, durations, self.frame_rate, self.sed_classes,
                            post, stage, boot if not qualifier else 0, qualifier,
                        )
                    )  # fmt: skip
            if task == "sed" and stage == "test":
                result.update(
                    trivial_sed_scores(
                        targets, [r.duration for r in records],
                        [len(p["sed"]) for p in predictions], self.frame_rate,
                        self.sed_classes, self.priors, self.post.get("prior", DEFAULT_POST),
                    )
                )  # fmt: skip
        return result

    def _output(self, prediction: dict[str, Any], record: Utterance) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if "asc" in prediction:
            out["scene"] = self.classes["asc"][int(np.argmax(prediction["asc"]))]
        if "tag" in prediction:
            out["tags"] = {
                c: round(float(v), 4)
                for c, v in zip(self.classes["tag"], prediction["tag"], strict=True)
            }
        if "sed" in prediction:
            post = self.post.get("", DEFAULT_POST)
            if not post.thresholds:
                post = SedPost(1, (0.5,) * len(self.sed_classes))
            out["events"] = [
                [label, round(on, 3), round(off, 3)]
                for on, off, label in post.events(
                    prediction["sed"], self.frame_rate, self.sed_classes, record.duration
                )
            ]
        return out

    # ---- SED post-processing hooks (see scenes.SedPostprocess)
    def sed_dev_scores(self, head: nn.Module | None, variant: str):
        from speechbench.dataset import materialized

        corpus = self.corpus_of["sed"]
        opts = self.options
        plans = self.data.batches(
            self, corpus, "dev", "dev", opts.batch_size, opts.max_batch_frames
        )
        scores: list[np.ndarray] = []
        records: list[Utterance] = []
        network = JOINT if variant == JOINT or "sed" not in self.finetuned_tasks else "sed"
        with torch.no_grad():
            for batch in materialized(plans):
                records.extend(batch.records)
                lengths = batch.lengths["main"].tolist()
                if variant == "prior":
                    scores.extend(np.tile(self.priors[None, :], (n, 1)) for n in lengths)
                    continue
                out = head.net(network)(batch.features["main"], batch.lengths["main"])["sed"]
                probs = torch.sigmoid(out).numpy()
                scores.extend(p[:n] for p, n in zip(probs, lengths, strict=True))
        refs = [checked_events(r, self.sed_classes) for r in records]
        return scores, refs, [r.duration for r in records]

    def set_post(self, variant: str, post: SedPost) -> None:
        self.post[variant] = post

    def state_dict(self) -> dict[str, Any]:
        return {
            "classes": self.classes,
            "corpus_of": self.corpus_of,
            "frame_rate": self.frame_rate,
            "priors": self.priors.tolist(),
            "post": {k: [v.median_frames, list(v.thresholds)] for k, v in self.post.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.classes = {t: list(v) for t, v in state["classes"].items()}
        self.index = {t: {c: i for i, c in enumerate(v)} for t, v in self.classes.items()}
        self.corpus_of = dict(state["corpus_of"])
        self.frame_rate = float(state["frame_rate"])
        self.priors = np.asarray(state["priors"])
        self.post = {k: SedPost(int(m), tuple(t)) for k, (m, t) in state["post"].items()}
