"""Shared fixtures: every test gets its own speechbench home; real corpora are
built once per session into a shared data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session", autouse=True)
def shared_downloads(tmp_path_factory: pytest.TempPathFactory):
    """Every test of a session unpacks Debian packages and wheels into one folder."""
    folder = os.environ.get("SPEECHBENCH_TEST_DATA") or str(tmp_path_factory.mktemp("downloads"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SPEECHBENCH_DOWNLOADS", folder)
        yield Path(folder)


@pytest.fixture
def sb_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Isolated data / cache / results folders for one test."""
    monkeypatch.setenv("SPEECHBENCH_HOME", str(tmp_path / "home"))
    for var in ("SPEECHBENCH_DATA", "SPEECHBENCH_CACHE", "SPEECHBENCH_RESULTS"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "home"


@pytest.fixture(scope="session")
def shared_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data folder per test session, so Debian downloads happen once.
    Set SPEECHBENCH_TEST_DATA to reuse a folder across sessions."""
    folder = os.environ.get("SPEECHBENCH_TEST_DATA")
    return Path(folder) if folder else tmp_path_factory.mktemp("data")


@pytest.fixture
def sb_shared(sb_home: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Isolated cache/results but the session's shared data folder."""
    monkeypatch.setenv("SPEECHBENCH_DATA", str(shared_data))
    return sb_home


@pytest.fixture
def benchmark_script():
    """Import one of benchmarks/*.py by name: they are scripts, not a package."""
    import importlib.util

    def load(name: str):
        path = Path(__file__).parents[1] / "benchmarks" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
