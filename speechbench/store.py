"""Results store: one SQLite row per run.

SQLite gives atomic transactions and safe concurrent writers (WAL journal, busy
timeout): two runs finishing at once leave two intact rows, and a crash never leaves a
half-written one. A row holds the full resolved config, corpus version, seed,
metrics, timings, peak memory, package versions, git commit and status.

Robustness (issue 18):
- A store file that SQLite cannot read (not a database, malformed pages) is moved
  aside to ``results.sqlite.corrupt-<time>`` with one warning line and a new store is
  started; nothing is deleted.
- ``ResultsStore(path, read_only=True)`` (``leaderboard --include``) opens the file
  read-only and never writes a schema into it; a corrupt or non-store file is a
  one-line :class:`SpeechbenchError`.
- The row of a running run records the ``pid`` and ``host`` of its process, so a run
  killed with ``kill -9`` shows as ``stale`` (:func:`display_status`) instead of
  ``running`` forever. Stores made before these columns get them on open
  (``ALTER TABLE ADD COLUMN``).
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from speechbench.errors import SpeechbenchError

COLUMNS = (
    "run_id",
    "config_hash",
    "status",
    "upstream",
    "downstream",
    "corpus",
    "corpus_version",
    "seed",
    "primary_metric",
    "metrics",
    "config",
    "timings",
    "peak_memory_mb",
    "versions",
    "git_commit",
    "run_dir",
    "error",
    "started_at",
    "finished_at",
    # task contract v2: what the leaderboard needs, recorded when the run runs
    "system",  # upstream + changed options, as CLI overrides
    "labels",  # changed options, budget keys, applicability facts, fitters, epochs
    "metric_info",  # reported key -> {base, condition, target, level, stat, corpus}
    "corpora",  # [{name, version}] of every corpus of the run
    "artefacts",  # files written through the evaluation sink
    "evaluators",  # evaluator name -> fingerprint
    # liveness of a running row (reliability): the process that runs it
    "pid",
    "host",
    # site columns (sweep): weights of the upstream that made the features
    "upstream_params",
)
JSON_COLUMNS = {
    "metrics",
    "config",
    "timings",
    "versions",
    "labels",
    "metric_info",
    "corpora",
    "artefacts",
    "evaluators",
}
ADDED_COLUMNS = {  # columns newer than the first schema: added to old stores on open
    "system": "TEXT",
    "labels": "TEXT",
    "metric_info": "TEXT",
    "corpora": "TEXT",
    "artefacts": "TEXT",
    "evaluators": "TEXT",
    # reliability: pid and host of the process running a row (stale-row detection)
    "pid": "INTEGER",
    "host": "TEXT",
    "upstream_params": "INTEGER",
}
SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, config_hash TEXT NOT NULL, status TEXT NOT NULL,
    upstream TEXT, downstream TEXT, corpus TEXT, corpus_version TEXT, seed INTEGER,
    primary_metric TEXT, metrics TEXT, config TEXT, timings TEXT, peak_memory_mb REAL,
    versions TEXT, git_commit TEXT, run_dir TEXT, error TEXT, started_at TEXT, finished_at TEXT,
    system TEXT, labels TEXT, metric_info TEXT, corpora TEXT, artefacts TEXT, evaluators TEXT,
    pid INTEGER, host TEXT, upstream_params INTEGER
);
CREATE INDEX IF NOT EXISTS runs_by_hash ON runs (config_hash, status);
"""
# SQLite result codes that mean "this file is damaged", not "busy" or "locked".
_CORRUPT_CODES = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}


def _is_corruption(exc: sqlite3.DatabaseError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in _CORRUPT_CODES
    text = str(exc)
    return "not a database" in text or "malformed" in text


def display_status(row: dict[str, Any]) -> str:
    """``stale`` for a ``running`` row whose process (same host, recorded pid) is gone;
    otherwise the stored status. A row from another host cannot be checked: it stays."""
    if row.get("status") != "running" or not row.get("pid"):
        return str(row.get("status"))
    if row.get("host") != socket.gethostname():
        return "running"
    try:
        os.kill(int(row["pid"]), 0)
    except ProcessLookupError:
        return "stale"
    except PermissionError:  # alive, owned by someone else
        return "running"
    return "running"


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


class ResultsStore:
    def __init__(self, path: Path, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        if read_only:
            self._check_readable()
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._create()
        except sqlite3.DatabaseError as exc:
            if not _is_corruption(exc):
                raise
            self._move_aside(exc)
            self._create()

    def _create(self) -> None:
        with self._connect(translate=False) as conn:
            conn.executescript(SCHEMA)
            have = {row[1] for row in conn.execute("PRAGMA table_info(runs)")}
            for column, kind in ADDED_COLUMNS.items():
                if column not in have:
                    try:
                        conn.execute(f"ALTER TABLE runs ADD COLUMN {column} {kind}")
                    except sqlite3.OperationalError as exc:  # another process added it
                        if "duplicate column" not in str(exc):
                            raise
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(f"database disk image is malformed ({check})")

    def _move_aside(self, exc: Exception) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 1
        while aside.exists():
            aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
            n += 1
        os.replace(self.path, aside)
        for suffix in ("-wal", "-shm", "-journal"):
            side = self.path.with_name(self.path.name + suffix)
            if side.exists():
                os.replace(side, aside.with_name(aside.name + suffix))
        sys.stderr.write(
            f"warning: results store {self.path} is corrupt ({exc}); moved it to {aside} "
            "and started a new one\n"
        )

    def _check_readable(self) -> None:
        try:
            with self._connect() as conn:
                have = {row[1] for row in conn.execute("PRAGMA table_info(runs)")}
        except sqlite3.DatabaseError as exc:  # cannot open at all
            raise SpeechbenchError(
                f"{self.path}: cannot read it as a results store ({exc})"
            ) from None
        if not {"run_id", "status"} <= have:
            raise SpeechbenchError(
                f"{self.path}: not a speechbench results store (no runs table); "
                "give the results.sqlite of a speechbench results folder"
            )

    @contextmanager
    def _connect(self, translate: bool = True) -> Iterator[sqlite3.Connection]:
        try:
            if self.read_only:
                uri = f"file:{self.path.resolve()}?mode=ro"
                conn = sqlite3.connect(uri, uri=True, timeout=60)
            else:
                conn = sqlite3.connect(self.path, timeout=60)
        except sqlite3.DatabaseError as exc:
            raise SpeechbenchError(f"{self.path}: cannot open the results store ({exc})") from None
        conn.row_factory = sqlite3.Row
        try:
            if not self.read_only:
                conn.execute("PRAGMA journal_mode=WAL")
            with conn:  # one transaction: committed whole or rolled back
                yield conn
        except sqlite3.DatabaseError as exc:
            if not translate or not _is_corruption(exc):
                raise
            fix = (
                "it cannot be read; copy a good version over it"
                if self.read_only
                else "run the command again: the damaged file will be moved aside"
            )
            raise SpeechbenchError(
                f"{self.path}: results store is corrupt ({exc}); {fix}"
            ) from None
        finally:
            conn.close()

    @staticmethod
    def _decode(row: sqlite3.Row) -> dict[str, Any]:
        out = dict(row)
        for key in JSON_COLUMNS:
            out[key] = json.loads(out[key]) if out.get(key) else {}
        return out

    def upsert(self, run_id: str, **values: Any) -> None:
        """Insert or update one run's row in a single transaction."""
        unknown = set(values) - set(COLUMNS)
        if unknown:
            raise KeyError(f"unknown result columns {sorted(unknown)}")
        if self.read_only:
            raise SpeechbenchError(f"{self.path}: opened read-only; cannot write run {run_id}")
        if values.get("status") == "running":
            # the process that marks a run running is the one running it (unless told)
            values = {"pid": os.getpid(), "host": socket.gethostname(), **values}
        encoded = {
            k: json.dumps(v, sort_keys=True, default=str) if k in JSON_COLUMNS else v
            for k, v in values.items()
        }
        with self._connect() as conn:
            exists = conn.execute("SELECT 1 FROM runs WHERE run_id=?", (run_id,)).fetchone()
            if exists:
                sets = ", ".join(f"{k}=?" for k in encoded)
                conn.execute(f"UPDATE runs SET {sets} WHERE run_id=?", (*encoded.values(), run_id))
            else:
                cols = ["run_id", *encoded]
                marks = ", ".join("?" for _ in cols)
                conn.execute(
                    f"INSERT INTO runs ({', '.join(cols)}) VALUES ({marks})",
                    (run_id, *encoded.values()),
                )

    def get(self, run_id: str) -> dict[str, Any] | None:
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM runs WHERE run_id=?", (run_id,)).fetchone()
        return self._decode(row) if row else None

    def find_finished(self, config_hash: str) -> dict[str, Any] | None:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT * FROM runs WHERE config_hash=? AND status='finished' "
                "ORDER BY finished_at DESC LIMIT 1",
                (config_hash,),
            ).fetchone()
        return self._decode(row) if row else None

    def runs(self, status: str | None = None) -> list[dict[str, Any]]:
        query, args = "SELECT * FROM runs", ()
        if status:
            query, args = query + " WHERE status=?", (status,)
        with self._connect() as conn:
            rows = conn.execute(query + " ORDER BY started_at", args).fetchall()
        return [self._decode(r) for r in rows]
