"""Plugins: decorator registration, and a third-party package through an entry point."""

import subprocess
from pathlib import Path

import pytest
from plugin_package import install_plugin_package, speechbench_command

from speechbench import registry
from speechbench.errors import ConfigError


def test_builtins_and_unknown_names():
    assert {"mfcc", "fbank"} <= set(registry.names("upstreams"))
    assert registry.get("metrics", "wer").higher_is_better is False
    with pytest.raises(ConfigError, match="unknown downstream 'x'; valid choices: .*asr"):
        registry.get("downstreams", "x")
    with pytest.raises(ConfigError, match="unknown plugin kind"):
        registry.names("widgets")


def test_decorator_registration_in_process(monkeypatch):
    monkeypatch.setitem(registry._registered, "metrics", {})  # leave no probe behind

    @registry.register("metrics", "probe-metric")
    def probe():
        return 1

    assert registry.get("metrics", "probe-metric") is probe


PLUGIN = '''
from dataclasses import dataclass

import torch

from speechbench.upstreams.base import Upstream, pad_frames


@dataclass
class EnergyOptions:
    frame: int = 160


class Energy(Upstream):
    """Log energy and zero-crossing rate per 10 ms frame: a deliberately small upstream."""

    name = "energy-zcr"
    Options = EnergyOptions
    sample_rate = 16000
    frame_rate = 100.0
    num_layers = 1
    dim = 2

    def weights_fingerprint(self):
        return "no-weights"

    def forward(self, wavs, lengths):
        frames = []
        for wav, n in zip(wavs, lengths.tolist()):
            x = wav[: n - n % self.options.frame].reshape(-1, self.options.frame)
            energy = torch.log(x.pow(2).mean(1) + 1e-8)
            zcr = (x[:, 1:].sign() != x[:, :-1].sign()).float().mean(1)
            frames.append(torch.stack([energy, zcr], 1))
        padded, frame_lengths = pad_frames(frames)
        return [padded], frame_lengths
'''


def test_third_party_upstream_through_an_entry_point(tmp_path: Path, sb_home):
    env = install_plugin_package(
        tmp_path, "sb-energy", "sb_energy", PLUGIN,
        {"speechbench.upstreams": {"energy-zcr": "sb_energy:Energy"}},
    )  # fmt: skip
    speechbench = speechbench_command()
    listing = subprocess.run(
        [speechbench, "list", "upstreams"], env=env, capture_output=True, text=True
    )
    assert "energy-zcr" in listing.stdout, listing.stderr
    result = subprocess.run(
        [
            speechbench,
            "run",
            "upstream=energy-zcr",
            "corpus=tiny-synth",
            "downstream.max_epochs=1",
            "downstream.hidden=16",
            "upstream.frame=320",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "upstream=energy-zcr" in result.stdout and "cer" in result.stdout
