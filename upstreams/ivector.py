"""Classic i-vectors (Dehak et al. 2011): MFCC-39 -> GMM-UBM -> total variability -> i-vector.

The extractor is trained on the corpus' training split by :meth:`IVector.fit`:

1. MFCC 13 + deltas + delta-deltas with CMVN (the ``mfcc`` upstream, at 8 kHz), low-energy
   frames dropped by an energy VAD;
2. a diagonal-covariance GMM-UBM (scikit-learn ``GaussianMixture``);
3. zeroth/first-order Baum-Welch statistics per utterance, centred on the UBM means
   and whitened by its standard deviations;
4. the total-variability matrix ``T`` trained by EM (written here: no well-kept
   Python library implements it), then each utterance's i-vector is the posterior
   mean of its latent factor;
5. centring on the training mean, optional LDA (scikit-learn) and WCCN on the
   training speakers, and length normalisation.

The trained extractor is cached under ``cache_dir()/ivector/`` keyed by the options,
the code fingerprint and a hash of the training utterance ids (and file hashes); all
its parameters are module buffers, so they enter ``fingerprint()`` and features of
another extractor are never served from the feature cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from speechbench.upstreams.base import Upstream
from speechbench.upstreams.spectral import MFCC

from speechbench import atomic, paths
from speechbench.errors import ConfigError, SpeechbenchError
from speechbench.options import option
from speechbench.ubm import train_ubm

log = logging.getLogger(__name__)
_BUFFERS = ("ubm_weights", "ubm_means", "ubm_stds", "total_variability", "center", "projection")


@dataclass
class IVectorOptions:
    num_gaussians: int = option(64, low=2)
    ivector_dim: int = option(100, low=1)
    tv_iterations: int = option(6, low=1)  # EM iterations of the total-variability matrix
    ubm_iterations: int = option(30, low=1)
    max_ubm_frames: int = option(200_000, low=1)  # random subset of training frames (UBM)
    vad: bool = True
    vad_db: float = option(
        30.0, low=0.0, low_open=True
    )  # keep frames this many dB from the loud end
    lda_dim: int = option(0, low=0)  # 0: no LDA; else min(lda_dim, speakers - 1) dims
    wccn: bool = False


def energy_vad(wav: torch.Tensor, num_frames: int, below_db: float) -> torch.Tensor:
    """Frames (25 ms / 10 ms at 8 kHz, Kaldi snip-edges) whose energy is within ``below_db``
    of the 95th-percentile frame energy. A few lines, so written here rather than a VAD."""
    window, hop = 200, 80
    if wav.numel() < window:
        return torch.ones(num_frames, dtype=torch.bool)
    frames = wav.unfold(0, window, hop)[:num_frames]
    energy_db = 10 * torch.log10(frames.pow(2).mean(dim=1) + 1e-10)
    keep = energy_db > torch.quantile(energy_db, 0.95) - below_db
    return keep if keep.sum() >= 10 else torch.ones_like(keep)


def diag_gmm_posteriors(
    x: torch.Tensor, log_weights: torch.Tensor, means: torch.Tensor, stds: torch.Tensor
) -> torch.Tensor:
    """Component posteriors ``T x C`` of a diagonal GMM (same maths as sklearn's
    predict_proba, in torch so the UBM lives in module buffers)."""
    z = (x[:, None, :] - means[None]) / stds[None]
    log_det = torch.log(stds).sum(dim=1)
    log_like = -0.5 * (z.pow(2).sum(-1) + x.shape[1] * np.log(2 * np.pi)) - log_det
    return torch.softmax(log_like + log_weights, dim=1)


def baum_welch(
    features, log_weights, means, stds, chunk: int = 4096
) -> tuple[torch.Tensor, torch.Tensor]:
    """Zeroth-order ``N`` (C) and centred, whitened first-order ``F`` (C x D) statistics,
    accumulated over chunks of frames so hour-long recordings stay in bounded memory."""
    n = torch.zeros(means.shape[0], dtype=means.dtype)
    f = torch.zeros_like(means)
    for first in range(0, features.shape[0], chunk):
        frames = features[first : first + chunk]
        post = diag_gmm_posteriors(frames, log_weights, means, stds)
        n += post.sum(dim=0)
        f += post.T @ frames
    return n, (f - n[:, None] * means) / stds


class TotalVariability:
    """EM for the total-variability matrix on whitened statistics (UBM covariance = I).

    Hand-written (no maintained Python package provides it). For utterance ``u`` with
    stats ``N_uc``, ``F_uc``: precision ``L_u = I + sum_c N_uc T_c' T_c``; the latent
    posterior has mean ``w_u = L_u^-1 sum_c T_c' F_uc`` and second moment
    ``L_u^-1 + w_u w_u'``; the M-step sets ``T_c = (sum_u F_uc w_u')(sum_u N_uc E[ww'])^-1``.
    """

    def __init__(self, num_gaussians: int, feat_dim: int, rank: int, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        scale = 1.0 / np.sqrt(feat_dim)
        self.matrix = torch.randn(
            num_gaussians, feat_dim, rank, generator=generator, dtype=torch.float64
        )
        self.matrix *= scale

    def posteriors(self, n: torch.Tensor, f: torch.Tensor, batch: int = 256):
        """Posterior means ``U x R`` and second moments ``U x R x R`` of the latent factors."""
        matrix = self.matrix
        rank = matrix.shape[2]
        ttt = torch.einsum("cdr,cds->crs", matrix, matrix)
        means, moments = [], []
        for first in range(0, n.shape[0], batch):
            nb, fb = n[first : first + batch], f[first : first + batch]
            precision = torch.eye(rank, dtype=matrix.dtype) + torch.einsum("uc,crs->urs", nb, ttt)
            linear = torch.einsum("cdr,ucd->ur", matrix, fb)
            cov = torch.linalg.inv(precision)
            mean = torch.einsum("urs,us->ur", cov, linear)
            means.append(mean)
            moments.append(cov + mean[:, :, None] * mean[:, None, :])
        return torch.cat(means), torch.cat(moments)

    def em_step(self, n: torch.Tensor, f: torch.Tensor) -> None:
        means, moments = self.posteriors(n, f)
        a = torch.einsum("uc,urs->crs", n, moments)  # C x R x R
        c = torch.einsum("ucd,ur->cdr", f, means)  # C x D x R
        # T_c = C_c A_c^-1  <=>  A_c T_c' = C_c'  (A_c symmetric)
        self.matrix = torch.linalg.solve(a, c.transpose(1, 2)).transpose(1, 2)


def wccn(ivectors: np.ndarray, speakers: list[str]) -> np.ndarray:
    """WCCN projection ``B`` (``x -> x @ B``): Cholesky factor of the inverse average
    within-speaker covariance (Hatch et al. 2006); a few lines of numpy, written here."""
    labels = np.array(speakers)
    dim = ivectors.shape[1]
    within = np.zeros((dim, dim))
    classes = np.unique(labels)
    for label in classes:
        members = ivectors[labels == label]
        centred = members - members.mean(axis=0)
        within += centred.T @ centred / max(len(members), 1)
    within /= len(classes)
    within += 1e-6 * np.trace(within) / dim * np.eye(dim)
    return np.linalg.cholesky(np.linalg.inv(within))


class IVector(Upstream):
    name = "ivector"
    description = "i-vectors: MFCC-39, GMM-UBM, total variability trained on the train split"
    Options = IVectorOptions
    needs_fit: ClassVar[bool] = True
    # the telephone band of the NIST SRE i-vector systems: wide-band audio is resampled
    # down, and 8 kHz corpora keep no empty upper mel bands
    sample_rate = 8000
    frame_rate = 0.0  # one vector per utterance
    num_layers = 1
    dim = IVectorOptions.ivector_dim
    level = "utterance"

    def __init__(self, options: IVectorOptions | None = None) -> None:
        super().__init__(options)
        o = self.options
        if o.num_gaussians < 2 or o.ivector_dim < 1 or o.tv_iterations < 1:
            raise ConfigError(
                "upstream.num_gaussians must be >= 2, upstream.ivector_dim and "
                "upstream.tv_iterations >= 1"
            )
        self.mfcc = MFCC()
        self.mfcc.sample_rate = self.sample_rate
        self.dim = o.lda_dim if o.lda_dim > 0 else o.ivector_dim
        self.seed = 0  # set by fit(): the run seed
        for name in _BUFFERS:
            self.register_buffer(name, None)

    @classmethod
    def weights_available(cls, options=None) -> tuple[bool, str]:
        return True, "no pretrained weights: trained on the corpus' train split (cached)"

    # ------------------------------------------------------------------ features
    def frame_features(self, wav: torch.Tensor) -> torch.Tensor:
        """MFCC-39 with CMVN of one waveform, speech frames only when VAD is on."""
        (features,), _ = self.mfcc(wav[None], torch.tensor([wav.numel()]))
        features = features[0]
        if self.options.vad:
            features = features[energy_vad(wav, features.shape[0], self.options.vad_db)]
        return features.double()

    # ------------------------------------------------------------------ training
    @property
    def fitted(self) -> bool:
        return self.total_variability is not None

    def cache_key(self, records: list) -> str:
        ids = sorted(f"{r.id}:{r.sha1.get('main', '')}" for r in records)
        data_hash = hashlib.sha256("\n".join(ids).encode()).hexdigest()
        options = json.dumps({**asdict(self.options), "seed": self.seed}, sort_keys=True)
        payload = f"{options}|{self.code_fingerprint()}|{data_hash}"
        return hashlib.sha256(payload.encode()).hexdigest()[:24]

    def cache_path(self, key: str) -> Path:
        return paths.cache_dir() / "ivector" / f"{key}.pt"

    def fit(self, train: Iterable, seed: int = 0) -> None:
        self.seed = seed  # the run seed: UBM initialisation and the TV matrix's start
        records, features = [], []
        for record, wav in train:
            records.append(record)
            features.append(self.frame_features(torch.as_tensor(wav, dtype=torch.float32)))
        if not records:
            raise SpeechbenchError("ivector: the training split is empty; nothing to fit on")
        path = self.cache_path(self.cache_key(records))
        if path.exists():
            state = torch.load(path, map_location="cpu", weights_only=True)
            self._set_state(state)
            log.info("ivector: loaded the trained extractor from %s", path)
            return
        self._train(features, [r.speaker for r in records])
        state = {name: getattr(self, name) for name in _BUFFERS}
        atomic.write_with(path, lambda tmp: torch.save(state, tmp))

    def _set_state(self, state: dict) -> None:
        for name in _BUFFERS:
            setattr(self, name, state[name])

    def _train(self, features: list[torch.Tensor], speakers: list) -> None:
        o = self.options
        frames = torch.cat(features).numpy()
        ubm = train_ubm(
            frames,
            o.num_gaussians,
            o.max_ubm_frames,
            o.ubm_iterations,
            self.seed,
            "upstream.num_gaussians",
        )
        self.ubm_weights = torch.from_numpy(np.log(ubm.weights_))
        self.ubm_means = torch.from_numpy(ubm.means_)
        self.ubm_stds = torch.from_numpy(np.sqrt(ubm.covariances_))
        n, f = self._statistics(features)
        tv = TotalVariability(o.num_gaussians, frames.shape[1], o.ivector_dim, self.seed)
        for _ in range(o.tv_iterations):
            tv.em_step(n, f)
        self.total_variability = tv.matrix
        raw = tv.posteriors(n, f)[0].numpy()
        self._fit_postprocessing(raw, speakers)

    def _statistics(self, features: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        stats = [baum_welch(x, self.ubm_weights, self.ubm_means, self.ubm_stds) for x in features]
        return torch.stack([s[0] for s in stats]), torch.stack([s[1] for s in stats])

    def _fit_postprocessing(self, raw: np.ndarray, speakers: list) -> None:
        o = self.options
        center = raw.mean(axis=0)
        projection = np.eye(raw.shape[1])
        labelled = [s is not None for s in speakers]
        if (o.lda_dim > 0 or o.wccn) and not all(labelled):
            raise SpeechbenchError(
                "ivector: upstream.lda_dim / upstream.wccn need a speaker on every training "
                "utterance; this corpus has none; set upstream.lda_dim=0 upstream.wccn=false"
            )
        num_speakers = len(set(speakers))
        if o.lda_dim > 0:
            from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

            if num_speakers <= o.lda_dim:
                raise SpeechbenchError(
                    f"ivector: upstream.lda_dim={o.lda_dim} needs more than {o.lda_dim} "
                    f"training speakers, the train split has {num_speakers}; lower it"
                )
            lda = LinearDiscriminantAnalysis(n_components=o.lda_dim, solver="eigen", shrinkage=1e-3)
            lda.fit(raw, speakers)
            # the eigen solver's transform is X @ scalings_; centring first only shifts it
            projection = lda.scalings_[:, : o.lda_dim]
        if o.wccn:
            projected = (raw - center) @ projection
            projection = projection @ wccn(projected, speakers)
        self.center = torch.from_numpy(np.asarray(center, dtype=np.float64))
        self.projection = torch.from_numpy(np.ascontiguousarray(projection, dtype=np.float64))

    # ------------------------------------------------------------------ extraction
    def weights_fingerprint(self) -> str:
        return super().weights_fingerprint() if self.fitted else "unfitted"

    def num_parameters(self) -> int | None:
        """The fitted UBM, total-variability matrix and projection (module buffers)."""
        if not self.fitted:
            return None
        return sum(
            getattr(self, name).numel() for name in _BUFFERS if getattr(self, name) is not None
        )

    def extract(self, features: list[torch.Tensor]) -> torch.Tensor:
        n, f = self._statistics(features)
        tv = TotalVariability.__new__(TotalVariability)
        tv.matrix = self.total_variability
        raw = tv.posteriors(n, f)[0]
        projected = (raw - self.center) @ self.projection
        return projected / projected.norm(dim=1, keepdim=True).clamp_min(1e-12)

    @torch.no_grad()
    def forward(self, wavs, lengths):
        if not self.fitted:
            raise SpeechbenchError(
                "ivector: the extractor is not trained; call fit() on the train split first "
                "(`speechbench run` does this for upstreams with needs_fit)"
            )
        features = [self.frame_features(w[:n]) for w, n in zip(wavs, lengths.tolist(), strict=True)]
        vectors = self.extract(features).float()
        return [vectors[:, None, :]], torch.ones(len(features), dtype=torch.long)
