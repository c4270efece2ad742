"""Extraction speed per upstream and speechbench's overhead over the bare model forward.

Not a test: run ``python benchmarks/bench_upstreams.py [--threads 2] [--seconds 40]``.
For every upstream whose weights are here it prints:

- ``xRT``: seconds of audio processed per second of wall time, and per second of
  process CPU time (steadier on a shared machine); higher is faster;
- ``overhead``: speechbench's ``forward`` time over the bare model call on the same
  batch (windowing, length buckets, stitching, padding); the goal is <= 10 %.
  Times are the best of several interleaved runs.

HuBERT / WavLM / wav2vec 2.0 have no offline weights, so base-size checkpoints with
random weights are built (the speed of a forward does not depend on the values).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from speechbench.upstreams import ge2e, ivector, spectral, ssl, whisper
from speechbench.upstreams.random_checkpoints import build_s3prl_checkpoint, build_transformers_dir

from speechbench._torchaudio import torchaudio
from speechbench.corpora.base import Utterance

kaldi = torchaudio.compliance.kaldi


def speechlike_batch(total_seconds: float, rate: int = 16000, seed: int = 0):
    """Utterances of 2-9 s (buzzy harmonic source, syllabic envelope, light noise)."""
    rng = np.random.default_rng(seed)
    wavs, left = [], total_seconds
    while left > 0.5:
        seconds = min(left, rng.uniform(2, 9))
        t = np.arange(int(seconds * rate)) / rate
        f0 = rng.uniform(90, 220)
        wav = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 10))
        wav *= 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(3, 5) * t)
        wavs.append(
            torch.tensor(0.1 * wav + 0.005 * rng.standard_normal(t.size), dtype=torch.float32)
        )
        left -= seconds
    lengths = torch.tensor([w.numel() for w in wavs])
    return torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True), lengths


def interleaved_best(
    calls: list[Callable[[], object]], repeats: int, budget: float
) -> tuple[list[float], list[float]]:
    """Best wall and CPU (process) time of each call, alternating the calls so machine
    load hits all alike; repeats until ``repeats`` runs and ``budget`` seconds are spent."""
    for call in calls:
        call()  # warm-up
    wall = [float("inf")] * len(calls)
    cpu = [float("inf")] * len(calls)
    started, runs = time.perf_counter(), 0
    while runs < repeats or time.perf_counter() - started < budget:
        order = list(enumerate(calls))
        for index, call in order if runs % 2 == 0 else order[::-1]:  # cancel position effects
            w0, c0 = time.perf_counter(), time.process_time()
            call()
            wall[index] = min(wall[index], time.perf_counter() - w0)
            cpu[index] = min(cpu[index], time.process_time() - c0)
        runs += 1
    return wall, cpu


def bare_calls(up, wavs, lengths) -> Callable[[], object] | None:
    """The model's own call on the same batch, without speechbench around it."""
    items = [w[:n] for w, n in zip(wavs, lengths.tolist(), strict=True)]
    if isinstance(up, spectral.MFCC | spectral.Fbank):  # the Kaldi features + CMVN
        return lambda: [spectral.cmvn(up._features(w[None] * 32768.0)) for w in items]
    if isinstance(up, ssl._SSLUpstream):
        backend = up.backend
        if up.padding_sensitive:  # the same per-length calls speechbench makes
            return lambda: [backend([w]) for w in items]
        return lambda: backend(items)
    if isinstance(up, whisper.WhisperTinyEn):
        import ctranslate2

        def tiny():
            for w in items:
                padded = torch.nn.functional.pad(w, (0, whisper.WINDOW_SAMPLES - w.numel()))
                mel = up.features(padded.numpy(), padding=0)[None, :, :3000]
                up.model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(mel)))

        return tiny
    if isinstance(up, ge2e.GE2E):
        from resemblyzer import preprocess_wav

        encoder = up.encoder
        return lambda: [encoder.embed_utterance(preprocess_wav(w.numpy())) for w in items]
    return None


def build_upstreams(root: Path) -> dict[str, torch.nn.Module]:
    built: dict[str, torch.nn.Module] = {
        "mfcc": spectral.MFCC(),
        "fbank": spectral.Fbank(),
    }
    for family, cls in (("hubert", ssl.HuBERT), ("wavlm", ssl.WavLM), ("wav2vec2", ssl.Wav2Vec2)):
        path = build_s3prl_checkpoint(family, root / f"{family}_base.pt", size="base")
        built[f"{family} (s3prl, base)"] = cls(cls.Options(path=str(path)))
    hf = build_transformers_dir("hubert", root / "hubert_hf", size="base")
    built["hubert (transformers, base)"] = ssl.HuBERT(ssl.HuBERT.Options(path=str(hf)))
    if whisper.WhisperTinyEn.weights_available()[0]:
        built["whisper-tiny-en"] = whisper.WhisperTinyEn()
    if ge2e.GE2E.weights_available()[0]:
        built["ge2e"] = ge2e.GE2E()
        built["ge2e-partials"] = ge2e.GE2EPartials()
    iv = ivector.IVector()
    train_wavs, train_lengths = speechlike_batch(240, rate=8000, seed=1)
    iv.fit(
        (Utterance(f"u{i}", f"u{i}.wav", 8000, 0.0, "train", speaker=f"s{i % 4}"), w[:n])
        for i, (w, n) in enumerate(zip(train_wavs, train_lengths.tolist(), strict=True))
    )
    built["ivector"] = iv
    return built


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=40.0, help="audio per batch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--budget", type=float, default=5.0, help="min seconds per upstream")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SPEECHBENCH_CACHE"] = str(Path(tmp) / "cache")
        upstreams = build_upstreams(Path(tmp))
        print(
            f"{args.seconds:.0f} s audio per batch, {args.threads} threads, "
            f"best of >= {args.repeats} runs"
        )
        print(
            f"{'upstream':30} {'layers':>6} {'dim':>5} {'xRT wall':>9} {'xRT cpu':>8} "
            f"{'overhead wall':>13} {'overhead cpu':>12}"
        )
        for name, up in upstreams.items():
            wavs, lengths = speechlike_batch(args.seconds, rate=up.sample_rate)
            audio_seconds = lengths.sum().item() / up.sample_rate
            calls = [lambda up=up, w=wavs, n=lengths: up(w, n)]
            bare = bare_calls(up, wavs, lengths)
            calls += [bare] if bare else []
            with torch.no_grad():
                wall, cpu = interleaved_best(calls, args.repeats, args.budget)
            over_wall = f"{(wall[0] / wall[1] - 1) * 100:+.1f}%" if bare else "n/a"
            over_cpu = f"{(cpu[0] / cpu[1] - 1) * 100:+.1f}%" if bare else "n/a"
            print(
                f"{name:30} {up.num_layers:6d} {up.dim:5d} {audio_seconds / wall[0]:9.1f} "
                f"{audio_seconds / cpu[0]:8.1f} {over_wall:>13} {over_cpu:>12}",
                flush=True,
            )


if __name__ == "__main__":
    main()
