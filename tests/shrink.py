"""Build small versions of the mini corpora in tests (Debian downloads are shared by
the session through SPEECHBENCH_DOWNLOADS, see conftest.py)."""

from collections.abc import Iterator
from typing import Any

import pytest


def shrunk(corpus_class: type, settings: dict[str, Any]) -> Iterator[pytest.MonkeyPatch]:
    """Body of a module fixture: the corpus class with fewer items while the module runs."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in settings.items():
            patch.setattr(corpus_class, name, value)
        yield patch
