"""The shared content hashes: streamed digests equal hashlib's on the whole bytes, and the
stable integers keep the values the corpora were built with (a change would silently
rebuild mini-mos and mini-dcase differently)."""

from __future__ import annotations

import hashlib

import pytest

from speechbench.hashing import file_hash, stable_int


@pytest.mark.parametrize("algorithm", ["sha1", "sha256"])
def test_streamed_digest_equals_hashlib_on_the_whole_file(tmp_path, algorithm):
    data = bytes(range(256)) * 9000  # > 2 MiB: several 1 MiB blocks and a remainder
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert file_hash(path, algorithm) == hashlib.new(algorithm, data).hexdigest()


def test_missing_file_raises_for_the_caller_to_explain(tmp_path):
    with pytest.raises(FileNotFoundError):
        file_hash(tmp_path / "nope.wav")


def test_stable_int_is_pinned():
    assert (
        stable_int("mini-mos", "en", "x") == 264142603079487
    )  # printf mini-mos/en/x | sha1sum, first 12 hex
    assert stable_int("a", "b") != stable_int("ab")  # parts are joined with '/'
