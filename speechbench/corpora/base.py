"""Corpus contract: a versioned manifest of plain records with fixed splits.

A corpus lives in ``data_dir()/NAME/VERSION/``: audio files, ``manifest.jsonl`` (one
:class:`Utterance` per line), ``ATTRIBUTION`` and ``stats.json``. The manifest is
written last and atomically, after every audio file has been validated, so a corpus
is either whole or absent — never silently partial. Building is restartable:
builders skip outputs that already exist.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

from tqdm import tqdm

from speechbench import atomic, paths
from speechbench.audio import read_audio
from speechbench.errors import AudioError, CorpusError
from speechbench.hashing import file_hash

SPLITS = ("train", "dev", "test")
MAIN = "main"  # the stream stored as ``Utterance.path``


@dataclass
class Utterance:
    """One manifest record; optional fields are None when a corpus lacks them."""

    id: str
    path: str  # relative to the corpus root
    sample_rate: int
    duration: float
    split: str
    speaker: str | None = None
    language: str | None = None
    text: str | None = None
    # [[phone, start_s, end_s], ...] with exact or forced times
    phones: list[list[Any]] | None = None
    # task labels: {"scene": ..., "tags": [...], "events": [[label, on, off]], "mos": {...}}
    labels: dict[str, Any] = field(default_factory=dict)
    # content hash of each stream's file, filled in by Corpus.prepare: stream -> sha1
    sha1: dict[str, str] = field(default_factory=dict)
    # extra named audio streams beside ``path`` (the "main" stream): enroll, reference, ...
    streams: dict[str, str] = field(default_factory=dict)

    @property
    def audio(self) -> dict[str, str]:
        """Every audio stream of the record, ``main`` first: stream -> path."""
        return {MAIN: self.path, **self.streams}

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> Utterance:
        record = dict(record)
        if isinstance(record.get("sha1"), str):  # manifests before streams: one hash, main
            record["sha1"] = {MAIN: record["sha1"]}
        elif record.get("sha1") is None:
            record["sha1"] = {}
        return cls(**record)


def sha1_of(path: Path) -> str:
    return file_hash(path, "sha1")


def write_manifest(path: Path, records: list[Utterance]) -> None:
    lines = [json.dumps(asdict(r), sort_keys=True, ensure_ascii=False) for r in records]
    atomic.write_text(path, "\n".join(lines) + "\n")


# Manifest fields whose type every reader relies on (checked on read, one line per problem).
_MANIFEST_TYPES: dict[str, tuple[type, ...]] = {
    "id": (str,),
    "path": (str,),
    "sample_rate": (int,),
    "duration": (int, float),
    "split": (str,),
    "labels": (dict,),
    "streams": (dict,),
}


def read_manifest(path: Path) -> list[Utterance]:
    """Every record of a manifest; a line that is not a whole, well-formed record, or a
    repeated id, is a :class:`CorpusError` naming the file and line."""
    path = Path(path)
    # data/NAME/VERSION/manifest.jsonl: say which corpus to rebuild
    fix = f"rebuild it with `speechbench data prepare {path.parent.parent.name} --force`"
    known = {f.name for f in fields(Utterance)}
    required = {
        f.name for f in fields(Utterance) if f.default is MISSING and f.default_factory is MISSING
    }
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CorpusError(f"{path}: manifest is not UTF-8 text; {fix}") from None
    records: list[Utterance] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CorpusError(f"{where}: not a JSON line ({exc.msg}); {fix}") from None
        if not isinstance(record, dict):
            raise CorpusError(
                f"{where}: a manifest line must be a JSON object, got {type(record).__name__}; "
                f"{fix}"
            )
        missing, extra = sorted(required - set(record)), sorted(set(record) - known)
        if missing or extra:
            what = "; ".join(
                part
                for part in (
                    f"missing field(s) {missing}" if missing else "",
                    f"unknown field(s) {extra}" if extra else "",
                )
                if part
            )
            raise CorpusError(f"{where}: {what}; {fix}")
        for name, types in _MANIFEST_TYPES.items():
            value = record.get(name)
            if name in record and (not isinstance(value, types) or isinstance(value, bool)):
                raise CorpusError(f"{where}: field {name!r} has the wrong type ({value!r}); {fix}")
        if not (record["sample_rate"] > 0 and math.isfinite(record["duration"])):
            raise CorpusError(f"{where}: sample_rate or duration is not a positive number; {fix}")
        if record["id"] in seen:
            raise CorpusError(
                f"{where}: id {record['id']!r} repeats line {seen[record['id']]}; {fix}"
            )
        seen[record["id"]] = number
        try:
            records.append(Utterance.from_dict(record))
        except (TypeError, ValueError) as exc:
            raise CorpusError(f"{where}: not a manifest record ({exc}); {fix}") from None
    if not records:
        raise CorpusError(f"{path}: manifest has no records; {fix}")
    return records


def corpus_stats(records: list[Utterance]) -> dict[str, Any]:
    """Hours, utterances, speakers, languages and classes per split (for `data list`)."""
    stats: dict[str, Any] = {"utterances": len(records)}
    stats["hours"] = round(sum(r.duration for r in records) / 3600.0, 4)
    stats["per_split"] = dict(Counter(r.split for r in records))
    stats["speakers"] = len({r.speaker for r in records if r.speaker is not None})
    stats["languages"] = sorted({r.language for r in records if r.language is not None})
    classes = {r.labels.get("scene") for r in records if r.labels.get("scene")}
    classes |= {t for r in records for t in r.labels.get("tags", [])}
    # single-label tasks (speaker ID, language ID) name their class in labels["class"]
    classes |= {r.labels.get("class") for r in records if r.labels.get("class")}
    stats["classes"] = len(classes)
    return stats


class Corpus(ABC):
    """Base class of every corpus: subclasses say what they are and how to build."""

    name: ClassVar[str]
    version: ClassVar[str]
    license: ClassVar[str]
    description: ClassVar[str]
    sample_rate: ClassVar[int]
    # manifest fields a downstream may rely on, e.g. ("text", "phones", "speaker")
    provides: ClassVar[tuple[str, ...]] = ()
    # audio streams every record has: name -> channel count (multi-channel = one stream)
    streams: ClassVar[dict[str, int]] = {MAIN: 1}

    def __init__(self, data_dir: Path | None = None) -> None:
        self.data_dir = Path(data_dir) if data_dir is not None else paths.data_dir()

    @property
    def root(self) -> Path:
        return self.data_dir / self.name / self.version

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.jsonl"

    def is_prepared(self) -> bool:
        """A manifest with at least one record is there (an empty one, e.g. from a
        crashed hand edit, does not count: ``prepare`` rebuilds it)."""
        try:
            with open(self.manifest_path, "rb") as fh:
                return any(line.strip() for line in fh)
        except FileNotFoundError:
            return False

    @abstractmethod
    def build(self, root: Path) -> tuple[list[Utterance], str]:
        """Write audio under ``root`` (skipping files already there) and return
        ``(records, attribution_text)``. Raise CorpusError when sources are missing."""

    def prepare(self, force: bool = False) -> list[Utterance]:
        """Build, validate every file, then write the manifest atomically."""
        if self.is_prepared() and not force:
            return self.manifest()
        self.root.mkdir(parents=True, exist_ok=True)
        records, attribution = self.build(self.root)
        if not records:
            raise CorpusError(f"corpus {self.name}: the build produced no utterances")
        bad_splits = {r.split for r in records} - set(SPLITS)
        if bad_splits:
            raise CorpusError(f"corpus {self.name}: unknown split(s) {sorted(bad_splits)}")
        for record in tqdm(records, desc=f"validate {self.name}", unit="file", leave=False):
            self.validate_streams(record)
        atomic.write_text(self.root / "ATTRIBUTION", attribution.strip() + "\n")
        atomic.write_json(self.root / "stats.json", corpus_stats(records))
        write_manifest(self.manifest_path, records)
        return records

    def manifest(self) -> list[Utterance]:
        if not self.is_prepared():
            raise CorpusError(
                f"corpus {self.name} is not prepared in {self.root}; "
                f"run `speechbench data prepare {self.name}`"
            )
        return read_manifest(self.manifest_path)

    def split(self, split: str) -> list[Utterance]:
        if split not in SPLITS:
            raise CorpusError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
        return [r for r in self.manifest() if r.split == split]

    def validate_streams(self, record: Utterance) -> None:
        """Check that the record has every declared stream, each decodes with the declared
        channel count, and store each file's hash."""
        missing = set(self.streams) - set(record.audio)
        if missing:
            raise CorpusError(
                f"corpus {self.name}: record {record.id} lacks stream(s) {sorted(missing)} "
                f"that the corpus declares ({', '.join(self.streams)})"
            )
        hashes = {}
        for stream in record.audio:
            path = self.audio_path(record, stream)
            try:
                read_audio(path, record.sample_rate, channels=self.streams.get(stream, 1))
            except AudioError as exc:
                raise CorpusError(f"corpus {self.name}: stream {stream}: {exc}") from None
            hashes[stream] = sha1_of(path)
        record.sha1 = hashes

    def audio_path(self, record: Utterance, stream: str = MAIN) -> Path:
        """Absolute path of one of the record's audio streams."""
        audio = record.audio
        if stream not in audio:
            raise CorpusError(
                f"corpus {self.name}: record {record.id} has no audio stream {stream!r} "
                f"(it has {', '.join(audio)})"
            )
        return self.root / audio[stream]
