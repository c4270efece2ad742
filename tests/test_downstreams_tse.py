"""The tse downstream: SI-SDR, the LiMuSE quantizer and packed storage, TAC shapes, a
two-epoch run on a tiny generated two-channel mixture corpus, and its one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from speechbench.downstreams.tse import TseOptions, separation_scores
from speechbench.downstreams.tse_models import GCTCN, TAC, Extractor
from speechbench.downstreams.tse_quant import (
    LEVELS_3BIT,
    SigmoidQuantizer,
    enable_quantization,
    hard_weights,
    pack_codes,
    quantize_activation,
    read_packed,
    set_temperature,
    unpack_codes,
    write_packed,
)
from speechbench.metrics.separation import si_sdr, wrong_speaker_rate

from speechbench import paths, registry
from speechbench.audio import write_audio
from speechbench.corpora.base import Corpus, Utterance
from speechbench.errors import AudioError, ConfigError
from speechbench.runner import run

RATE = 8000


# ------------------------------------------------------------------ SI-SDR
def _si_sdr_numpy(est: np.ndarray, ref: np.ndarray) -> float:
    """Le Roux et al. 2019, eq. (2), written independently in float64 numpy."""
    est, ref = est - est.mean(), ref - ref.mean()
    alpha = np.dot(est, ref) / np.dot(ref, ref)
    target = alpha * ref
    return 10 * np.log10(np.sum(target**2) / np.sum((est - target) ** 2))


def test_si_sdr_and_wrong_speaker_against_an_independent_computation():
    rng = np.random.default_rng(0)
    target, interferer = rng.standard_normal(4000), rng.standard_normal(4000)
    mixture = target + 0.5 * interferer
    estimate = 0.7 * target + 0.1 * interferer + 0.05 * rng.standard_normal(4000)
    assert float(si_sdr.fn(estimate, target)[0]) == pytest.approx(
        _si_sdr_numpy(estimate, target), abs=1e-6
    )
    metrics, per = separation_scores(
        [torch.tensor(estimate), torch.tensor(interferer)],  # the second extracts the interferer
        [torch.tensor(target)] * 2,
        [torch.tensor(mixture)] * 2,
    )
    expected = [
        _si_sdr_numpy(estimate, target) - _si_sdr_numpy(mixture, target),
        _si_sdr_numpy(interferer, target) - _si_sdr_numpy(mixture, target),
    ]
    assert per["si_sdri"] == pytest.approx(expected, abs=1e-6)
    assert metrics["si_sdr_mixture"] == pytest.approx(_si_sdr_numpy(mixture, target), abs=1e-6)
    assert metrics["wrong_speaker_rate"] == 0.5
    wrong = wrong_speaker_rate.fn(interferer, target, 0.5 * interferer)
    assert float(wrong[0]) == 1.0


# ------------------------------------------------------------------ quantizer and packing
def test_sigmoid_quantizer_at_high_temperature_is_the_hard_quantizer():
    torch.manual_seed(0)
    weight = torch.randn(64, 32) * 0.1
    quant = SigmoidQuantizer()
    quant.init_from(weight)
    hard = quant(weight, hard=True)
    levels = torch.tensor(LEVELS_3BIT) * quant.alpha.detach()
    assert torch.isin(hard, levels).all()  # every weight sits on one of the 7 levels
    assert len(torch.unique(hard)) == 7
    quant.temperature.fill_(1e5)
    soft = quant(weight)
    near = ((quant.beta * weight)[..., None] - quant.thresholds).abs().min(-1).values < 1e-3
    assert torch.allclose(soft[~near], hard[~near], atol=1e-6)
    quant.temperature.fill_(1.0)  # at low T it is far from the steps
    assert (quant(weight) - hard).abs().max() > 0.1 * quant.alpha.detach()
    soft = quant(weight)
    soft.sum().backward()  # alpha and beta learn
    assert quant.alpha.grad is not None and quant.beta.grad is not None


def test_activation_quantization_has_256_levels_and_passes_gradients():
    x = torch.linspace(-1, 3, 10000, requires_grad=True)
    q = quantize_activation(x)
    assert len(torch.unique(q.detach())) == 256
    assert (q - x).abs().max() <= 4 / 255 / 2 + 1e-6
    q.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))


def test_codes_pack_to_three_bits_and_unpack_equal():
    codes = np.random.default_rng(1).integers(0, 7, size=1001).astype(np.uint8)
    data = pack_codes(codes)
    assert len(data) == (1001 * 3 + 7) // 8
    assert np.array_equal(unpack_codes(data, 1001), codes)


def test_packed_model_unpacks_to_the_hard_quantized_weights(tmp_path):
    torch.manual_seed(0)
    model = Extractor(2, 20, 1, hidden=32, blocks=2, groups=4, context=8)
    fp_bytes = write_packed(model, tmp_path / "fp.sbq")
    assert enable_quantization(model) > 10
    set_temperature(model, 50.0)
    q_bytes = write_packed(model, tmp_path / "q.sbq")
    tensors = read_packed(tmp_path / "q.sbq")
    for name, weight in hard_weights(model).items():
        assert torch.allclose(tensors[name], weight, atol=1e-7), name
    # a fresh model loaded from the packed file computes what the hard-quantized one does
    fresh = Extractor(2, 20, 1, hidden=32, blocks=2, groups=4, context=8)
    missing = fresh.load_state_dict(tensors, strict=False).missing_keys
    assert all("quantizer" in k or "quant_on" in k for k in missing)
    model.eval()
    fresh.eval()
    mix, enroll = torch.randn(1, 2, 800), torch.randn(1, 1, 3, 20)
    with torch.no_grad():
        # the fresh model is full precision on the decoded weights: equal up to the
        # 8-bit activation rounding the quantized model adds
        a = model(mix, enroll, torch.tensor([3]))
        b = fresh(mix, enroll, torch.tensor([3]))
    assert float(si_sdr.fn(a, b)[0]) > 15
    assert q_bytes < fp_bytes / 4  # 3-bit codes against float32
    assert (tmp_path / "q.sbq").stat().st_size == q_bytes  # measured: the file's bytes


# ------------------------------------------------------------------ shapes
def test_tac_and_gc_tcn_keep_shapes_and_let_groups_communicate():
    torch.manual_seed(0)
    tac = TAC(dim=8, hidden=24)
    x = torch.randn(2, 4, 8, 50)  # B x K x D x T
    y = tac(x)
    assert y.shape == (2 * 4, 8, 50)
    x2 = x.clone()
    x2[:, 3] += 1.0  # change one group: TAC carries it to the others
    assert not torch.allclose(tac(x2).view(2, 4, 8, 50)[:, 0], y.view(2, 4, 8, 50)[:, 0])
    block = GCTCN(dim=32, hidden=64, groups=4, blocks=3, repeats=2, kernel=3, gc=True)
    assert block(torch.randn(2, 32, 40)).shape == (2, 32, 40)
    assert block.receptive_frames == 1 + 2 * 2 * (1 + 2 + 4)
    # the TCN block is shared by the groups: width H/K, not H
    assert block.tcn[0].net[0].weight.shape == (16, 8, 1)
    plain = GCTCN(dim=32, hidden=64, groups=4, blocks=3, repeats=2, kernel=3, gc=False)
    assert plain.tac is None and plain.tcn[0].net[0].weight.shape == (64, 32, 1)


def test_extractor_shapes_for_one_and_two_channels():
    for channels in (1, 2):
        model = Extractor(channels, 20, 2, hidden=32, blocks=2, groups=4, context=8)
        mix = torch.randn(3, channels, 1001)
        out = model(mix, torch.randn(3, 2, 5, 20), torch.tensor([5, 4, 1]))
        assert out.shape == (3, 1001)
    no_vp = Extractor(2, 20, 2, hidden=32, blocks=2, groups=4, context=8, voiceprint=False)
    assert no_vp(torch.randn(1, 2, 900)).shape == (1, 900)


# ------------------------------------------------------------------ a tiny generated corpus
def _voice(f0: float, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """A harmonic 'voice' with a speaker's pitch and a syllable-rate envelope."""
    t = np.arange(int(seconds * RATE)) / RATE
    f = f0 * (1 + 0.05 * np.sin(2 * np.pi * rng.uniform(1, 3) * t))
    phase = 2 * np.pi * np.cumsum(f) / RATE
    wav = sum(np.sin(h * phase) / h for h in range(1, 6))
    env = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(2, 4) * t + rng.uniform(0, 6)) ** 2
    return (0.1 * wav * env).astype(np.float32)


class TinyMixtures(Corpus):
    """Two-'speaker' two-channel mixtures: target + interferer (delayed between mics)."""

    name = "tiny-tse-2ch"
    version = "1"
    license = "CC0-1.0 (generated)"
    description = "generated two-channel target speaker mixtures"
    sample_rate = RATE
    streams = {"main": 2, "enroll": 1, "reference": 1}
    sizes = {"train": 16, "dev": 4, "test": 4}
    seconds = 0.5

    def build(self, root: Path):
        rng = np.random.default_rng(0)
        pitches = {"low": 110.0, "high": 240.0}
        records = []
        for split, count in self.sizes.items():
            for i in range(count):
                target, other = ("low", "high") if i % 2 else ("high", "low")
                s1 = _voice(pitches[target], self.seconds, rng)
                s2 = _voice(pitches[other], self.seconds, rng)
                mix = np.stack([s1 + s2, s1 + np.roll(s2, 3)])
                rid = f"{split}-{i:02d}"
                write_audio(root / f"mix/{rid}.wav", mix, RATE)
                write_audio(root / f"s1/{rid}.wav", s1, RATE)
                write_audio(root / f"enroll/{rid}.wav", _voice(pitches[target], 0.5, rng), RATE)
                records.append(
                    Utterance(
                        rid,
                        f"mix/{rid}.wav",
                        RATE,
                        self.seconds,
                        split,
                        speaker=target,
                        streams={"enroll": f"enroll/{rid}.wav", "reference": f"s1/{rid}.wav"},
                    )
                )
        return records, "generated"


class TinyMono(TinyMixtures):
    name = "tiny-tse"
    streams = {"main": 1, "enroll": 1, "reference": 1}

    def build(self, root: Path):
        records, note = super().build(root)
        for r in records:  # channel 0 only
            from speechbench.audio import read_audio

            wav, _ = read_audio(root / r.path, channels=2)
            write_audio(root / r.path, wav[0], RATE)
        return records, note


class TinyShort(TinyMixtures):
    name = "tiny-tse-short"
    seconds = 0.005


TINY = [
    "upstream=mfcc",
    "downstream=tse",
    "downstream.hidden=32",
    "downstream.blocks=2",
    "downstream.groups=4",
    "downstream.context=8",
    "downstream.crop_seconds=0.25",
    "downstream.lr=3e-3",
    "downstream.keep_audio=2",
    "threads=1",
]


@pytest.fixture
def tiny(sb_home):
    for cls in (TinyMixtures, TinyMono, TinyShort):
        registry.register("corpora", cls.name)(cls)
    return sb_home


def test_two_epoch_run_extracts_writes_audio_and_measures_size(tiny):
    torch.manual_seed(0)
    result = run([*TINY, "corpus=tiny-tse-2ch", "downstream.max_epochs=2"])
    m = result.row["metrics"]
    assert result.row["primary_metric"] == "si_sdri"
    for key in ("si_sdr", "si_sdr_mixture", "si_sdri", "pesq_wb", "stoi", "wrong_speaker_rate"):
        assert np.isfinite(m[key]), key
    assert m["si_sdri"] == pytest.approx(m["si_sdr"] - m["si_sdr_mixture"], abs=1e-6)
    # it learned to separate (seeded: 1.5 dB here; the fixed inter-mic delay of the
    # interferer is a cue two epochs can pick up)
    assert m["si_sdri"] > 0.5
    assert m["si_sdri_ci_low"] <= m["si_sdri"] <= m["si_sdri_ci_high"]
    assert m["size_mb"] > 0 and m["compression_ratio"] > 1  # GC is smaller than no GC
    run_dir = paths.results_dir() / "runs" / result.run_id
    training = json.loads((run_dir / "training.json").read_text())
    assert training["epochs_run"] == 2 and "dev_loss" in training["history"][0]
    names = sorted(a["name"] for a in result.row["artefacts"])
    assert names == sorted(
        f"{kind}/test-{i:02d}.wav" for kind in ("extracted", "mixture", "reference") for i in (0, 1)
    )
    # fine-tune it quantized from that checkpoint: hard 3-bit weights at test
    quant = run(
        [
            *TINY,
            "corpus=tiny-tse-2ch",
            "downstream.quantize=true",
            f"downstream.init_from={result.run_id}",
            "downstream.qat_epochs=2",
            "downstream.qat_crop_seconds=0.25",
        ]
    )
    q = quant.row["metrics"]
    assert q["size_mb"] < m["size_mb"] / 4
    assert q["compression_ratio"] > 4 * m["compression_ratio"]
    stages = json.loads(
        (paths.results_dir() / "runs" / quant.run_id / "training.json").read_text()
    )["stages"]
    assert [s["name"] for s in stages] == ["quantize"]


def test_bad_input_is_one_line_naming_the_file(tiny):
    corpus = TinyMixtures()
    records = corpus.prepare()
    victim = corpus.audio_path(records[0], "enroll")
    victim.unlink()
    with pytest.raises(AudioError, match=f"{victim}: audio file not found"):
        run([*TINY, "corpus=tiny-tse-2ch", "downstream.max_epochs=1"])
    with pytest.raises(AudioError, match=r"mix/train-00.wav: mixture is 0.005 s, shorter than"):
        run([*TINY, "corpus=tiny-tse-short", "downstream.max_epochs=1"])


def test_a_channel_count_mismatch_is_one_line_naming_the_file(tiny):
    corpus = TinyMono()
    records = corpus.prepare()
    stereo = corpus.audio_path(records[1])
    write_audio(stereo, np.zeros((2, 4000), np.float32), RATE)  # a 2-channel file in mono
    with pytest.raises(AudioError, match=f"{stereo}: has 2 channels, this stream is mono"):
        run([*TINY, "corpus=tiny-tse", "downstream.max_epochs=1"])


def test_options_are_checked_before_the_run(tiny):
    with pytest.raises(ConfigError, match="K must divide"):
        run([*[a for a in TINY if "groups" not in a], "corpus=tiny-tse-2ch", "downstream.groups=3"])
    with pytest.raises(ConfigError, match="init_from is for"):
        run([*TINY, "corpus=tiny-tse-2ch", "downstream.init_from=abc"])
    assert TseOptions().groups == 16


def test_superb_stft_mask_head_on_mono_mixture_features(tiny):
    args = ["upstream=mfcc", "downstream=tse", "downstream.model=stft-mask", "threads=1"]
    result = run([*args, "corpus=tiny-tse", "downstream.max_epochs=1", "downstream.keep_audio=0"])
    m = result.row["metrics"]
    assert np.isfinite(m["si_sdri"]) and m["params"] > 0
    with pytest.raises(ConfigError, match="takes 1-channel audio on stream 'main'"):
        run([*args, "corpus=tiny-tse-2ch"])
    with pytest.raises(ConfigError, match="one vector per utterance"):
        run(["upstream=ge2e", *args[1:], "corpus=tiny-tse", "downstream.max_epochs=1"])


def test_a_fitted_upstream_learns_from_the_enrollments_of_a_two_channel_corpus(tiny):
    """i-vector fits its extractor on the stream the task reads as features: tse reads
    only the (mono) enrollment, so the 2-channel mixtures are never its training audio
    (before the fix: 'has 2 channels, this stream is mono' on the first mixture)."""
    from speechbench.runner import fit_stream

    tse, asr = registry.get("downstreams", "tse")(), registry.get("downstreams", "asr")()
    assert fit_stream(tse) == "enroll" and fit_stream(asr) == "main"
    small = ["upstream.num_gaussians=4", "upstream.ivector_dim=8", "upstream.tv_iterations=1"]
    args = ["upstream=ivector", *small, *TINY[1:], "corpus=tiny-tse-2ch"]
    result = run([*args, "downstream.max_epochs=1"])
    assert np.isfinite(result.row["metrics"]["si_sdri"])
