import multiprocessing as mp
from dataclasses import replace

import torch
from speechbench.upstreams.base import Upstream
from speechbench.upstreams.spectral import MFCC, Fbank, FbankOptions, MFCCOptions

from speechbench import cache
from speechbench.corpora.tiny_synth import TinySynth


def _split(corpus, name="dev"):
    return [r for r in corpus.prepare() if r.split == name]


def test_miss_then_hit_returns_identical_features(sb_home):
    corpus = TinySynth()
    records = _split(corpus)
    first, hit1 = cache.cached_features(Fbank(), FbankOptions(), corpus, "dev", records, 60)
    second, hit2 = cache.cached_features(Fbank(), FbankOptions(), corpus, "dev", records, 60)
    assert (hit1, hit2) == (False, True)
    assert first.keys() == second.keys() == {r.id for r in records}
    assert all(torch.equal(first[k], second[k]) for k in first)
    feats = first[records[0].id]
    assert feats.shape[0] == 1 and feats.shape[2] == 80  # L x T x D
    assert not list(cache.features_root().rglob("*.tmp"))


def test_any_change_of_key_parts_misses(sb_home):
    corpus = TinySynth()
    records = _split(corpus)
    cache.cached_features(Fbank(), FbankOptions(), corpus, "dev", records, 60)
    options = FbankOptions(num_mel_bins=40)
    assert not cache.cached_features(Fbank(options), options, corpus, "dev", records, 60)[1]
    assert not cache.cached_features(MFCC(), MFCCOptions(), corpus, "dev", records, 60)[1]
    assert not cache.cached_features(Fbank(), FbankOptions(), corpus, "dev", records[:-1], 60)[1]

    class NewVersion(TinySynth):
        version = "2"

    newer = NewVersion(corpus.data_dir)
    newer_records = [replace(r) for r in records]
    key_old = cache.cache_key(
        cache.cache_key_parts(Fbank(), FbankOptions(), corpus, "dev", records)
    )
    key_new = cache.cache_key(
        cache.cache_key_parts(Fbank(), FbankOptions(), newer, "dev", newer_records)
    )
    assert key_old != key_new


def test_weights_change_the_key():
    class Tiny(Fbank):
        def __init__(self, value):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.tensor(value))

        def weights_fingerprint(self):
            return Upstream.weights_fingerprint(self)  # hash of the parameters

    assert Tiny(1.0).fingerprint() != Tiny(2.0).fingerprint()


def test_length_batches_bound_padded_audio():
    corpus_records = [type("R", (), {"duration": d})() for d in [1, 9, 2, 8, 3, 7, 30]]
    batches = cache.length_batches(corpus_records, max_seconds=16)
    assert sum(len(b) for b in batches) == 7
    for batch in batches:
        assert len(batch) == 1 or len(batch) * max(r.duration for r in batch) <= 16


def _extract(home, queue):
    import os

    os.environ["SPEECHBENCH_HOME"] = home
    corpus = TinySynth()
    records = [r for r in corpus.manifest() if r.split == "dev"]
    feats, hit = cache.cached_features(Fbank(), FbankOptions(), corpus, "dev", records, 60)
    queue.put((hit, float(sum(f.sum() for f in feats.values()))))


def test_concurrent_extractions_share_one_entry(sb_home):
    TinySynth().prepare()
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_extract, args=(str(sb_home), queue)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(60)
    assert sorted(hit for hit, _ in results) == [False, True]
    assert results[0][1] == results[1][1]
    assert len(cache.list_entries()) == 1
