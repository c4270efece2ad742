"""Peak RAM of the feature cache: streaming/memory-mapped (v2) against whole-split dicts (v1).

Not a test: run ``python benchmarks/bench_cache_memory.py`` (needs ``speechbench data
prepare mini-dcase``, about 2 minutes offline; or ``--corpus tiny-synth`` for a smoke
run). A synthetic upstream with HuBERT-base's shape, 13 layers x 768 dims at 50 frames/s
(``benchmarks/synthetic_upstream.py``: a fixed random projection of 20 ms frames, cheap
to compute, same feature volume) is run over all three splits, the way a run does. Each
phase runs in a fresh process and reports its peak resident memory (``ru_maxrss``:
anonymous + file-backed pages, the number a run stores as ``peak_memory_mb``) and the
peak of anonymous memory alone (sampled every 20 ms from /proc/self/status), against
the size of the features on disk:

- ``v2-extract``: cold ``cache.cached_features`` for train, dev and test;
- ``v2-read``: warm open of the three splits, then every item read batch by batch
  (``batching.length_groups`` over frame counts with the downstream defaults,
  16 items / 20000 frames, ``FeatureSet.batch``: float32, straight into the padded
  batch), and the same with a single layer selected (``layers=[k]``);
- ``v2-read-get``: the same through ``FeatureSet.get`` per item + ``batching.pad_frames``
  (one batch of per-item copies plus the padded batch);
- ``v2-read-no-release``: ``v2-read`` without dropping read pages from the mapping
  (``madvise(MADV_DONTNEED)``): file-backed RSS then grows to the entry's size;
- ``v2-train-epoch``: what a run now does (``speechbench.dataset``, the runner's data
  path): one training epoch of a small SUPERB-style head (softmax layer weights, mean
  over time, linear; scene labels) over batches materialized one at a time, then dev
  and test inference;
- ``v1-extract`` / ``v1-load`` / ``v1-run``: the v1 cache (commit 5af6313): extraction
  into one dict per split then ``torch.save``; ``torch.load`` of the three splits (the
  runner kept all three); and what a v1 run then held: the dicts plus v1
  ``training.make_batches`` of dev (kept for the whole training) and of one train epoch
  (replicated here: main's training no longer has it).
  ``--v1-fraction`` runs these on the first fraction of every split (they need several
  GB); their numbers then scale with the fraction.

Writes the raw numbers as JSON (``--out``, default
``benchmarks/results/cache_memory.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
SPLITS = ("train", "dev", "test")


def synthetic_upstream():
    sys.path.insert(0, str(HERE))
    from synthetic_upstream import SyntheticHubertShape

    return SyntheticHubertShape()


# -- memory probes -------------------------------------------------------------------------


def _status() -> dict[str, int]:
    fields = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                fields[key] = int(value.split()[0]) * 1024
    return fields


class PeakSampler:
    """Peak VmRSS / RssAnon / RssFile of this process, sampled every 20 ms."""

    def __init__(self) -> None:
        self.peak = _status()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            for key, value in _status().items():
                self.peak[key] = max(self.peak.get(key, 0), value)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        for key, value in _status().items():
            self.peak[key] = max(self.peak.get(key, 0), value)


def _mb(n: float) -> float:
    return round(n / 1e6, 1)


# -- phases (each in its own process) ------------------------------------------------------


def _records(corpus, fraction: float):
    records = corpus.prepare()
    out = {}
    for split in SPLITS:
        recs = sorted((r for r in records if r.split == split), key=lambda r: r.id)
        out[split] = recs[: max(1, round(len(recs) * fraction))]
    return out


def _v1_extract(upstream, corpus, records, max_batch_seconds):
    """The v1 cache's extract(): the whole split as one dict of L x T x D tensors."""
    from speechbench import audio
    from speechbench.batching import length_groups

    half = upstream.num_layers * upstream.dim > 1024
    out = {}
    with torch.no_grad():
        groups = length_groups([r.duration for r in records], max_batch_seconds, 64)
        for group in groups:
            batch = [records[i] for i in group]
            wavs = [
                audio.load(corpus.audio_path(r), upstream.sample_rate, r.sample_rate) for r in batch
            ]
            lengths = torch.tensor([len(w) for w in wavs])
            padded = torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True)
            hidden, frame_lengths = upstream(padded, lengths)
            stacked = torch.stack(hidden, dim=1)
            for i, record in enumerate(batch):
                feats = stacked[i, :, : int(frame_lengths[i])].contiguous()
                out[record.id] = feats.half() if half else feats.float()
    return out


def _label(record) -> str:
    return str(record.labels.get("scene") or record.speaker)  # tiny-synth: speakers


class _SceneTask:
    """The least a task needs for TaskData.batches: main-stream features, a scene label."""

    def __init__(self, classes: list[str]) -> None:
        self.classes = classes

    def inputs(self, stage):
        from speechbench.downstreams.base import Input

        return {"main": Input()}

    def target(self, record):
        return self.classes.index(_label(record))

    def collate(self, targets, frames):
        return torch.tensor(targets)


def _train_epoch(upstream, corpus, splits, args) -> dict:
    """One training epoch + dev + test inference through the runner's data path
    (speechbench.dataset: TaskData over FeatureSets, one batch materialized at a time)
    with a SUPERB-style head: softmax layer weights, mean over time, linear."""
    import random

    from speechbench.downstreams.base import WeightedLayerSum

    from speechbench import cache
    from speechbench.dataset import CorpusData, TaskData, materialized

    features = {}
    for split in SPLITS:
        found, hit = cache.cached_features(
            upstream, upstream.options, corpus, split, splits[split], args.batch_seconds
        )
        assert hit, "run v2-extract first"
        features[(split, "main")] = found
    data = TaskData({corpus.name: CorpusData(corpus, dict(splits), features)})
    classes = sorted({_label(r) for recs in splits.values() for r in recs})
    task = _SceneTask(classes)
    head = torch.nn.ModuleDict(
        {
            "sum": WeightedLayerSum(upstream.num_layers),
            "out": torch.nn.Linear(upstream.dim, len(classes)),
        }
    )
    optimizer = torch.optim.AdamW(head.parameters(), lr=1e-3)
    out = {"disk_bytes": sum(f.nbytes for f in features.values())}
    for split in SPLITS:
        stage = split
        rng = random.Random(0) if split == "train" else None
        plans = data.batches(
            task, corpus.name, split, stage, args.batch_size, args.batch_frames, rng
        )
        t0 = time.perf_counter()
        for batch in materialized(plans):
            feats = batch.features["main"]
            with torch.set_grad_enabled(split == "train"):
                logits = head["out"](head["sum"](feats).mean(dim=1))
                loss = torch.nn.functional.cross_entropy(logits, batch.targets)
            if split == "train":
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            del batch, feats
        out[f"{split}_s"] = round(time.perf_counter() - t0, 2)
        out[f"{split}_batches"] = len(plans)
    return out


def _v1_make_batches(records, features, targets, batch_size, max_batch_frames):
    """v1 ``training.make_batches`` (commit 5af6313): every batch of the epoch built up
    front as float32 padded tensors."""
    from speechbench.batching import length_groups

    groups = length_groups([features[r.id].shape[1] for r in records], max_batch_frames, batch_size)
    batches = []
    for group in groups:
        feats = [features[records[i].id].float() for i in group]  # each L x T x D
        lengths = torch.tensor([f.shape[1] for f in feats])
        padded = torch.zeros(len(feats), feats[0].shape[0], int(lengths.max()), feats[0].shape[2])
        for i, f in enumerate(feats):
            padded[i, :, : f.shape[1]] = f
        batches.append((padded, lengths, [targets[records[i].id] for i in group]))
    return batches


def run_phase(phase: str, args: argparse.Namespace) -> dict:
    from speechbench import batching, cache, registry

    corpus = registry.get("corpora", args.corpus)()
    upstream = synthetic_upstream()
    fraction = args.v1_fraction if phase.startswith("v1") else 1.0
    splits = _records(corpus, fraction)
    v1_dir = Path(os.environ["SPEECHBENCH_CACHE"]) / "v1"
    result: dict = {"phase": phase, "fraction": fraction}
    read_mode = "get" if phase == "v2-read-get" else "batch"
    result["items"] = sum(len(r) for r in splits.values())
    result["audio_seconds"] = round(sum(x.duration for r in splits.values() for x in r), 1)
    idle = _status()
    result["idle_rss_mb"] = _mb(idle["VmRSS"])
    result["idle_anon_mb"] = _mb(idle["RssAnon"])
    start, cpu = time.perf_counter(), time.process_time()
    with PeakSampler() as sampler:
        if phase == "v2-extract":
            sets = [
                cache.cached_features(
                    upstream, upstream.options, corpus, s, splits[s], args.batch_seconds
                )[0]
                for s in SPLITS
            ]
            result["disk_bytes"] = sum(f.nbytes for f in sets)
        elif phase in ("v2-read", "v2-read-get", "v2-read-no-release"):
            if phase == "v2-read-no-release":  # keep every touched page mapped: for contrast
                cache.FeatureSet._release = lambda self, start, length: None
            sets = []
            for s in SPLITS:
                features, hit = cache.cached_features(
                    upstream, upstream.options, corpus, s, splits[s], args.batch_seconds
                )
                assert hit, "run v2-extract first"
                sets.append(features)
            result["disk_bytes"] = sum(f.nbytes for f in sets)
            result["open_rss_mb"] = _mb(_status()["VmRSS"])
            for layers, name in ((None, "all_layers"), ([args.layer], "one_layer")):
                t0 = time.perf_counter()
                read = largest = 0
                for features in sets:
                    ids = features.ids
                    groups = batching.length_groups(
                        [features.frames(i) for i in ids], args.batch_frames, args.batch_size
                    )
                    for group in groups:
                        if read_mode == "get":  # one copy per item, then the padded batch
                            batch, _ = batching.pad_frames(
                                [features.get(ids[i], layers) for i in group]
                            )
                        else:  # read straight into the padded batch
                            batch, _ = features.batch([ids[i] for i in group], layers)
                        read += batch.numel() * 4
                        largest = max(largest, batch.numel() * 4)
                        del batch
                result[f"{name}_read_s"] = round(time.perf_counter() - t0, 2)
                result[f"{name}_padded_mb"] = _mb(read)
                result[f"{name}_largest_batch_mb"] = _mb(largest)
        elif phase == "v2-train-epoch":
            result.update(_train_epoch(upstream, corpus, splits, args))
        elif phase == "v1-extract":
            v1_dir.mkdir(parents=True, exist_ok=True)
            held = {}
            for s in SPLITS:  # the v1 runner kept every split's dict
                held[s] = _v1_extract(upstream, corpus, splits[s], args.batch_seconds)
                torch.save(held[s], v1_dir / f"{s}.pt")
            result["disk_bytes"] = sum((v1_dir / f"{s}.pt").stat().st_size for s in SPLITS)
        elif phase in ("v1-load", "v1-run"):
            held = {s: torch.load(v1_dir / f"{s}.pt", weights_only=True) for s in SPLITS}
            result["disk_bytes"] = sum((v1_dir / f"{s}.pt").stat().st_size for s in SPLITS)
            result["loaded_rss_mb"] = _mb(_status()["VmRSS"])
            if phase == "v1-run":  # train_head: dev batches for the whole run + one epoch
                targets = {r.id: 0 for recs in splits.values() for r in recs}
                dev = _v1_make_batches(
                    splits["dev"], held["dev"], targets, args.batch_size, args.batch_frames
                )
                train = _v1_make_batches(
                    splits["train"], held["train"], targets, args.batch_size, args.batch_frames
                )
                result["batches"] = len(dev) + len(train)
                del dev, train
    result["seconds"] = round(time.perf_counter() - start, 2)
    result["cpu_seconds"] = round(time.process_time() - cpu, 2)
    result["peak_rss_mb"] = _mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    result["peak_anon_mb"] = _mb(sampler.peak["RssAnon"])
    result["peak_file_mb"] = _mb(sampler.peak["RssFile"])
    result["disk_mb"] = _mb(result.get("disk_bytes", 0))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="mini-dcase")
    parser.add_argument("--v1-fraction", type=float, default=1.0)
    parser.add_argument("--batch-seconds", type=float, default=160.0)  # extract_batch_seconds
    parser.add_argument("--batch-size", type=int, default=16)  # downstream defaults
    parser.add_argument("--batch-frames", type=int, default=20000)
    parser.add_argument("--layer", type=int, default=6)
    parser.add_argument(
        "--phases",
        default=(
            "v2-extract,v2-read,v2-read-get,v2-read-no-release,v2-train-epoch,"
            "v1-extract,v1-load,v1-run"
        ),
    )
    parser.add_argument("--out", type=Path, default=HERE / "results" / "cache_memory.json")
    parser.add_argument(
        "--keep-cache", action="store_true", help="reuse the cache; merge phases into --out"
    )
    parser.add_argument("--phase", help=argparse.SUPPRESS)  # internal: run one phase
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.phase:
        print(json.dumps(run_phase(args.phase, args)))
        return
    cache_dir = Path(os.environ.get("BENCH_CACHE_DIR", "/tmp/speechbench-bench-cache"))
    if cache_dir.exists() and not args.keep_cache:
        import shutil

        shutil.rmtree(cache_dir)
    env = {**os.environ, "SPEECHBENCH_CACHE": str(cache_dir)}
    report = {
        "corpus": args.corpus,
        "upstream": "13 layers x 768 dims, 50 frames/s, stored float16",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "loadavg_start": os.getloadavg(),
        "cpus": os.cpu_count(),
        "phases": [],
    }
    for phase in args.phases.split(","):
        cmd = [sys.executable, __file__, "--phase", phase, "--corpus", args.corpus]
        for flag in ("v1_fraction", "batch_seconds", "batch_size", "batch_frames", "layer"):
            cmd += ["--" + flag.replace("_", "-"), str(getattr(args, flag))]
        print(f"-- {phase}", file=sys.stderr, flush=True)
        out = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if out.returncode:
            sys.exit(f"phase {phase} failed:\n{out.stderr[-3000:]}")
        result = json.loads(out.stdout.strip().splitlines()[-1])
        print(json.dumps(result), file=sys.stderr, flush=True)
        report["phases"].append(result)
    report["loadavg_end"] = os.getloadavg()
    if args.keep_cache and args.out.exists():  # merge: new phases replace old ones by name
        previous = json.loads(args.out.read_text())
        fresh = {p["phase"] for p in report["phases"]}
        kept = [p for p in previous["phases"] if p["phase"] not in fresh]
        report = {**previous, "phases": kept + report["phases"], "merged": report["started"]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
