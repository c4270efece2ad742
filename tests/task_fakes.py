"""Bind a task to in-memory records + features (no corpus on disk, no upstream)."""

from __future__ import annotations

from pathlib import Path

import torch
from speechbench.downstreams.base import UpstreamInfo

from speechbench.corpora.base import Corpus, Utterance
from speechbench.dataset import CorpusData, DictFeatures, TaskData


class MemoryCorpus(Corpus):
    """A corpus whose records and features the test holds in memory."""

    name = "memory"
    version = "0"
    license = "CC0"
    description = "records built by a test"
    sample_rate = 16000

    def build(self, root: Path):  # pragma: no cover - never prepared
        raise NotImplementedError


def task_data(
    splits: dict[str, tuple[list[Utterance], dict[str, torch.Tensor]]], name: str = "memory"
) -> TaskData:
    corpus = MemoryCorpus()
    records = {split: list(recs) for split, (recs, _) in splits.items()}
    features = {(split, "main"): DictFeatures(feats) for split, (_, feats) in splits.items()}
    return TaskData({name: CorpusData(corpus, records, features)})


def upstream_info(dim: int, num_layers: int = 2, frame_rate: float = 100.0) -> UpstreamInfo:
    level = "frame" if frame_rate > 0 else "utterance"
    return UpstreamInfo("fake", dim, num_layers, frame_rate, level, 16000)
