"""What the feature cache buys: extraction cost per upstream, and cache vs recompute.

    python benchmarks/bench_cache.py                       # all six upstreams
    python benchmarks/bench_cache.py --upstreams mfcc ctap --epochs 3 --per-language 30
    python benchmarks/bench_cache.py --out benchmarks/results/cache.json

Not a test. One process, ``torch.set_num_threads(1)`` (``--threads``), one upstream
after the other. Audio: real read prompts from Debian's ``asterisk-core-sounds-{en,es}``
(8 kHz, resampled by each upstream), ``--per-language`` utterances of each language,
labelled by language, so the head is the real language-ID head.

For each upstream it reports

- **extraction**: wall and CPU seconds of running the frozen upstream once over every
  utterance (reading the audio, ``Upstream.forward`` in batches of 8, as a cache miss
  does), as x real time (audio seconds per wall second) and
  CPU-seconds per audio hour; **cache size** per audio hour = bytes of the extracted
  features (each utterance's own frames, no padding) as ``torch.save`` writes them,
  float16 above the cache's size threshold as the cache stores them;
- **cache vs recompute** (``--epochs`` epochs of the same head, same initial weights,
  same batches in the same order): *cached* trains from the extracted features;
  *recompute* is s3prl's way, reading the audio and running the frozen upstream on
  every batch of every epoch (``torch.no_grad``), then the same head step. The
  per-epoch speed-up is recompute epoch time / cached epoch time (extraction is paid
  once per upstream and corpus and then reused by every seed, task option and re-run);
  ``speedup_total`` also charges the one extraction to the cached side for these
  ``--epochs`` epochs only.

Only public pieces are used (``Upstream.forward``, the LID downstream's ``setup`` /
``build_head`` / ``loss``, ``downstreams.base.Batch`` / ``UpstreamInfo``), so the
benchmark survives changes to the training loop and the cache's internals.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import soundfile as sf
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from speechbench.downstreams.base import Batch, UpstreamInfo  # noqa: E402

from speechbench import audio, cache, registry  # noqa: E402
from speechbench.corpora.base import Corpus, Utterance  # noqa: E402

UPSTREAMS = (
    "mfcc",
    "fbank",
    "mel128",
    "ivector",
    "ge2e",
    "whisper-tiny-en",
    "ctap",
    "hubert-mini",
    "wavlm-mini",
)
VOICES = {
    "en": ("asterisk-core-sounds-en-wav", "en_US_f_Allison"),
    "es": ("asterisk-core-sounds-es-wav", "es_MX_f_Allison"),
}


class _Files(Corpus):
    """A corpus over absolute paths (nothing is built or copied)."""

    name, version, license, description, sample_rate = "bench", "1", "-", "-", 8000

    def build(self, root: Path):  # pragma: no cover - never prepared
        raise NotImplementedError


def bench_records(per_language: int, seed: int = 0) -> list[Utterance]:
    from speechbench.corpora.debian import fetch_package

    rng = random.Random(seed)
    records = []
    for language, (package, voice) in VOICES.items():
        root = fetch_package(package)
        files = sorted(root.rglob(f"sounds/{voice}/*.wav"))
        usable = []
        for path in files:
            info = sf.info(str(path))
            if 1.0 <= info.duration <= 6.0 and info.channels == 1:
                usable.append((path, info))
        for path, info in rng.sample(usable, min(per_language, len(usable))):
            records.append(
                Utterance(
                    id=f"{language}-{path.stem}",
                    path=str(path),
                    sample_rate=info.samplerate,
                    duration=info.duration,
                    split="train",
                    speaker=f"{voice}-{len(records) % 4}",
                    language=language,
                )
            )
    return records


def batches_of(records: list[Utterance], size: int) -> list[list[Utterance]]:
    ordered = sorted(records, key=lambda r: r.duration)
    groups = [ordered[i : i + size] for i in range(0, len(ordered), size)]
    random.Random(0).shuffle(groups)
    return groups


def pad(feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """L x T x D items -> B x L x T x D, lengths."""
    lengths = torch.tensor([f.shape[1] for f in feats])
    out = torch.zeros(len(feats), feats[0].shape[0], int(lengths.max()), feats[0].shape[2])
    for i, f in enumerate(feats):
        out[i, :, : f.shape[1]] = f.float()
    return out, lengths


def forward_batch(upstream, corpus: Corpus, group: list[Utterance]) -> list[torch.Tensor]:
    """What s3prl does per batch: read the audio, run the frozen upstream."""
    wavs = [audio.load(corpus.audio_path(r), upstream.sample_rate, r.sample_rate) for r in group]
    lengths = torch.tensor([len(w) for w in wavs])
    with torch.no_grad():
        hidden, frame_lengths = upstream(torch.nn.utils.rnn.pad_sequence(wavs, True), lengths)
    stacked = torch.stack(hidden, dim=1)
    return [stacked[i, :, : int(frame_lengths[i])] for i in range(len(group))]


def extract(upstream, corpus: Corpus, records: list[Utterance]) -> dict[str, torch.Tensor]:
    """Every utterance through the frozen upstream once, stored as the feature cache
    stores it (float16 for large multi-layer features): what a cache miss costs."""
    half = upstream.num_layers * upstream.dim > getattr(cache, "HALF_PRECISION_ABOVE", 1 << 62)
    out = {}
    for group in batches_of(records, 8):
        for record, feats in zip(group, forward_batch(upstream, corpus, group), strict=True):
            # clone: a slice of the batch would keep (and save) the whole padded batch
            out[record.id] = feats.half() if half else feats.float().clone()
    return out


def clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def since(start: tuple[float, float]) -> tuple[float, float]:
    return time.perf_counter() - start[0], time.process_time() - start[1]


def train_epochs(downstream, upstream, corpus, records, groups, epochs, features=None):
    """Per-epoch (wall, cpu) of training the head; ``features`` None = recompute."""
    torch.manual_seed(0)
    head = downstream.build_head(UpstreamInfo.of(upstream))
    optimizer = torch.optim.AdamW(head.parameters(), lr=1e-3)
    targets = {r.id: downstream.target(r) for r in records}
    times, losses = [], []
    for _ in range(epochs):
        start, total = clock(), 0.0
        head.train()
        for group in groups:
            if features is None:
                feats = forward_batch(upstream, corpus, group)
            else:
                feats = [features[r.id] for r in group]
            padded, lengths = pad(feats)
            batch = Batch(
                records=group,
                targets=[targets[r.id] for r in group],
                corpus=corpus.name,
                features={"main": padded},
                lengths={"main": lengths},
            )
            loss = downstream.loss(head, batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss)
        times.append(since(start))
        losses.append(total / len(groups))
    return times, losses


def bench_upstream(name: str, records, corpus, epochs: int, batch_size: int) -> dict[str, Any]:
    upstream_cls = registry.get("upstreams", name)
    ok, why = upstream_cls.weights_available()
    if not ok:
        return {"upstream": name, "skipped": why}
    upstream = upstream_cls(upstream_cls.Options())
    upstream.eval()
    audio_s = sum(r.duration for r in records)
    result: dict[str, Any] = {"upstream": name, "utterances": len(records), "audio_s": audio_s}
    if getattr(upstream, "needs_fit", False):
        start = clock()
        upstream.fit(
            (r, audio.load(corpus.audio_path(r), upstream.sample_rate, r.sample_rate))
            for r in records
        )
        result["fit_wall_s"], result["fit_cpu_s"] = since(start)
    start = clock()
    features = extract(upstream, corpus, records)
    wall, cpu = since(start)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "features.pt"
        torch.save(features, path)
        size = path.stat().st_size
    result.update(
        extract_wall_s=wall,
        extract_cpu_s=cpu,
        x_realtime_wall=audio_s / wall,
        x_realtime_cpu=audio_s / cpu,
        cpu_s_per_audio_hour=cpu / audio_s * 3600,
        cache_bytes=size,
        cache_mb_per_audio_hour=size / 1e6 / audio_s * 3600,
        feature_shape_per_item=list(next(iter(features.values())).shape),
        feature_dtype=str(next(iter(features.values())).dtype),
    )
    downstream = registry.get("downstreams", "lid")()
    downstream.setup(records)
    groups = batches_of(records, batch_size)
    cached, cached_loss = train_epochs(
        downstream, upstream, corpus, records, groups, epochs, features
    )
    recomputed, recomputed_loss = train_epochs(
        downstream, upstream, corpus, records, groups, epochs, None
    )
    cached_epoch = sum(w for w, _ in cached) / epochs
    recompute_epoch = sum(w for w, _ in recomputed) / epochs
    result.update(
        epochs=epochs,
        batch_size=batch_size,
        cached_epoch_wall_s=cached_epoch,
        cached_epoch_cpu_s=sum(c for _, c in cached) / epochs,
        recompute_epoch_wall_s=recompute_epoch,
        recompute_epoch_cpu_s=sum(c for _, c in recomputed) / epochs,
        speedup_per_epoch=recompute_epoch / cached_epoch,
        speedup_total=(recompute_epoch * epochs) / (wall + cached_epoch * epochs),
        # same head, same batches: both sides must train the same model
        max_loss_difference=max(
            abs(a - b) for a, b in zip(cached_loss, recomputed_loss, strict=True)
        ),
    )
    return result


def machine() -> dict[str, Any]:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "git_commit": commit,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstreams", nargs="+", default=list(UPSTREAMS))
    parser.add_argument("--per-language", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="write the raw numbers as JSON")
    parser.add_argument(
        "--append",
        action="store_true",
        help="keep the other upstreams' rows in --out (each row records its machine state)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    records = bench_records(args.per_language)
    corpus = _Files(data_dir=Path("/"))
    report: dict[str, Any] = {
        "benchmark": "cache",
        "command": "python benchmarks/bench_cache.py "
        + " ".join(
            [
                f"--per-language {args.per_language}",
                f"--epochs {args.epochs}",
                f"--batch-size {args.batch_size}",
                f"--threads {args.threads}",
            ]
        ),
        "machine_before": machine(),
        "results": [],
    }
    if args.append and args.out and args.out.exists():
        kept = json.loads(args.out.read_text())
        report["results"] = [r for r in kept["results"] if r["upstream"] not in args.upstreams]
    print(f"{len(records)} utterances, {sum(r.duration for r in records):.0f} s audio")
    for name in args.upstreams:
        row = {
            **bench_upstream(name, records, corpus, args.epochs, args.batch_size),
            "machine": machine(),
        }
        report["results"].append(row)
        print(json.dumps(row), flush=True)
        if args.out:  # partial results survive an interrupted run
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report, indent=2) + "\n")
    report["machine_after"] = machine()
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
