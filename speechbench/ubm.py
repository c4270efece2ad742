"""The universal background model shared by the i-vector upstream and the GMM-UBM
verification system: a diagonal-covariance GMM over pooled training frames."""

from __future__ import annotations

import logging
import time

import numpy as np
from sklearn.mixture import GaussianMixture

from speechbench.errors import SpeechbenchError

log = logging.getLogger(__name__)


def train_ubm(
    frames: np.ndarray,
    num_gaussians: int,
    max_frames: int,
    iterations: int,
    seed: int,
    setting: str,
) -> GaussianMixture:
    """Fit the UBM on at most ``max_frames`` frames (a seeded subsample).

    ``setting`` names the option that sets ``num_gaussians`` (e.g.
    ``upstream.num_gaussians``) so too little data gives an actionable error.
    """
    rng = np.random.default_rng(seed)
    if len(frames) > max_frames:
        frames = frames[rng.choice(len(frames), max_frames, replace=False)]
    if len(frames) < 10 * num_gaussians:
        raise SpeechbenchError(
            f"{len(frames)} training frames are too few for {setting}={num_gaussians}; "
            "lower it or use more training data"
        )
    log.info(
        "training UBM: %d Gaussians on %d frames x %d dims, up to %d EM iterations",
        num_gaussians,
        len(frames),
        frames.shape[1],
        iterations,
    )
    start = time.perf_counter()
    ubm = GaussianMixture(
        num_gaussians,
        covariance_type="diag",
        max_iter=iterations,
        reg_covar=1e-3,
        random_state=seed,
        verbose=2,  # scikit-learn prints each 5th EM iteration: progress on long fits
        verbose_interval=5,
    ).fit(frames)
    log.info(
        "UBM trained in %.1fs (%d iterations, converged=%s)",
        time.perf_counter() - start,
        ubm.n_iter_,
        ubm.converged_,
    )
    return ubm
