"""Results store: one SQLite row per run.

SQLite gives atomic transactions and safe concurrent writers (WAL journal, busy
timeout): two runs finishing at once leave two intact rows, and a crash never leaves a
half-written one. A row holds the full resolved config, corpus version, seed,
metrics, timings, peak memory, package versions, git commit and status.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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
}
SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, config_hash TEXT NOT NULL, status TEXT NOT NULL,
    upstream TEXT, downstream TEXT, corpus TEXT, corpus_version TEXT, seed INTEGER,
    primary_metric TEXT, metrics TEXT, config TEXT, timings TEXT, peak_memory_mb REAL,
    versions TEXT, git_commit TEXT, run_dir TEXT, error TEXT, started_at TEXT, finished_at TEXT,
    system TEXT, labels TEXT, metric_info TEXT, corpora TEXT, artefacts TEXT, evaluators TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_hash ON runs (config_hash, status);
"""


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


class ResultsStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.executescript(SCHEMA)
            present = {row[1] for row in conn.execute("PRAGMA table_info(runs)")}
            for column, kind in ADDED_COLUMNS.items():
                if column not in present:
                    conn.execute(f"ALTER TABLE runs ADD COLUMN {column} {kind}")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=60)
        conn.row_factory = sqlite3.Row
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            with conn:  # one transaction: committed whole or rolled back
                yield conn
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
