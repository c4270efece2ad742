"""Feature cache: frozen upstream features, extracted once, streamed to disk, memory-mapped.

One cache **entry** holds the features of one (upstream, corpus, split, stream). Its key
is the upstream name + resolved options + weights fingerprint + upstream code
fingerprint + speechbench version + corpus name + corpus version + split + stream + the
ids of the utterances + **each utterance's content hash** (the manifest's sha1 of that
stream's audio). Change any part, including re-preparing a corpus whose audio was
replaced, and the key changes, so stale features are never served.

Storage (``features_root()/KK/KEY.*``):

- ``KEY.bin``: raw features, one block per utterance in extraction order, each block
  ``L x T x D`` C-ordered in the stored dtype (float16 when ``L * D`` is above
  :data:`HALF_PRECISION_ABOVE`, else float32). Per-utterance blocks rather than one
  ``L x sum(T) x D`` array: the file can be appended to while extracting (no total frame
  count is needed up front, nothing of the split is held in RAM), and an utterance's
  data stays in one region of the file. Layers are still contiguous inside a block, so
  ``get(id, layers=[k])`` reads exactly the ``T x D`` run of each selected layer.
- ``KEY.index``: JSON, id -> (offset, frames), a CRC-32 per (utterance, layer) block,
  and the size/mtime of each source audio file at extraction.
- ``KEY.json``: the entry's metadata (key parts, size, timing), written **last**: it is
  the completion record. It names the data size and the index's sha1, so a missing,
  truncated or swapped file is detected on open.

Writing happens under a file lock (``KEY.lock``) into temp files that are renamed into
place, so several processes may extract concurrently: one extracts, the others wait
and read. A broken entry (no completion record, wrong size, index checksum mismatch,
bad CRC on the blocks checked at open) is named in one log line and rebuilt. Blocks not
checked at open are checked on their first read; a mismatch there raises
:class:`CorruptCacheError` (one line) and invalidates the entry so the next run
rebuilds it.

Reading audio for extraction checks each file against the manifest: decoded duration
within ``max(10 ms, 1 %)`` of the manifest's ``duration``, and the file's sha1 equal to
the manifest's. A warm hit re-checks that each source file still exists with the size
and mtime seen at extraction (re-hashing it if not), so a replaced or deleted file is
the same clear error warm as cold.
"""

from __future__ import annotations

import hashlib
import json
import logging
import mmap
import os
import shutil
import time
import zlib
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from filelock import FileLock
from tqdm import tqdm

import speechbench
from speechbench import atomic, audio, paths
from speechbench.batching import length_groups, pad_stack
from speechbench.corpora.base import Corpus, Utterance
from speechbench.errors import AudioError, SpeechbenchError
from speechbench.hashing import file_hash
from speechbench.upstreams.base import Upstream

log = logging.getLogger("speechbench.cache")

# Large multi-layer features are stored as float16 to halve disk and RAM.
HALF_PRECISION_ABOVE = 1024
FORMAT = 2  # 1: one torch.save'd dict per split; 2: raw blocks + index + completion record
# Entries up to this size have every block's CRC checked when opened (about 0.25 s at
# 1 GB/s); larger ones check their first and last utterance at open and every other
# block on its first read.
VERIFY_ON_OPEN_BYTES = 256 * 1024 * 1024
# Decoded audio may differ from the manifest's duration by at most this much.
DURATION_TOLERANCE_S = 0.010
DURATION_TOLERANCE_REL = 0.01
MAX_ITEMS_PER_EXTRACT_BATCH = 64

_NUMPY_DTYPES = {"float16": np.float16, "float32": np.float32}
_TORCH_DTYPES = {"float16": torch.float16, "float32": torch.float32}


class CorruptCacheError(SpeechbenchError):
    """A cache entry whose data does not match its checksums."""


def features_root() -> Path:
    return paths.cache_dir() / "features"


def stored_dtype(upstream: Upstream) -> str:
    """ "float16" above :data:`HALF_PRECISION_ABOVE` (``num_layers * dim``), else "float32"."""
    return "float16" if upstream.num_layers * upstream.dim > HALF_PRECISION_ABOVE else "float32"


# -- streams, content hashes and checked audio ---------------------------------------------


def record_sha1(record: Utterance, stream: str = "main") -> str | None:
    """The manifest's sha1 of one stream of a record (``sha1`` is a dict stream -> sha1;
    a plain str, as in records made before streams, is the main stream's)."""
    sha1 = record.sha1
    if isinstance(sha1, dict):
        return sha1.get(stream)
    return sha1 if stream == "main" else None


def audio_path(corpus: Corpus, record: Utterance, stream: str = "main") -> Path:
    """Path of one stream of a record; a stream with several channels cannot be cached:
    upstreams take mono audio (a task reads such a stream as a waveform instead)."""
    channels = getattr(corpus, "streams", {}).get(stream, 1)
    if channels != 1:
        raise SpeechbenchError(
            f"corpus {corpus.name}: stream {stream!r} has {channels} channels; upstream "
            "features are extracted from mono streams only (read it as a waveform input)"
        )
    return Path(corpus.audio_path(record, stream))


def _expected_duration(record: Utterance, stream: str) -> float | None:
    if stream == "main":
        return record.duration
    durations = getattr(record, "durations", None)
    return durations.get(stream) if isinstance(durations, dict) else None


def duration_tolerance(expected: float) -> float:
    """Allowed |decoded - manifest| duration in seconds: max(10 ms, 1 %)."""
    return max(DURATION_TOLERANCE_S, DURATION_TOLERANCE_REL * expected)


def _file_sha1(path: Path) -> str:
    try:
        return file_hash(path, "sha1")
    except FileNotFoundError:
        raise AudioError(
            f"{path}: audio file not found; re-run `speechbench data prepare`"
        ) from None


def _replaced(path: Path, corpus: Corpus) -> AudioError:
    return AudioError(
        f"{path}: content differs from the sha1 in the manifest (the file changed after the "
        f"corpus was prepared); re-prepare it: `speechbench data prepare {corpus.name} --force`"
    )


def load_checked(
    corpus: Corpus, record: Utterance, stream: str, target_rate: int
) -> tuple[torch.Tensor, float]:
    """Read one stream of a record for extraction, checked against the manifest.

    Raises :class:`AudioError` naming the file when it is missing or undecodable, when
    its decoded duration is more than :func:`duration_tolerance` off the manifest's
    ``duration``, or when its sha1 differs from the manifest's. Returns the waveform at
    ``target_rate`` and its decoded duration in seconds.
    """
    path = audio_path(corpus, record, stream)
    wav, rate = audio.read_audio(path, record.sample_rate if stream == "main" else None)
    seconds = wav.shape[-1] / rate
    _check_duration(path, corpus, record, stream, seconds)
    sha1 = record_sha1(record, stream)
    if sha1 is not None and _file_sha1(path) != sha1:
        raise _replaced(path, corpus)
    return audio.resample(wav, rate, target_rate), seconds


def _check_duration(
    path: Path, corpus: Corpus, record: Utterance, stream: str, seconds: float
) -> None:
    expected = _expected_duration(record, stream)
    if expected is None:
        return
    tolerance = duration_tolerance(expected)
    if abs(seconds - expected) > tolerance:
        raise AudioError(
            f"{path}: decodes to {seconds:.3f} s but the manifest says {expected:.3f} s "
            f"(tolerance {tolerance * 1000:.0f} ms); the file is truncated or was replaced: "
            f"re-prepare the corpus with `speechbench data prepare {corpus.name} --force`"
        )


def content_hash(corpus: Corpus, records: list[Utterance], stream: str = "main") -> str:
    """Hash of (id, content sha1) of every record's ``stream``; files without a sha1 in
    the manifest (old manifests) are hashed now."""
    digest = hashlib.sha256()
    for record in records:
        sha1 = record_sha1(record, stream) or _file_sha1(audio_path(corpus, record, stream))
        digest.update(f"{record.id}\t{sha1}\n".encode())
    return digest.hexdigest()[:16]


# -- keys ----------------------------------------------------------------------------------


def cache_key_parts(
    upstream: Upstream,
    options: Any,
    corpus: Corpus,
    split: str,
    records: list[Utterance],
    stream: str = "main",
) -> dict[str, Any]:
    ids = hashlib.sha256("\n".join(r.id for r in records).encode()).hexdigest()[:16]
    return {
        "upstream": upstream.name,
        "options": asdict(options),
        "fingerprint": upstream.fingerprint(),
        "speechbench": speechbench.__version__,
        "corpus": corpus.name,
        "corpus_version": corpus.version,
        "split": split,
        "stream": stream,
        "utterances": ids,
        "content": content_hash(corpus, records, stream),
        "format": FORMAT,
    }


def cache_key(parts: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def _entry_paths(key: str) -> dict[str, Path]:
    base = features_root() / key[:2] / key
    return {
        "data": base.with_suffix(".bin"),
        "index": base.with_suffix(".index"),
        "meta": base.with_suffix(".json"),
        "lock": base.with_suffix(".lock"),
    }


# -- the read side -------------------------------------------------------------------------


class FeatureSet:
    """Read-only, memory-mapped view of one cache entry (upstream, corpus, split, stream).

    ``get(id, layers)`` copies only the selected layers of one utterance out of the
    mapping (as float32) and then drops those pages from this process' mapping (they
    stay in the OS page cache), so reading a whole split batch by batch keeps the
    process' resident memory at about one batch, whatever the size of the entry.
    Picklable (the mapping is reopened lazily), e.g. for data-loader workers.
    """

    def __init__(self, data_path: Path, index: dict[str, Any], key: str = "") -> None:
        self.path = Path(data_path)
        self.key = key
        self.ids: list[str] = list(index["ids"])
        self.num_layers: int = int(index["num_layers"])
        self.dim: int = int(index["dim"])
        self.dtype: torch.dtype = _TORCH_DTYPES[index["dtype"]]
        self.nbytes: int = int(index["bytes"])
        self._np_dtype = np.dtype(_NUMPY_DTYPES[index["dtype"]])
        self._row = {id_: i for i, id_ in enumerate(self.ids)}
        self._offsets = np.asarray(index["offsets"], dtype=np.int64)  # in elements
        self._frames = np.asarray(index["frames"], dtype=np.int64)
        self._crc = np.asarray(index["crc32"], dtype=np.int64).reshape(-1, self.num_layers)
        self._verified = np.zeros((len(self.ids), self.num_layers), dtype=bool)
        # id -> [size, mtime_ns, decoded seconds] of its audio at extraction (warm checks)
        self.sources: dict[str, list[int]] = dict(index.get("sources", {}))
        self._map: mmap.mmap | None = None
        self._inode: int | None = None

    # picklable: the mapping is process-local
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_map"] = None
        state["_inode"] = None
        return state

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, id_: object) -> bool:
        return id_ in self._row

    def __repr__(self) -> str:
        return (
            f"FeatureSet({len(self)} items, {self.num_layers}x{self.dim} {self._np_dtype}, "
            f"{self.nbytes / 1e6:.1f} MB, {self.path})"
        )

    def frames(self, id_: str) -> int:
        """Frame count of one utterance, without reading its features."""
        return int(self._frames[self._index_of(id_)])

    def get(self, id_: str, layers: Sequence[int] | None = None) -> torch.Tensor:
        """``L' x T x D`` float32 copy of one utterance (``layers``: which, in that order)."""
        return torch.from_numpy(self._read(self._index_of(id_), layers, np.float32))

    def get_stored(self, id_: str, layers: Sequence[int] | None = None) -> torch.Tensor:
        """Like :meth:`get` but in the stored dtype (half the memory for float16 entries)."""
        return torch.from_numpy(self._read(self._index_of(id_), layers, self._np_dtype))

    def batch(
        self, ids: Sequence[str], layers: Sequence[int] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero-padded ``B x L' x T x D`` float32 batch of ``ids`` plus their frame counts,
        read straight into the batch tensor (no per-item copies: peak RAM is one batch).
        Same result as ``batching.pad_frames([get(i, layers) for i in ids])``."""
        rows = [self._index_of(i) for i in ids]
        lengths = torch.tensor([int(self._frames[r]) for r in rows], dtype=torch.long)
        chosen = self._layers(layers)
        longest = int(lengths.max()) if len(rows) else 0
        out = np.zeros((len(rows), len(chosen), longest, self.dim), np.float32)
        for i, row in enumerate(rows):
            self._read(row, chosen, np.float32, out[i, :, : int(lengths[i])])
        return torch.from_numpy(out), lengths

    def verify(self, rows: Sequence[int] | None = None) -> None:
        """Check the CRC of every (or the given rows') block; raise CorruptCacheError."""
        for row in range(len(self.ids)) if rows is None else rows:
            self._read(row, None, None)

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None

    # -- internals --
    def _index_of(self, id_: str) -> int:
        try:
            return self._row[id_]
        except KeyError:
            raise KeyError(f"{id_!r} is not in this feature set ({self.path.name})") from None

    def _mapping(self) -> mmap.mmap:
        if self._map is None:
            with open(self.path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size != self.nbytes:
                    self._fail(f"is {size} bytes, its index says {self.nbytes}")
                self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
                self._inode = os.fstat(fh.fileno()).st_ino
        return self._map

    def _layers(self, layers: Sequence[int] | None) -> list[int]:
        if layers is None:
            return list(range(self.num_layers))
        out = []
        for layer in layers:
            if not -self.num_layers <= int(layer) < self.num_layers:
                raise IndexError(f"layer {layer} out of range for {self.num_layers} layers")
            out.append(int(layer) % self.num_layers)
        return out

    def _read(
        self,
        row: int,
        layers: Sequence[int] | None,
        dtype: Any,
        out: np.ndarray | None = None,
    ) -> np.ndarray | None:
        """Copy the selected layer blocks of ``row`` into ``out`` (a new ``L' x T x D``
        array of ``dtype`` if not given; ``dtype`` None and no ``out``: check only)."""
        chosen = self._layers(layers)
        frames = int(self._frames[row])
        block = frames * self.dim  # elements per layer
        item_size = self._np_dtype.itemsize
        if out is None and dtype is not None:
            out = np.empty((len(chosen), frames, self.dim), dtype)
        if block == 0:
            return out
        mapping = self._mapping()
        base = int(self._offsets[row])
        for i, layer in enumerate(chosen):
            view = np.frombuffer(mapping, self._np_dtype, block, (base + layer * block) * item_size)
            if not self._verified[row, layer]:
                if zlib.crc32(view) != self._crc[row, layer]:
                    self._fail(f"has a bad checksum in utterance {self.ids[row]!r} layer {layer}")
                self._verified[row, layer] = True
            if out is not None:
                out[i] = view.reshape(frames, self.dim)
            del view
        self._release(base * item_size, self.num_layers * block * item_size)
        return out

    def _release(self, start: int, length: int) -> None:
        """Drop the pages of a block from this process' mapping (not from the page cache)."""
        page = mmap.PAGESIZE
        first = start // page * page
        try:
            self._map.madvise(mmap.MADV_DONTNEED, first, start + length - first)
        except (AttributeError, OSError, ValueError):  # no madvise: the kernel reclaims them
            pass

    def _fail(self, reason: str) -> None:
        try:  # invalidate: the next cached_features() call rebuilds the entry, unless
            # another process has rebuilt it since this set was opened (a new file)
            if self._inode is None or self.path.stat().st_ino == self._inode:
                self.path.with_suffix(".json").unlink(missing_ok=True)
        except FileNotFoundError:
            pass
        raise CorruptCacheError(
            f"cache entry {self.path} {reason}; it has been invalidated: run again to rebuild it"
        )


def load_all(features: FeatureSet) -> dict[str, torch.Tensor]:
    """Every utterance of a FeatureSet as a dict id -> ``L x T x D`` in the stored dtype.

    Compatibility for code that still takes whole-split dicts (the v1 cache's return
    value): this makes the whole split resident again.
    """
    return {id_: features.get_stored(id_) for id_ in features.ids}


class _Broken(Exception):
    """An entry that must be rebuilt (internal)."""


def _open_entry(key: str) -> FeatureSet | None:
    """The entry's FeatureSet; None when absent; raises _Broken(reason) when unusable."""
    files = _entry_paths(key)
    if not files["meta"].exists():
        if files["data"].exists() or files["index"].exists():
            raise _Broken("incomplete (no completion record)")
        return None
    try:
        meta = json.loads(files["meta"].read_text())
        if meta.get("format") != FORMAT or meta.get("key") != key:
            raise _Broken("from another cache format")
        index_bytes = files["index"].read_bytes()
        if hashlib.sha1(index_bytes).hexdigest() != meta["index_sha1"]:
            raise _Broken("inconsistent (its index does not match the completion record)")
        index = json.loads(index_bytes)
        size = files["data"].stat().st_size
    except FileNotFoundError as exc:
        raise _Broken(f"incomplete ({Path(exc.filename).name} is missing)") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise _Broken(f"unreadable ({type(exc).__name__}: {exc})") from None
    if size != meta["bytes"] or size != index.get("bytes"):
        raise _Broken(f"truncated ({size} bytes on disk, {meta['bytes']} written)")
    features = FeatureSet(files["data"], index, key)
    rows = range(len(features))
    if features.nbytes > VERIFY_ON_OPEN_BYTES:
        rows = sorted({0, len(features) - 1}) if len(features) else []
    try:
        features.verify(rows)
    except CorruptCacheError:
        raise _Broken("corrupt (a block's checksum does not match)") from None
    return features


def _check_sources(
    features: FeatureSet, corpus: Corpus, records: list[Utterance], stream: str
) -> None:
    """On a warm hit: every source file still there, same size/mtime (else the same sha1),
    and its duration seen at extraction within tolerance of this manifest's."""
    stats = features.sources
    for record in records:
        path = audio_path(corpus, record, stream)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise AudioError(
                f"{path}: audio file not found; re-run `speechbench data prepare {corpus.name}`"
            ) from None
        seen = stats.get(record.id)
        if seen is None or seen[:2] != [st.st_size, st.st_mtime_ns]:
            sha1 = record_sha1(record, stream)
            if sha1 is not None and _file_sha1(path) != sha1:
                raise _replaced(path, corpus)
        if seen is not None:  # the decoded duration seen at extraction vs this manifest
            _check_duration(path, corpus, record, stream, float(seen[2]))


def _remove(key: str) -> None:
    files = _entry_paths(key)
    for name in ("meta", "index", "data"):  # completion record first
        files[name].unlink(missing_ok=True)


# -- the write side ------------------------------------------------------------------------


def length_batches(
    records: list[Utterance], max_seconds: float, max_items: int = MAX_ITEMS_PER_EXTRACT_BATCH
) -> list[list[Utterance]]:
    """Group records of similar duration so padding (and memory) stays bounded."""
    groups = length_groups([r.duration for r in records], max_seconds, max_items)
    return [[records[i] for i in group] for group in groups]


@torch.no_grad()
def extract_to(
    fh: Any,
    upstream: Upstream,
    corpus: Corpus,
    records: list[Utterance],
    max_batch_seconds: float,
    desc: str,
    stream: str = "main",
) -> dict[str, Any]:
    """Run the frozen upstream over records, appending each utterance's ``L x T x D``
    block to the binary file ``fh`` as soon as its batch is done; returns the index."""
    upstream.eval()
    dtype = stored_dtype(upstream)
    torch_dtype = _TORCH_DTYPES[dtype]
    rows: dict[str, tuple[int, int, list[int]]] = {}
    sources: dict[str, list[int]] = {}
    offset = 0
    with tqdm(total=len(records), desc=desc, unit="utt") as bar:
        for batch in length_batches(records, max_batch_seconds):
            wavs = []
            for r in batch:
                wav, seconds = load_checked(corpus, r, stream, upstream.sample_rate)
                wavs.append(wav)
                st = audio_path(corpus, r, stream).stat()
                sources[r.id] = [st.st_size, st.st_mtime_ns, seconds]
            padded, lengths = pad_stack(wavs)
            hidden, frame_lengths = upstream(padded, lengths)
            if len(hidden) != upstream.num_layers or hidden[0].shape[-1] != upstream.dim:
                raise SpeechbenchError(
                    f"upstream {upstream.name} returned {len(hidden)} layers of dim "
                    f"{hidden[0].shape[-1]}, but declares {upstream.num_layers} x {upstream.dim}"
                )
            for i, record in enumerate(batch):
                frames = int(frame_lengths[i])
                crcs = []
                for layer in hidden:
                    block = layer[i, :frames].detach().to("cpu", torch_dtype).contiguous().numpy()
                    fh.write(block.data)
                    crcs.append(zlib.crc32(block))
                rows[record.id] = (offset, frames, crcs)
                offset += upstream.num_layers * frames * upstream.dim
            del hidden, padded, wavs
            bar.update(len(batch))
    ids = [r.id for r in records]
    return {
        "format": FORMAT,
        "ids": ids,
        "offsets": [rows[i][0] for i in ids],
        "frames": [rows[i][1] for i in ids],
        "crc32": [rows[i][2] for i in ids],
        "num_layers": upstream.num_layers,
        "dim": upstream.dim,
        "dtype": dtype,
        "bytes": offset * np.dtype(_NUMPY_DTYPES[dtype]).itemsize,
        "sources": sources,
    }


def _build(
    key: str,
    parts: dict[str, Any],
    upstream: Upstream,
    corpus: Corpus,
    records: list[Utterance],
    max_batch_seconds: float,
    stream: str,
) -> FeatureSet:
    files = _entry_paths(key)
    start = time.perf_counter()
    desc = f"extract {upstream.name}/{parts['split']}" + ("" if stream == "main" else f"/{stream}")
    with atomic.atomic_path(files["data"]) as tmp:
        with open(tmp, "wb") as fh:
            index = extract_to(fh, upstream, corpus, records, max_batch_seconds, desc, stream)
            fh.flush()
            os.fsync(fh.fileno())
    index_text = json.dumps(index, separators=(",", ":"))
    atomic.write_text(files["index"], index_text)
    meta = {
        **parts,
        "key": key,
        "items": len(records),
        "bytes": index["bytes"],
        "dtype": index["dtype"],
        "num_layers": index["num_layers"],
        "dim": index["dim"],
        "frames": int(sum(index["frames"])),
        "index_sha1": hashlib.sha1(index_text.encode()).hexdigest(),
        "seconds": round(time.perf_counter() - start, 2),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    atomic.write_json(files["meta"], meta)  # completion record: last
    features = FeatureSet(files["data"], index, key)
    features._verified[:] = True  # just computed from the same bytes
    if features.nbytes:
        features._mapping()  # map now: the file this index was written for
    return features


def cached_features(
    upstream: Upstream,
    options: Any,
    corpus: Corpus,
    split: str,
    records: list[Utterance],
    max_batch_seconds: float,
    stream: str = "main",
) -> tuple[FeatureSet, bool]:
    """Features of one split (one stream) from the cache, extracting them first if absent.

    Returns ``(features, cache_hit)``. A broken entry is logged in one line and rebuilt.
    """
    parts = cache_key_parts(upstream, options, corpus, split, records, stream)
    key = cache_key(parts)
    files = _entry_paths(key)
    files["lock"].parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(files["lock"])):
        try:
            features = _open_entry(key)
        except _Broken as broken:
            log.warning(
                "cache entry %s (%s on %s/%s, stream %s) is %s; rebuilding it",
                key, upstream.name, corpus.name, split, stream, broken,
            )  # fmt: skip
            _remove(key)
            features = None
        if features is not None:
            _check_sources(features, corpus, records, stream)
            return features, True
        return _build(key, parts, upstream, corpus, records, max_batch_seconds, stream), False


# -- housekeeping --------------------------------------------------------------------------


def list_entries() -> list[dict[str, Any]]:
    """Metadata of every complete entry (format 1 entries included, until cleared)."""
    root = features_root()
    if not root.exists():
        return []
    entries = []
    for path in sorted(root.glob("*/*.json")):
        try:
            meta = json.loads(path.read_text())
        except (OSError, ValueError):
            log.warning("cache: skipping unreadable entry record %s", path)
            continue
        if isinstance(meta, dict) and "key" in meta:
            entries.append(meta)
    return entries


def clear(upstream: str | None = None) -> int:
    """Delete cache entries (all, or one upstream's); returns how many were removed."""
    removed = 0
    for meta in list_entries():
        if upstream is None or meta.get("upstream") == upstream:
            folder = features_root() / meta["key"][:2]
            (folder / f"{meta['key']}.json").unlink(missing_ok=True)
            for path in folder.glob(f"{meta['key']}.*"):
                path.unlink(missing_ok=True)
            removed += 1
    if upstream is None and features_root().exists():
        shutil.rmtree(features_root())
    return removed
