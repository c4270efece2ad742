"""One run = (upstream, downstream, corpora, seed): check, prepare, extract, fit, evaluate, store.

Every step is a plain call (``docs/contract.md`` maps them):
corpus streams -> the task's input declaration -> cached features (per stream) and
waveforms -> batches -> head -> fitters -> ``evaluate(stage, ctx)`` with an artefact
sink -> metrics -> the results store. The run's row goes from ``running`` to
``finished`` (or ``failed`` with the error). Re-running an interrupted run resumes from
its last checkpoint; re-running a finished identical config returns the stored result
unless ``force``. The row records what the leaderboard needs — system label, changed
options, budget keys, structured metric keys, applicability facts — so the leaderboard
never imports plugin code to label it.
"""

from __future__ import annotations

import json
import logging
import random
import resource
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch

from speechbench import atomic, audio, cache, paths, registry
from speechbench.artefacts import EvalContext, Sink
from speechbench.config import ResolvedConfig, resolve
from speechbench.corpora.base import Corpus, Utterance
from speechbench.dataset import CorpusData, DictFeatures, TaskData, require_streams, split_records
from speechbench.downstreams.base import Downstream, UpstreamInfo, check_inputs
from speechbench.errors import ConfigError
from speechbench.fitting import evaluate_split, fit_task
from speechbench.metric_keys import describe_metrics
from speechbench.store import ResultsStore, now
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


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and of its finished child processes.

    A worker pool still alive when a phase ends (the PESQ pool) is counted only once it has
    exited, so a phase's CPU time can be low by that pool's share; wall time is exact.
    """
    usages = (resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return sum(u.ru_utime + u.ru_stime for u in usages)


@contextmanager
def phase(timings: dict[str, float], name: str) -> Iterator[None]:
    """Record a run phase's wall time as ``NAME_s`` and its CPU time as ``NAME_cpu_s``."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    yield
    timings[f"{name}_s"] = round(time.perf_counter() - wall, 2)
    timings[f"{name}_cpu_s"] = round(cpu_seconds() - cpu, 2)


def peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def check_compatible(upstream_cls: type[Upstream], task: Downstream, corpus: Corpus) -> None:
    """Fail before anything is prepared, with one line, when a pairing cannot work."""
    reason = check_inputs(task, corpus.name, corpus.streams, upstream_cls.level, upstream_cls.name)
    if reason:
        raise ConfigError(reason)
    declared = set(corpus.provides)
    missing = [f for f in task.requires if declared and f not in declared]
    if missing:
        raise ConfigError(
            f"corpus {corpus.name} lacks {', '.join(missing)} that downstream {task.name} "
            f"needs; use corpus={task.default_corpus}"
        )


def check_records(task: Downstream, corpus: Corpus, records: list[Utterance]) -> None:
    """After prepare: every record has the fields the task reads (a corpus may not declare
    what it provides)."""
    missing = [f for f in task.requires if not all(getattr(r, f, None) for r in records)]
    if missing:
        raise ConfigError(
            f"corpus {corpus.name} lacks {', '.join(missing)} that downstream {task.name} "
            f"needs; use corpus={task.default_corpus}"
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


def corpora_of(config: ResolvedConfig, downstream_cls: type[Downstream]) -> list[Corpus]:
    # a joint-training task may default to several corpora, comma-separated
    names = config.settings.corpora or [
        c.strip() for c in downstream_cls.default_corpus.split(",") if c.strip()
    ]
    if len(set(names)) != len(names):
        raise ConfigError(f"corpus={config.settings.corpus}: a corpus is named twice")
    return [registry.get("corpora", name)() for name in names]


def identity_of(corpora: list[Corpus]) -> dict[str, Any]:
    """What besides the config makes a run: the corpora and their versions (a one-corpus
    run keeps the first contract's identity, so its stored results stay reusable)."""
    if len(corpora) == 1:
        return {"corpus": corpora[0].name, "corpus_version": corpora[0].version}
    return {"corpora": [[c.name, c.version] for c in corpora]}


def run_identity(
    config: ResolvedConfig, upstream_cls: type[Upstream], corpora: list[Corpus]
) -> dict[str, Any]:
    """Everything besides the config that the run's hash covers: the corpora, and the
    upstream's weight file where it has one (a re-shipped checkpoint is a new run)."""
    identity = identity_of(corpora)
    if (weights := upstream_cls.weights_identity(config.upstream_options)) is not None:
        identity["upstream_weights"] = weights
    return identity


def system_label(upstream: str, changed: list[tuple[str, str, Any]]) -> str:
    """The upstream name plus the run's changed options, written as CLI overrides."""

    def short(value: Any) -> str:
        if isinstance(value, str) and ("/" in value or "\\" in value):
            return Path(value).name  # a checkpoint path: its file name is enough to tell
        return str(value).lower() if isinstance(value, bool) else str(value)

    return " ".join([upstream, *(f"{g}.{k}={short(v)}" for g, k, v in changed)])


def run_config(
    config: ResolvedConfig, force: bool = False, store: ResultsStore | None = None
) -> RunResult:
    settings = config.settings
    if settings.threads > 0:
        torch.set_num_threads(settings.threads)
    downstream_cls = registry.get("downstreams", settings.downstream)
    upstream_cls = registry.get("upstreams", settings.upstream)
    corpora = corpora_of(config, downstream_cls)
    task: Downstream = downstream_cls(config.downstream_options)
    for corpus in corpora:  # before any corpus is prepared or the store is touched
        check_compatible(upstream_cls, task, corpus)
    store = store or ResultsStore(paths.results_db())
    identity = run_identity(config, upstream_cls, corpora)
    config_hash = config.hash(identity)
    if not force and (done := store.find_finished(config_hash)):
        return RunResult(done["run_id"], done, reused=True)
    run_id = config_hash[:12] if not force else f"{config_hash[:12]}-{int(time.time())}"
    run_dir = paths.results_dir() / "runs" / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    handler = _file_logger(run_dir)
    names = ",".join(c.name for c in corpora)
    resolved = {**config.as_dict(), "corpus": names}
    atomic.write_json(run_dir / "config.json", {**resolved, **identity})
    changed = config.changed_options()
    store.upsert(
        run_id,
        config_hash=config_hash,
        status="running",
        upstream=settings.upstream,
        downstream=settings.downstream,
        corpus=names,
        corpus_version=",".join(c.version for c in corpora),
        corpora=[{"name": c.name, "version": c.version} for c in corpora],
        seed=settings.seed,
        config=resolved,
        system=system_label(settings.upstream, changed),
        labels={
            "changed_options": [[g, k, v] for g, k, v in changed],
            "budget": config.budget(),
            "upstream_level": upstream_cls.level,
            "task_levels": ["frame", "utterance"]
            if downstream_cls.upstream_level == "any"
            else [downstream_cls.upstream_level],
            "task_options": sorted(vars(config.downstream_options)),
        },
        versions=package_versions(),
        git_commit=git_commit(),
        run_dir=str(run_dir),
        started_at=now(),
        error=None,
    )
    try:
        row = _execute(config, upstream_cls, task, corpora, run_id, run_dir, store)
        return RunResult(run_id, row, reused=False)
    except BaseException as exc:
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        store.upsert(run_id, status=status, error=f"{type(exc).__name__}: {exc}", finished_at=now())
        raise
    finally:
        logging.getLogger("speechbench").removeHandler(handler)
        handler.close()


def _features(found: Any) -> Any:
    """The cache's feature view (a dict of tensors is wrapped in the same interface)."""
    return DictFeatures(found) if isinstance(found, dict) else found


def fit_stream(task: Downstream) -> str:
    """The corpus stream a fitted upstream learns from: one the task reads as features
    (``main`` when it does; ``tse`` reads only the enrollment, its mixture is 2-channel)."""
    wanted = {name: i for name, i in task.inputs("train").items() if i.kind == "features"}
    if "main" in wanted or not wanted:
        return "main"
    name, first = next(iter(wanted.items()))
    return first.source(name)


def build_upstream(
    config: ResolvedConfig,
    upstream_cls: type[Upstream],
    data: TaskData,
    main: Corpus,
    task: Downstream,
) -> Upstream:
    """The upstream of a run; a fitted one (i-vector) learns its extractor from the main
    corpus' training audio of a stream the task reads as features, with the run seed."""
    upstream: Upstream = upstream_cls(config.upstream_options)
    if upstream.needs_fit:
        stream = fit_stream(task)
        upstream.fit(
            (
                (r, audio.load(main.audio_path(r, stream), upstream.sample_rate, r.sample_rate))
                for r in data.records("train", main.name)
            ),
            seed=config.settings.seed,
        )
    return upstream


def feature_inputs(task: Downstream, data: TaskData) -> Iterator[tuple[str, CorpusData, str, str]]:
    """(corpus name, its data, split, stream) of every non-empty split and stream the task
    reads as upstream features: what extraction covers."""
    for name, corpus_data in data.corpora.items():
        for split, records in corpus_data.records.items():
            if not records:
                continue
            stage = "train" if split == "train" else ("dev" if split == "dev" else "test")
            for stream, wanted in task.inputs(stage).items():
                if wanted.kind == "features":
                    yield name, corpus_data, split, stream


def feature_audio_seconds(task: Downstream, data: TaskData) -> float:
    """Seconds of audio the upstream turns into features for this run (every corpus,
    split and stream the task reads as features): the numerator of extraction speed."""
    total = 0.0
    for _, corpus_data, split, stream in feature_inputs(task, data):
        records = corpus_data.records[split]
        if stream == "main":
            total += sum(r.duration for r in records)
        else:
            paths = (corpus_data.corpus.audio_path(r, stream) for r in records)
            total += sum(sf.info(str(p)).duration for p in paths)
    return round(total, 2)


def extract_all(
    config: ResolvedConfig, upstream: Upstream, task: Downstream, data: TaskData
) -> dict[str, Any]:
    """Cached features of every (corpus, split, stream) the task reads as features."""
    hits: dict[str, bool] = {}
    for name, corpus_data, split, stream in feature_inputs(task, data):
        found, hit = cache.cached_features(
            upstream,
            config.upstream_options,
            corpus_data.corpus,
            split,
            corpus_data.records[split],
            config.settings.extract_batch_seconds,
            stream=stream,
        )
        corpus_data.features[(split, stream)] = _features(found)
        hits[f"{name}/{split}/{stream}"] = hit
    return hits


def _execute(
    config: ResolvedConfig,
    upstream_cls: type[Upstream],
    task: Downstream,
    corpora: list[Corpus],
    run_id: str,
    run_dir: Path,
    store: ResultsStore,
) -> dict[str, Any]:
    settings = config.settings
    timings: dict[str, float] = {}
    seed_everything(settings.seed)
    data = TaskData({})
    with phase(timings, "prepare"):
        for corpus in corpora:
            if not corpus.is_prepared():
                log.info("preparing corpus %s", corpus.name)
            records = corpus.prepare()
            check_records(task, corpus, records)
            data.corpora[corpus.name] = CorpusData(corpus, split_records(records))
        require_streams(data, task)

    with phase(timings, "extract"):
        upstream = build_upstream(config, upstream_cls, data, corpora[0], task)
        hits = extract_all(config, upstream, task, data)
    timings["cache_hits"] = sum(hits.values())
    timings["audio_s"] = feature_audio_seconds(task, data)
    # the process's peak so far: corpus loading + the upstream's extraction, before the
    # head is built, so the leaderboard's per-upstream memory is not the head's
    timings["extract_peak_mb"] = round(peak_memory_mb(), 1)
    params = upstream.num_parameters()
    log.info("features ready in %.1fs (cache hits: %s)", timings["extract_s"], hits)

    with phase(timings, "train"):
        head, result = fit_task(task, data, UpstreamInfo.of(upstream), run_dir, settings.seed)
        main_records = [
            r for split in data.corpora[corpora[0].name].records.values() for r in split
        ]
        primary = task.primary_metric_for(main_records)

    with phase(timings, "eval"):
        eval_ctx = EvalContext(Sink(run_dir / "artefacts"), task.evaluators)
        metrics: dict[str, float] = {}
        outputs: list[dict[str, Any]] = []
        for name in data.names:
            scores, outs = evaluate_split(task, head, name, "test", eval_ctx)
            if len(data.names) > 1:  # several corpora: every key names its corpus
                scores = {f"{k}@{name}": v for k, v in scores.items()}
                outs = [{"corpus": name, **o} for o in outs]
            metrics.update(scores)
            outputs.extend(outs)
        if len(data.names) > 1 and "@" not in primary:
            primary = f"{primary}@{data.names[0]}"
    atomic.write_text(
        run_dir / "predictions.jsonl",
        "".join(json.dumps(o, ensure_ascii=False, default=str) + "\n" for o in outputs),
    )
    layer_weights = getattr(getattr(head, "layer_sum", None), "layer_weights", lambda: None)()
    atomic.write_json(
        run_dir / "training.json",
        {
            "best_epoch": result.best_epoch,
            "epochs_run": result.epochs_run,
            "best_dev": result.best_dev,
            "history": result.history,
            "stages": result.stages,
            "layer_weights": layer_weights,
        },
    )
    artefacts = eval_ctx.sink.written
    atomic.write_json(run_dir / "artefacts.json", artefacts)
    row = store.get(run_id) or {}
    labels = {
        **(row.get("labels") or {}),
        "fitters": [s.get("kind") for s in result.stages],
        "epochs_run": result.epochs_run,
    }
    store.upsert(
        run_id,
        status="finished",
        primary_metric=primary,
        metrics=metrics,
        metric_info=describe_metrics(metrics),
        labels=labels,
        artefacts=artefacts,
        evaluators=eval_ctx.fingerprints(),
        timings=timings,
        upstream_params=params,
        peak_memory_mb=round(peak_memory_mb(), 1),
        finished_at=now(),
    )
    log.info("run %s finished: %s", run_id, metrics)
    return store.get(run_id)
