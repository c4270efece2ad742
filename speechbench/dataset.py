"""What a task sees of its data: records per corpus and split, and batches built from them.

:class:`TaskData` holds, for every corpus of a run, its records per split and the
cached upstream features per (split, stream) as :class:`speechbench.cache.FeatureSet`
views (memory-mapped: a batch reads only its own items). :meth:`TaskData.batches` is the
one batch builder: length-bucketed (``speechbench.batching``), features read and padded
per batch, waveforms loaded, resampled, cropped or padded per the task's
:class:`~speechbench.downstreams.base.Input` declarations, targets collated by the task
with the feature frame counts. Peak memory is bounded by a batch, not the corpus.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from speechbench import audio
from speechbench.batching import length_groups, pad_frames, pad_stack
from speechbench.corpora.base import MAIN, SPLITS, Corpus, Utterance
from speechbench.downstreams.base import Batch, Downstream, Input, Stage
from speechbench.errors import ConfigError


class Features(Protocol):
    """Read access to one split's cached features of one stream (see speechbench.cache)."""

    def frames(self, id: str) -> int: ...

    def get(self, id: str, layers: Sequence[int] | None = None) -> torch.Tensor: ...

    def batch(
        self, ids: Sequence[str], layers: Sequence[int] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]: ...

    def __contains__(self, id: object) -> bool: ...


@dataclass
class CorpusData:
    corpus: Corpus
    records: dict[str, list[Utterance]]  # split -> records
    features: dict[tuple[str, str], Features] = field(default_factory=dict)  # (split, stream)


@dataclass
class TaskData:
    """Every corpus of a run, in the order given; the first is the main one."""

    corpora: dict[str, CorpusData]

    @property
    def names(self) -> list[str]:
        return list(self.corpora)

    def records(self, split: str, corpus: str | None = None) -> list[Utterance]:
        names = [corpus] if corpus else self.names
        return [r for name in names for r in self.corpora[name].records.get(split, [])]

    def batches(
        self,
        task: Downstream,
        corpus: str,
        split: str,
        stage: Stage,
        batch_size: int,
        max_frames: int,
        rng: random.Random | None = None,
        records: list[Utterance] | None = None,
    ) -> list[BatchPlan]:
        """Length-bucketed batch plans of one corpus' split (shuffled when ``rng``)."""
        data = self.corpora[corpus]
        records = data.records.get(split, []) if records is None else records
        inputs = task.inputs(stage)
        lengths = [self._length(data, split, r, inputs) for r in records]
        groups = length_groups(lengths, max_frames, batch_size, rng)
        crop_rng = random.Random(rng.random()) if rng is not None else None
        return [
            BatchPlan(self, task, corpus, split, stage, [records[i] for i in g], crop_rng)
            for g in groups
        ]

    @staticmethod
    def _length(data: CorpusData, split: str, record: Utterance, inputs: dict[str, Input]):
        """The length that sorts batches: main-stream frames, else its duration."""
        if MAIN in inputs and inputs[MAIN].kind == "features":
            return data.features[(split, MAIN)].frames(record.id)
        return max(1, round(record.duration * 100))  # centiseconds, like 100 frames/s


@dataclass
class BatchPlan:
    """The records of one batch; ``materialize`` reads its features and audio."""

    data: TaskData
    task: Downstream
    corpus: str
    split: str
    stage: Stage
    records: list[Utterance]
    crop_rng: random.Random | None = None

    def __len__(self) -> int:
        return len(self.records)

    def materialize(self) -> Batch:
        corpus_data = self.data.corpora[self.corpus]
        batch = Batch(records=self.records, targets=None, corpus=self.corpus)
        for stream, wanted in self.task.inputs(self.stage).items():
            if wanted.kind == "features":
                store = corpus_data.features[(self.split, stream)]
                ids = [r.id for r in self.records]  # read straight into B x L x T x D
                batch.features[stream], batch.lengths[stream] = store.batch(ids)
            else:
                wavs = [self._waveform(corpus_data.corpus, r, stream, wanted) for r in self.records]
                batch.audio[stream], batch.lengths[stream] = pad_stack(wavs)
        frames = {s: batch.lengths[s] for s in batch.features}
        batch.targets = self.task.collate([self.task.target(r) for r in self.records], frames)
        return batch

    def _waveform(self, corpus: Corpus, record: Utterance, name: str, wanted: Input):
        stream = wanted.source(name)
        channels = corpus.streams.get(stream, 1)
        rate = wanted.sample_rate or record.sample_rate
        wav = audio.load(corpus.audio_path(record, stream), rate, record.sample_rate, channels)
        if wanted.crop_seconds > 0:
            wav = crop_or_pad(wav, int(round(wanted.crop_seconds * rate)), self.crop_rng)
        return wav


def crop_or_pad(wav: torch.Tensor, length: int, rng: random.Random | None) -> torch.Tensor:
    """``length`` samples of ``wav`` (last axis): a random window when ``rng`` is given
    (training), the start otherwise; zero-padded at the end when shorter."""
    total = wav.shape[-1]
    if total >= length:
        start = rng.randint(0, total - length) if rng is not None else 0
        return wav[..., start : start + length]
    return torch.nn.functional.pad(wav, (0, length - total))


def materialized(plans: Sequence[BatchPlan]) -> Iterator[Batch]:
    """Batches one at a time: at most one batch of features is resident."""
    for plan in plans:
        yield plan.materialize()


def split_records(records: list[Utterance]) -> dict[str, list[Utterance]]:
    return {name: [r for r in records if r.split == name] for name in SPLITS}


class DictFeatures:
    """Features held in a dict (id -> L x T x D): for tests and in-memory upstreams."""

    def __init__(self, features: dict[str, torch.Tensor]) -> None:
        self._features = features

    def frames(self, id: str) -> int:
        return int(self._features[id].shape[1])

    def get(self, id: str, layers: Sequence[int] | None = None) -> torch.Tensor:
        feats = self._features[id]
        return feats if layers is None else feats[list(layers)]

    def batch(
        self, ids: Sequence[str], layers: Sequence[int] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return pad_frames([self.get(i, layers).float() for i in ids])

    def __contains__(self, id: object) -> bool:
        return id in self._features

    def __len__(self) -> int:
        return len(self._features)


def require_streams(data: TaskData, task: Downstream) -> None:
    """Every stream a task reads exists on every record (a manifest edited by hand)."""
    for name, corpus_data in data.corpora.items():
        for split, records in corpus_data.records.items():
            inputs = task.inputs("train" if split == "train" else "test")
            for stream in {wanted.source(name) for name, wanted in inputs.items()}:
                for record in records:
                    if stream not in record.audio:
                        raise ConfigError(
                            f"corpus {name}: record {record.id} ({split}) has no audio stream "
                            f"{stream!r}, which downstream {task.name} reads; re-prepare "
                            "the corpus"
                        )


def describe(data: TaskData) -> dict[str, Any]:
    return {
        name: {split: len(rs) for split, rs in cd.records.items()}
        for name, cd in data.corpora.items()
    }
