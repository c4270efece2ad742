"""Content hashes shared by the corpora, the feature cache and the upstreams.

One copy of two mechanisms: a file's digest streamed in 1 MiB blocks (checkpoints are
hundreds of MB, audio is small; both go through the same loop), and a stable integer
from a few strings (seeds and orders that must not depend on Python's hash salt).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

_BLOCK = 1 << 20


def file_hash(path: str | Path, algorithm: str = "sha1") -> str:
    """Full hex digest of a file's bytes (``hashlib`` algorithm name); FileNotFoundError
    propagates so each caller can say what to do about it."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def stable_int(*parts: str) -> int:
    """A 48-bit integer from strings joined by '/' (sha1, first 12 hex digits)."""
    return int(hashlib.sha1("/".join(parts).encode()).hexdigest()[:12], 16)
