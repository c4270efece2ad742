"""Fuzz `speechbench run` (issue 18): random audio files and manifests in a tiny local
corpus. Every run either succeeds or prints exactly one `error:` line with exit status
2; it never tracebacks, never leaves a half-written file, and never changes the rows
that were in the results store before it.

Hypothesis draws each corpus: file lengths 0..N samples, sample rates, channels,
sample formats, NaN/inf samples, truncated or garbage files, a manifest rate that
disagrees with the file, and manifest damage (bad JSON, non-objects, missing/extra
fields, wrong types, duplicate ids, an empty manifest). Derandomised (the same
examples on every CI run, no example database written), tiny upstream (mfcc) and one
training epoch, so the whole test stays well under 2 minutes.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from speechbench import registry  # noqa: E402
from speechbench.cli import app  # noqa: E402
from speechbench.corpora.base import Corpus, Utterance  # noqa: E402
from speechbench.corpora.tiny_synth import synthesize  # noqa: E402
from speechbench.store import ResultsStore  # noqa: E402

RATES = (8000, 16000, 22050)
SUBTYPES = ("PCM_16", "PCM_24", "PCM_U8", "FLOAT", "DOUBLE")
WORDS = ("ba di", "ku mo", "di ku ba", "mo ba")
SPLITS = ("train",) * 4 + ("dev",) * 2 + ("test",) * 2
MAX_SAMPLES = 6000
RUN = [
    "run",
    "corpus=fuzz-corpus",
    "upstream=mfcc",
    "downstream.max_epochs=1",
    "downstream.hidden=16",
    "downstream.batch_size=4",
]


@dataclass
class FileSpec:
    samples: int
    rate: int
    channels: int
    subtype: str
    poison: str  # "", "nan", "inf"
    damage: str  # "", "truncate", "garbage", "missing", "empty"
    claimed_rate_off: bool  # the manifest says another rate than the file has


@dataclass
class CorpusSpec:
    files: list[FileSpec]
    when: str  # "build": damage during prepare; "after": damage a prepared corpus
    manifest_damage: str = ""
    extra: dict = field(default_factory=dict)


def _wave(spec: FileSpec, index: int) -> np.ndarray:
    rng = np.random.default_rng(index)
    words = WORDS[index % len(WORDS)].split()
    wav = synthesize(words, spec.rate, rng)
    wav = np.resize(wav, spec.samples) if spec.samples else np.zeros(0, np.float32)
    if spec.poison and wav.size and spec.subtype in ("FLOAT", "DOUBLE"):
        wav[rng.integers(0, wav.size)] = np.nan if spec.poison == "nan" else np.inf
    if spec.channels > 1:
        wav = np.stack([wav] * spec.channels, axis=1)
    return wav


def _write(path: Path, spec: FileSpec, index: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), _wave(spec, index), spec.rate, subtype=spec.subtype, format="WAV")
    data = path.read_bytes()
    if spec.damage == "truncate":
        path.write_bytes(data[: max(1, len(data) // 2)])
    elif spec.damage == "garbage":
        path.write_bytes(bytes(np.random.default_rng(index).integers(0, 256, 200, np.uint8)))
    elif spec.damage == "missing":
        path.unlink()
    elif spec.damage == "empty":
        path.write_bytes(b"")


def _record(spec: FileSpec, index: int) -> Utterance:
    claimed = RATES[(RATES.index(spec.rate) + 1) % len(RATES)] if spec.claimed_rate_off else None
    return Utterance(
        id=f"u{index:02d}",
        path=f"audio/u{index:02d}.wav",
        sample_rate=claimed or spec.rate,
        duration=round(spec.samples / spec.rate, 4),
        split=SPLITS[index % len(SPLITS)],
        speaker=f"s{index % 2}",
        language="en",
        text=WORDS[index % len(WORDS)],
    )


class FuzzCorpus(Corpus):
    name = "fuzz-corpus"
    version = "1"
    license = "CC0-1.0 (generated)"
    description = "test-only corpus drawn by Hypothesis"
    sample_rate = 16000
    provides = ("text", "speaker", "language")
    spec: CorpusSpec | None = None

    def build(self, root: Path):
        spec = type(self).spec
        records = []
        for index, file in enumerate(spec.files):
            clean = spec.when == "after"
            _write(root / f"audio/u{index:02d}.wav", _clean(file) if clean else file, index)
            records.append(_record(_clean(file) if clean else file, index))
        return records, "generated for a test"


@pytest.fixture(scope="module", autouse=True)
def fuzz_corpus_registered():
    """Registered only while this module runs (other tests walk every corpus)."""
    registry.register("corpora", "fuzz-corpus")(FuzzCorpus)
    yield
    registry._registered["corpora"].pop("fuzz-corpus", None)


def _clean(spec: FileSpec) -> FileSpec:
    return FileSpec(max(spec.samples, 1600), spec.rate, 1, spec.subtype, "", "", False)


def _damage_manifest(path: Path, how: str) -> None:
    lines = path.read_text().splitlines()
    if how == "bad_json":
        lines[1] = lines[1][:-5]
    elif how == "not_object":
        lines[2] = "[1, 2]"
    elif how == "missing_field":
        record = json.loads(lines[0])
        del record["split"]
        lines[0] = json.dumps(record)
    elif how == "extra_field":
        lines[3] = json.dumps({**json.loads(lines[3]), "surprise": 1})
    elif how == "wrong_type":
        lines[0] = json.dumps({**json.loads(lines[0]), "duration": "long"})
    elif how == "duplicate_id":
        lines.append(lines[0])
    elif how == "empty":
        lines = []
    elif how == "truncated":
        text = "\n".join(lines)
        lines = [text[: len(text) // 2]]
    path.write_text("\n".join(lines) + ("\n" if lines else ""))


# a usable file: any length a recogniser can take, any rate / sample format
valid_files = st.builds(
    FileSpec,
    samples=st.integers(1200, MAX_SAMPLES),
    rate=st.sampled_from(RATES),
    channels=st.just(1),
    subtype=st.sampled_from(SUBTYPES),
    poison=st.just(""),
    damage=st.just(""),
    claimed_rate_off=st.just(False),
)
# anything at all: 0..N samples, stereo, NaN/inf, truncated, garbage, missing, wrong rate
any_files = st.builds(
    FileSpec,
    samples=st.one_of(st.integers(0, 4), st.integers(0, MAX_SAMPLES)),
    rate=st.sampled_from(RATES),
    channels=st.sampled_from((1, 1, 2)),
    subtype=st.sampled_from(SUBTYPES),
    poison=st.sampled_from(("", "", "nan", "inf")),
    damage=st.sampled_from(("",) * 4 + ("truncate", "garbage", "missing", "empty")),
    claimed_rate_off=st.sampled_from((False,) * 4 + (True,)),
)


MANIFEST_DAMAGE = (
    "bad_json",
    "not_object",
    "missing_field",
    "extra_field",
    "wrong_type",
    "duplicate_id",
    "empty",
    "truncated",
)


@st.composite
def corpora(draw) -> CorpusSpec:
    """A valid corpus with 0-2 of its files replaced by arbitrary ones."""
    files = draw(st.lists(valid_files, min_size=len(SPLITS), max_size=len(SPLITS) + 2))
    for _ in range(draw(st.integers(0, 2))):
        files[draw(st.integers(0, len(files) - 1))] = draw(any_files)
    when = draw(st.sampled_from(("build", "after")))
    damage = ""
    if when == "after":
        damage = draw(st.sampled_from(("",) * 3 + MANIFEST_DAMAGE))
    return CorpusSpec(files, when, damage)


@contextlib.contextmanager
def _home():
    keys = ("SPEECHBENCH_HOME", "SPEECHBENCH_DATA", "SPEECHBENCH_CACHE", "SPEECHBENCH_RESULTS")
    saved = {k: os.environ.get(k) for k in keys}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SPEECHBENCH_HOME"] = tmp
        for key in keys[1:]:
            os.environ.pop(key, None)
        try:
            yield Path(tmp)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def _earlier_rows(home: Path) -> list[dict]:
    store = ResultsStore(home / "results" / "results.sqlite")
    store.upsert(
        "earlier",
        config_hash="h-earlier",
        status="finished",
        upstream="fbank",
        downstream="asr",
        corpus="fuzz-corpus",
        primary_metric="cer",
        metrics={"cer": 0.25},
        finished_at="2026-01-01T00:00:00",
    )
    return store.runs()


def _half_written(home: Path) -> list[Path]:
    """Temp files of atomic writes left behind, and JSON files that do not parse."""
    bad = [p for p in home.rglob(".*.tmp")]
    for path in home.rglob("*.json"):
        try:
            json.loads(path.read_text())
        except ValueError:
            bad.append(path)
    return bad


GOOD = FileSpec(4000, 16000, 1, "PCM_16", "", "", False)


def _after(bad: FileSpec | None = None, manifest: str = "") -> CorpusSpec:
    """A prepared corpus whose first file is then replaced by ``bad``."""
    return CorpusSpec([bad or GOOD] + [GOOD] * (len(SPLITS) - 1), "after", manifest)


@settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(spec=corpora())
# the probes, always run: files broken after prepare, and a damaged manifest
@example(spec=_after(FileSpec(1, 16000, 1, "PCM_16", "", "", False)))
@example(spec=_after(FileSpec(4000, 16000, 1, "PCM_16", "", "truncate", False)))
@example(spec=_after(FileSpec(4000, 16000, 1, "PCM_16", "", "garbage", False)))
@example(spec=_after(FileSpec(4000, 16000, 1, "FLOAT", "nan", "", False)))
@example(spec=_after(FileSpec(4000, 16000, 2, "PCM_16", "", "", False)))
@example(spec=_after(FileSpec(4000, 8000, 1, "PCM_16", "", "", False)))
@example(spec=_after(manifest="empty"))
@example(spec=_after(manifest="truncated"))
def test_run_on_random_corpora_succeeds_or_prints_one_error_line(spec: CorpusSpec):
    with _home() as home:
        FuzzCorpus.spec = spec
        before = _earlier_rows(home)
        if spec.when == "after":  # a whole corpus first, then its files or manifest break
            corpus = FuzzCorpus()
            corpus.prepare()
            for index, file in enumerate(spec.files):
                if file != _clean(file):
                    _write(corpus.root / f"audio/u{index:02d}.wav", file, index)
            if spec.manifest_damage:
                _damage_manifest(corpus.manifest_path, spec.manifest_damage)
        result = CliRunner().invoke(app, RUN)
        output = result.output
        if os.environ.get("FUZZ_VERBOSE"):
            last = output.strip().splitlines()[-1:] or [""]
            print("FUZZ", spec.when, spec.manifest_damage, result.exit_code, last[0][:160])
        assert "Traceback" not in output, output
        if result.exit_code != 0:
            assert isinstance(result.exception, SystemExit), (spec, repr(result.exception))
            assert result.exit_code == 2, (spec, output)
            lines = [line for line in output.strip().splitlines() if line.strip()]
            errors = [line for line in lines if line.startswith("error: ")]
            assert len(errors) == 1 and lines[-1] == errors[0], (spec, lines)
        assert _half_written(home) == [], spec
        corpus = FuzzCorpus()
        if spec.when == "build" and result.exit_code != 0 and corpus.manifest_path.exists():
            # a failed build leaves no manifest: the corpus is whole or absent
            pytest.fail(f"failed build left a manifest: {output}")
        after = {r["run_id"]: r for r in ResultsStore(home / "results" / "results.sqlite").runs()}
        for row in before:
            assert after[row["run_id"]] == row, spec
