"""Two small downstreams built here prove the v2 task contract end to end on generated data.

1. ``tone-enhance`` reads the *waveform* of two streams (a noisy tone and its clean
   reference), trains a small filter with an SI-SDR loss, writes the enhanced audio
   through the artefact sink and is scored by an *evaluator* plugin (a frozen pitch
   estimator registered here) besides SI-SDR.
2. ``tone-joint`` trains one encoder *jointly over two corpora* (different label sets,
   per-corpus batches), then *fine-tunes* on one of them; it resumes in the stage where
   it was interrupted.
Plus the one-line errors of the contract: a stream a task needs that a corpus lacks, a
channel count a task cannot take, and a missing stream file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from speechbench.downstreams.base import (
    Batch,
    GradientTrained,
    Input,
    StageSpec,
    TrainOptions,
    WeightedLayerSum,
    lengths_mask,
)
from speechbench.evaluators.base import QualityScorer
from speechbench.metrics.separation import si_sdr
from torch import nn

from speechbench import paths, registry
from speechbench.audio import read_audio, write_audio
from speechbench.corpora.base import Corpus, Utterance
from speechbench.errors import AudioError, ConfigError, CorpusError
from speechbench.runner import run
from speechbench.store import ResultsStore

RATE = 8000


def _tone(freq: float, seconds: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * freq * t + rng.uniform(0, 6.28))).astype(np.float32)


# ------------------------------------------------------------------ corpora
class NoisyTones(Corpus):
    """Tones in white noise (``main``) with the clean tone as ``reference``."""

    name = "noisy-tones"
    version = "1"
    license = "CC0-1.0 (generated)"
    description = "tones in noise with clean references"
    sample_rate = RATE
    streams = {"main": 1, "reference": 1}
    sizes = {"train": 24, "dev": 6, "test": 6}

    def build(self, root: Path):
        rng = np.random.default_rng(0)
        records = []
        for split, count in self.sizes.items():
            for i in range(count):
                freq = float(rng.uniform(200, 800))
                clean = _tone(freq, 0.5, rng)
                noisy = clean + 0.2 * rng.standard_normal(clean.size).astype(np.float32)
                rid = f"{split}-{i:02d}"
                write_audio(root / f"noisy/{rid}.wav", noisy, RATE)
                write_audio(root / f"clean/{rid}.wav", clean, RATE)
                records.append(
                    Utterance(
                        rid,
                        f"noisy/{rid}.wav",
                        RATE,
                        0.5,
                        split,
                        labels={"freq": freq},
                        streams={"reference": f"clean/{rid}.wav"},
                    )
                )
        return records, "generated"


class ToneClasses(Corpus):
    """Tones whose class is their frequency band; two corpora with different classes."""

    license = "CC0-1.0 (generated)"
    description = "tone classes"
    sample_rate = RATE
    version = "1"
    bands: dict[str, tuple[float, float]] = {}
    seed = 0

    def build(self, root: Path):
        rng = np.random.default_rng(self.seed)
        records = []
        for split, per_class in (("train", 12), ("dev", 3), ("test", 4)):
            for label, (low, high) in self.bands.items():
                for i in range(per_class):
                    rid = f"{split}-{label}-{i}"
                    wav = _tone(float(rng.uniform(low, high)), 0.3, rng)
                    wav = wav + 0.02 * rng.standard_normal(wav.size).astype(np.float32)
                    write_audio(root / f"{rid}.wav", wav, RATE)
                    records.append(
                        Utterance(rid, f"{rid}.wav", RATE, 0.3, split, labels={"class": label})
                    )
        return records, "generated"


class TonesA(ToneClasses):
    name = "tones-a"
    bands = {"low": (150, 250), "mid": (500, 700), "high": (1500, 2000)}


class TonesB(ToneClasses):
    name = "tones-b"
    seed = 1
    bands = {"b1": (300, 400), "b2": (900, 1200)}


class StereoTones(NoisyTones):
    name = "stereo-tones"
    streams = {"main": 2, "reference": 1}


# ------------------------------------------------------------------ evaluator
class TonePitch(QualityScorer):
    """A frozen "model" that hears the dominant frequency of a waveform (FFT peak)."""

    name = "tone-pitch"
    kind = "quality"
    sample_rate = RATE

    def fingerprint(self) -> str:
        return "fft-peak-v1"

    def score(self, wavs, sample_rate=None):
        found = []
        for wav in self.prepare(wavs, sample_rate):
            spectrum = np.abs(np.fft.rfft(wav.numpy()))
            found.append({"pitch_hz": float(np.argmax(spectrum) * self.sample_rate / wav.numel())})
        return found


# ------------------------------------------------------------------ task 1: waveform in, audio out
@dataclass
class EnhanceOptions(TrainOptions):
    lr: float = 3e-3
    batch_size: int = 4
    max_epochs: int = 20
    patience: int = 20


class Enhancer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.filter = nn.Conv1d(1, 1, 65, padding=32, bias=False)
        with torch.no_grad():  # start as the identity: the noisy input itself
            self.filter.weight.zero_()
            self.filter.weight[0, 0, 32] = 1.0

    def forward(self, wav: torch.Tensor) -> torch.Tensor:  # B x S -> B x S
        return self.filter(wav[:, None])[:, 0]


class ToneEnhance(GradientTrained):
    name = "tone-enhance"
    Options = EnhanceOptions
    default_corpus = "noisy-tones"
    metrics = ("si_sdr",)
    primary_metric = "si_sdr"
    selection_metric = "loss"  # cheap: no evaluator during training
    evaluators = ("tone-pitch",)

    def inputs(self, stage):
        return {
            "main": Input("waveform", crop_seconds=0.25 if stage == "train" else 0.0),
            "reference": Input("waveform"),
        }

    def setup(self, train):
        pass

    def target(self, record):
        return record.labels["freq"]

    def build_head(self, upstream):
        return Enhancer()

    def loss(self, head, batch: Batch):
        est = head(batch.audio["main"])
        ref = batch.audio["reference"][:, : est.shape[1]]  # train crops main only
        ref = ref - ref.mean(1, keepdim=True)
        est = est - est.mean(1, keepdim=True)
        scale = (est * ref).sum(1, keepdim=True) / (ref.pow(2).sum(1, keepdim=True) + 1e-8)
        target = scale * ref
        ratio = target.pow(2).sum(1) / ((est - target).pow(2).sum(1) + 1e-8)
        return -10 * torch.log10(ratio + 1e-8).mean()

    def predict(self, head, batch):
        return [w for w in head(batch.audio["main"])]

    def score(self, predictions, records, stage):
        raise AssertionError("evaluate() scores with the references it holds")

    def evaluate(self, head, batches, stage, ctx):
        pitch = ctx.evaluator("tone-pitch") if stage == "test" else None
        sdr, errors, outputs = [], [], []
        with torch.no_grad():
            for batch in batches:
                estimates = self.predict(head, batch)
                for k, (record, est) in enumerate(zip(batch.records, estimates, strict=True)):
                    ref = batch.audio["reference"][k]
                    sdr.append(si_sdr.fn(est.numpy(), ref.numpy()))
                    if pitch is not None:
                        heard = pitch.score([est], RATE)[0]["pitch_hz"]
                        errors.append(abs(heard - record.labels["freq"]))
                    if ctx.sink.enabled:
                        name = ctx.sink.audio(f"enhanced/{record.id}.wav", est / 2, RATE)
                        outputs.append({"id": record.id, "audio": name})
        metrics = {"si_sdr": float(np.mean(sdr))}
        if errors:
            metrics["pitch_error_hz"] = float(np.mean(errors))
        return metrics, outputs


# ------------------------------------------------------------------ task 2: joint, then fine-tune
@dataclass
class JointOptions(TrainOptions):
    lr: float = 2e-2
    max_epochs: int = 8
    patience: int = 10
    finetune_lr: float = 1e-3


class JointHead(nn.Module):
    def __init__(self, dim: int, num_layers: int, classes: dict[str, list[str]]) -> None:
        super().__init__()
        self.layer_sum = WeightedLayerSum(num_layers)
        self.encoder = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 32), nn.ReLU())
        self.outputs = nn.ModuleDict({c: nn.Linear(32, len(v)) for c, v in classes.items()})

    def forward(self, features, lengths, corpus):
        x = self.encoder(self.layer_sum(features))
        mask = lengths_mask(lengths, x.shape[1]).unsqueeze(-1)
        pooled = (x * mask).sum(1) / mask.sum(1)
        return self.outputs[corpus](pooled)


class ToneJoint(GradientTrained):
    name = "tone-joint"
    Options = JointOptions
    default_corpus = "tones-a"
    metrics = ("accuracy",)
    primary_metric = "accuracy"

    def setup(self, train):
        self.classes = {
            name: sorted({r.labels["class"] for r in self.data.records("train", name)})
            for name in self.data.names
        }
        self.corpus_of = {r.id: n for n in self.data.names for r in self.data.records("train", n)}

    def schedule(self, corpora):
        return [
            StageSpec("joint", tuple(corpora)),
            StageSpec(
                "finetune",
                (corpora[0],),
                select_on=corpora[0],
                overrides={"lr": self.options.finetune_lr, "max_epochs": 3},
            ),
        ]

    def target(self, record):
        return record.labels["class"]

    def build_head(self, upstream):
        return JointHead(upstream.dim, upstream.num_layers, self.classes)

    def _labels(self, batch):
        return torch.tensor([self.classes[batch.corpus].index(c) for c in batch.targets])

    def loss(self, head, batch):
        logits = head(batch.features["main"], batch.lengths["main"], batch.corpus)
        return F.cross_entropy(logits, self._labels(batch))

    def predict(self, head, batch):
        logits = head(batch.features["main"], batch.lengths["main"], batch.corpus)
        return [self.classes[batch.corpus][i] for i in logits.argmax(1).tolist()]

    def score(self, predictions, records, stage):
        hits = [p == r.labels["class"] for p, r in zip(predictions, records, strict=True)]
        return {"accuracy": float(np.mean(hits))}


@pytest.fixture
def plugins(sb_home):
    registry.register("corpora", NoisyTones.name)(NoisyTones)
    registry.register("corpora", StereoTones.name)(StereoTones)
    registry.register("corpora", TonesA.name)(TonesA)
    registry.register("corpora", TonesB.name)(TonesB)
    registry.register("evaluators", TonePitch.name)(TonePitch)
    registry.register("downstreams", ToneEnhance.name)(ToneEnhance)
    registry.register("downstreams", ToneJoint.name)(ToneJoint)
    return sb_home


def test_waveform_task_writes_audio_artefacts_scored_by_an_evaluator(plugins):
    torch.manual_seed(0)
    noisy = np.mean(
        [
            si_sdr.fn(read_audio(c.audio_path(r))[0], read_audio(c.audio_path(r, "reference"))[0])
            for c in [NoisyTones()]
            for r in c.prepare()
            if r.split == "test"
        ]
    )
    result = run(["upstream=mfcc", "downstream=tone-enhance", "threads=1"])
    row = result.row
    assert row["metrics"]["si_sdr"] > noisy + 2.0, (row["metrics"], noisy)  # it enhanced
    assert row["metrics"]["pitch_error_hz"] < 20.0
    assert row["evaluators"] == {"tone-pitch": "fft-peak-v1"}
    run_dir = paths.results_dir() / "runs" / result.run_id
    written = row["artefacts"]
    assert len(written) == NoisyTones.sizes["test"] and written[0]["kind"] == "audio"
    wav, rate = read_audio(run_dir / "artefacts" / written[0]["name"])
    assert rate == RATE and wav.size == int(0.5 * RATE)
    assert json.loads((run_dir / "artefacts.json").read_text()) == written
    history = json.loads((run_dir / "training.json").read_text())["history"]
    assert "dev_loss" in history[0] and "dev_si_sdr" not in history[0]  # selection: loss


def test_joint_training_over_two_corpora_then_fine_tuning_resumes_by_stage(plugins, monkeypatch):
    args = ["upstream=fbank", "upstream.cmvn=false", "downstream=tone-joint"]
    args += ["corpus=tones-a,tones-b", "threads=1"]  # tones: CMVN would remove their pitch
    original = ToneJoint.evaluate
    calls = {"n": 0}

    def interrupt_in_finetune(self, head, batches, stage, ctx):
        calls["n"] += 1
        if calls["n"] == 10:  # 8 joint epochs, then finetune epoch 2
            raise KeyboardInterrupt
        return original(self, head, batches, stage, ctx)

    monkeypatch.setattr(ToneJoint, "evaluate", interrupt_in_finetune)
    with pytest.raises(KeyboardInterrupt):
        run(args)
    monkeypatch.setattr(ToneJoint, "evaluate", original)
    result = run(args)
    row = result.row
    assert row["corpora"] == [
        {"name": "tones-a", "version": "1"},
        {"name": "tones-b", "version": "1"},
    ]
    assert row["primary_metric"] == "accuracy@tones-a"
    assert row["metrics"]["accuracy@tones-a"] > 0.8 and row["metrics"]["accuracy@tones-b"] > 0.8
    assert row["metric_info"]["accuracy@tones-b"]["corpus"] == "tones-b"
    run_dir = paths.results_dir() / "runs" / result.run_id
    training = json.loads((run_dir / "training.json").read_text())
    stages = [(s["name"], s["corpora"], s["epochs_run"]) for s in training["stages"]]
    assert stages == [("joint", ["tones-a", "tones-b"], 8), ("finetune", ["tones-a"], 3)]
    finetune = [h for h in training["history"] if h["stage"] == "finetune"]
    assert [h["epoch"] for h in finetune] == [1, 2, 3] and finetune[0]["lr"] == 1e-3
    log = (run_dir / "run.log").read_text()
    assert "stage finetune: resumed" in log
    # the joint stage had finished before the interruption: loaded, not trained again
    assert "stage joint: resumed" in log and "at epoch 8" in log
    joint = [h["epoch"] for h in training["history"] if h["stage"] == "joint"]
    assert joint == list(range(1, 9))
    assert ResultsStore(paths.results_db()).get(result.run_id)["status"] == "finished"


def test_a_stream_the_task_needs_that_the_corpus_lacks_is_one_line(plugins):
    with pytest.raises(ConfigError, match="reads audio stream 'reference', which corpus tones-a"):
        run(["upstream=mfcc", "downstream=tone-enhance", "corpus=tones-a"])
    assert ResultsStore(paths.results_db()).runs() == []  # failed before anything ran


def test_a_channel_count_the_task_cannot_take_is_one_line(plugins):
    with pytest.raises(ConfigError, match="takes 1-channel audio on stream 'main'.*2 channels"):
        run(["upstream=mfcc", "downstream=tone-enhance", "corpus=stereo-tones"])


def test_a_missing_stream_file_is_named(plugins, monkeypatch):
    corpus = NoisyTones()
    records = corpus.prepare()
    victim = corpus.audio_path(records[3], "reference")
    victim.unlink()
    with pytest.raises(AudioError, match=f"{victim}: audio file not found"):
        run(["upstream=mfcc", "downstream=tone-enhance", "downstream.max_epochs=1"])
    corpus.manifest_path.unlink()  # a rebuild validates every stream of every record
    monkeypatch.setattr(NoisyTones, "build", lambda self, root: (records, "generated"))
    with pytest.raises(CorpusError, match=f"stream reference: {victim}: audio file not found"):
        corpus.prepare()
