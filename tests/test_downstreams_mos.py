"""mos (MTQ-Net) and mos-ssl: the loss against a hand computation, masking of missing
labels, head dropping, every mechanism end to end on a tiny generated corpus, and the
one-line errors (no quality labels, unknown target)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from speechbench.downstreams.base import Input, check_inputs
from speechbench.downstreams.mos import (
    MTQNet,
    MTQNetTask,
    SincFilterbank,
    condition_of,
    label_value,
    quality_loss,
)
from task_fakes import upstream_info

from speechbench import paths, registry
from speechbench.audio import write_audio
from speechbench.corpora.base import Corpus, Utterance
from speechbench.errors import ConfigError, CorpusError
from speechbench.runner import run

RATE = 16000


# ------------------------------------------------------------------ the loss, by hand
def _huber(x: float, delta: float) -> float:
    return 0.5 * x * x if abs(x) <= delta else delta * (abs(x) - 0.5 * delta)


def test_huber_utterance_plus_frame_loss_matches_a_hand_computation():
    utterance = torch.tensor([3.0, 1.0])
    frames = torch.tensor([[2.0, 4.5, 9.0], [1.0, 3.0, 0.0]])
    mask = torch.tensor([[True, True, False], [True, True, True]])
    labels = torch.tensor([2.5, 2.0])
    delta, alpha = 1.0, 0.7
    expected = []
    for i, (u, y) in enumerate(zip([3.0, 1.0], [2.5, 2.0], strict=True)):
        valid = [f for f, m in zip(frames[i].tolist(), mask[i].tolist(), strict=True) if m]
        frame_term = sum(_huber(f - y, delta) for f in valid) / len(valid)
        expected.append(_huber(u - y, delta) + alpha * frame_term)
    got = quality_loss(utterance, frames, mask, labels, "huber", delta, alpha)
    assert float(got) == pytest.approx(np.mean(expected), rel=1e-6)
    # item 0: 0.125 + 0.7 * (0.125 + 1.5) / 2; item 1: 0.5 + 0.7 * (0.5 + 0.5 + 1.5) / 3
    assert float(got) == pytest.approx((0.125 + 0.56875 + 0.5 + 0.7 * 2.5 / 3) / 2, rel=1e-6)
    mse = quality_loss(utterance, frames, mask, labels, "mse", delta, 0.0)
    mae = quality_loss(utterance, frames, mask, labels, "mae", delta, 0.0)
    assert float(mse) == pytest.approx((0.25 + 1.0) / 2) and float(mae) == pytest.approx(0.75)
    small = quality_loss(utterance, None, None, labels, "huber", 0.25, 1.0)  # no frame term
    assert float(small) == pytest.approx((0.25 * 0.375 + 0.25 * 0.875) / 2)


def test_missing_labels_are_masked_not_replaced():
    utterance = torch.tensor([3.0, 1.0, 2.0], requires_grad=True)
    frames = torch.tensor([[3.0, 3.0], [1.0, 1.0], [2.0, 2.0]], requires_grad=True)
    mask = torch.ones(3, 2, dtype=torch.bool)
    labels = torch.tensor([2.0, float("nan"), 2.5])
    loss = quality_loss(utterance, frames, mask, labels, "huber", 1.0, 1.0)
    with torch.no_grad():
        kept = quality_loss(
            utterance[[0, 2]], frames[[0, 2]], mask[[0, 2]], labels[[0, 2]], "huber", 1.0, 1.0
        )
    assert loss.item() == pytest.approx(kept.item())  # the NaN item is not a number 0
    loss.backward()
    assert utterance.grad[1] == 0 and torch.all(frames.grad[1] == 0)
    assert utterance.grad[0] != 0
    none = quality_loss(utterance, frames, mask, torch.full((3,), float("nan")), "huber")
    assert none.item() == 0.0 and torch.isfinite(none)


# ------------------------------------------------------------------ pieces
def test_sinc_filters_pass_their_band_and_learn():
    bank = SincFilterbank(filters=8, kernel=251, n_fft=512)
    response = bank.responses().detach()  # 8 x 257
    low = (bank.min_low + bank.low.abs()).detach().numpy()
    high = low + bank.min_band + bank.band.abs().detach().numpy()
    freqs = np.arange(257) * RATE / 512
    for k in range(8):
        peak = freqs[int(response[k].argmax())]
        assert low[k] - 40 <= peak <= high[k] + 40, (k, peak, low[k], high[k])
        far = (freqs < low[k] - 400) | (freqs > high[k] + 400)
        assert response[k][torch.tensor(far)].max() < 0.05 * response[k].max()
    power = torch.rand(2, 5, 257)
    bank(power).sum().backward()
    assert bank.low.grad is not None and bank.low.grad.abs().sum() > 0


def test_condition_is_degradation_and_snr_band():
    def rec(**labels):
        return Utterance("x", "x.wav", RATE, 1.0, "test", labels=labels)

    assert condition_of(rec(degradation="noise", snr_db=-2.0)) == "noise/snr-5to5"
    assert condition_of(rec(degradation="enhanced", snr_db=12.0)) == "enhanced/snr5to15"
    assert condition_of(rec(degradation="codec", snr_db=None)) == "codec"
    assert condition_of(rec(mos={"mean": 3.0, "system": "A"})) == "A"
    assert condition_of(rec()) is None
    record = rec(mos={"sig": 3.5}, pesq_wb=None, stoi=0.9)
    assert label_value(record, "sig") == 3.5 and label_value(record, "pesq_wb") is None
    assert label_value(record, "stoi") == 0.9 and label_value(record, "bak") is None


def test_waveform_alias_reads_the_main_stream():
    task = MTQNetTask(MTQNetTask.Options(features="stft,upstream"))
    inputs = task.inputs("train")
    assert inputs["main"].kind == "features" and inputs["wave"].source("wave") == "main"
    assert check_inputs(task, "c", {"main": 1}, "frame") is None
    assert list(MTQNetTask(MTQNetTask.Options(features="stft")).inputs("test")) == ["wave"]
    with pytest.raises(ValueError):
        Input("features", stream="main")


def test_bad_options_are_one_line():
    with pytest.raises(ConfigError, match="'loudness' in downstream.targets"):
        MTQNetTask(MTQNetTask.Options(targets="sig,loudness"))
    with pytest.raises(ConfigError, match="'mfcc' in downstream.features"):
        MTQNetTask(MTQNetTask.Options(features="stft,mfcc"))
    with pytest.raises(ConfigError, match="both a target and an auxiliary"):
        MTQNetTask(MTQNetTask.Options(auxiliary="stoi,ovrl"))


def test_every_stream_combination_builds_and_runs_forward():
    from speechbench.downstreams.base import Batch
    from speechbench.downstreams.mos import TargetStats

    wave = torch.randn(2, 8000) * 0.1
    feats = torch.randn(2, 3, 50, 12)
    records = [Utterance(f"u{i}", "u.wav", RATE, 0.5, "train") for i in range(2)]
    batch = Batch(records, None, "c", {"main": feats}, {"wave": wave})
    batch.lengths = {"main": torch.tensor([50, 30]), "wave": torch.tensor([8000, 4800])}
    stats = {"sig": TargetStats(3.0, 0.5), "stoi": TargetStats(0.9, 0.05)}
    for streams in (("stft",), ("sinc",), ("upstream",), ("stft", "sinc", "upstream")):
        opts = MTQNetTask.Options(features=",".join(streams), hop=160, win=400)
        net = MTQNet(upstream_info(12, 3), streams, stats, opts)
        out = net(batch, ["sig"])
        utterance, frames = out["sig"]
        assert utterance.shape == (2,) and frames.shape[0] == 2 and "stoi" not in out
        expected_frames = 51 if streams != ("upstream",) else 50  # STFT hop 160, centred
        assert frames.shape[1] == expected_frames
        assert int(out["_mask"][1].sum()) == (31 if streams != ("upstream",) else 30)


# ------------------------------------------------------------------ a tiny quality corpus
class TinyQuality(Corpus):
    """Harmonic 'voiced' tones in white noise at a known SNR; labels are smooth functions
    of the SNR (so a model can learn them), pesq_wb is null on the noisiest files."""

    name = "tiny-quality"
    version = "1"
    license = "CC0-1.0 (generated)"
    description = "tones in noise with quality-like labels"
    sample_rate = RATE
    sizes = {"train": 40, "dev": 8, "test": 20}

    def build(self, root: Path):
        rng = np.random.default_rng(0)
        records = []
        for split, count in self.sizes.items():
            for i in range(count):
                snr = float(rng.uniform(-5, 30))
                seconds = float(rng.uniform(0.4, 0.7))
                t = np.arange(int(seconds * RATE)) / RATE
                f0 = rng.uniform(100, 220)
                clean = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 6))
                clean = 0.1 * clean / np.sqrt(np.mean(clean**2))
                noise = rng.standard_normal(clean.size) * 0.1 * 10 ** (-snr / 20)
                wav = (clean + noise).astype(np.float32)
                rid = f"{split}-{i:02d}"
                write_audio(root / f"{rid}.wav", wav, RATE)
                quality = 1 + 4 / (1 + np.exp(-(snr - 10) / 5))
                labels = {
                    "mos": {"sig": quality * 0.8 + 0.5, "bak": quality, "ovrl": quality * 0.9},
                    "pesq_wb": None if snr < 0 else 1 + 3.5 * (snr + 5) / 35,
                    "stoi": 0.6 + 0.4 * (snr + 5) / 35,
                    "sdi": 0.1 * 10 ** (-snr / 20),
                    "degradation": "noise",
                    "snr_db": round(snr, 2),
                }
                records.append(
                    Utterance(rid, f"{rid}.wav", RATE, len(wav) / RATE, split, labels=labels)
                )
        return records, "generated"


class Unlabelled(TinyQuality):
    name = "unlabelled"

    def build(self, root: Path):
        records, text = super().build(root)
        for r in records:
            r.labels = {}
        return records, text


@pytest.fixture
def tiny(sb_home):
    registry.register("corpora", TinyQuality.name)(TinyQuality)
    registry.register("corpora", Unlabelled.name)(Unlabelled)
    return sb_home


SMALL = [
    "upstream=fbank",
    "corpus=tiny-quality",
    "threads=1",
    "downstream.max_epochs=5",
    "downstream.patience=5",
    "downstream.bootstrap=50",
    "downstream.lr=5e-3",
]
TINY_NET = [  # MTQ-Net's shape at a test's size
    "downstream.n_fft=256",
    "downstream.win=256",
    "downstream.hop=128",
    "downstream.sinc_filters=8",
    "downstream.upstream_proj=8",
    "downstream.cnn_blocks=2",
    "downstream.cnn_channels=2",
    "downstream.lstm_hidden=8",
    "downstream.fc_dim=8",
]


def _run_dir(result) -> Path:
    return paths.results_dir() / "runs" / result.run_id


@pytest.mark.parametrize("mechanism", ["mpl", "kt", "scratch"])
def test_each_mechanism_trains_scores_and_drops_auxiliary_heads(tiny, mechanism, monkeypatch):
    calls: list[tuple[str, ...]] = []
    original = MTQNet.forward

    def spy(self, batch, heads):
        calls.append((tuple(heads), self.training))
        return original(self, batch, heads)

    monkeypatch.setattr(MTQNet, "forward", spy)
    result = run([*SMALL, *TINY_NET, "downstream=mos", f"downstream.mechanism={mechanism}"])
    row = result.row
    metrics = row["metrics"]
    assert row["primary_metric"] == "srcc_ovrl"
    for target in ("sig", "bak", "ovrl"):
        for key in ("lcc", "srcc", "mse", "lcc_{}_cond", "srcc_{}_ci_low", "mse_{}_cond_ci_high"):
            name = key.format(target) if "{}" in key else f"{key}_{target}"
            assert np.isfinite(metrics[name]), name
    # labels are a monotone function of the SNR: far better than the constant predictor
    assert metrics["srcc_ovrl"] > 0.5, metrics
    assert metrics["mse_ovrl"] < metrics["const_mse_ovrl"], metrics
    assert metrics["srcc_ovrl_ci_low"] <= metrics["srcc_ovrl"] <= metrics["srcc_ovrl_ci_high"]
    auxiliary = {"pesq_wb", "stoi", "sdi"}
    trained = {h for heads, training in calls if training for h in heads}
    evaluated = [set(heads) for heads, training in calls if not training]
    if mechanism == "scratch":
        assert trained == {"sig", "bak", "ovrl"}
    else:
        assert auxiliary <= trained
    # test-time prediction never runs an auxiliary head
    assert any(h == {"sig", "bak", "ovrl"} for h in evaluated)
    run_dir = _run_dir(result)
    training = json.loads((run_dir / "training.json").read_text())
    stages = [s["name"] for s in training["stages"]]
    assert stages == (["auxiliary", "primary"] if mechanism == "kt" else ["train"])
    predictions = [json.loads(line) for line in (run_dir / "predictions.jsonl").open()]
    assert len(predictions) == TinyQuality.sizes["test"]
    assert set(predictions[0]["prediction"]) == {"sig", "bak", "ovrl"}
    assert set(predictions[0]["truth"]) == {"sig", "bak", "ovrl"}
    assert predictions[0]["condition"].startswith("noise/")
    assert (run_dir / "artefacts" / "scatter_ovrl.png").read_bytes()[:4] == b"\x89PNG"


def test_finalize_drops_the_auxiliary_heads():
    task = MTQNetTask()
    from speechbench.downstreams.mos import TargetStats

    task.stats = {n: TargetStats(3.0, 1.0) for n in task.heads}
    net = task.build_head(upstream_info(8, 2))
    before = sum(p.numel() for p in net.parameters())
    assert set(net.heads) == {"sig", "bak", "ovrl", "pesq_wb", "stoi", "sdi"}
    net = task.finalize(net)
    assert set(net.heads) == {"sig", "bak", "ovrl"}
    assert sum(p.numel() for p in net.parameters()) < before


def test_mos_ssl_baseline_and_streams_switch(tiny):
    # per-utterance CMVN would make every mean-pooled fbank vector zero: keep the level
    result = run([*SMALL[:-1], "upstream.cmvn=false", "downstream=mos-ssl", "downstream.lr=2e-2"])
    metrics = result.row["metrics"]
    assert metrics["srcc_ovrl"] > 0.5 and metrics["mse_ovrl"] < metrics["const_mse_ovrl"]
    # MTQ-Net without the upstream stream (waveform only)
    args = [a for a in SMALL if "max_epochs" not in a] + TINY_NET
    result = run(
        [*args, "downstream=mos", "downstream.features=stft,sinc", "downstream.max_epochs=1"]
    )
    assert np.isfinite(result.row["metrics"]["srcc_ovrl"])


def test_a_corpus_without_quality_labels_is_one_line(tiny):
    with pytest.raises(CorpusError, match="0 training records with quality label 'sig'"):
        run([*SMALL[:1], "corpus=unlabelled", "downstream=mos", "downstream.max_epochs=1"])
    with pytest.raises(ConfigError, match="'loudness' in downstream.targets"):
        run([*SMALL, "downstream=mos-ssl", "downstream.targets=loudness"])


def test_a_constant_predictor_is_scored_not_failed(caplog):
    """MOS-SSL over per-utterance CMVN features sees only zero means and predicts one
    value: the run keeps its MSE, stores the undefined correlations as 0 and flags them."""
    from speechbench.downstreams.mos import MosSsl, TargetStats

    task = MosSsl(MosSsl.Options(targets="ovrl", bootstrap=50))
    task.stats = {"ovrl": TargetStats(3.0, 0.5)}
    task.constant = {"ovrl": 3.0}
    kinds = ("noise", "codec", "clip", "reverb")
    records = [
        Utterance(
            f"u{i}",
            "x.wav",
            RATE,
            1.0,
            "test",
            labels={"mos": {"ovrl": 2.0 + i / 10}, "degradation": kinds[i % 4]},
        )
        for i in range(12)
    ]
    truth = np.array([2.0 + i / 10 for i in range(12)])
    with caplog.at_level("WARNING", logger="speechbench.mos"):
        flat = task.score([{"ovrl": 3.1}] * 12, records, "test")
    assert flat["constant_ovrl"] == 1.0 and "every ovrl prediction is the same" in caplog.text
    assert flat["srcc_ovrl"] == flat["lcc_ovrl"] == flat["srcc_ovrl_ci_high"] == 0.0
    assert flat["srcc_ovrl_cond"] == 0.0
    assert flat["mse_ovrl"] == pytest.approx(np.mean((truth - 3.1) ** 2))
    assert flat["const_mse_ovrl"] == pytest.approx(np.mean((truth - 3.0) ** 2))
    varied = task.score([{"ovrl": float(t)} for t in truth], records, "test")
    assert "constant_ovrl" not in varied and varied["srcc_ovrl"] == pytest.approx(1.0)
