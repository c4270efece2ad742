"""A tiny parallel corpus (mini-vc's build, three espeak-ng voices) for the generation tests."""

from __future__ import annotations

import pytest

from speechbench import registry
from speechbench.corpora.mini_phone import EspeakSpeaker
from speechbench.corpora.mini_vc import MiniVc


class TinyVc(MiniVc):
    """mini-vc's build with three espeak-ng voices and 20 sentences (seconds to build)."""

    name = "tiny-vc"
    version = "1"
    n_sentences = 20  # 14 train, 2 dev, 4 test sentences (the shared split)
    espeak_speakers = (
        EspeakSpeaker("m1", 45, 50),
        EspeakSpeaker("f2", 60, 60),
        EspeakSpeaker("m5", 40, 40),
    )
    festival_voices = ()
    use_piper = False


@pytest.fixture(scope="module")
def shared_folders(tmp_path_factory):
    """One tiny-vc build and one feature / vocoder cache for the tests of this module."""
    return tmp_path_factory.mktemp("tiny-vc-data"), tmp_path_factory.mktemp("tiny-vc-cache")


@pytest.fixture
def tiny_vc(sb_home, shared_folders, monkeypatch):
    monkeypatch.setenv("SPEECHBENCH_DATA", str(shared_folders[0]))
    monkeypatch.setenv("SPEECHBENCH_CACHE", str(shared_folders[1]))
    registry.register("corpora", TinyVc.name)(TinyVc)
    return sb_home


def bound(task, corpus=None):
    """``task`` bound to the tiny corpus' records (no upstream features: for the checks
    that run before any feature is read)."""
    from speechbench.dataset import CorpusData, TaskData, split_records

    corpus = corpus or TinyVc()
    data = TaskData({corpus.name: CorpusData(corpus, split_records(corpus.prepare()))})
    task.bind(data, 0)
    return task


def upstream(name: str = "mfcc"):
    from speechbench.downstreams.base import UpstreamInfo

    return UpstreamInfo(name, 39, 1, 100.0, "frame", 16000)
