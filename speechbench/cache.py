"""Feature cache: frozen upstream features, extracted once and shared by every run.

Key = upstream name + resolved options + weights fingerprint + upstream code
fingerprint + speechbench version + corpus name + corpus version + split (+ the ids
of the utterances). Change any part and the key changes, so stale features are
never served. Entries are written atomically (temp + rename) under a file lock, so
several processes may extract concurrently: one extracts, the others wait and read.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock
from tqdm import tqdm

import speechbench
from speechbench import atomic, audio, paths
from speechbench.corpora.base import Corpus, Utterance
from speechbench.upstreams.base import Upstream

# Large multi-layer features are stored as float16 to halve disk and RAM.
HALF_PRECISION_ABOVE = 1024


def features_root() -> Path:
    return paths.cache_dir() / "features"


def cache_key_parts(
    upstream: Upstream,
    options: Any,
    corpus: Corpus,
    split: str,
    records: list[Utterance],
    stream: str = "main",
) -> dict[str, Any]:
    ids = hashlib.sha256("\n".join(r.id for r in records).encode()).hexdigest()[:16]
    extra = {} if stream == "main" else {"stream": stream}
    return {
        **extra,
        "upstream": upstream.name,
        "options": asdict(options),
        "fingerprint": upstream.fingerprint(),
        "speechbench": speechbench.__version__,
        "corpus": corpus.name,
        "corpus_version": corpus.version,
        "split": split,
        "utterances": ids,
    }


def cache_key(parts: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def length_batches(
    records: list[Utterance], max_seconds: float, max_items: int = 64
) -> list[list[Utterance]]:
    """Group records of similar duration so padding (and memory) stays bounded."""
    batches: list[list[Utterance]] = []
    current: list[Utterance] = []
    for record in sorted(records, key=lambda r: r.duration):
        # padded size of the batch if this (longest so far) record joins it
        if current and (
            (len(current) + 1) * record.duration > max_seconds or len(current) >= max_items
        ):
            batches.append(current)
            current = []
        current.append(record)
    if current:
        batches.append(current)
    return batches


@torch.no_grad()
def extract(
    upstream: Upstream,
    corpus: Corpus,
    records: list[Utterance],
    max_batch_seconds: float,
    desc: str,
    stream: str = "main",
) -> dict[str, torch.Tensor]:
    """Run the frozen upstream over records; returns id -> L x T x D features."""
    upstream.eval()
    half = upstream.num_layers * upstream.dim > HALF_PRECISION_ABOVE
    out: dict[str, torch.Tensor] = {}
    with tqdm(total=len(records), desc=desc, unit="utt") as bar:
        for batch in length_batches(records, max_batch_seconds):
            wavs = [
                audio.load(corpus.audio_path(r, stream), upstream.sample_rate, r.sample_rate)
                for r in batch
            ]
            lengths = torch.tensor([len(w) for w in wavs])
            padded = torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True)
            hidden, frame_lengths = upstream(padded, lengths)
            stacked = torch.stack(hidden, dim=1)  # B x L x T x D
            for i, record in enumerate(batch):
                feats = stacked[i, :, : int(frame_lengths[i])].contiguous()
                out[record.id] = feats.half() if half else feats.float()
            bar.update(len(batch))
    return out


def cached_features(
    upstream: Upstream,
    options: Any,
    corpus: Corpus,
    split: str,
    records: list[Utterance],
    max_batch_seconds: float,
    stream: str = "main",
) -> tuple[dict[str, torch.Tensor], bool]:
    """Features of one split from the cache, extracting them first if absent.

    Returns ``(features, cache_hit)``.
    """
    parts = cache_key_parts(upstream, options, corpus, split, records, stream)
    key = cache_key(parts)
    entry = features_root() / key[:2] / f"{key}.pt"
    entry.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(entry) + ".lock"):
        if entry.exists():
            return torch.load(entry, weights_only=True), True
        start = time.perf_counter()
        feats = extract(
            upstream,
            corpus,
            records,
            max_batch_seconds,
            f"extract {upstream.name}/{split}/{stream}",
            stream,
        )
        atomic.write_with(entry, lambda tmp: torch.save(feats, tmp))
        meta = {
            **parts,
            "key": key,
            "items": len(feats),
            "bytes": entry.stat().st_size,
            "seconds": round(time.perf_counter() - start, 2),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        atomic.write_json(entry.with_suffix(".json"), meta)
    return feats, False


def list_entries() -> list[dict[str, Any]]:
    root = features_root()
    if not root.exists():
        return []
    return [json.loads(p.read_text()) for p in sorted(root.glob("*/*.json"))]


def clear(upstream: str | None = None) -> int:
    """Delete cache entries (all, or one upstream's); returns how many were removed."""
    removed = 0
    for meta in list_entries():
        if upstream is None or meta["upstream"] == upstream:
            base = features_root() / meta["key"][:2] / meta["key"]
            for suffix in (".pt", ".json", ".pt.lock"):
                Path(str(base) + suffix).unlink(missing_ok=True)
            removed += 1
    if upstream is None and features_root().exists():
        shutil.rmtree(features_root())
    return removed
