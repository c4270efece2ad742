"""Import scaper under NumPy 2.

scaper 1.6.5 (the newest release) still writes ``np.Inf``, a name NumPy 2.0 removed, in
the code that instantiates every event. Restoring the alias is the whole fix; the rest of
scaper (soundfile I/O, pyloudnorm LUFS, soxbindings) works with NumPy 2 as it is.
"""

from __future__ import annotations

import numpy as np

from speechbench.errors import CorpusError


def import_scaper():
    if not hasattr(np, "Inf"):
        np.Inf = np.inf  # removed in NumPy 2.0, still used by scaper 1.6.5
    try:
        import scaper
    except ImportError as exc:
        raise CorpusError(
            f"mini-dcase needs scaper ({exc}); `pip install scaper` "
            "(its soxbindings dependency builds against libsox-dev: `apt-get install libsox-dev`)"
        ) from None
    return scaper
