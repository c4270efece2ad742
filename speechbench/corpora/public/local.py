"""Shared behaviour of corpora that live in a local copy the user already has.

A public corpus cannot be fetched here (no network, licences with click-through), so
each loader reads a local copy whose path is in an environment variable named by the
class, checks that the copy has the official layout, and turns it into the same
:class:`Utterance` manifest as the built-in corpora. Audio stays where it is:
``Utterance.path`` is absolute. :meth:`Corpus.prepare` then validates every file and
writes the manifest last, so a bad item stops the build before any manifest exists.
"""

from __future__ import annotations

import csv
import hashlib
import os
from abc import abstractmethod
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

import soundfile as sf

from speechbench.corpora.base import Corpus, Utterance
from speechbench.errors import CorpusError


class LocalCorpus(Corpus):
    """A corpus read from ``$<env_var>``; subclasses implement :meth:`collect`."""

    version: ClassVar[str] = "1"
    env_var: ClassVar[str]
    # one line, shown in errors: what the directory in env_var must contain
    layout: ClassVar[str]
    citation: ClassVar[str]

    def __init__(self, data_dir: Path | None = None, source: Path | str | None = None) -> None:
        super().__init__(data_dir)
        self._source = Path(source).expanduser() if source is not None else None

    def source_dir(self) -> Path:
        """The local copy: ``source`` if given, else ``$env_var``; it must be a directory."""
        if self._source is not None:
            where, path = "source", self._source
        else:
            value = os.environ.get(self.env_var)
            if not value:
                raise CorpusError(
                    f"corpus {self.name}: set {self.env_var} to your local copy of "
                    f"{self.description} (expected layout: {self.layout})"
                )
            where, path = self.env_var, Path(value).expanduser()
        if not path.is_dir():
            raise CorpusError(
                f"corpus {self.name}: {where}={path} is not a directory; point it at your "
                f"local copy (expected layout: {self.layout})"
            )
        return path.resolve()

    def expect(self, source: Path, *relative: str) -> None:
        """Raise a CorpusError naming the first of ``relative`` missing under ``source``."""
        for rel in relative:
            if not (source / rel).exists():
                raise CorpusError(
                    f"corpus {self.name}: {source} has no '{rel}'; expected layout: {self.layout}"
                )

    def build(self, root: Path) -> tuple[list[Utterance], str]:
        source = self.source_dir()
        records = self.collect(source, root)
        if not records:
            raise CorpusError(
                f"corpus {self.name}: found no utterances in {source}; "
                f"expected layout: {self.layout}"
            )
        duplicated = [key for key, n in Counter(r.id for r in records).items() if n > 1]
        if duplicated:
            raise CorpusError(
                f"corpus {self.name}: utterance id {duplicated[0]!r} occurs more than once in "
                f"{source}; remove the duplicate copy"
            )
        self._expect_one_rate(records)
        attribution = (
            f"{self.description}\nLicense: {self.license}\nCite: {self.citation}\n"
            f"Local copy: {source}"
        )
        return sorted(records, key=lambda r: (r.split, r.id)), attribution

    def _expect_one_rate(self, records: list[Utterance]) -> None:
        """Each of these corpora is released at one rate: a file at another rate (a partly
        resampled copy) is named. A whole copy at another rate is accepted as it is."""
        rates = Counter(r.sample_rate for r in records)
        if len(rates) < 2:
            return
        usual = rates.most_common(1)[0][0]
        odd = next(r for r in records if r.sample_rate != usual)
        raise CorpusError(
            f"corpus {self.name}: {odd.path} has sample rate {odd.sample_rate} Hz but "
            f"{rates[usual]} other files have {usual} Hz (the release is {self.sample_rate} Hz); "
            "restore the original file"
        )

    @abstractmethod
    def collect(self, source: Path, root: Path) -> list[Utterance]:
        """Parse the local copy at ``source`` into records (``root`` is for derived files)."""


def audio_info(path: Path, referenced_by: str | None = None) -> tuple[int, float]:
    """``(sample_rate, duration_s)`` from the file header; a missing or unreadable file is
    a CorpusError naming it (and the metadata line that listed it)."""
    where = f" (listed in {referenced_by})" if referenced_by else ""
    if not path.is_file():
        raise CorpusError(f"{path}: audio file not found{where}; restore it from the corpus")
    try:
        info = sf.info(str(path))
    except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError
        raise CorpusError(
            f"{path}: cannot read audio header ({exc}){where}; replace the file"
        ) from None
    if info.frames <= 0:
        raise CorpusError(f"{path}: audio file is empty (0 samples){where}; replace it")
    return int(info.samplerate), info.frames / info.samplerate


def hash_fraction(key: str) -> float:
    """A stable number in [0, 1) for ``key``: carves dev/test sets that do not move when
    files are added or the directory is listed in another order."""
    return int(hashlib.sha1(key.encode("utf-8")).hexdigest()[:8], 16) / 2**32


def split_by_hash(key: str, dev: float = 0.0, test: float = 0.0) -> str:
    """``dev`` and ``test`` fractions of keys, the rest ``train``."""
    x = hash_fraction(key)
    if x < dev:
        return "dev"
    if x < dev + test:
        return "test"
    return "train"


def read_rows(path: Path, delimiter: str = ",", header: bool = True) -> list[dict[str, str]]:
    """CSV/TSV rows as dicts (header) or as ``{"0": ..., "1": ...}``; a missing or
    unreadable table is a CorpusError naming it."""
    if not path.is_file():
        raise CorpusError(f"{path}: metadata file not found; restore it from the corpus")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            if header:
                rows = list(csv.DictReader(fh, delimiter=delimiter))
            else:
                rows = [
                    {str(i): v for i, v in enumerate(row)}
                    for row in csv.reader(fh, delimiter=delimiter)
                    if row
                ]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise CorpusError(f"{path}: cannot parse metadata ({exc}); restore it") from None
    return rows


def require_columns(path: Path, rows: Iterable[dict[str, str]], *columns: str) -> None:
    rows = list(rows)
    if rows and not set(columns) <= set(rows[0]):
        missing = sorted(set(columns) - set(rows[0]))
        raise CorpusError(f"{path}: missing column(s) {missing}; columns found: {sorted(rows[0])}")
