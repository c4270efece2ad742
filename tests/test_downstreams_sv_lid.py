"""SV / LID downstreams and back-ends on synthetic features the tests build.

Speakers (or languages) are Gaussian clouds whose identity lives in a few dimensions of
layer 1 (layer 0 is noise), so a working head must learn the layer weights and pool
frames; unseen test speakers are separable only if the embedding generalises.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal
from sklearn.metrics import roc_curve
from speechbench.downstreams.backends import Backend, TwoCovariancePLDA
from speechbench.downstreams.base import check_inputs
from speechbench.downstreams.gmm_ubm import GmmUbmOptions, GmmUbmVerification, map_adapt_means
from speechbench.downstreams.lid import LanguageID, LIDOptions, detection_llrs
from speechbench.downstreams.sv import SpeakerVerification, SVOptions
from speechbench.downstreams.trials import read_trial_file, trials_for
from speechbench.metrics.lid import cavg, lid_accuracy
from task_fakes import task_data, upstream_info

from speechbench.artefacts import EvalContext, Sink
from speechbench.corpora.base import Utterance
from speechbench.corpora.mini_sv import make_trials
from speechbench.errors import ConfigError, CorpusError
from speechbench.fitting import evaluate_split, fit_task

DIM, SUB = 8, 3  # feature dims; dims carrying identity


def make_set(rng, classes, per_class, split, prefix, frames=(30, 60), field="speaker", shift=None):
    """Records + L x T x D features; identity = a class centre in the first SUB dims."""
    centres = shift if shift is not None else {c: rng.normal(0, 1.5, SUB) for c in classes}
    records, feats = [], {}
    for c in classes:
        for i in range(per_class):
            uid = f"{prefix}-{c}-{i}"
            t = int(rng.integers(*frames))
            signal = rng.normal(0, 1.0, (t, DIM))
            signal[:, :SUB] += centres[c]
            noise = rng.normal(0, 1.0, (t, DIM))
            feats[uid] = torch.tensor(np.stack([noise, signal]), dtype=torch.float32)
            kwargs = (
                {"speaker": c, "language": "xx"}
                if field == "speaker"
                else {
                    "speaker": f"{c}-spk{i % 3}",
                    "language": c,
                }
            )
            records.append(Utterance(uid, f"{uid}.wav", 16000, t / 100, split, labels={}, **kwargs))
    return records, feats, centres


def with_trials(records):
    for enroll, test, label in make_trials(records, 3, 0):
        next(r for r in records if r.id == test).labels.setdefault("trials", []).append(
            [enroll, label]
        )
    return records


@pytest.fixture(scope="module")
def speakers():
    rng = np.random.default_rng(0)
    train_spk = [f"s{i}" for i in range(12)]
    train, ftrain, centres = make_set(rng, train_spk, 8, "train", "tr")
    dev, fdev, _ = make_set(rng, train_spk, 2, "dev", "dv", shift=centres)
    test, ftest, _ = make_set(rng, [f"u{i}" for i in range(5)], 6, "test", "te")
    return (train, ftrain), (dev, fdev), (with_trials(test), ftest)


def independent_eer(scores, labels) -> float:
    """EER by sklearn's ROC and linear interpolation at the P_miss = P_fa crossing."""
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    fnr = 1 - tpr
    k = int(np.argmax(fnr - fpr <= 0))
    if fnr[k] == fpr[k]:
        return float(fpr[k])
    a, b = fnr[k - 1] - fpr[k - 1], fnr[k] - fpr[k]
    w = a / (a - b)
    return float(fpr[k - 1] + w * (fpr[k] - fpr[k - 1]))


def fit(task, train, dev, test, run_dir, frame_rate=100.0):
    """Bind the task to the three splits, run its fitters, return (head, result)."""
    data = task_data({"train": train, "dev": dev, "test": test})
    return fit_task(task, data, upstream_info(DIM, 2, frame_rate), run_dir, seed=0)


def score_test_split(task, head):
    return evaluate_split(task, head, "memory", "test", EvalContext(Sink(None)))


# ---------------------------------------------------------------- back-ends
def test_plda_llr_is_the_gaussian_likelihood_ratio():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(rng.normal(0, 2, 4), 1, (6, 4)) for _ in range(15)])
    speakers = np.repeat([f"s{i}" for i in range(15)], 6)
    plda = TwoCovariancePLDA(iterations=3).fit(x, speakers)
    enroll, test = x[:5], x[40:45]
    total = plda.between + plda.within
    same = multivariate_normal(
        np.concatenate([plda.mu, plda.mu]),
        np.block([[total, plda.between], [plda.between, total]]),
    )
    diff = multivariate_normal(plda.mu, total)
    expected = [
        same.logpdf(np.concatenate([e, t])) - diff.logpdf(e) - diff.logpdf(t)
        for e, t in zip(enroll, test, strict=True)
    ]
    np.testing.assert_allclose(plda.llr(enroll, test), expected, rtol=1e-8, atol=1e-8)


def test_plda_em_recovers_the_generating_covariances():
    rng = np.random.default_rng(2)
    between = np.array([[4.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.5, 1.0]])
    within = np.diag([0.5, 1.0, 0.3])
    ys = rng.multivariate_normal(np.ones(3), between, 400)
    x = np.concatenate([rng.multivariate_normal(y, within, 10) for y in ys])
    plda = TwoCovariancePLDA(iterations=10).fit(x, np.repeat(np.arange(400).astype(str), 10))
    assert np.linalg.norm(plda.within - within) / np.linalg.norm(within) < 0.05
    assert np.linalg.norm(plda.between - between) / np.linalg.norm(between) < 0.2
    np.testing.assert_allclose(plda.mu, np.ones(3), atol=0.25)


def test_backends_separate_unseen_speakers_and_lda_plda_beat_cosine():
    rng = np.random.default_rng(3)

    def vectors(n_spk, per, tag):
        spk_means = rng.normal(0, 1, (n_spk, 20))
        spk_means[:, 6:] *= 0.05  # identity lives in 6 of 20 dims, the rest is noise
        x = np.repeat(spk_means, per, axis=0) + rng.normal(0, 0.3, (n_spk * per, 20))
        return x, [f"{tag}{i}" for i in range(n_spk) for _ in range(per)]

    x_train, s_train = vectors(30, 8, "tr")
    x_test, s_test = vectors(10, 6, "te")
    pairs = [(i, j) for i in range(60) for j in range(i + 1, 60)]
    labels = np.array([s_test[i] == s_test[j] for i, j in pairs], dtype=int)
    eer = {}
    for kind, wccn in (("cosine", False), ("cosine", True), ("lda-cosine", False), ("plda", False)):
        backend = Backend(kind, lda_dim=10, wccn=wccn).fit(x_train, s_train)
        scores = backend.score(x_test[[i for i, _ in pairs]], x_test[[j for _, j in pairs]])
        eer[kind, wccn] = independent_eer(scores, labels)
    assert eer["cosine", False] < 0.15 and eer["cosine", True] < 0.1, eer
    for better in (("lda-cosine", False), ("plda", False)):
        assert eer[better] < min(0.05, eer["cosine", False]), eer


def test_backend_rejects_bad_values():
    with pytest.raises(ConfigError, match="downstream.backend"):
        Backend("svm")
    from speechbench.config import resolve

    with pytest.raises(ConfigError, match="downstream.backend: expected one of cosine"):
        resolve(["downstream=sv", "downstream.backend=svm"])


# ---------------------------------------------------------------- trials
def test_trials_come_from_labels_or_a_file_and_are_checked(speakers, tmp_path):
    test, _ = speakers[2]
    trials = trials_for(test, "test")
    assert {t.target for t in trials} == {True, False}
    trial_file = tmp_path / "trials.txt"
    trial_file.write_text(
        f"{test[0].id} {test[1].id} target\n{test[0].id} {test[-1].id} nontarget\n"
    )
    assert len(trials_for(test, "test", str(trial_file))) == 2
    assert len(read_trial_file(trial_file)) == 2
    with pytest.raises(ConfigError, match="does not exist"):
        trials_for(test, "test", str(tmp_path / "missing.txt"))
    trial_file.write_text("a b maybe\n")
    with pytest.raises(CorpusError, match=r"trials.txt:1"):
        read_trial_file(trial_file)
    trial_file.write_text(f"ghost-utt {test[1].id} target\n{test[0].id} {test[2].id} nontarget\n")
    with pytest.raises(CorpusError, match="ghost-utt"):
        trials_for(test, "test", str(trial_file))
    bare = [Utterance(r.id, r.path, 16000, 1.0, "test", speaker=r.speaker) for r in test]
    with pytest.raises(CorpusError, match="no trial list"):
        trials_for(bare, "test")
    # a dev split without trials gets balanced trials from its speaker labels
    dev = [Utterance(r.id, r.path, 16000, 1.0, "dev", speaker=r.speaker) for r in test]
    drawn = trials_for(dev, "dev")
    assert sum(t.target for t in drawn) == sum(not t.target for t in drawn) > 0


# ---------------------------------------------------------------- sv head
@pytest.mark.parametrize("head,backend", [("asp", "cosine"), ("tdnn", "plda")])
def test_sv_head_learns_speaker_embeddings_that_generalise(speakers, tmp_path, head, backend):
    torch.manual_seed(0)
    (train, ftrain), dev, (test, ftest) = speakers
    sv = SpeakerVerification(
        SVOptions(
            head=head,
            backend=backend,
            hidden=32,
            embed_dim=16,
            batch_size=8,
            lr=5e-3,
            max_epochs=12,
            patience=100,
            bootstrap=200,
        )
    )
    model, result = fit(sv, (train, ftrain), dev, (test, ftest), tmp_path)
    assert [s["kind"] for s in result.stages] == ["gradient", "closed-form"]
    gradient_dev = next(h for h in result.history if h.get("epoch") == result.best_epoch)
    assert gradient_dev["dev_speaker_accuracy"] > 0.5  # chance: 1/12
    assert model.layer_sum.layer_weights()[1] > 0.5  # it found the informative layer
    metrics, outputs = score_test_split(sv, model)
    assert metrics["eer"] < 0.2, metrics
    assert metrics["eer_ci_low"] <= metrics["eer"] <= metrics["eer_ci_high"]
    assert 0 <= metrics["min_dcf"] <= 1
    rows = [t for o in outputs for t in o["trials"]]
    scores = np.array([t[2] for t in rows])
    labels = np.array([t[1] == "target" for t in rows], dtype=int)
    assert len(rows) == metrics["num_trials"]
    assert abs(independent_eer(scores, labels) - metrics["eer"]) < 1e-4


def test_sv_utterance_level_upstream_is_back_end_only(speakers, tmp_path):
    (train, ftrain), (dev, fdev), (test, ftest) = speakers

    def pooled(feats):  # the mean frame as a 1 x 1 x D utterance vector
        return {k: v.mean(dim=1, keepdim=True) for k, v in feats.items()}

    sv = SpeakerVerification(SVOptions(backend="lda-cosine", bootstrap=0))
    splits = [(train, pooled(ftrain)), (dev, pooled(fdev)), (test, pooled(ftest))]
    head, result = fit(sv, *splits, tmp_path, frame_rate=0.0)
    assert result.epochs_run == 0 and "dev_eer" in result.best_dev
    assert [s["kind"] for s in result.stages] == ["closed-form"]  # no gradient fitter
    metrics, _ = score_test_split(sv, head)
    assert metrics["eer"] < 0.15, metrics
    assert not list(head.parameters())


# ---------------------------------------------------------------- gmm-ubm
def test_map_adaptation_matches_the_formula():
    rng = np.random.default_rng(4)
    x = rng.normal(0, 1, (50, 3))
    means, variances = rng.normal(0, 1, (4, 3)), rng.uniform(0.5, 2, (4, 3))
    weights = np.array([0.1, 0.2, 0.3, 0.4])
    adapted = map_adapt_means(
        *(torch.tensor(a) for a in (x, np.log(weights), means, variances)), relevance=16.0
    ).numpy()
    densities = np.stack(
        [
            w * multivariate_normal(m, np.diag(v)).pdf(x)
            for w, m, v in zip(weights, means, variances, strict=True)
        ],
        axis=1,
    )
    gamma = densities / densities.sum(axis=1, keepdims=True)
    n = gamma.sum(axis=0)
    alpha = n / (n + 16.0)
    expected = alpha[:, None] * (gamma.T @ x) / n[:, None] + (1 - alpha[:, None]) * means
    np.testing.assert_allclose(adapted, expected, rtol=1e-8)


def test_gmm_ubm_verifies_unseen_speakers(speakers, tmp_path):
    (train, ftrain), dev, (test, ftest) = speakers
    ubm = GmmUbmVerification(GmmUbmOptions(num_gaussians=8, bootstrap=100, relevance=4.0))
    head, result = fit(ubm, (train, ftrain), dev, (test, ftest), tmp_path)
    assert result.best_dev["dev_eer"] < 0.3
    metrics, outputs = score_test_split(ubm, head)
    assert metrics["eer"] < 0.2, metrics
    # the UBM log-likelihood is scikit-learn's for the same parameters
    from sklearn.mixture import GaussianMixture

    reference = GaussianMixture(8, covariance_type="diag")
    reference.weights_ = head.log_weights.exp().numpy()
    reference.means_, reference.covariances_ = head.means.numpy(), head.variances.numpy()
    reference.precisions_cholesky_ = 1 / np.sqrt(reference.covariances_)
    frames = ftest[test[0].id][-1].double()
    np.testing.assert_allclose(
        head.log_likelihood(frames).numpy(), reference.score_samples(frames.numpy()), rtol=1e-9
    )
    # with an enormous relevance factor nothing adapts: every LLR is zero
    frozen = GmmUbmVerification(GmmUbmOptions(num_gaussians=8, relevance=1e12))
    frames = [ftest[r.id][-1].double() for r in test]
    _, scores = frozen.trial_scores(head, test, frames, "test")
    np.testing.assert_allclose(scores, 0.0, atol=1e-6)
    with pytest.raises(ConfigError, match="downstream.layer"):
        GmmUbmVerification(GmmUbmOptions(layer=5)).build_head(upstream_info(DIM, 2))


def test_one_rule_says_utterance_level_upstreams_cannot_feed_the_gmm_ubm():
    streams = {"main": 1}
    assert "not applicable" in check_inputs(GmmUbmVerification(), "mini-sv", streams, "utterance")
    assert check_inputs(GmmUbmVerification(), "mini-sv", streams, "frame") is None
    assert check_inputs(SpeakerVerification(), "mini-sv", streams, "utterance") is None
    assert check_inputs(LanguageID(), "mini-lid", streams, "utterance") is None


# ---------------------------------------------------------------- lid
def test_detection_llrs_follow_the_flat_prior_formula():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    llr = detection_llrs(logits).numpy()
    x = logits.numpy()
    for i in range(2):
        for t in range(3):
            others = np.delete(x[i], t)
            assert llr[i, t] == pytest.approx(x[i, t] - np.log(np.mean(np.exp(others))))


def test_lid_head_scores_every_condition(tmp_path):
    torch.manual_seed(0)
    rng = np.random.default_rng(5)
    langs = ["aa", "bb", "cc", "dd"]
    train, ftrain, centres = make_set(rng, langs, 15, "train", "tr", field="language")
    dev, fdev, _ = make_set(rng, langs, 3, "dev", "dv", field="language", shift=centres)
    test, ftest, _ = make_set(rng, langs, 8, "test", "te", field="language", shift=centres)
    short, fshort, _ = make_set(rng, langs, 8, "test", "sh", (3, 6), "language", centres)
    for r in short:
        r.labels["condition"] = "1s"
    lid = LanguageID(
        LIDOptions(hidden=32, embed_dim=16, lr=5e-3, max_epochs=10, patience=100, bootstrap=200)
    )
    records, feats = test + short, {**ftest, **fshort}
    model, _ = fit(lid, (train, ftrain), (dev, fdev), (records, feats), tmp_path)
    metrics, outputs = score_test_split(lid, model)
    # Cavg also charges mis-calibration at the Bayes threshold, so its bound is looser
    assert metrics["cavg"] < 0.2 and metrics["lid_eer"] < 0.05, metrics
    assert metrics["lid_accuracy"] > 0.9, metrics
    assert {"cavg_1s", "lid_eer_1s", "lid_accuracy_1s", "cavg_ci_low"} <= set(metrics)
    assert metrics["lid_eer_1s"] > metrics["lid_eer"]  # 3-6 frames say less than 30-60
    by_id = {o["id"]: o["prediction"] for o in outputs}
    full = [r for r in records if "condition" not in r.labels]
    matrix = np.array([[by_id[r.id][lang] for lang in langs] for r in full])
    labels = np.array([langs.index(r.language) for r in full])
    assert metrics["cavg"] == pytest.approx(cavg(matrix, labels), abs=1e-3)
    assert metrics["lid_accuracy"] == pytest.approx(np.mean(matrix.argmax(1) == labels))
    assert metrics["lid_accuracy"] == pytest.approx(lid_accuracy(matrix, labels))


def test_lid_rejects_a_test_language_never_trained():
    lid = LanguageID()
    lid.setup([Utterance("a", "a.wav", 16000, 1, "train", language=x) for x in ("en", "fr")])
    with pytest.raises(CorpusError, match="'xx'.*closed-set"):
        lid.target(Utterance("z", "z.wav", 16000, 1, "test", language="xx"))
    with pytest.raises(CorpusError, match="at least 2 training languages"):
        LanguageID().setup([Utterance("a", "a.wav", 16000, 1, "train", language="en")])


def test_sv_duration_conditions_score_the_same_trials_with_the_test_side_cut():
    from speechbench.downstreams.trials import Trial, condition_metrics
    from speechbench.metrics.verification import equal_error_rate

    from speechbench.corpora.base import Utterance

    def utt(uid, condition="full", source=None):
        labels = {"condition": condition, **({"source_id": source} if source else {})}
        return Utterance(uid, f"{uid}.wav", 16000, 1.0, "test", speaker="s", labels=labels)

    rng = np.random.default_rng(0)
    records = [utt(f"u{i}") for i in range(40)]
    long_ones = [f"u{i}" for i in range(20)]  # only these have >= 3 s of speech
    records += [utt(f"{u}-{c}", c, u) for u in long_ones for c in ("3s", "1s")]
    trials, scores = [], []
    for r in records:
        for enroll, target in (("e1", True), ("e2", False)):
            trials.append(Trial(enroll, r.id, target))
            noise = {"full": 0.5, "3s": 1.0, "1s": 2.0}[r.labels["condition"]]
            scores.append(float(target) + noise * rng.standard_normal())
    scores = np.array(scores)
    metrics = condition_metrics(scores, trials, records, n_bootstrap=50)

    def eer_of(keep):
        picked = [i for i, t in enumerate(trials) if keep(t)]
        return equal_error_rate(scores[picked], np.array([trials[i].target for i in picked]))

    assert metrics["num_trials"] == 80  # every full-length trial
    assert metrics["eer"] == pytest.approx(eer_of(lambda t: "-" not in t.test))
    assert "eer_ci_low" in metrics and "eer_3s_ci_low" not in metrics
    assert metrics["num_trials_full"] == metrics["num_trials_3s"] == metrics["num_trials_1s"] == 40
    assert metrics["eer_full"] == pytest.approx(eer_of(lambda t: t.test in long_ones))
    assert metrics["eer_1s"] == pytest.approx(eer_of(lambda t: t.test.endswith("-1s")))
    assert metrics["eer_full"] <= metrics["eer_3s"] <= metrics["eer_1s"]  # noisier when cut


def test_speaker_head_trains_on_a_batch_of_one_utterance():
    """A length bucket can hold one long utterance; the classifier's BatchNorm must accept it
    (mini-sv 3 produced such a batch) and still match nn.BatchNorm1d's state dict."""
    import torch
    from speechbench.downstreams.pooling import VectorBatchNorm

    norm = VectorBatchNorm(4)
    norm.train()
    single = torch.randn(1, 4)
    expected = (single - norm.running_mean) / torch.sqrt(norm.running_var + norm.eps)
    assert torch.allclose(norm(single), expected, atol=1e-6)  # running statistics, no update
    assert torch.equal(norm.running_mean, torch.zeros(4))
    batch = torch.randn(8, 4)
    reference = torch.nn.BatchNorm1d(4)
    assert torch.allclose(norm(batch), reference(batch), atol=1e-6)
    assert set(norm.state_dict()) == set(reference.state_dict())
