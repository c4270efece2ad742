"""The downstream contract (v2): a task over named audio streams, fitted and scored.

A downstream (a *task*) declares

- what it reads: ``inputs(stage)`` names, per audio stream, whether it wants frozen
  upstream features or the waveform (ESPnet2's ``required_data_names``); ``requires``
  lists the manifest fields it needs;
- how records become targets (``target``, batched by ``collate``, which sees the feature
  frame counts so frame-level targets are built at the upstream's frame rate);
- the head it builds from the upstream's shape (``build_head(UpstreamInfo)``);
- how the head is fitted: ``fitters(upstream)`` returns gradient training
  (:class:`speechbench.training.GradientFitter` over the task's ``loss``) and/or
  closed-form fitters (:class:`speechbench.fitting.ClosedFormFitter` over a function: a
  PLDA back-end, a GMM-UBM), each only where it applies — no method exists "unused";
- how predictions are made and scored: ``predict`` per batch, ``score(predictions,
  records, stage)`` a pure function; ``evaluate(head, batches, stage, ctx)`` ties them
  and may write artefacts (audio, plots) through ``ctx.sink``;
- its schedule (``schedule``: stages such as joint training, then fine-tuning),
  optimiser / scheduler hooks, ``finalize`` (e.g. quantization) and a cheap
  ``selection_metric`` for early stopping beside the leaderboard's ``primary_metric``.

The runner (``speechbench.runner``) does the rest, the same way for every task.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch
from torch import nn

from speechbench.corpora.base import MAIN, Utterance
from speechbench.options import option

if TYPE_CHECKING:
    from speechbench.artefacts import EvalContext
    from speechbench.fitting import Fitter, TaskData

Stage = Literal["train", "dev", "test"]


@dataclass
class TrainOptions:
    """Settings every gradient-trained downstream shares; a task's Options extends this."""

    lr: float = option(1e-3, low=0.0, low_open=True, high=10.0, doc="peak learning rate")
    weight_decay: float = option(0.0, low=0.0, high=1.0)
    batch_size: int = option(16, low=1, budget=True)
    max_epochs: int = option(30, low=1, budget=True)
    # epochs without a better dev score before stopping...
    patience: int = option(6, low=1, budget=True)
    # ...but never before this many (CTC first sits on an all-blank plateau)
    min_epochs: int = option(0, low=0, budget=True)
    grad_clip: float = option(5.0, low=0.0, low_open=True)
    # bounds memory: batches are built by length so padded frames stay under this
    max_batch_frames: int = option(20000, low=1, budget=True)


@dataclass(frozen=True)
class Input:
    """What a task reads from one audio stream.

    ``kind="features"``: the frozen upstream's layers (cached per stream); ``"waveform"``:
    the audio itself, resampled to ``sample_rate`` (0: the corpus rate) and, when
    ``crop_seconds`` > 0, cut to that length (a seeded random crop in training, the
    start at inference) or zero-padded up to it. ``channels`` lists the channel counts
    the task can take from this stream. ``stream`` reads the waveform of another corpus
    stream under this input's name, so a task can take both the upstream features and
    the waveform of one stream (``{"main": Input("features"), "wave": Input("waveform",
    stream="main")}``); empty: the stream named by the key.
    """

    kind: Literal["features", "waveform"] = "features"
    sample_rate: int = 0
    crop_seconds: float = 0.0
    channels: tuple[int, ...] = (1,)
    stream: str = ""

    def __post_init__(self) -> None:
        if self.stream and self.kind != "waveform":
            raise ValueError("Input(stream=...) renames waveform inputs only")

    def source(self, name: str) -> str:
        """The corpus stream this input (declared under ``name``) reads."""
        return self.stream or name


@dataclass(frozen=True)
class UpstreamInfo:
    """The shape of the frozen upstream a head is built for."""

    name: str
    dim: int
    num_layers: int
    frame_rate: float  # frames per second; 0 for utterance-level upstreams
    level: str
    sample_rate: int

    @classmethod
    def of(cls, upstream: Any) -> UpstreamInfo:
        """The shape of an upstream instance."""
        return cls(
            name=upstream.name,
            dim=upstream.dim,
            num_layers=upstream.num_layers,
            frame_rate=upstream.frame_rate,
            level=upstream.level,
            sample_rate=upstream.sample_rate,
        )


@dataclass(frozen=True)
class StageSpec:
    """One stage of a training schedule: which corpora its batches come from, which
    corpus' dev set selects its best epoch, and option overrides (e.g. a lower lr)."""

    name: str
    corpora: tuple[str, ...]
    select_on: str = ""  # corpus whose dev score selects; empty: the first
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class Batch:
    """A few records of one corpus with every declared input.

    ``features[stream]`` is ``B x L x T x D`` (float32), ``audio[stream]`` ``B x S`` or
    ``B x C x S``; ``lengths[stream]`` are valid frames or samples per item.
    """

    records: list[Utterance]
    targets: Any
    corpus: str
    features: dict[str, torch.Tensor] = field(default_factory=dict)
    audio: dict[str, torch.Tensor] = field(default_factory=dict)
    lengths: dict[str, torch.Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.records)


class WeightedLayerSum(nn.Module):
    """Softmax-weighted sum of upstream layers, weights learned by the head (SUPERB)."""

    def __init__(self, num_layers: int) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(num_layers))

    def forward(self, features: torch.Tensor) -> torch.Tensor:  # B x L x T x D -> B x T x D
        weights = torch.softmax(self.logits, dim=0)
        return torch.einsum("l,bltd->btd", weights, features)

    def layer_weights(self) -> list[float]:
        return torch.softmax(self.logits.detach(), dim=0).tolist()


def lengths_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """B x T boolean mask, True on valid frames."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


class Downstream(ABC):
    name: ClassVar[str]
    description: ClassVar[str] = ""
    Options: ClassVar[type] = TrainOptions
    default_corpus: ClassVar[str]
    requires: ClassVar[tuple[str, ...]] = ()  # manifest fields the task reads
    upstream_level: ClassVar[Literal["frame", "utterance", "any"]] = "frame"
    metrics: ClassVar[tuple[str, ...]]
    primary_metric: ClassVar[str]
    # what early stopping watches: a metric ``score`` reports on dev, or "loss" (the mean
    # dev loss: cheap, for tasks whose real metrics need vocoding or frozen evaluators)
    selection_metric: ClassVar[str] = ""  # empty: the primary metric
    evaluators: ClassVar[tuple[str, ...]] = ()  # frozen scoring models the task uses

    def __init__(self, options: Any = None) -> None:
        self.options = options if options is not None else self.Options()
        self.data: TaskData | None = None
        self.seed = 0

    # ---- declaration -------------------------------------------------------------
    def inputs(self, stage: Stage) -> dict[str, Input]:
        """Per audio stream, what the task reads at ``stage``; default: upstream
        features of the main stream."""
        return {MAIN: Input("features")}

    @classmethod
    def accepts_level(cls, level: str) -> bool:
        """Can this task read features of an upstream of ``level`` ("frame"/"utterance")?"""
        return cls.upstream_level == "any" or cls.upstream_level == level

    def primary_metric_for(self, records: list[Utterance]) -> str:
        """The leaderboard metric; a task whose units depend on the corpus overrides it."""
        return self.primary_metric

    def selection_metric_for(self, records: list[Utterance]) -> str:
        return self.selection_metric or self.primary_metric_for(records)

    # ---- data --------------------------------------------------------------------
    def bind(self, data: TaskData, seed: int) -> None:
        """Give the task its data (all corpora and splits) and the run seed; then setup."""
        self.data, self.seed = data, seed
        self.setup(data.records("train"))

    @abstractmethod
    def setup(self, train: list[Utterance]) -> None:
        """Learn what the task needs from training data (vocabulary, label set)."""

    @abstractmethod
    def target(self, record: Utterance) -> Any:
        """The target of one record (what ``collate`` batches)."""

    def collate(self, targets: list[Any], frames: dict[str, torch.Tensor]) -> Any:
        """Batch the targets; ``frames`` are the valid feature frames per stream (frame-
        level targets are built here at the upstream's rate). Default: the list."""
        return targets

    # ---- model and fitting -------------------------------------------------------
    @abstractmethod
    def build_head(self, upstream: UpstreamInfo) -> nn.Module:
        """The head (trainable or fitted) for an upstream of this shape."""

    @abstractmethod
    def fitters(self, upstream: UpstreamInfo) -> list[Fitter]:
        """How the head is fitted, in order: gradient training and/or closed-form
        fitters (see :class:`GradientTrained` for the common case)."""

    def schedule(self, corpora: Sequence[str]) -> list[StageSpec]:
        """Training stages; default: one stage over every corpus of the run."""
        return [StageSpec("train", tuple(corpora))]

    def configure_optimizer(self, head: nn.Module, options: Any) -> torch.optim.Optimizer:
        """The optimiser of a gradient stage (AdamW on the head's parameters)."""
        params = [p for p in head.parameters() if p.requires_grad]
        return torch.optim.AdamW(params, lr=options.lr, weight_decay=options.weight_decay)

    def configure_scheduler(self, optimizer: torch.optim.Optimizer, options: Any) -> Any:
        """A learning-rate scheduler stepped after each epoch with the dev selection score
        (``ReduceLROnPlateau``-style) or without; None: constant."""
        return None

    def finalize(self, head: nn.Module) -> nn.Module:
        """Post-training step on the best head (e.g. quantization); default: as is."""
        return head

    # ---- prediction and scoring --------------------------------------------------
    @abstractmethod
    def predict(self, head: nn.Module, batch: Batch) -> list[Any]:
        """Decoded predictions, one per record of the batch."""

    @abstractmethod
    def score(
        self, predictions: list[Any], records: list[Utterance], stage: Stage
    ) -> dict[str, float]:
        """Metric values of predictions against the records' references (pure)."""

    def evaluate(
        self, head: nn.Module, batches: Iterable[Batch], stage: Stage, ctx: EvalContext
    ) -> tuple[dict[str, float], list[dict[str, Any]]]:
        """Scores and per-record outputs of one split."""
        predictions: list[Any] = []
        records: list[Utterance] = []
        with torch.no_grad():
            for batch in batches:
                predictions.extend(self.predict(head, batch))
                records.extend(batch.records)
        outputs = [{"id": r.id, "prediction": p} for r, p in zip(records, predictions, strict=True)]
        return self.score(predictions, records, stage), outputs

    # ---- what ``setup``/fitting learned, saved with checkpoints ------------------
    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """Restore what ``setup`` learned; tasks without learned state keep this no-op."""


class GradientTrained(Downstream):
    """A task whose head is trained by the shared gradient loop on ``loss``."""

    @abstractmethod
    def loss(self, head: nn.Module, batch: Batch) -> torch.Tensor:
        """Scalar training loss of one batch."""

    def fitters(self, upstream: UpstreamInfo) -> list[Fitter]:
        from speechbench.training import GradientFitter

        return [GradientFitter(self.loss)]


def check_inputs(
    task: Downstream,
    corpus_name: str,
    corpus_streams: dict[str, int],
    upstream_level: str,
    upstream_name: str = "",
) -> str | None:
    """The one compatibility rule: why this task cannot run on this corpus and upstream
    (None when it can). Used by the runner before anything is prepared, and by the
    leaderboard for its n/a cells (from what each run recorded)."""
    if not task.accepts_level(upstream_level):
        return (
            f"downstream {task.name} needs {task.upstream_level}-level features but "
            f"upstream {upstream_name or '(this one)'} gives {upstream_level}-level ones: "
            "not applicable"
        )
    for stage in ("train", "test"):
        for name, wanted in task.inputs(stage).items():
            stream = wanted.source(name)
            if stream not in corpus_streams:
                return (
                    f"downstream {task.name} reads audio stream {stream!r}, which corpus "
                    f"{corpus_name} lacks (it has {', '.join(corpus_streams)}); use "
                    f"corpus={task.default_corpus}"
                )
            if corpus_streams[stream] not in wanted.channels:
                return (
                    f"downstream {task.name} takes {'/'.join(map(str, wanted.channels))}-"
                    f"channel audio on stream {stream!r}, corpus {corpus_name} has "
                    f"{corpus_streams[stream]} channels; use corpus={task.default_corpus}"
                )
    return None
