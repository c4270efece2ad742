"""Acoustic scenes and events over any upstream: ASC, audio tagging (TAG) and SED.

Three single-task downstreams in the DCASE protocols, sharing one copy of the label
handling, targets, decoding and scoring with ``dcasenet`` (which trains one network on
all three):

- ``asc``: one scene per clip (``labels["scene"]``); pooled classifier, softmax; accuracy
  (primary, 95% bootstrap interval over test clips) and class-averaged accuracy (``uar``,
  the mean of per-scene recalls, DCASE 2020 task 1's "class-wise accuracy").
- ``tag``: the set of classes in a clip (``labels["tags"]``); sigmoid per class; lwlrap
  (primary, DCASE 2019 task 2, with a bootstrap interval) and mAP.
- ``sed``: strong events ``[label, onset_s, offset_s]`` (``labels["events"]``); a sigmoid
  per class and frame *at the upstream's frame rate* (frame k covers [k/r, (k+1)/r) and
  is active when its centre lies inside an event). Post-processing is tuned on dev after
  training (:class:`SedPostprocess`): a median filter over time (one length for all
  classes) and a threshold per class, chosen to minimise dev segment errors; they are
  stored with the run (training.json stage ``postprocess:sed`` and the task state) and
  applied unchanged to test. Metrics: segment-based F1 / ER at 1 s (sed_eval; ER is the
  primary metric, as in DCASE 2020 task 3), event-based F1 with a 200 ms onset collar,
  and PSDS scenario 1 (sed_scores_eval) on the filtered frame scores, with its class mean
  without the instability penalty (``psds1_st0``, same ROCs). Two trivial
  systems are scored beside it on the same test clips: *all-zeros* (no event ever) and
  the *per-class prior* (every frame scored with the class's training frame prior, then
  the same dev-tuned thresholds), as ``*_allzero`` and ``*_prior`` keys.

Heads (light, SUPERB-style, so any upstream can be compared): weighted layer sum ->
BatchNorm over feature dimensions (keeps level differences between clips, which a
per-frame LayerNorm would remove) -> a position-wise layer -> a 1-D convolution over
5 frames; ASC/TAG pool mean and max over valid frames, SED runs a bidirectional GRU.

Bad input is one line naming the corpus, record and what to do: a corpus without the
labels the task needs, events with reversed or out-of-clip times, two overlapping
events of one class, and classes in dev/test that no training clip has.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import median_filter
from speechbench.downstreams.base import (
    Batch,
    GradientTrained,
    Stage,
    TrainOptions,
    UpstreamInfo,
    WeightedLayerSum,
    lengths_mask,
)
from speechbench.metrics.bootstrap import bootstrap_ci
from speechbench.metrics.classification import accuracy, unweighted_average_recall
from speechbench.metrics.sed import class_mean, psds_scenario1, sed_metrics, segment_error_rate
from speechbench.metrics.tagging import lwlrap, mean_average_precision
from torch import nn

from speechbench.corpora.base import Utterance
from speechbench.errors import CorpusError
from speechbench.fitting import FitContext, Fitter, TrainResult
from speechbench.options import option

LABEL_KEY = {"asc": "scene", "tag": "tags", "sed": "events"}
VIEW_CORPUS = {"asc": "mini-dcase-asc", "tag": "mini-dcase-tag", "sed": "mini-dcase-sed"}
THRESHOLDS = np.round(np.arange(0.05, 0.96, 0.05), 2)
MEDIAN_FRAMES_S = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)  # filter lengths tried, seconds
TIME_EPS = 1e-6


# ---------------------------------------------------------------- labels and their checks
def has_labels(record: Utterance, task: str) -> bool:
    return LABEL_KEY[task] in (record.labels or {})


def require_labels(corpus: str, records: Iterable[Utterance], task: str, downstream: str) -> None:
    """Every record of ``corpus`` carries the task's label (one line otherwise)."""
    key = LABEL_KEY[task]
    for record in records:
        if not has_labels(record, task):
            raise CorpusError(
                f"corpus {corpus}: record {record.id} ({record.split}) has no labels.{key}, "
                f"which downstream {downstream} ({task}) needs; use corpus={VIEW_CORPUS[task]} "
                "(or a corpus with that label)"
            )


def class_set(records: Iterable[Utterance], task: str) -> list[str]:
    """The classes of the training records (sorted)."""
    found: set[str] = set()
    for record in records:
        value = record.labels[LABEL_KEY[task]]
        if task == "asc":
            found.add(str(value))
        elif task == "tag":
            found.update(str(v) for v in value)
        else:
            found.update(str(e[0]) for e in value)
    return sorted(found)


def _unknown(record: Utterance, task: str, labels: Iterable[str], classes: Sequence[str]):
    unknown = sorted(set(labels) - set(classes))
    if unknown:
        raise CorpusError(
            f"record {record.id} ({record.split}) has {task} class(es) {unknown} that no "
            f"training clip has (training: {', '.join(classes)}); the task is closed-set: "
            "remove the record or add training clips of that class"
        )


def checked_events(record: Utterance, classes: Sequence[str]) -> list[tuple[str, float, float]]:
    """The record's strong events, validated: known class, 0 <= onset < offset <= duration,
    no two events of one class overlapping (a class is active or not; merge them)."""
    events = []
    for event in record.labels["events"]:
        try:
            label, onset, offset = event
            onset, offset = float(onset), float(offset)
        except (TypeError, ValueError):
            raise CorpusError(
                f"record {record.id} ({record.split}): event {event!r} is not "
                "[label, onset_s, offset_s]"
            ) from None
        if not (0.0 <= onset < offset <= record.duration + 1e-3):
            raise CorpusError(
                f"record {record.id} ({record.split}): event {event!r} needs "
                f"0 <= onset < offset <= {record.duration:g} s (reversed or outside the clip)"
            )
        events.append((str(label), onset, offset))
    _unknown(record, "sed", (e[0] for e in events), classes)
    last: dict[str, tuple[str, float, float]] = {}
    for event in sorted(events, key=lambda e: (e[0], e[1])):
        previous = last.get(event[0])
        if previous is not None and event[1] < previous[2] - TIME_EPS:
            raise CorpusError(
                f"record {record.id} ({record.split}): events {list(previous)} and "
                f"{list(event)} of one class overlap; merge them into one event"
            )
        last[event[0]] = event
    return events


# ---------------------------------------------------------------- frame grid of an upstream
def frame_targets(
    events: Sequence[tuple[str, float, float]], frames: int, rate: float, index: dict[str, int]
) -> torch.Tensor:
    """T x C activity: frame k is active when its centre (k + 0.5) / rate is in an event."""
    centres = (torch.arange(frames, dtype=torch.float64) + 0.5) / rate
    target = torch.zeros(frames, len(index))
    for label, onset, offset in events:
        target[(centres >= onset) & (centres < offset), index[label]] = 1.0
    return target


def decode_events(
    active: np.ndarray, rate: float, classes: Sequence[str], duration: float
) -> list[tuple[float, float, str]]:
    """Runs of active frames (T x C booleans) -> (onset_s, offset_s, label) events."""
    events = []
    for c, label in enumerate(classes):
        column = np.concatenate([[False], active[:, c], [False]]).astype(np.int8)
        change = np.flatnonzero(np.diff(column))
        for start, stop in zip(change[::2], change[1::2], strict=True):
            onset, offset = start / rate, min(stop / rate, duration)
            if offset > onset:
                events.append((float(onset), float(offset), label))
    return sorted(events)


def smooth(scores: np.ndarray, frames: int) -> np.ndarray:
    """Median filter of ``frames`` (odd; <= 1: none) over time, per class."""
    if frames <= 1:
        return scores
    return median_filter(scores, size=(frames, 1), mode="nearest")


def median_lengths(rate: float) -> list[int]:
    """Odd filter lengths in frames for ``MEDIAN_FRAMES_S`` at this frame rate."""
    return sorted({max(1, 2 * int(round(s * rate / 2)) + 1) for s in MEDIAN_FRAMES_S})


def segment_activity(
    events: Sequence[tuple[float, float, str]], duration: float, index: dict[str, int]
) -> np.ndarray:
    """S x C booleans over 1 s segments (as sed_eval's segment-based metrics)."""
    segments = max(1, math.ceil(duration - TIME_EPS))
    out = np.zeros((segments, len(index)), bool)
    for onset, offset, label in events:
        first = int(math.floor(onset))
        last = int(math.ceil(offset - TIME_EPS))
        out[first : max(last, first + 1), index[label]] = True
    return out


def frame_segments(active: np.ndarray, rate: float, duration: float) -> np.ndarray:
    """S x C: a 1 s segment is active when any of its frames is."""
    segments = max(1, math.ceil(duration - TIME_EPS))
    seg_of = np.minimum((np.arange(active.shape[0]) / rate).astype(int), segments - 1)
    out = np.zeros((segments, active.shape[1]), bool)
    np.logical_or.at(out, seg_of, active)
    return out


def tune_thresholds(
    scores: Sequence[np.ndarray],
    references: Sequence[np.ndarray],
    rate: float,
    durations: Sequence[float],
) -> np.ndarray:
    """Per class, the threshold of ``THRESHOLDS`` with the fewest dev segment errors
    (false alarms + misses in 1 s segments, the insertions and deletions of segment ER)."""
    classes = scores[0].shape[1]
    errors = np.zeros((len(THRESHOLDS), classes))
    for score, ref, duration in zip(scores, references, durations, strict=True):
        for t, threshold in enumerate(THRESHOLDS):
            est = frame_segments(score >= threshold, rate, duration)
            errors[t] += (est != ref).sum(axis=0)
    return THRESHOLDS[np.argmin(errors, axis=0)]  # ties: the lowest threshold


def frame_times(frames: int, rate: float) -> np.ndarray:
    return np.arange(frames + 1) / rate


# ---------------------------------------------------------------- scoring (pure)
def score_asc(
    probs: np.ndarray, truth: np.ndarray, stage: Stage, bootstrap: int, prefix: str = ""
) -> dict[str, float]:
    predicted = probs.argmax(axis=1)
    result = {
        "accuracy": accuracy.fn(truth, predicted),
        "uar": unweighted_average_recall.fn(truth, predicted),
    }
    if stage == "test" and bootstrap > 0:
        ci = bootstrap_ci(accuracy, truth, predicted, n_resamples=bootstrap, seed=0)
        result["accuracy_ci_low"], result["accuracy_ci_high"] = ci.low, ci.high
    return _qualified(result, prefix)


def score_tag(
    scores: np.ndarray, truth: np.ndarray, stage: Stage, bootstrap: int, prefix: str = ""
) -> dict[str, float]:
    result = {"lwlrap": lwlrap.fn(truth, scores), "map": mean_average_precision.fn(truth, scores)}
    if stage == "test" and bootstrap > 0:
        ci = bootstrap_ci(lwlrap, truth, scores, n_resamples=bootstrap, seed=0)
        result["lwlrap_ci_low"], result["lwlrap_ci_high"] = ci.low, ci.high
    return _qualified(result, prefix)


def _qualified(result: dict[str, float], target: str) -> dict[str, float]:
    """``accuracy`` -> ``accuracy_joint`` (a target qualifier, see metric_keys)."""
    if not target:
        return result
    out = {}
    for key, value in result.items():
        for stat in ("_ci_low", "_ci_high"):
            if key.endswith(stat):
                out[f"{key[: -len(stat)]}_{target}{stat}"] = value
                break
        else:
            out[f"{key}_{target}"] = value
    return out


@dataclass(frozen=True)
class SedPost:
    """Post-processing tuned on dev: median filter length (frames), per-class thresholds."""

    median_frames: int
    thresholds: tuple[float, ...]

    def events(
        self, scores: np.ndarray, rate: float, classes: Sequence[str], duration: float
    ) -> list[tuple[float, float, str]]:
        active = smooth(scores, self.median_frames) >= np.asarray(self.thresholds)[None, :]
        return decode_events(active, rate, classes, duration)

    def as_dict(self, classes: Sequence[str]) -> dict[str, Any]:
        return {
            "median_filter_frames": self.median_frames,
            "thresholds": dict(zip(classes, self.thresholds, strict=True)),
        }


DEFAULT_POST = SedPost(1, ())


def sed_scores(
    scores: Sequence[np.ndarray],
    references: Sequence[list[tuple[str, float, float]]],
    durations: Sequence[float],
    rate: float,
    classes: Sequence[str],
    post: SedPost,
    stage: Stage,
    bootstrap: int = 0,
    prefix: str = "",
) -> dict[str, float]:
    """Segment F1/ER, event F1 (sed_eval) and, at test, PSDS1 of frame scores."""
    if not post.thresholds:
        post = SedPost(1, (0.5,) * len(classes))
    refs = [[(on, off, label) for label, on, off in ref] for ref in references]
    ests = [post.events(s, rate, classes, d) for s, d in zip(scores, durations, strict=True)]
    result = _sed_event_metrics(refs, ests, durations)
    if stage == "test":
        smoothed = [smooth(s, post.median_frames) for s in scores]
        times = [frame_times(len(s), rate) for s in scores]
        result.update(_psds_keys(refs, smoothed, times, durations, classes))
        if bootstrap > 0:
            ci = bootstrap_ci(
                segment_error_rate, refs, ests, list(durations), n_resamples=bootstrap, seed=0
            )
            result["segment_er_ci_low"], result["segment_er_ci_high"] = ci.low, ci.high
    return _qualified(result, prefix)


def _psds_keys(refs, scores, times, durations, classes) -> dict[str, float]:
    """PSDS1 and, from the same ROCs, its unpenalised class mean (``psds1_st0``): on a
    small test set with a few weak classes scenario 1's instability penalty floors every
    system at 0, where the class mean still tells them apart (docs/dcase.md)."""
    found = psds_scenario1(refs, scores, times, list(durations), classes=list(classes))
    return {"psds1": found.value, "psds1_st0": class_mean(found)}


def _sed_event_metrics(refs, ests, durations) -> dict[str, float]:
    found = sed_metrics(refs, ests, durations)
    f1 = {k: 0.0 if math.isnan(found[k]) else found[k] for k in ("segment_f1", "event_f1")}
    return {"segment_er": found["segment_er"], **f1}


def trivial_sed_scores(
    references: Sequence[list[tuple[str, float, float]]],
    durations: Sequence[float],
    frames: Sequence[int],
    rate: float,
    classes: Sequence[str],
    priors: np.ndarray,
    prior_post: SedPost,
) -> dict[str, float]:
    """The all-zeros and per-class-prior systems on the same test clips."""
    refs = [[(on, off, label) for label, on, off in ref] for ref in references]
    out: dict[str, float] = {}
    zeros = _sed_event_metrics(refs, [[] for _ in refs], durations)
    out.update({f"{k}_allzero": v for k, v in zeros.items()})
    constant = [np.tile(priors[None, :], (n, 1)) for n in frames]
    prior = _sed_event_metrics(
        refs,
        [prior_post.events(s, rate, classes, d) for s, d in zip(constant, durations, strict=True)],
        durations,
    )
    times = [frame_times(n, rate) for n in frames]
    prior.update(_psds_keys(refs, constant, times, durations, classes))
    out.update({f"{k}_prior": v for k, v in prior.items()})
    return out


# ---------------------------------------------------------------- SED post-processing fitter
class SedPostprocess(Fitter):
    """After gradient training: tune the median filter and per-class thresholds on dev.

    ``tasks`` is the downstream; it provides ``sed_dev_scores(head, variant)`` (dev frame
    scores, references and durations of its SED corpus) and keeps the result through
    ``set_post(variant, post)``. Stored in the run's training.json (stage record).
    """

    name = "postprocess:sed"

    def __init__(self, variants: Sequence[str] = ("",)) -> None:
        self.variants = tuple(variants)

    def fit(self, task: Any, head: nn.Module, ctx: FitContext) -> TrainResult:
        import time

        start = time.perf_counter()
        record: dict[str, Any] = {"name": self.name, "kind": "closed-form"}
        best_dev: dict[str, float] = {}
        head.eval()
        for variant in self.variants:
            scores, refs, durations = task.sed_dev_scores(head, variant)
            post, dev = tune_post(scores, refs, durations, task.frame_rate, task.sed_classes)
            task.set_post(variant, post)
            record[variant or "final"] = {**post.as_dict(task.sed_classes), **dev}
            best_dev.update(_qualified({f"dev_{k}": v for k, v in dev.items()}, variant))
        # the per-class prior system gets the same tuner (on constant scores)
        scores, refs, durations = task.sed_dev_scores(None, "prior")
        prior, _ = tune_post(scores, refs, durations, task.frame_rate, task.sed_classes, (1,))
        task.set_post("prior", prior)
        record["prior"] = prior.as_dict(task.sed_classes)
        record["seconds"] = round(time.perf_counter() - start, 2)
        entry = {"fitter": self.name, "epoch": 0, **best_dev}
        return TrainResult(0, entry, 0, [entry], [record])


def tune_post(
    scores: Sequence[np.ndarray],
    references: Sequence[list[tuple[str, float, float]]],
    durations: Sequence[float],
    rate: float,
    classes: Sequence[str],
    lengths: Sequence[int] | None = None,
) -> tuple[SedPost, dict[str, float]]:
    """For each median filter length: per-class thresholds (fewest dev segment errors),
    then the length whose thresholds give the lowest dev segment ER (sed_eval)."""
    index = {c: i for i, c in enumerate(classes)}
    seg_refs = [
        segment_activity([(on, off, lab) for lab, on, off in ref], d, index)
        for ref, d in zip(references, durations, strict=True)
    ]
    refs = [[(on, off, label) for label, on, off in ref] for ref in references]
    best: tuple[float, SedPost, dict[str, float]] | None = None
    for frames in lengths or median_lengths(rate):
        smoothed = [smooth(s, frames) for s in scores]
        thresholds = tune_thresholds(smoothed, seg_refs, rate, durations)
        post = SedPost(frames, tuple(float(t) for t in thresholds))
        ests = [post.events(s, rate, classes, d) for s, d in zip(scores, durations, strict=True)]
        dev = _sed_event_metrics(refs, ests, durations)
        if best is None or dev["segment_er"] < best[0] - 1e-12:
            best = (dev["segment_er"], post, dev)
    assert best is not None
    return best[1], best[2]


# ---------------------------------------------------------------- light heads
@dataclass
class SceneOptions(TrainOptions):
    hidden: int = option(128, low=8)
    dropout: float = option(0.2, low=0.0, high=0.95)
    # resamples for the test interval of the primary metric; 0: none
    bootstrap: int = option(1000, low=0, budget=True)
    max_epochs: int = 30
    patience: int = 6


class FrameEncoder(nn.Module):
    """B x L x T x D frozen layers -> B x T x H frame features."""

    def __init__(self, dim: int, num_layers: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.layer_sum = WeightedLayerSum(num_layers)
        self.norm = nn.BatchNorm1d(dim)
        self.proj = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout))
        self.context = nn.Sequential(
            nn.Conv1d(hidden, hidden, 5, padding=2), nn.BatchNorm1d(hidden), nn.ReLU()
        )

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = lengths_mask(lengths, features.shape[2]).unsqueeze(-1)
        x = self.layer_sum(features) * mask
        x = self.norm(x.transpose(1, 2)).transpose(1, 2) * mask
        x = self.proj(x) * mask
        return self.context(x.transpose(1, 2)).transpose(1, 2) * mask


def mean_max_pool(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """B x T x H -> B x 2H: mean and max over valid frames."""
    mask = lengths_mask(lengths, x.shape[1]).unsqueeze(-1)
    mean = (x * mask).sum(1) / mask.sum(1).clamp_min(1)
    peak = x.masked_fill(~mask, float("-inf")).max(1).values
    return torch.cat([mean, peak], dim=-1)


class ClipHead(nn.Module):
    """ASC / TAG: frame encoder -> mean+max pooling -> logits per clip."""

    def __init__(self, dim: int, num_layers: int, classes: int, opts: SceneOptions) -> None:
        super().__init__()
        self.encoder = FrameEncoder(dim, num_layers, opts.hidden, opts.dropout)
        self.layer_sum = self.encoder.layer_sum
        self.out = nn.Sequential(nn.Dropout(opts.dropout), nn.Linear(2 * opts.hidden, classes))

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.out(mean_max_pool(self.encoder(features, lengths), lengths))


class FrameHead(nn.Module):
    """SED: frame encoder -> BiGRU -> logits per frame and class."""

    def __init__(self, dim: int, num_layers: int, classes: int, opts: SceneOptions) -> None:
        super().__init__()
        self.encoder = FrameEncoder(dim, num_layers, opts.hidden, opts.dropout)
        self.layer_sum = self.encoder.layer_sum
        self.gru = nn.GRU(opts.hidden, opts.hidden // 2, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * (opts.hidden // 2), classes)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.encoder(features, lengths)
        packed = nn.utils.rnn.pack_padded_sequence(
            x, lengths.cpu().clamp_min(1), batch_first=True, enforce_sorted=False
        )
        out, _ = self.gru(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return self.out(out)


def masked_bce(logits: torch.Tensor, target: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Frame-level BCE over valid frames (B x T x C)."""
    frames = min(logits.shape[1], target.shape[1])
    logits, target = logits[:, :frames], target[:, :frames]
    mask = lengths_mask(lengths.clamp_max(frames), frames).unsqueeze(-1).float()
    loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return (loss * mask).sum() / (mask.sum() * logits.shape[2]).clamp_min(1)


# ---------------------------------------------------------------- the three tasks
class _SceneTask(GradientTrained):
    task: ClassVar[str]
    Options = SceneOptions
    upstream_level = "any"

    def __init__(self, options: SceneOptions | None = None) -> None:
        super().__init__(options)
        self.classes: list[str] = []
        self.index: dict[str, int] = {}

    def setup(self, train: list[Utterance]) -> None:
        for name in self.data.names:
            corpus_records = [r for split in ("train", "dev", "test")
                              for r in self.data.records(split, name)]  # fmt: skip
            require_labels(name, corpus_records, self.task, self.name)
        self.classes = class_set(train, self.task)
        if len(self.classes) < (2 if self.task == "asc" else 1):
            raise CorpusError(
                f"downstream {self.name} needs at least 2 classes in train, found "
                f"{len(self.classes)}; use corpus={self.default_corpus}"
            )
        self.index = {c: i for i, c in enumerate(self.classes)}

    def build_head(self, upstream: UpstreamInfo) -> nn.Module:
        return ClipHead(upstream.dim, upstream.num_layers, len(self.classes), self.options)

    def logits(self, head: nn.Module, batch: Batch) -> torch.Tensor:
        return head(batch.features["main"], batch.lengths["main"])

    def state_dict(self) -> dict[str, Any]:
        return {"classes": self.classes}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.classes = list(state["classes"])
        self.index = {c: i for i, c in enumerate(self.classes)}


class AcousticScenes(_SceneTask):
    name = "asc"
    task = "asc"
    description = "acoustic scene classification (pooled head); accuracy, class-avg accuracy"
    default_corpus = VIEW_CORPUS["asc"]
    metrics = ("accuracy", "uar")
    primary_metric = "accuracy"

    def target(self, record: Utterance) -> int:
        scene = str(record.labels["scene"])
        _unknown(record, "asc", [scene], self.classes)
        return self.index[scene]

    def collate(self, targets, frames):
        return torch.tensor(targets)

    def loss(self, head: nn.Module, batch: Batch) -> torch.Tensor:
        return F.cross_entropy(self.logits(head, batch), batch.targets)

    def predict(self, head: nn.Module, batch: Batch) -> list[list[float]]:
        return torch.softmax(self.logits(head, batch), dim=1).tolist()

    def score(self, predictions, records, stage) -> dict[str, float]:
        truth = np.array([self.target(r) for r in records])
        return score_asc(np.asarray(predictions), truth, stage, self.options.bootstrap)


class AudioTagging(_SceneTask):
    name = "tag"
    task = "tag"
    description = "multi-label audio tagging (pooled head, sigmoid); lwlrap, mAP"
    default_corpus = VIEW_CORPUS["tag"]
    metrics = ("lwlrap", "map")
    primary_metric = "lwlrap"

    def target(self, record: Utterance) -> torch.Tensor:
        tags = [str(t) for t in record.labels["tags"]]
        _unknown(record, "tag", tags, self.classes)
        out = torch.zeros(len(self.classes))
        out[[self.index[t] for t in tags]] = 1.0
        return out

    def collate(self, targets, frames):
        return torch.stack(targets)

    def loss(self, head: nn.Module, batch: Batch) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(self.logits(head, batch), batch.targets)

    def predict(self, head: nn.Module, batch: Batch) -> list[list[float]]:
        return torch.sigmoid(self.logits(head, batch)).tolist()

    def score(self, predictions, records, stage) -> dict[str, float]:
        truth = torch.stack([self.target(r) for r in records]).numpy()
        return score_tag(np.asarray(predictions), truth, stage, self.options.bootstrap)


@dataclass
class SedOptions(SceneOptions):
    bootstrap: int = option(200, low=0, budget=True)  # sed_eval per resample: slower
    max_epochs: int = 25  # a BiGRU over 500 frames: ~15 s per epoch on one thread


class SoundEventDetection(_SceneTask):
    name = "sed"
    task = "sed"
    description = "sound event detection at the upstream's frame rate; segment ER/F1, PSDS"
    Options = SedOptions
    default_corpus = VIEW_CORPUS["sed"]
    upstream_level = "frame"
    metrics = ("segment_er", "segment_f1", "event_f1", "psds1", "psds1_st0")
    primary_metric = "segment_er"
    selection_metric = "loss"  # thresholds are tuned after training

    def __init__(self, options: SedOptions | None = None) -> None:
        super().__init__(options)
        self.frame_rate = 0.0
        self.post: dict[str, SedPost] = {}
        self.priors = np.zeros(0)

    @property
    def sed_classes(self) -> list[str]:
        return self.classes

    def setup(self, train: list[Utterance]) -> None:
        super().setup(train)
        for split in ("train", "dev", "test"):
            for record in self.data.records(split):
                checked_events(record, self.classes)

    def build_head(self, upstream: UpstreamInfo) -> nn.Module:
        self.frame_rate = float(upstream.frame_rate)
        self.priors = event_priors(self.data.records("train"), self.classes)
        return FrameHead(upstream.dim, upstream.num_layers, len(self.classes), self.options)

    def fitters(self, upstream: UpstreamInfo) -> list[Fitter]:
        return [*super().fitters(upstream), SedPostprocess()]

    def target(self, record: Utterance) -> list[tuple[str, float, float]]:
        return checked_events(record, self.classes)

    def collate(self, targets, frames):
        lengths = frames["main"].tolist()
        longest = max(lengths)
        return torch.stack(
            [
                F.pad(frame_targets(t, n, self.frame_rate, self.index), (0, 0, 0, longest - n))
                for t, n in zip(targets, lengths, strict=True)
            ]
        )

    def loss(self, head: nn.Module, batch: Batch) -> torch.Tensor:
        return masked_bce(self.logits(head, batch), batch.targets, batch.lengths["main"])

    def predict(self, head: nn.Module, batch: Batch) -> list[np.ndarray]:
        probs = torch.sigmoid(self.logits(head, batch)).numpy()
        return [p[:n] for p, n in zip(probs, batch.lengths["main"].tolist(), strict=True)]

    def sed_dev_scores(self, head: nn.Module | None, variant: str):
        from speechbench.dataset import materialized

        corpus = self.data.names[0]
        records, scores = [], []
        opts = self.options
        plans = self.data.batches(
            self, corpus, "dev", "dev", opts.batch_size, opts.max_batch_frames
        )
        with torch.no_grad():
            for batch in materialized(plans):
                records.extend(batch.records)
                if variant == "prior":
                    n = batch.lengths["main"].tolist()
                    scores.extend(np.tile(self.priors[None, :], (k, 1)) for k in n)
                else:
                    scores.extend(self.predict(head, batch))
        return scores, [self.target(r) for r in records], [r.duration for r in records]

    def set_post(self, variant: str, post: SedPost) -> None:
        self.post[variant] = post

    def score(self, predictions, records, stage) -> dict[str, float]:
        refs = [self.target(r) for r in records]
        durations = [r.duration for r in records]
        post = self.post.get("", DEFAULT_POST)
        result = sed_scores(
            predictions, refs, durations, self.frame_rate, self.classes, post, stage,
            self.options.bootstrap,
        )  # fmt: skip
        if stage == "test":
            result.update(
                trivial_sed_scores(
                    refs, durations, [len(p) for p in predictions], self.frame_rate,
                    self.classes, self.priors, self.post.get("prior", DEFAULT_POST),
                )
            )  # fmt: skip
        return result

    def evaluate(self, head, batches, stage, ctx):
        metrics, outputs = super().evaluate(head, batches, stage, ctx)
        post = self.post.get("", DEFAULT_POST)
        for output, record in zip(outputs, self._last_records(outputs), strict=True):
            scores = output.pop("prediction")
            output["events"] = [
                [label, round(on, 3), round(off, 3)]
                for on, off, label in post.events(scores, self.frame_rate, self.classes,
                                                  record.duration)
            ]  # fmt: skip
        return metrics, outputs

    def _last_records(self, outputs):
        ids = {r.id: r for split in ("dev", "test") for r in self.data.records(split)}
        return [ids[o["id"]] for o in outputs]

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "frame_rate": self.frame_rate,
            "priors": self.priors.tolist(),
            "post": {k: [v.median_frames, list(v.thresholds)] for k, v in self.post.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.frame_rate = float(state["frame_rate"])
        self.priors = np.asarray(state["priors"])
        self.post = {k: SedPost(int(m), tuple(t)) for k, (m, t) in state["post"].items()}


def event_priors(records: Sequence[Utterance], classes: Sequence[str]) -> np.ndarray:
    """Per class, the fraction of training time it is active (the prior system's score)."""
    active = np.zeros(len(classes))
    total = 0.0
    index = {c: i for i, c in enumerate(classes)}
    for record in records:
        total += record.duration
        for label, onset, offset in record.labels["events"]:
            active[index[str(label)]] += float(offset) - float(onset)
    return active / max(total, 1e-9)
