import logging
import multiprocessing as mp
import pickle
from dataclasses import dataclass, replace

import numpy as np
import pytest
import soundfile as sf
import torch
from speechbench.upstreams.base import Upstream
from speechbench.upstreams.spectral import MFCC, Fbank, FbankOptions, MFCCOptions

from speechbench import audio, batching, cache
from speechbench.corpora.base import read_manifest, sha1_of, write_manifest
from speechbench.corpora.tiny_synth import TinySynth
from speechbench.errors import AudioError, SpeechbenchError


def _split(corpus, name="dev"):
    return [r for r in corpus.prepare() if r.split == name]


@dataclass
class ProjectionOptions:
    num_layers: int = 3
    dim: int = 8


class Projection(Upstream):
    """Synthetic multi-layer upstream: a fixed random projection of 20 ms frames."""

    name = "test-projection"
    Options = ProjectionOptions
    sample_rate = 16000
    frame_rate = 50.0

    def __init__(self, options=None):
        super().__init__(options)
        self.num_layers, self.dim = self.options.num_layers, self.options.dim
        generator = torch.Generator().manual_seed(0)
        self.register_buffer("weight", torch.randn(320, self.dim, generator=generator))

    def forward(self, wavs, lengths):
        frames = self.frame_lengths(lengths)
        usable = wavs[:, : wavs.shape[1] // 320 * 320]
        base = usable.reshape(len(wavs), -1, 320) @ self.weight  # B x T x D
        return [base.roll(k, dims=-1) + k for k in range(self.num_layers)], frames


def _direct(upstream, corpus, record):
    """Features of one utterance straight from the upstream (no cache, batch of one)."""
    wav = audio.load(corpus.audio_path(record), upstream.sample_rate, record.sample_rate)
    hidden, lengths = upstream(wav.unsqueeze(0), torch.tensor([len(wav)]))
    return torch.stack([h[0, : int(lengths[0])] for h in hidden])


def _entry_files(features):
    return {s: features.path.with_suffix(s) for s in (".bin", ".index", ".json")}


def test_miss_then_hit_returns_identical_features(sb_home):
    corpus = TinySynth()
    records = _split(corpus)
    first, hit1 = cache.cached_features(Fbank(), FbankOptions(), corpus, "dev", records, 60)
    second, hit2 = cache.cached_features(Fbank(), FbankOptions(), corpus, "dev", records, 60)
    assert (hit1, hit2) == (False, True)
    assert first.ids == second.ids == [r.id for r in records]
    assert len(second) == len(records) and records[0].id in second and "nope" not in second
    assert all(torch.equal(first.get(k), second.get(k)) for k in first.ids)
    feats = second.get(records[0].id)
    assert feats.shape[0] == 1 and feats.shape[2] == 80  # L x T x D
    assert feats.dtype == torch.float32 and second.dtype == torch.float32
    assert second.frames(records[0].id) == feats.shape[1]
    assert not list(cache.features_root().rglob("*.tmp"))
    assert set(cache.load_all(second)) == set(second.ids)


def test_round_trip_equals_direct_extraction_and_layers_select(sb_home):
    corpus = TinySynth()
    records = _split(corpus)
    upstream = Projection()
    features, _ = cache.cached_features(upstream, upstream.options, corpus, "dev", records, 5)
    assert (features.num_layers, features.dim, features.dtype) == (3, 8, torch.float32)
    for record in records:
        direct = _direct(upstream, corpus, record)
        assert torch.allclose(features.get(record.id), direct, atol=1e-5)
        assert features.frames(record.id) == direct.shape[1]
        assert torch.equal(features.get(record.id, layers=[2, 0]), features.get(record.id)[[2, 0]])
        assert torch.equal(features.get(record.id, layers=[-1]), features.get(record.id)[2:])
    with pytest.raises(IndexError):
        features.get(records[0].id, layers=[3])
    ids = [r.id for r in records[:5]]
    for layers in (None, [1]):
        batch, lengths = features.batch(ids, layers)
        expected = batching.pad_frames([features.get(i, layers) for i in ids])
        assert torch.equal(batch, expected[0]) and torch.equal(lengths, expected[1])
    # a pickled set (e.g. sent to a data-loader worker) reopens its mapping
    clone = pickle.loads(pickle.dumps(features))
    assert torch.equal(clone.get(records[1].id), features.get(records[1].id))


def test_dtype_rule_half_above_threshold(sb_home):
    corpus = TinySynth()
    records = _split(corpus)[:3]
    small = Projection(ProjectionOptions(num_layers=2, dim=512))  # 1024: not above
    big = Projection(ProjectionOptions(num_layers=3, dim=512))  # 1536 > 1024
    assert cache.stored_dtype(small) == "float32" and cache.stored_dtype(big) == "float16"
    feats, _ = cache.cached_features(big, big.options, corpus, "dev", records, 60)
    assert feats.dtype == torch.float16
    got = feats.get(records[0].id)
    assert got.dtype == torch.float32
    assert torch.equal(got, _direct(big, corpus, records[0]).half().float())
    assert feats.get_stored(records[0].id).dtype == torch.float16
    assert feats.nbytes == sum(3 * feats.frames(r.id) * 512 * 2 for r in records)
    assert cache.load_all(feats)[records[0].id].dtype == torch.float16


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
    # content hash and stream are part of the key; a str sha1 is the main stream's
    changed = [replace(records[0], sha1={"main": "0" * 40}), *records[1:]]
    as_str = [replace(r, sha1=r.sha1["main"]) for r in records]  # records made before streams
    key = lambda recs, **kw: cache.cache_key(  # noqa: E731
        cache.cache_key_parts(Fbank(), FbankOptions(), corpus, "dev", recs, **kw)
    )
    assert key(changed) != key_old
    assert key(as_str) == key_old
    assert key(records, stream="main") == key_old


def test_replaced_audio_never_serves_stale_features(sb_home):
    corpus = TinySynth()
    records = _split(corpus)
    old, _ = cache.cached_features(Fbank(), FbankOptions(), corpus, "dev", records, 60)
    target = corpus.audio_path(records[0])
    wav, rate = sf.read(str(target), dtype="float32")
    noise = 0.05 * np.random.default_rng(1).standard_normal(len(wav)).astype(np.float32)
    audio.write_audio(target, wav * 0.5 + noise, rate)
    # replaced without re-preparing: warm and cold alike refuse, naming the file
    with pytest.raises(AudioError, match=r"re-prepare.*--force") as err:
        cache.cached_features(Fbank(), FbankOptions(), corpus, "dev", records, 60)
    assert str(target) in str(err.value)
    # re-prepared (the manifest has the new sha1): a new key, new features
    manifest = read_manifest(corpus.manifest_path)
    for record in manifest:
        if record.id == records[0].id:
            record.sha1 = sha1_of(target)
    write_manifest(corpus.manifest_path, manifest)
    fresh_records = _split(corpus)
    new, hit = cache.cached_features(Fbank(), FbankOptions(), corpus, "dev", fresh_records, 60)
    assert not hit and new.key != old.key
    assert not torch.equal(new.get(records[0].id), old.get(records[0].id))
    assert torch.equal(new.get(records[1].id), old.get(records[1].id))
    # a deleted file is an error on a warm hit too
    corpus.audio_path(records[1]).unlink()
    with pytest.raises(AudioError, match="not found"):
        cache.cached_features(Fbank(), FbankOptions(), corpus, "dev", fresh_records, 60)


def _rewrite_with_sha1(corpus, record_id, path):
    manifest = read_manifest(corpus.manifest_path)
    for record in manifest:
        if record.id == record_id:
            record.sha1 = sha1_of(path)
    write_manifest(corpus.manifest_path, manifest)


@pytest.mark.parametrize("damage", ["one-sample", "half-bytes"])
def test_audio_shorter_than_manifest_is_a_clear_error(sb_home, damage):
    corpus = TinySynth()
    records = _split(corpus)
    target = corpus.audio_path(records[2])
    if damage == "one-sample":
        audio.write_audio(target, np.array([0.1], dtype=np.float32), 16000)
    else:
        data = target.read_bytes()
        target.write_bytes(data[: len(data) // 2])
    # even with a matching sha1 in the manifest, the duration check catches it
    _rewrite_with_sha1(corpus, records[2].id, target)
    with pytest.raises(AudioError) as err:
        cache.cached_features(Fbank(), FbankOptions(), corpus, "dev", _split(corpus), 60)
    message = str(err.value)
    assert str(target) in message and "\n" not in message
    assert "manifest says" in message and "re-prepare" in message
    assert not cache.list_entries()  # nothing half-written was kept
    assert not list(cache.features_root().rglob("*.tmp"))


def test_duration_tolerance_is_max_10ms_or_1_percent(sb_home):
    assert cache.duration_tolerance(0.5) == pytest.approx(0.010)
    assert cache.duration_tolerance(10.0) == pytest.approx(0.100)
    corpus = TinySynth()
    records = _split(corpus)[:2]
    nudged = [replace(records[0], duration=records[0].duration + 0.009), records[1]]
    assert cache.cached_features(Fbank(), FbankOptions(), corpus, "dev", nudged, 60)[0]
    off = [replace(records[0], duration=records[0].duration + 0.03), records[1]]
    with pytest.raises(AudioError, match="manifest says"):
        cache.cached_features(Fbank(), FbankOptions(), corpus, "dev", off, 60)


@pytest.mark.parametrize("damage", ["truncate", "flip", "no-record", "no-index", "bad-index"])
def test_broken_entry_is_named_and_rebuilt(sb_home, caplog, damage):
    corpus = TinySynth()
    records = _split(corpus)
    first, _ = cache.cached_features(Fbank(), FbankOptions(), corpus, "dev", records, 60)
    expected = {k: first.get(k) for k in first.ids}
    files = _entry_files(first)
    first.close()
    if damage == "truncate":
        files[".bin"].write_bytes(files[".bin"].read_bytes()[: first.nbytes // 2])
    elif damage == "flip":
        data = bytearray(files[".bin"].read_bytes())
        data[len(data) // 2] ^= 0xFF
        files[".bin"].write_bytes(bytes(data))
    elif damage == "no-record":
        files[".json"].unlink()
    elif damage == "no-index":
        files[".index"].unlink()
    else:
        files[".index"].write_text("{not json")
    caplog.set_level(logging.WARNING, logger="speechbench.cache")
    again, hit = cache.cached_features(Fbank(), FbankOptions(), corpus, "dev", records, 60)
    assert not hit
    warnings = [r.getMessage() for r in caplog.records if r.name == "speechbench.cache"]
    assert len(warnings) == 1 and first.key in warnings[0] and "rebuilding" in warnings[0]
    assert all(torch.equal(again.get(k), expected[k]) for k in again.ids)
    assert cache.cached_features(Fbank(), FbankOptions(), corpus, "dev", records, 60)[1]


def test_large_entry_checks_blocks_on_first_read(sb_home, monkeypatch):
    monkeypatch.setattr(cache, "VERIFY_ON_OPEN_BYTES", 0)  # every entry counts as large
    corpus = TinySynth()
    records = _split(corpus)
    first, _ = cache.cached_features(Fbank(), FbankOptions(), corpus, "dev", records, 60)
    middle = first.ids[len(first) // 2]
    row = first.ids.index(middle)
    files = _entry_files(first)
    data = bytearray(files[".bin"].read_bytes())
    data[int(first._offsets[row]) * 4 + 5] ^= 0xFF
    files[".bin"].write_bytes(bytes(data))
    opened, hit = cache.cached_features(Fbank(), FbankOptions(), corpus, "dev", records, 60)
    assert hit  # only the first and last blocks are checked at open
    opened.get(first.ids[0])
    with pytest.raises(cache.CorruptCacheError, match="bad checksum") as err:
        opened.get(middle)
    assert "\n" not in str(err.value) and middle in str(err.value)
    assert not cache.cached_features(Fbank(), FbankOptions(), corpus, "dev", records, 60)[1]


def test_length_batches_bound_padded_audio():
    corpus_records = [type("R", (), {"duration": d})() for d in [1, 9, 2, 8, 3, 7, 30]]
    batches = cache.length_batches(corpus_records, max_seconds=16)
    assert sum(len(b) for b in batches) == 7
    for batch in batches:
        assert len(batch) == 1 or len(batch) * max(r.duration for r in batch) <= 16


def test_list_and_clear(sb_home):
    corpus = TinySynth()
    records = _split(corpus)
    cache.cached_features(Fbank(), FbankOptions(), corpus, "dev", records, 60)
    cache.cached_features(MFCC(), MFCCOptions(), corpus, "dev", records, 60)
    entries = cache.list_entries()
    assert sorted(e["upstream"] for e in entries) == ["fbank", "mfcc"]
    assert all(e["items"] == len(records) and e["bytes"] > 0 for e in entries)
    assert cache.clear("fbank") == 1
    assert [e["upstream"] for e in cache.list_entries()] == ["mfcc"]
    fbank_key = next(e for e in entries if e["upstream"] == "fbank")["key"]
    assert not list(cache.features_root().rglob(f"{fbank_key}.*"))
    assert cache.clear() == 1 and not cache.features_root().exists()


def _extract(home, queue):
    import os

    os.environ["SPEECHBENCH_HOME"] = home
    corpus = TinySynth()
    records = [r for r in corpus.manifest() if r.split == "dev"]
    feats, hit = cache.cached_features(Fbank(), FbankOptions(), corpus, "dev", records, 60)
    queue.put((hit, float(sum(feats.get(k).sum() for k in feats.ids))))


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
    assert not list(cache.features_root().rglob("*.tmp"))


class TwoStreams(TinySynth):
    name = "tiny-two-streams"
    streams = {"main": 1, "enroll": 1}

    def build(self, root):
        records, attribution = super().build(root)
        for i, record in enumerate(records):  # enroll: the next record's audio
            record.streams = {"enroll": records[(i + 1) % len(records)].path}
        return records, attribution


def test_streams_are_cached_separately(sb_home):
    corpus = TwoStreams()
    records = _split(corpus)
    main, _ = cache.cached_features(Fbank(), FbankOptions(), corpus, "dev", records, 60)
    enroll, hit = cache.cached_features(
        Fbank(), FbankOptions(), corpus, "dev", records, 60, stream="enroll"
    )
    assert not hit and enroll.key != main.key
    for record in records[:-1]:  # record i's enroll stream is the main audio of record i+1
        following = records[records.index(record) + 1]
        assert torch.equal(enroll.get(record.id), main.get(following.id))
    assert cache.cached_features(
        Fbank(), FbankOptions(), corpus, "dev", records, 60, stream="enroll"
    )[1]
    assert {e["stream"] for e in cache.list_entries()} == {"main", "enroll"}

    class Stereo(TwoStreams):
        streams = {"main": 1, "enroll": 2}

    with pytest.raises(SpeechbenchError, match="2 channels"):
        cache.cached_features(Fbank(), FbankOptions(), Stereo(), "dev", records, 60, "enroll")


def test_run_with_truncated_audio_ends_in_one_error_line(sb_home):
    from typer.testing import CliRunner

    from speechbench.cli import app

    corpus = TinySynth()
    target = corpus.audio_path(_split(corpus, "train")[0])
    target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    args = ["run", "upstream=mfcc", "corpus=tiny-synth", "downstream.max_epochs=1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and str(target) in errors[0] and "manifest says" in errors[0]
    assert "Traceback" not in result.output
