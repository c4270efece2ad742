"""One run = (upstream, downstream, corpus, seed): prepare, extract, train, evaluate, store.

Every step is a plain call; the run's row in the results store goes from
``running`` to ``finished`` (or ``failed`` with the error). Re-running an
interrupted run resumes from its last epoch checkpoint; re-running a finished
identical config returns the stored result unless ``force``.
"""

from __future__ import annotations

import json
import logging
import random
import resource
import subprocess
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import torch

from speechbench import atomic, cache, paths, registry
from speechbench.config import ResolvedConfig, resolve
from speechbench.corpora.base import Corpus, Utterance
from speechbench.downstreams.base import Downstream
from speechbench.errors import ConfigError
from speechbench.metrics.base import get_metric
from speechbench.store import ResultsStore, now
from speechbench.training import make_batches, train_head
from speechbench.upstreams.base import Upstream

log = logging.getLogger("speechbench.run")
PACKAGES = ("speechbench", "torch", "torchaudio", "s3prl", "numpy", "jiwer")


@dataclass
class RunResult:
    run_id: str
    row: dict[str, Any]
    reused: bool  # True: an identical finished run was found and returned


def package_versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def check_compatible(
    upstream_cls: type[Upstream], downstream: Downstream, corpus: Corpus, records: list[Utterance]
) -> None:
    """Fail early, with one line, when a pairing cannot work."""
    if not downstream.accepts_level(upstream_cls.level):
        raise ConfigError(
            f"upstream {upstream_cls.name} gives {upstream_cls.level}-level features but "
            f"downstream {downstream.name} needs {downstream.upstream_level}-level ones: "
            "not applicable"
        )
    missing = [f for f in downstream.requires if not all(getattr(r, f, None) for r in records)]
    if missing:
        raise ConfigError(
            f"corpus {corpus.name} lacks {', '.join(missing)} that downstream {downstream.name} "
            f"needs; use corpus={downstream.default_corpus}"
        )


def _file_logger(run_dir: Path) -> logging.Handler:
    handler = logging.FileHandler(run_dir / "run.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logging.getLogger("speechbench").addHandler(handler)
    logging.getLogger("speechbench").setLevel(logging.INFO)
    return handler


def run(args: list[str], force: bool = False, store: ResultsStore | None = None) -> RunResult:
    """Resolve ``key=value`` args and execute (or reuse) the run."""
    config = resolve(args)
    return run_config(config, force=force, store=store)


def run_config(
    config: ResolvedConfig, force: bool = False, store: ResultsStore | None = None
) -> RunResult:
    settings = config.settings
    if settings.threads > 0:
        torch.set_num_threads(settings.threads)
    store = store or ResultsStore(paths.results_db())
    downstream_cls = registry.get("downstreams", settings.downstream)
    corpus_name = settings.corpus or downstream_cls.default_corpus
    corpus: Corpus = registry.get("corpora", corpus_name)()
    identity = {"corpus": corpus.name, "corpus_version": corpus.version}
    config_hash = config.hash(identity)
    if not force and (done := store.find_finished(config_hash)):
        return RunResult(done["run_id"], done, reused=True)
    run_id = config_hash[:12] if not force else f"{config_hash[:12]}-{int(time.time())}"
    run_dir = paths.results_dir() / "runs" / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    handler = _file_logger(run_dir)
    resolved = {**config.as_dict(), "corpus": corpus.name}
    atomic.write_json(run_dir / "config.json", {**resolved, **identity})
    store.upsert(
        run_id,
        config_hash=config_hash,
        status="running",
        upstream=settings.upstream,
        downstream=settings.downstream,
        corpus=corpus.name,
        corpus_version=corpus.version,
        seed=settings.seed,
        config=resolved,
        versions=package_versions(),
        git_commit=git_commit(),
        run_dir=str(run_dir),
        started_at=now(),
        error=None,
    )
    try:
        row = _execute(config, corpus, run_id, run_dir, store)
        return RunResult(run_id, row, reused=False)
    except BaseException as exc:
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        store.upsert(run_id, status=status, error=f"{type(exc).__name__}: {exc}", finished_at=now())
        raise
    finally:
        logging.getLogger("speechbench").removeHandler(handler)
        handler.close()


def _execute(
    config: ResolvedConfig, corpus: Corpus, run_id: str, run_dir: Path, store: ResultsStore
) -> dict[str, Any]:
    settings = config.settings
    timings: dict[str, float] = {}
    seed_everything(settings.seed)
    t0 = time.perf_counter()
    if not corpus.is_prepared():
        log.info("preparing corpus %s", corpus.name)
    records = corpus.prepare()
    timings["prepare_s"] = round(time.perf_counter() - t0, 2)
    splits = {name: [r for r in records if r.split == name] for name in ("train", "dev", "test")}
    upstream_cls = registry.get("upstreams", settings.upstream)
    downstream: Downstream = registry.get("downstreams", settings.downstream)(
        config.downstream_options
    )
    check_compatible(upstream_cls, downstream, corpus, records)

    t0 = time.perf_counter()
    upstream: Upstream = upstream_cls(config.upstream_options)
    if getattr(upstream, "needs_fit", False):
        from speechbench import audio

        upstream.fit(
            (r, audio.load(corpus.audio_path(r), upstream.sample_rate, r.sample_rate))
            for r in splits["train"]
        )
    features, hits = {}, {}
    for split, recs in splits.items():
        feature_set, hits[split] = cache.cached_features(
            upstream, config.upstream_options, corpus, split, recs, settings.extract_batch_seconds
        )
        # whole split in RAM, as before, until training reads FeatureSets batch by batch
        features[split] = cache.load_all(feature_set)
    timings["extract_s"] = round(time.perf_counter() - t0, 2)
    timings["cache_hits"] = sum(hits.values())
    log.info("features ready in %.1fs (cache hits: %s)", timings["extract_s"], hits)

    t0 = time.perf_counter()
    downstream.setup(splits["train"])
    primary = downstream.primary_metric_for(records)
    head = downstream.build_head(upstream.dim, upstream.num_layers, upstream.frame_rate)
    train_data = (splits["train"], features["train"])
    dev_data = (splits["dev"], features["dev"])
    result = downstream.fit(head, train_data, dev_data) or train_head(
        downstream,
        head,
        train_data,
        dev_data,
        primary,
        get_metric(primary).higher_is_better,
        run_dir / "checkpoint.pt",
        settings.seed,
    )
    timings["train_s"] = round(time.perf_counter() - t0, 2)

    t0 = time.perf_counter()
    targets = {r.id: downstream.target(r) for r in splits["test"]}
    test_batches = make_batches(
        splits["test"],
        features["test"],
        targets,
        downstream.options.batch_size,
        downstream.options.max_batch_frames,
    )
    head.eval()
    metrics, outputs = downstream.evaluate(head, test_batches)
    timings["eval_s"] = round(time.perf_counter() - t0, 2)
    atomic.write_text(
        run_dir / "predictions.jsonl",
        "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in outputs),
    )
    layer_weights = getattr(getattr(head, "layer_sum", None), "layer_weights", lambda: None)()
    atomic.write_json(
        run_dir / "training.json",
        {
            "best_epoch": result.best_epoch,
            "epochs_run": result.epochs_run,
            "best_dev": result.best_dev,
            "history": result.history,
            "layer_weights": layer_weights,
        },
    )
    store.upsert(
        run_id,
        status="finished",
        primary_metric=primary,
        metrics=metrics,
        timings=timings,
        peak_memory_mb=round(peak_memory_mb(), 1),
        finished_at=now(),
    )
    log.info("run %s finished: %s", run_id, metrics)
    return store.get(run_id)
