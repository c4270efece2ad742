"""i-vector upstream: EM against its generative model, UBM maths against sklearn, caching,
fingerprints, LDA/WCCN, and speaker separation on synthetic and real voices."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _speaker_voices import asterisk_voices, equal_error_rate
from scipy.signal import lfilter
from speechbench.upstreams.ivector import (
    IVector,
    TotalVariability,
    diag_gmm_posteriors,
    wccn,
)

from speechbench import audio
from speechbench.corpora.base import Utterance
from speechbench.errors import SpeechbenchError
from speechbench.registry import get

SMALL = dict(num_gaussians=16, ivector_dim=10, tv_iterations=4, ubm_iterations=10)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SPEECHBENCH_CACHE", str(tmp_path / "cache"))


def _voice(speaker: int, seconds: float, seed: int, rate: int = 8000) -> torch.Tensor:
    """A synthetic 'speaker': own pitch range and vocal-tract resonances, varied per utterance."""
    rng = np.random.default_rng(seed)
    f0 = (100 + 45 * speaker) * rng.uniform(0.9, 1.1)
    t = np.arange(int(seconds * rate)) / rate
    phase = (
        2 * np.pi * np.cumsum(f0 * (1 + 0.05 * np.sin(2 * np.pi * rng.uniform(2, 5) * t))) / rate
    )
    source = np.sign(np.sin(phase)) * (0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(2, 4) * t))
    wav = source
    for formant in (500 + 120 * speaker, 1500 + 300 * speaker, 2500 + 150 * speaker):
        r, theta = 0.97, 2 * np.pi * formant * rng.uniform(0.95, 1.05) / rate
        wav = lfilter([1.0], [1.0, -2 * r * np.cos(theta), r * r], wav)
    wav = wav / np.abs(wav).max() * 0.5 + 0.003 * rng.standard_normal(t.size)
    return torch.tensor(wav, dtype=torch.float32)


def _synthetic_split(per_speaker: int, speakers: int = 4, first_seed: int = 0):
    items = []
    for s in range(speakers):
        for k in range(per_speaker):
            seed = first_seed + 100 * s + k
            record = Utterance(f"s{s}-{seed}", f"{seed}.wav", 8000, 1.0, "train", speaker=f"s{s}")
            items.append((record, _voice(s, 1.0 + 0.1 * (k % 3), seed)))
    return items


def _extract(up, items):
    wavs = [w for _, w in items]
    padded = torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True)
    (vectors,), frames = up(padded, torch.tensor([w.numel() for w in wavs]))
    assert frames.tolist() == [1] * len(wavs)
    return vectors[:, 0].numpy()


def test_total_variability_em_recovers_the_generating_subspace():
    """Stats drawn from the i-vector model itself: EM must find the true subspace."""
    rng = np.random.default_rng(0)
    components, dim, rank, utterances = 8, 4, 3, 400
    true = rng.standard_normal((components, dim, rank))
    w = rng.standard_normal((utterances, rank))
    n = rng.poisson(30, size=(utterances, components)).astype(float) + 1
    f = n[:, :, None] * np.einsum("cdr,ur->ucd", true, w)
    f += np.sqrt(n)[:, :, None] * rng.standard_normal((utterances, components, dim))
    tv = TotalVariability(components, dim, rank, seed=1)
    n_t, f_t = torch.from_numpy(n), torch.from_numpy(f)
    for _ in range(30):
        tv.em_step(n_t, f_t)
    learned = tv.matrix.reshape(-1, rank).numpy()
    q_true, _ = np.linalg.qr(true.reshape(-1, rank))
    q_learned, _ = np.linalg.qr(learned)
    cosines = np.linalg.svd(q_true.T @ q_learned, compute_uv=False)
    assert cosines.min() > 0.99, cosines
    # posterior means track the true factors up to the subspace's rotation
    means = tv.posteriors(n_t, f_t)[0].numpy()
    fit = np.linalg.lstsq(means, w, rcond=None)[0]
    assert np.corrcoef((means @ fit).ravel(), w.ravel())[0, 1] > 0.98


def test_posteriors_match_sklearn():
    from sklearn.mixture import GaussianMixture

    x = np.random.default_rng(0).standard_normal((500, 5)) * [1, 2, 3, 1, 1]
    gmm = GaussianMixture(4, covariance_type="diag", random_state=0).fit(x)
    ours = diag_gmm_posteriors(
        torch.from_numpy(x),
        torch.from_numpy(np.log(gmm.weights_)),
        torch.from_numpy(gmm.means_),
        torch.from_numpy(np.sqrt(gmm.covariances_)),
    )
    np.testing.assert_allclose(ours.numpy(), gmm.predict_proba(x), atol=1e-8)


def test_wccn_whitens_within_speaker_scatter():
    rng = np.random.default_rng(0)
    speakers = [f"s{i % 5}" for i in range(300)]
    x = rng.standard_normal((300, 4)) @ rng.standard_normal((4, 4))
    x += np.array([rng.standard_normal(4) * 5 for _ in range(5)])[[int(s[1]) for s in speakers]]
    projected = x @ wccn(x, speakers)
    within = np.zeros((4, 4))
    for s in set(speakers):
        members = projected[[t == s for t in speakers]]
        within += np.cov(members.T, bias=True) / 5
    np.testing.assert_allclose(within, np.eye(4), atol=1e-3)  # 1e-6 ridge


def test_fit_extract_cache_and_fingerprint(monkeypatch):
    train = _synthetic_split(per_speaker=6)
    test = _synthetic_split(per_speaker=3, first_seed=50)
    up = get("upstreams", "ivector")(IVector.Options(**SMALL))
    assert up.needs_fit and up.level == "utterance" and up.dim == 10 and up.sample_rate == 8000
    assert up.fingerprint().startswith("unfitted")
    with pytest.raises(SpeechbenchError, match="fit"):
        up(torch.zeros(1, 8000), torch.tensor([8000]))
    up.fit(iter(train))
    fitted = up.fingerprint()
    assert not fitted.startswith("unfitted")
    vectors = _extract(up, test)
    assert vectors.shape == (12, 10)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(vectors, _extract(up, test))  # deterministic
    eer = equal_error_rate(vectors, [r.speaker for r, _ in test])
    assert eer < 0.2, eer

    # a second extractor with the same options and data loads the cached one: no training
    import sklearn.mixture

    monkeypatch.setattr(sklearn.mixture, "GaussianMixture", None)
    again = IVector(IVector.Options(**SMALL))
    again.fit(train)
    assert again.fingerprint() == fitted
    np.testing.assert_array_equal(_extract(again, test), vectors)
    monkeypatch.undo()
    # other training utterances -> another key -> another extractor and fingerprint
    other = IVector(IVector.Options(**SMALL))
    assert other.cache_key([r for r, _ in train[:-1]]) != up.cache_key([r for r, _ in train])
    other.fit(train[:-1])
    assert other.fingerprint() != fitted


def test_lda_wccn_dims_and_clear_errors():
    train = _synthetic_split(per_speaker=5)
    up = IVector(IVector.Options(**SMALL, lda_dim=3, wccn=True))
    assert up.dim == 3
    up.fit(train)
    assert _extract(up, train[:4]).shape == (4, 3)
    with pytest.raises(SpeechbenchError, match="lda_dim=4"):
        IVector(IVector.Options(**SMALL, lda_dim=4)).fit(train)
    unlabelled = [(Utterance(r.id, r.path, 8000, 1.0, "train"), w) for r, w in train]
    with pytest.raises(SpeechbenchError, match="speaker"):
        IVector(IVector.Options(**SMALL, wccn=True)).fit(unlabelled)
    with pytest.raises(SpeechbenchError, match="empty"):
        IVector(IVector.Options(**SMALL)).fit([])


def test_wide_band_audio_is_resampled(tmp_path):
    train = _synthetic_split(per_speaker=4)
    up = IVector(IVector.Options(**SMALL))
    up.fit(train)
    path = tmp_path / "wide.wav"
    audio.write_audio(path, _voice(1, 1.5, seed=7, rate=16000).numpy(), 16000)
    wav = audio.load(path, up.sample_rate)  # 16 kHz on disk -> the i-vector's 8 kHz
    assert wav.numel() == 12000
    (vector,), _ = up(wav[None], torch.tensor([12000]))
    assert vector.shape == (1, 1, 10) and torch.isfinite(vector).all()


@pytest.mark.needs_apt
def test_real_voices_are_separated():
    voices = asterisk_voices(per_speaker=20)
    items = []
    for index, (speaker, path) in enumerate(voices):
        split = "test" if index % 5 == 0 else "train"
        record = Utterance(f"{speaker}-{index}", path, 8000, 0.0, split, speaker=speaker)
        items.append((record, audio.load(path, 8000)))
    train = [i for i in items if i[0].split == "train"]
    test = [i for i in items if i[0].split == "test"]
    speakers = [r.speaker for r, _ in test]
    options = dict(num_gaussians=32, ivector_dim=40, ubm_iterations=10, max_ubm_frames=20_000)
    plain = IVector(IVector.Options(**options))
    plain.fit(train)
    with_wccn = IVector(IVector.Options(**options, wccn=True))
    with_wccn.fit(train)
    eer_plain = equal_error_rate(_extract(plain, test), speakers)
    eer_wccn = equal_error_rate(_extract(with_wccn, test), speakers)
    print(f"i-vector EER on 4 real voices: plain {eer_plain:.3f}, WCCN {eer_wccn:.3f}")
    assert eer_plain < 0.3 and eer_wccn < 0.2, (eer_plain, eer_wccn)


def test_statistics_of_long_audio_are_chunked_exactly():
    from speechbench.upstreams.ivector import baum_welch

    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((10_000, 3)))
    params = (
        torch.log(torch.full((4,), 0.25, dtype=torch.float64)),
        torch.from_numpy(rng.standard_normal((4, 3))),
        torch.ones(4, 3, dtype=torch.float64),
    )
    whole = baum_welch(x, *params, chunk=10_000)
    chunked = baum_welch(x, *params, chunk=777)
    for a, b in zip(whole, chunked, strict=True):
        torch.testing.assert_close(a, b)
