"""HuBERT / WavLM masked-prediction pretraining: targets, crops, mixing, the command on a
tiny tone corpus (learn, resume, export) and the exported files loading through s3prl's
own ``hubert_local`` / ``wavlm_local`` code and the speechbench upstreams."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from test_ctap_pretrain import ToneCorpus  # noqa: F401  (registers corpus ctap-tones)

from speechbench import registry
from speechbench.ctap.cli import pretrain_command
from speechbench.errors import ConfigError, WeightsUnavailableError
from speechbench.pretraining import masked
from speechbench.pretraining.config import MaskedModelConfig

TINY = [
    "model.conv_channels=16",
    "model.encoder_layers=1",
    "model.embed_dim=32",
    "model.ffn_dim=64",
    "model.heads=2",
    "model.final_dim=16",
    "model.conv_pos=16",
    "model.conv_pos_groups=4",
    "model.clusters=4",
    "model.kmeans_frames=5000",
    "model.mask_length=3",
    "model.num_buckets=16",
    "model.max_distance=64",
    "train.batch_seconds=2",
    "train.max_seconds=0.5",
    "train.lr=0.003",
    "train.warmup_steps=2",
    "train.log_every=2",
    "train.eval_every=1000",
    "train.checkpoint_every=5",
    "train.threads=1",
    "corpus=ctap-tones",
]


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SPEECHBENCH_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("SPEECHBENCH_HOME", str(tmp_path / "home"))
    return tmp_path


def test_mfcc_targets_line_up_with_the_cnn_frames():
    wav = torch.randn(16000)
    labels = masked.mfcc39(wav)
    cnn_frames = (wav.numel() - masked.FIELD) // masked.HOP + 1
    assert labels.shape == (1 + (wav.numel() - 400) // 160, 39)
    assert labels.shape[0] // 2 >= cnn_frames - 1  # every CNN frame i has label 2 i


def test_crops_start_on_a_cnn_hop_and_keep_their_labels():
    wavs = [torch.arange(8000, dtype=torch.float32), torch.arange(9600, dtype=torch.float32)]
    labels = [torch.arange(1 + (w.numel() - 400) // 160) for w in wavs]
    batches = masked.crop_batches(
        [8000, 9600], batch_seconds=10, max_seconds=0.3, rng=random.Random(0)
    )
    ((members, length),) = batches
    assert (length - masked.FIELD) % masked.HOP == 0 and length <= 0.3 * 16000
    x, y = masked.crop(wavs, labels, members, length, random.Random(1))
    for row, lab in zip(x, y, strict=True):
        start = int(row[0])
        assert start % masked.HOP == 0
        assert int(lab[0]) == start // 160  # the label of the crop's first 100/s frame
        assert lab.numel() == (length - 400) // 160 + 1


def test_utterance_mixing_adds_one_segment_at_the_drawn_energy_ratio():
    config = MaskedModelConfig(mix_prob=1.0, mix_noise_share=0.0, mix_db=5.0)
    wavs = torch.randn(2, 16000) * torch.tensor([[0.1], [0.5]])
    mixed = masked.mix_utterances(wavs, config, random.Random(3))
    for i in range(2):
        changed = (mixed[i] - wavs[i]).abs() > 0
        assert 0 < changed.float().mean() <= config.mix_max_ratio + 1e-6
        added = (mixed[i] - wavs[i])[changed]
        ratio_db = 10 * torch.log10(wavs[i].pow(2).mean() / added.pow(2).mean())
        assert -5.01 <= float(ratio_db) <= 5.01
    assert torch.equal(
        masked.mix_utterances(wavs, MaskedModelConfig(mix_prob=0.0), random.Random(0)), wavs
    )


def test_hubert_pretrains_resumes_and_exports_what_s3prl_loads(data_dir):
    from s3prl.upstream.hubert.convert import load_converted_model

    out, export = data_dir / "run", data_dir / "export"
    args = [*TINY, f"out_dir={out}", "train.max_steps=30", "train.max_minutes=30"]
    pretrain_command("hubert", args)
    history = json.loads((out / "history.json").read_text())["train"]
    first, last = history[0]["masked_ce"], sum(h["masked_ce"] for h in history[-3:]) / 3
    assert last < first - 0.1, (first, last)  # masked prediction learns something
    assert (out / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"
    # resume: the same command with a larger budget continues at step 30
    pretrain_command("hubert", [*args[:-2], "train.max_steps=34", f"export_dir={export}"])
    summary = json.loads((out / "summary.json").read_text())
    assert (
        summary["steps"] == 34
        and len(json.loads((out / "history.json").read_text())["train"]) == 17
    )
    # the exported file is s3prl's converted HuBERT layout: s3prl's own loader reads it
    model, task_cfg = load_converted_model(str(export / "hubert-mini.pt"))
    trained = torch.load(out / "last.pt", weights_only=True)["model"]
    for key, value in model.state_dict().items():
        assert torch.allclose(value, trained[f"net.{key}"].half().float()), key
    assert task_cfg.label_rate == 100.0 and model.final_proj.out_features == 16
    assert (export / "hubert-mini.train_sources.txt").exists()
    # and so does the speechbench upstream a user's checkpoint goes through
    upstream = registry.get("upstreams", "hubert")(
        registry.get("upstreams", "hubert").Options(path=str(export / "hubert-mini.pt"))
    )
    layers, frames = upstream(torch.randn(1, 8000) * 0.1, torch.tensor([8000]))
    assert len(layers) == 2 and layers[0].shape[-1] == 32 and int(frames[0]) == 24


def test_wavlm_pretrains_with_mixing_and_loads_through_wavlm_local(data_dir):
    export = data_dir / "export"
    args = [*TINY, f"out_dir={data_dir / 'wavlm'}", "train.max_steps=4", f"export_dir={export}"]
    pretrain_command("wavlm", args)
    payload = torch.load(export / "wavlm-mini.pt", weights_only=True)
    assert set(payload) == {"cfg", "model"} and payload["cfg"]["gru_rel_pos"] is True
    upstream = registry.get("upstreams", "wavlm")(
        registry.get("upstreams", "wavlm").Options(path=str(export / "wavlm-mini.pt"))
    )
    layers, frames = upstream(torch.randn(2, 8000) * 0.1, torch.tensor([8000, 6000]))
    assert len(layers) == 2 and int(frames[1]) == 18


def test_bad_settings_and_a_missing_shipped_checkpoint_are_one_line(data_dir, monkeypatch):
    with pytest.raises(ConfigError, match="unknown key 'model.layers'"):
        pretrain_command("hubert", ["model.layers=3"])
    with pytest.raises(ConfigError, match="this command pretrains wavlm"):
        pretrain_command("wavlm", ["model_name=hubert"])
    from speechbench.upstreams import ssl

    monkeypatch.setattr(ssl, "SHIPPED_DIR", Path(data_dir / "nowhere"))
    mini = registry.get("upstreams", "hubert-mini")
    available, message = mini.weights_available()
    assert not available and "speechbench pretrain hubert" in message
    with pytest.raises(WeightsUnavailableError):
        mini().weights_fingerprint()


def test_the_shipped_hubert_mini_loads_with_s3prl_directly_and_as_an_upstream():
    """The committed checkpoint is s3prl's converted layout, read by s3prl's own loader."""
    from s3prl.upstream.hubert.convert import load_converted_model
    from speechbench.upstreams.ssl import SHIPPED_DIR

    path = SHIPPED_DIR / "hubert-mini.pt"
    model, task_cfg = load_converted_model(str(path))
    summary = json.loads((SHIPPED_DIR / "hubert-mini.json").read_text())
    assert sum(p.numel() for p in model.parameters()) == summary["parameters"]
    assert task_cfg.label_rate == 100.0 and len(model.encoder.layers) == 5
    upstream = registry.get("upstreams", "hubert-mini")()
    layers, frames = upstream(torch.randn(1, 16000) * 0.1, torch.tensor([16000]))
    assert len(layers) == upstream.num_layers == 6 and layers[0].shape == (1, 49, 256)
    assert upstream.num_parameters() == summary["parameters"]


def test_the_shipped_wavlm_mini_loads_with_s3prl_directly_and_as_an_upstream():
    """wavlm_local's layout (cfg, model), read by s3prl's own WavLM classes."""
    from s3prl.upstream.wavlm.WavLM import WavLM, WavLMConfig
    from speechbench.upstreams.ssl import SHIPPED_DIR

    checkpoint = torch.load(SHIPPED_DIR / "wavlm-mini.pt", map_location="cpu", weights_only=True)
    model = WavLM(WavLMConfig(checkpoint["cfg"]))
    model.load_state_dict(checkpoint["model"])  # strict: every weight present and named
    summary = json.loads((SHIPPED_DIR / "wavlm-mini.json").read_text())
    assert sum(p.numel() for p in model.parameters()) == summary["parameters"]
    assert checkpoint["cfg"]["gru_rel_pos"] and checkpoint["cfg"]["relative_position_embedding"]
    upstream = registry.get("upstreams", "wavlm-mini")()
    layers, _ = upstream(torch.randn(1, 16000) * 0.1, torch.tensor([16000]))
    assert len(layers) == upstream.num_layers == 6 and layers[0].shape == (1, 49, 256)


def test_alpha_mixes_masked_and_unmasked_losses_as_the_hubert_paper():
    from speechbench.pretraining.masked import mixed_loss

    masked, unmasked = torch.tensor(2.0), torch.tensor(4.0)
    assert float(mixed_loss(masked, unmasked, 1.0)) == 2.0  # HuBERT-Base: masked frames only
    assert float(mixed_loss(masked, unmasked, 0.5)) == 3.0
    assert float(mixed_loss(masked, torch.tensor(float("nan")), 0.5)) == 1.0  # all masked


def test_frame_similarity_detects_a_collapsed_layer():
    from speechbench.pretraining.diagnostics import frame_similarity

    same = torch.ones(5, 3)
    assert frame_similarity(same, 5) == pytest.approx(1.0)
    orthogonal = torch.eye(4)
    assert frame_similarity(orthogonal, 4) == pytest.approx(0.0)
    # padding frames beyond the valid length are ignored
    assert frame_similarity(torch.cat([orthogonal, torch.ones(3, 4)]), 4) == pytest.approx(0.0)
