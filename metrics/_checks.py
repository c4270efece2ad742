"""Input validation shared by the metric families.

Every metric rejects bad input with a one-line ConfigError naming the argument and
what is wrong, instead of letting numpy broadcast a shape mismatch or propagate NaN.
"""

from __future__ import annotations

from collections.abc import Sized
from typing import Any

import numpy as np

from speechbench.errors import ConfigError


def same_length(name_a: str, a: Sized, name_b: str, b: Sized) -> None:
    if len(a) != len(b):
        raise ConfigError(f"{len(a)} {name_a} but {len(b)} {name_b}; they must pair up one to one")
    if len(a) == 0:
        raise ConfigError(f"no {name_a} given; a metric needs at least one item")


def finite_array(values: Any, name: str, ndim: int | None = None) -> np.ndarray:
    """``values`` as a float array, refusing NaN/inf and (optionally) the wrong rank."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{name} must be numbers: {error}") from None
    if ndim is not None and array.ndim != ndim:
        raise ConfigError(f"{name} must have {ndim} dimension(s), got shape {array.shape}")
    if array.size == 0:
        raise ConfigError(f"{name} is empty; a metric needs at least one item")
    bad = ~np.isfinite(array)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ConfigError(f"{name} contains NaN or inf (first at index {first}); remove or fix it")
    return array


def binary_labels(labels: Any, name: str = "labels") -> np.ndarray:
    """Target/non-target (1/0 or True/False) labels as a bool array."""
    array = np.asarray(labels.detach().cpu() if hasattr(labels, "detach") else labels)
    if array.ndim != 1 or array.size == 0:
        raise ConfigError(f"{name} must be a non-empty 1-D array of 0/1, got shape {array.shape}")
    if array.dtype != bool:
        values = set(np.unique(array).tolist())
        if not values <= {0, 1}:
            raise ConfigError(
                f"{name} must be 0/1 (non-target/target), found values {sorted(values)[:5]}"
            )
    return array.astype(bool)
