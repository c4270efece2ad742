"""The generation probes (vc; tts in test_downstreams_gen_tts.py): the shared decoder and
prompt VAE, the KL margin, CTAP's own vocoder, the scoring helpers, bad input, and a
two-epoch vc run through the runner on a tiny espeak-ng corpus with every evaluator."""

from __future__ import annotations

import json
import math

import pytest
import torch
from gen_fakes import bound, upstream
from speechbench.downstreams import generation as gen
from speechbench.downstreams.vc import VoiceConversion
from speechbench.evaluators import create
from speechbench.evaluators.vocoders import spectral_convergence
from torch.distributions import Normal, kl_divergence

from speechbench import paths
from speechbench.audio import resample
from speechbench.corpora import espeak
from speechbench.ctap.losses import kl_with_margin
from speechbench.errors import AudioError, ConfigError
from speechbench.runner import run

pytest_plugins = ("gen_fakes",)  # the tiny_vc fixture (tests/gen_fakes.py)


def test_kl_margin_penalises_only_the_kl_above_delta():
    mu = torch.tensor([[0.5, -1.0, 0.2], [2.0, 1.0, -1.5]], requires_grad=True)
    logvar = torch.tensor([[0.1, -0.3, 0.0], [0.4, -1.0, 0.2]], requires_grad=True)
    posterior = Normal(mu, torch.exp(0.5 * logvar))
    kl = kl_divergence(posterior, Normal(torch.zeros(3), torch.ones(3))).sum(1)  # independent
    margin = float(kl.detach().sum()) / 2  # between the two utterances' KL
    assert float(kl[0].detach()) < margin < float(kl[1].detach())
    loss = kl_with_margin(mu, logvar, margin)
    expected = float(kl[1].detach() - margin) / 2
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-5)
    loss.backward()
    assert torch.all(mu.grad[0] == 0) and torch.any(mu.grad[1] != 0)  # under Delta: free
    assert float(kl_with_margin(mu, logvar, float(kl.max()) + 1)) == 0.0
    # the shared loss adds it to the reconstruction with its weight
    pred, target = torch.zeros(2, 4, 3), torch.ones(2, 4, 3)
    total = gen.generation_loss(pred, target, torch.tensor([4, 2]), mu, logvar, margin, 0.5)
    assert float(total.detach()) == pytest.approx(1.0 + 0.5 * expected, rel=1e-5)


def test_decoder_upsamples_any_rate_and_ignores_padding():
    torch.manual_seed(0)
    head = gen.GenerationHead(12, 3, 50.0, 7, gen.DecoderShape(dim=16, ff_dim=32)).eval()
    features = torch.randn(2, 3, 40, 12)
    lengths = torch.tensor([40, 25])
    clip = torch.randn(2, 80, 100)
    frames = gen.output_frames(lengths, 50.0, 100.0)
    assert frames.tolist() == [80, 50]
    assert gen.upsample_index(3, 50.0, 6, 100.0).tolist() == [0, 0, 1, 1, 2, 2]
    with torch.no_grad():
        both, _, _ = head.decode(head.representation(features), lengths, clip, frames)
        alone, _, _ = head.decode(
            head.representation(features[1:, :, :25]), lengths[1:], clip[1:], frames[1:]
        )
    assert both.shape == (2, 80, 7) and float(both[1, 50:].abs().sum()) == 0.0
    torch.testing.assert_close(both[1, :50], alone[0], atol=1e-5, rtol=1e-4)


def test_unrelated_wer_pairs_each_text_with_other_speech():
    texts = ["press one", "press one", "the pound key"]
    heard = ["press one", "press one", "the pound key"]
    # item 0 against item 2's speech, 1 against 2 (2 substitutions + 1 insertion each),
    # 2 against 0 (2 substitutions + 1 deletion): 9 errors over 7 reference words
    assert gen.unrelated_wer(texts, heard) == pytest.approx(9 / 7)
    with pytest.raises(ConfigError, match="two different texts"):
        gen.unrelated_wer(["a b", "a b"], ["a b", "a b"])


def test_silent_generated_audio_is_one_clear_error():
    loud = gen.GenItem("ok", torch.ones(1600) * 0.1, "x", None, [])
    quiet = gen.GenItem("quiet-1", torch.zeros(1600), "x", None, [])
    with pytest.raises(AudioError, match="1 generated item.*silent.*quiet-1"):
        gen.check_audible([loud, quiet])
    with pytest.raises(AudioError, match="not finite"):
        gen.check_audible([gen.GenItem("nan", torch.full((10,), float("nan")), "x", None, [])])


def test_ctap_mel_griffin_lim_inverts_ctap_features():
    from speechbench.upstreams.ctap import CTAPUpstream

    spoken = espeak.synthesize("Please leave a message after the tone.", "en-us")
    wav = resample(spoken.audio, spoken.sample_rate, 16000)
    model = CTAPUpstream().model
    normalised = model.features(wav[None])[0].T  # what CTAP's decoder predicts
    raw = normalised * model.features.std + model.features.mean
    vocoder = create("griffin-lim-ctap")
    ours = vocoder.wave_to_mel(wav)
    loud = raw > math.log(1e-4)  # ln(mel + 1e-6) and ln(max(mel, 1e-6)) differ at the floor
    assert ours.shape == raw.shape and loud.float().mean() > 0.5
    torch.testing.assert_close(ours[loud], raw[loud], atol=2e-3, rtol=1e-3)
    out = vocoder.mel_to_wave(raw)
    assert out.numel() == (raw.shape[0] - 1) * 160
    assert spectral_convergence(wav, out) < 0.5


def test_a_speaker_without_a_long_enough_prompt_is_one_line(tiny_vc):
    task = VoiceConversion(VoiceConversion.Options(prompt_seconds=30.0))
    with pytest.raises(
        ConfigError, match=r"speaker espeak-\w+ has no other utterance of at least 30 s"
    ):
        bound(task)


def test_ctap_own_decoder_needs_the_ctap_upstream(tiny_vc):
    task = bound(VoiceConversion(VoiceConversion.Options(decoder="ctap", prompt_seconds=1.5)))
    with pytest.raises(ConfigError, match="upstream=mfcc needs downstream.decoder=shared"):
        task.build_head(upstream("mfcc"))


def test_two_epoch_vc_run_on_a_tiny_corpus_with_every_evaluator(tiny_vc):
    args = ["upstream=mfcc", "downstream=vc", "corpus=tiny-vc", "threads=1",
            "downstream.max_epochs=2", "downstream.prompt_seconds=1.5",
            "downstream.test_items=4", "downstream.samples=2", "downstream.bootstrap=50",
            "downstream.dim=32", "downstream.layers=1",
            "downstream.real_voices=tiny-vc", "downstream.real_items=2"]  # fmt: skip
    result = run(args)
    row = result.row
    metrics = row["metrics"]
    expected = ("wer", "cer", "spk_sim", "mcd", "dnsmos_ovrl", "vde", "wer_copy", "mcd_copy",
                "spk_sim_copy", "wer_unrelated", "spk_sim_source", "wer_ci_low",
                "mcd_ci_high")  # fmt: skip
    for key in expected:
        assert key in metrics and math.isfinite(metrics[key]), key
    assert metrics["num_items"] == 4
    # the real-voice path (its mechanism; tiny-vc's own test speakers stand in for mini-sv)
    assert metrics["num_items_real"] == 2 and math.isfinite(metrics["wer_real"])
    assert 0 < metrics["spk_sim_real_natural"] <= 1 and "spk_sim_real" in metrics
    # copy synthesis is the ceiling, unrelated speech the floor (2 epochs learn little)
    assert metrics["mcd_copy"] < metrics["mcd"]
    assert metrics["wer_copy"] < metrics["wer_unrelated"]
    assert row["primary_metric"] == "wer"
    assert row["metric_info"]["dnsmos_ovrl"]["base"] == "dnsmos"
    assert row["metric_info"]["wer_copy"]["target"] == "copy"
    assert set(row["evaluators"]) >= {"whisper-tiny-en", "ge2e", "dnsmos", "world"}
    run_dir = paths.results_dir() / "runs" / result.run_id
    history = json.loads((run_dir / "training.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2] and "dev_loss" in history[0]
    audio = [a for a in row["artefacts"] if a["kind"] == "audio"]
    assert len(audio) == 6  # 2 converted + their references, 2 to real voices
    predictions = [json.loads(line) for line in (run_dir / "predictions.jsonl").open()]
    assert len(predictions) == 6 and sum(bool(p.get("real_voice")) for p in predictions) == 2
    predictions = [p for p in predictions if not p.get("real_voice")]
    assert all(p["source_speaker"] != p["target_speaker"] for p in predictions)
    assert all(p["reference"].startswith(p["target_speaker"]) for p in predictions)


def test_msep_over_the_dtw_path_against_a_known_pitch_ratio():
    """Independent check of MSEP as scored (pYIN + the MCD's DTW path): WORLD resynthesis
    with every F0 raised by 10% must give ln(1.1)^2, and a 25% slower resynthesis at the
    same pitch must give about 0 (the DTW path aligns it)."""
    import numpy as np
    from speechbench.evaluators.pairs import score_pairs

    spoken = espeak.synthesize("Please leave a message after the tone.", "en-us")
    wav = resample(spoken.audio, spoken.sample_rate, 16000).numpy().astype(np.float64)
    world = create("world")
    f0, envelope, aperiodicity = world.analyse(wav)

    def synth(f0s, period=10.0):
        return world.model.synthesize(np.ascontiguousarray(f0s), envelope, aperiodicity,
                                      16000, period)  # fmt: skip

    base = synth(f0)
    up, slow = synth(f0 * 1.1), synth(f0, 12.5)
    scored = score_pairs([up, slow], [base, base], transcriber=None, speaker=None, quality=None)
    raised, slowed = scored.items
    assert raised["msep"] == pytest.approx(math.log(1.1) ** 2, rel=0.1)
    assert raised["f0_corr"] > 0.98 and raised["f0_rmse"] > 5
    assert slowed["msep"] < 0.1 * math.log(1.1) ** 2 and slowed["f0_corr"] > 0.95
