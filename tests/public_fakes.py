"""Helpers for the public-corpus loader tests: tiny real audio files and common checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechbench.corpora.base import Corpus
from speechbench.errors import CorpusError


def tone(
    path: Path, rate: int = 16000, seconds: float = 0.2, channels: int = 1, freq: float = 440.0
) -> Path:
    """Write a short sine (format from the suffix: .wav or .flac)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(rate * seconds)) / rate
    wav = 0.3 * np.sin(2 * np.pi * freq * t)
    data = np.stack([wav] * channels, axis=1) if channels > 1 else wav
    sf.write(str(path), data, rate)
    return path


def corrupt(path: Path) -> Path:
    """Replace a file with bytes no decoder accepts."""
    path.write_bytes(b"this is not audio" * 8)
    return path


def text(path: Path, content: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")
    return path


def by_id(records):
    return {r.id: r for r in records}


def assert_missing_env(corpus_cls: type[Corpus], tmp_path: Path, monkeypatch) -> None:
    """Unset variable -> names the variable; wrong directory -> names the path."""
    monkeypatch.delenv(corpus_cls.env_var, raising=False)
    with pytest.raises(CorpusError, match=corpus_cls.env_var):
        corpus_cls(data_dir=tmp_path / "data").prepare()
    empty = tmp_path / "not-a-corpus"
    empty.mkdir()
    monkeypatch.setenv(corpus_cls.env_var, str(empty))
    with pytest.raises(CorpusError, match="expected layout") as info:
        corpus_cls(data_dir=tmp_path / "data").prepare()
    assert str(empty) in str(info.value)
    monkeypatch.setenv(corpus_cls.env_var, str(tmp_path / "nowhere"))
    with pytest.raises(CorpusError, match="nowhere"):
        corpus_cls(data_dir=tmp_path / "data").prepare()


def assert_bad_file_named(corpus_cls: type[Corpus], bad: Path, tmp_path: Path) -> None:
    """A corrupt file stops the build with its name, and no manifest is written."""
    corpus = corpus_cls(data_dir=tmp_path / "data-bad")
    with pytest.raises(CorpusError) as info:
        corpus.prepare()
    assert bad.name in str(info.value)
    assert "\n" not in str(info.value)
    assert not corpus.manifest_path.exists()
