"""Verification back-ends over utterance embeddings: cosine, LDA + cosine, Gaussian PLDA.

Every back-end is fitted on the training speakers' embeddings and scores (enroll,
test) pairs, higher = more likely the same speaker:

- ``cosine``: centre on the training mean, cosine similarity.
- ``lda-cosine``: centre, scikit-learn's ``LinearDiscriminantAnalysis`` (eigen solver,
  shrinkage) to at most speakers - 1 dims, length normalisation, cosine.
- ``wccn=True`` adds within-class covariance normalisation (Hatch et al. 2006, the
  i-vector upstream's implementation) after the LDA step of any back-end.
- ``plda``: centre, LDA, length normalisation (Garcia-Romero & Espy-Wilson 2011), then a
  two-covariance Gaussian PLDA scored by its exact log-likelihood ratio.

The two-covariance PLDA (Brummer & de Villiers 2010; EM as in Sizov, Lee & Kinnunen,
"Unifying probabilistic linear discriminant analysis variants", 2014) is written here:
scikit-learn has no PLDA and the PyPI PLDA packages are unmaintained. Model:
``x = y_s + e``, speaker variable ``y_s ~ N(mu, B)``, residual ``e ~ N(0, W)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from speechbench.errors import ConfigError, SpeechbenchError

BACKENDS = ("cosine", "lda-cosine", "plda")


def length_normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _group(x: np.ndarray, speakers: Sequence[str]) -> list[np.ndarray]:
    labels = np.asarray(speakers)
    return [x[labels == s] for s in np.unique(labels)]


class TwoCovariancePLDA:
    """Gaussian PLDA with full between- (B) and within-speaker (W) covariances."""

    def __init__(self, iterations: int = 10, floor: float = 1e-6) -> None:
        self.iterations = iterations
        self.floor = floor

    def _regularise(self, cov: np.ndarray) -> np.ndarray:
        cov = (cov + cov.T) / 2
        return cov + self.floor * max(np.trace(cov) / len(cov), 1e-12) * np.eye(len(cov))

    def fit(self, x: np.ndarray, speakers: Sequence[str]) -> TwoCovariancePLDA:
        groups = _group(x, speakers)
        if len(groups) < 2:
            raise SpeechbenchError("PLDA needs embeddings of at least 2 training speakers")
        counts = np.array([len(g) for g in groups], dtype=float)
        sums = np.stack([g.sum(axis=0) for g in groups])
        scatter = x.T @ x  # sum over all samples of x x'
        # moment estimates as the EM starting point
        class_means = sums / counts[:, None]
        self.mu = class_means.mean(axis=0)
        between = self._regularise(np.cov(class_means.T, bias=True).reshape(x.shape[1], -1))
        within = self._regularise(sum((g - g.mean(0)).T @ (g - g.mean(0)) for g in groups) / len(x))
        for _ in range(self.iterations):
            b_inv, w_inv = np.linalg.inv(between), np.linalg.inv(within)
            # E-step: posterior of each speaker variable, precision B^-1 + n W^-1
            second = np.zeros_like(between)
            cross = np.zeros_like(between)
            means = np.empty_like(class_means)
            for k, (n, f) in enumerate(zip(counts, sums, strict=True)):
                cov = np.linalg.inv(b_inv + n * w_inv)
                mean = cov @ (b_inv @ self.mu + w_inv @ f)
                means[k] = mean
                moment = cov + np.outer(mean, mean)
                second += moment
                cross += n * moment - np.outer(f, mean) - np.outer(mean, f)
            # M-step
            self.mu = means.mean(axis=0)
            between = self._regularise(second / len(groups) - np.outer(self.mu, self.mu))
            within = self._regularise((scatter + cross) / len(x))
        self.between, self.within = between, within
        self._prepare_scoring()
        return self

    def _prepare_scoring(self) -> None:
        """LLR(x1, x2) = x1'Qx1/2 + x2'Qx2/2 + x1'Px2 + const on centred vectors
        (Garcia-Romero & Espy-Wilson 2011, with the constant kept so it is a true LLR)."""
        total = self.between + self.within
        total_inv = np.linalg.inv(total)
        schur_inv = np.linalg.inv(total - self.between @ total_inv @ self.between)
        self.q = total_inv - schur_inv
        self.p = total_inv @ self.between @ schur_inv
        dim = len(total)
        same = np.block([[total, self.between], [self.between, total]])
        _, logdet_same = np.linalg.slogdet(same)
        _, logdet_total = np.linalg.slogdet(total)
        self.const = -0.5 * logdet_same + logdet_total
        self.dim = dim

    def llr(self, enroll: np.ndarray, test: np.ndarray) -> np.ndarray:
        """Same-speaker vs different-speaker log-likelihood ratio of paired rows."""
        e, t = enroll - self.mu, test - self.mu
        quad = 0.5 * (
            np.einsum("ij,jk,ik->i", e, self.q, e) + np.einsum("ij,jk,ik->i", t, self.q, t)
        )
        return quad + np.einsum("ij,jk,ik->i", e, self.p, t) + self.const


class Backend:
    """Centring (+ LDA, + length norm) fitted on training embeddings, then pair scoring."""

    def __init__(
        self, kind: str = "cosine", lda_dim: int = 0, wccn: bool = False, plda_iterations: int = 10
    ) -> None:
        if kind not in BACKENDS:
            raise ConfigError(
                f"bad value {kind!r} for downstream.backend: use one of {', '.join(BACKENDS)}"
            )
        if lda_dim < 0:
            raise ConfigError("downstream.lda_dim must be >= 0 (0: training speakers - 1)")
        self.kind, self.lda_dim, self.plda_iterations = kind, lda_dim, plda_iterations
        self.use_wccn = wccn
        self.center: np.ndarray | None = None
        self.lda = None
        self.wccn: np.ndarray | None = None
        self.plda: TwoCovariancePLDA | None = None

    def fit(self, x: np.ndarray, speakers: Sequence[str]) -> Backend:
        x = np.asarray(x, dtype=np.float64)
        if not np.isfinite(x).all():
            raise SpeechbenchError("training embeddings contain NaN/inf; the head diverged")
        self.center = x.mean(axis=0)
        num_speakers = len(set(speakers))
        if self.kind == "cosine":
            self._fit_wccn(x, speakers)
            return self
        if num_speakers < 2:
            raise SpeechbenchError(
                f"downstream.backend={self.kind} needs at least 2 training speakers"
            )
        from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

        dim = min(self.lda_dim or x.shape[1], num_speakers - 1, x.shape[1])
        self.lda = LinearDiscriminantAnalysis(n_components=dim, solver="eigen", shrinkage="auto")
        self.lda.fit(x - self.center, list(speakers))
        self._fit_wccn(x, speakers)
        if self.kind == "plda":
            projected = self._project(x)
            self.plda = TwoCovariancePLDA(self.plda_iterations).fit(projected, speakers)
        return self

    def _fit_wccn(self, x: np.ndarray, speakers: Sequence[str]) -> None:
        if not self.use_wccn:
            return
        from speechbench.upstreams.ivector import wccn

        centred = x - self.center
        if self.lda is not None:
            centred = self.lda.transform(centred)
        self.wccn = wccn(centred, list(speakers))

    def _project(self, x: np.ndarray) -> np.ndarray:
        if self.center is None:
            raise SpeechbenchError("the verification back-end is not fitted yet")
        centred = np.asarray(x, dtype=np.float64) - self.center
        if self.lda is not None:
            centred = self.lda.transform(centred)
        if self.wccn is not None:
            centred = centred @ self.wccn
        return length_normalise(centred)

    def score(self, enroll: np.ndarray, test: np.ndarray) -> np.ndarray:
        """One score per (enroll row, test row) pair."""
        e, t = self._project(enroll), self._project(test)
        if self.plda is not None:
            return self.plda.llr(e, t)
        return np.einsum("ij,ij->i", e, t)
