"""tts: phone durations at any frame rate, the semantic predictor, bad input, and a
two-epoch run through the runner on the tiny espeak-ng corpus (every evaluator)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from gen_fakes import TinyVc, bound, upstream
from speechbench.downstreams.tts import SemanticPredictor, TextToSpeech

from speechbench import paths
from speechbench.ctap.data import PhoneVocabulary
from speechbench.errors import ConfigError
from speechbench.runner import run

pytest_plugins = ("gen_fakes",)  # the tiny_vc fixture (tests/gen_fakes.py)

PHONES = [["sil", 0.0, 0.1], ["p", 0.1, 0.15], ["ɹ", 0.15, 0.2], ["ɛ", 0.2, 0.4]]


@pytest.mark.parametrize("rate, frames", [(50.0, 20), (100.0, 40), (100.0, 45)])
def test_phone_durations_sum_to_the_upstream_frames(rate, frames):
    task = TextToSpeech()
    task.vocab = PhoneVocabulary(["p", "ɹ", "ɛ"])
    task.frame_rate = rate
    ids, durations = task.phone_durations(PHONES, frames)
    assert int(durations.sum()) == frames
    # sil, p, r, e (+ silence over the frames past the last phone)
    assert ids.tolist()[:4] == [1, 2, 3, 4]
    bounds = [0] + [round(end * rate) for _, _, end in PHONES]  # rounded phone ends
    assert durations.tolist()[:4] == [b - a for a, b in zip(bounds, bounds[1:], strict=False)]


def test_semantic_predictor_follows_the_given_durations():
    torch.manual_seed(0)
    predictor = SemanticPredictor(n_phones=6, out_dim=10).eval()
    phones = torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0]])
    lengths = torch.tensor([3, 2])
    durations = torch.tensor([[2, 3, 1, 0], [4, 4, 0, 0]])
    frames, frame_lengths, log_durations = predictor(phones, lengths, durations)
    assert frame_lengths.tolist() == [6, 8] and frames.shape == (2, 8, 10)
    assert log_durations.shape == (2, 4)
    predicted, predicted_lengths, _ = predictor(phones, lengths)  # durations predicted
    assert (predicted_lengths >= lengths).all()


def test_a_phone_outside_the_inventory_is_one_line(tiny_vc, monkeypatch):
    original = TinyVc.build

    def with_a_foreign_phone(self, root):
        records, attribution = original(self, root)
        test = next(r for r in records if r.split == "test")
        test.phones[1][0] = "ʘ"  # a click: no English inventory has it
        return records, attribution

    monkeypatch.setattr(TinyVc, "build", with_a_foreign_phone)
    monkeypatch.setattr(TinyVc, "version", "foreign-phone")
    task = bound(TextToSpeech(TextToSpeech.Options(prompt_seconds=1.5)))
    with pytest.raises(ConfigError, match=r"record espeak-\S+ \(test\): phone 'ʘ' is outside"):
        task.build_head(upstream("mfcc"))


def test_ctap_phoneme_encoder_needs_the_ctap_upstream(tiny_vc):
    task = bound(TextToSpeech(TextToSpeech.Options(semantic="ctap", prompt_seconds=1.5)))
    with pytest.raises(ConfigError, match="upstream=mfcc needs downstream.semantic=trained"):
        task.build_head(upstream("mfcc"))


@pytest.mark.slow  # ~2 min on the loaded machine; the vc run covers the same path by default
def test_two_epoch_tts_run_on_a_tiny_corpus(tiny_vc):
    args = ["upstream=mfcc", "downstream=tts", "corpus=tiny-vc", "threads=1",
            "downstream.max_epochs=2", "downstream.prompt_seconds=1.5",
            "downstream.test_items=3", "downstream.samples=1", "downstream.bootstrap=20",
            "downstream.dim=32", "downstream.layers=1", "downstream.real_voices=none"]  # fmt: skip
    result = run(args)
    metrics = result.row["metrics"]
    for key in ("wer", "spk_sim", "mcd", "dnsmos_ovrl", "wer_copy", "wer_unrelated"):
        assert key in metrics and math.isfinite(metrics[key]), key
    assert metrics["mcd_copy"] < metrics["mcd"] and metrics["num_items"] == 3
    run_dir = paths.results_dir() / "runs" / result.run_id
    history = json.loads((run_dir / "training.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2]
    assert history[1]["train_loss"] < history[0]["train_loss"]
    predictions = [json.loads(line) for line in (run_dir / "predictions.jsonl").open()]
    assert len(predictions) == 3 and all(p["seconds"] > 0 for p in predictions)
