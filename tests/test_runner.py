"""End-to-end runs on the seconds-to-build tiny-synth corpus."""

import json

import pytest
import soundfile as sf

from speechbench import cache, paths, registry
from speechbench.corpora.tiny_synth import TinySynth
from speechbench.errors import AudioError, ConfigError
from speechbench.runner import run
from speechbench.store import ResultsStore

FAST = [
    "corpus=tiny-synth",
    "downstream.hidden=64",
    "downstream.batch_size=8",
    "downstream.lr=0.005",
    "downstream.patience=100",
]


def test_head_learns_and_second_run_is_reused(sb_home):
    result = run(["upstream=fbank", "downstream.max_epochs=25", *FAST])
    metrics = result.row["metrics"]
    assert result.row["status"] == "finished" and not result.reused
    # an empty transcript scores CER 1.0: the head must have learned the tone words
    assert metrics["cer"] < 0.6, metrics
    timings = result.row["timings"]
    assert set(timings) >= {"extract_s", "train_s", "eval_s", "train_cpu_s", "eval_cpu_s"}
    # 25 epochs of training cost CPU time; a phase's CPU time on one thread is ~ its wall time
    assert 0 < timings["train_cpu_s"] <= 2 * timings["train_s"] + 1
    # the site's columns: seconds of audio turned into features, and the upstream's weights
    records = TinySynth().prepare()
    assert result.row["timings"]["audio_s"] == pytest.approx(sum(r.duration for r in records))
    assert result.row["upstream_params"] == 0  # fbank is fixed DSP
    assert result.row["versions"]["torch"].startswith("2.13")
    again = run(["upstream=fbank", "downstream.max_epochs=25", *FAST])
    assert again.reused and again.run_id == result.run_id
    forced = run(["upstream=fbank", "downstream.max_epochs=1", *FAST], force=True)
    assert forced.row["timings"]["cache_hits"] == 3  # features came from the cache
    assert len(ResultsStore(paths.results_db()).runs()) == 2
    predictions = (paths.results_dir() / "runs" / result.run_id / "predictions.jsonl").read_text()
    assert len(predictions.splitlines()) == TinySynth.sizes["test"]


def test_interrupted_run_resumes_from_its_checkpoint(sb_home, monkeypatch):
    from speechbench.downstreams.asr import ASR

    original = ASR.evaluate
    calls = {"n": 0}

    def flaky(self, head, batches, stage, ctx):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C in epoch 3
        return original(self, head, batches, stage, ctx)

    monkeypatch.setattr(ASR, "evaluate", flaky)
    args = ["upstream=mfcc", "downstream.max_epochs=4", *FAST]
    with pytest.raises(KeyboardInterrupt):
        run(args)
    rows = ResultsStore(paths.results_db()).runs()
    assert [r["status"] for r in rows] == ["interrupted"]
    monkeypatch.setattr(ASR, "evaluate", original)
    result = run(args)
    history = json.loads(
        (paths.results_dir() / "runs" / result.run_id / "training.json").read_text()
    )
    assert [h["epoch"] for h in history["history"]] == [1, 2, 3, 4]
    assert "resumed from" in (paths.results_dir() / "runs" / result.run_id / "run.log").read_text()
    assert ResultsStore(paths.results_db()).get(result.run_id)["status"] == "finished"


def test_corrupt_audio_in_a_corpus_is_named(sb_home):
    records = TinySynth().prepare()
    victim = TinySynth().audio_path(records[5])
    victim.write_bytes(b"garbage")
    with pytest.raises(AudioError, match=str(victim)):
        run(["upstream=mfcc", "downstream.max_epochs=1", *FAST])
    assert ResultsStore(paths.results_db()).runs()[0]["status"] == "failed"
    assert not cache.list_entries() or all(
        e["split"] != records[5].split for e in cache.list_entries()
    )


def test_wrong_sample_rate_in_a_corpus_is_named(sb_home):
    records = TinySynth().prepare()
    victim = TinySynth().audio_path(records[0])
    data, _ = sf.read(victim)
    sf.write(victim, data, 8000)
    with pytest.raises(AudioError, match="sample rate is 8000 Hz"):
        run(["upstream=mfcc", "downstream.max_epochs=1", *FAST])


def test_phone_units_need_phones(sb_home):
    with pytest.raises(ConfigError, match="needs a corpus with phone alignments"):
        run(["upstream=mfcc", "downstream.units=phone", "downstream.max_epochs=1", *FAST])


@pytest.mark.parametrize("min_epochs, expected", [(0, 2), (4, 4)])
def test_patience_counts_only_after_min_epochs(sb_home, monkeypatch, min_epochs, expected):
    from speechbench.downstreams.asr import ASR

    monkeypatch.setattr(
        ASR, "evaluate", lambda self, head, batches, stage, ctx: ({"cer": 1.0, "wer": 1.0}, [])
    )
    result = run(
        [
            "upstream=mfcc",
            "downstream.max_epochs=10",
            "downstream.patience=1",
            f"downstream.min_epochs={min_epochs}",
            *FAST[:-1],
        ]
    )
    history = json.loads(
        (paths.results_dir() / "runs" / result.run_id / "training.json").read_text()
    )
    assert history["epochs_run"] == expected


def test_phone_targets_leave_silence_out():
    from speechbench.downstreams.asr import ASR

    from speechbench.corpora.base import Utterance

    phones = [["sil", 0, 0.1], ["h", 0.1, 0.2], ["aɪ", 0.2, 0.4], ["sil", 0.4, 0.5]]
    record = Utterance("u", "u.wav", 16000, 0.5, "train", text="hi", phones=phones)
    asr = ASR()
    asr.setup([record])
    assert asr.units == ["aɪ", "h"]
    assert asr.reference(record) == "h aɪ"
    assert asr.target(record).tolist() == [2, 1]


def test_a_truncated_checkpoint_is_moved_aside_and_the_run_restarts(sb_home, monkeypatch):
    from speechbench.downstreams.asr import ASR

    original = ASR.evaluate

    def interrupted(self, head, batches, stage, ctx):
        raise KeyboardInterrupt  # after epoch 1's training, before its checkpoint

    args = ["upstream=mfcc", "downstream.max_epochs=2", *FAST]
    monkeypatch.setattr(ASR, "evaluate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(args)
    monkeypatch.setattr(ASR, "evaluate", original)
    run_dir = paths.results_dir() / "runs" / ResultsStore(paths.results_db()).runs()[0]["run_id"]
    checkpoint = run_dir / "checkpoint.pt"
    checkpoint.write_bytes(b"PK\x03\x04 truncated")
    result = run(args)
    assert ResultsStore(paths.results_db()).get(result.run_id)["status"] == "finished"
    assert list(run_dir.glob("checkpoint.pt.corrupt-*"))  # kept for a look, not deleted
    assert "is unreadable" in (run_dir / "run.log").read_text()


def test_options_out_of_range_fail_before_anything_runs(sb_home):
    for bad, said in (
        ("downstream.lr=-1", "downstream.lr: expected > 0.0"),
        ("downstream.dropout=2", "downstream.dropout: expected >= 0.0 and <= 0.95"),
        ("downstream.batch_size=0", "downstream.batch_size: expected >= 1"),
        ("downstream.max_epochs=0", "downstream.max_epochs: expected >= 1"),
        ("threads=-3", "threads: expected >= 0"),
        ("upstream.num_mel_bins=0", "upstream.num_mel_bins: expected >= 1"),
        ("downstream.units=words", "downstream.units: expected one of auto, char, phone"),
    ):
        with pytest.raises(ConfigError, match=said):
            run(["upstream=mfcc", "corpus=tiny-synth", bad])
    assert not paths.results_db().exists() or ResultsStore(paths.results_db()).runs() == []


def test_a_new_checkpoint_file_is_a_new_run(tmp_path):
    """A re-shipped or re-pretrained checkpoint must never be served the old run's result:
    the weight file's hash is part of the run's identity (fixed front ends keep theirs)."""
    from speechbench.config import resolve
    from speechbench.runner import corpora_of, run_identity

    def identity(args):
        config = resolve(args)
        downstream_cls = registry.get("downstreams", config.settings.downstream)
        upstream_cls = registry.get("upstreams", config.settings.upstream)
        return run_identity(config, upstream_cls, corpora_of(config, downstream_cls))

    fixed = identity(["upstream=fbank", "corpus=tiny-synth"])
    assert "upstream_weights" not in fixed  # stored runs of fixed front ends keep their ids
    weights = tmp_path / "model.pt"
    weights.write_bytes(b"first checkpoint")
    for key in ("upstream=hubert upstream.path=", "upstream=ctap upstream.checkpoint="):
        args = [*f"{key}{weights}".split(), "corpus=tiny-synth"]
        before = identity(args)
        weights.write_bytes(weights.read_bytes() + b" retrained")
        after = identity(args)
        assert before["upstream_weights"] != after["upstream_weights"], key
