"""asc / tag / sed downstreams, the mel128 upstream and the SED/tagging metrics they use.

Metric checks are against independent computations: a hand-worked 1 s segment case for
sed_eval, the DCASE 2019 task 2 reference lwlrap code (Dan Ellis' colab, re-typed below),
PSDS (through sed_scores_eval) against hand-worked ROCs, and mel128 against librosa.
The tasks run end to end on generated tone events over noise (``tests/dcase_fakes.py``).
"""

from __future__ import annotations

import json

import dcase_fakes as tone_scenes
import numpy as np
import pytest
import torch
from dcase_fakes import register_fakes
from speechbench.downstreams.scenes import (
    SedPost,
    checked_events,
    decode_events,
    frame_targets,
    segment_activity,
)
from speechbench.metrics.sed import psds1, sed_metrics
from speechbench.metrics.tagging import lwlrap
from speechbench.upstreams.spectral import Mel128

from speechbench import paths
from speechbench.corpora.base import Utterance
from speechbench.errors import ConfigError, CorpusError
from speechbench.runner import run


# ------------------------------------------------------------------ metrics
def test_segment_metrics_hand_worked():
    # 4 s file, 1 s segments. ref: dog 0.5-2.2 (segments 0,1,2), cat 3.1-3.5 (segment 3)
    # est: dog 1.0-1.4 (segment 1), cat 0.2-0.4 (segment 0), bird 3.0-3.9 (segment 3)
    # segment 0: ref {dog} est {cat}: S=1; segment 1: ref {dog} est {dog}: TP;
    # segment 2: ref {dog} est {}: D=1; segment 3: ref {cat} est {bird}: S=1
    # N = 4 active reference (segment, class) pairs; TP 1, FP 2, FN 3
    refs = [[(0.5, 2.2, "dog"), (3.1, 3.5, "cat")]]
    ests = [[(1.0, 1.4, "dog"), (0.2, 0.4, "cat"), (3.0, 3.9, "bird")]]
    found = sed_metrics(refs, ests, durations=[4.0])
    assert found["segment_er"] == pytest.approx((2 + 1 + 0) / 4)  # S=2, D=1, I=0
    assert found["segment_f1"] == pytest.approx(2 * 1 / (2 * 1 + 2 + 3))


def _dcase2019_lwlrap(truth: np.ndarray, scores: np.ndarray) -> float:
    """The DCASE 2019 task 2 reference (``calculate_per_class_lwlrap``), loop for loop."""
    samples, classes = scores.shape
    precisions = np.zeros((samples, classes))
    for i in range(samples):
        pos = np.flatnonzero(truth[i] > 0)
        if not len(pos):
            continue
        order = np.argsort(scores[i])[::-1]
        ranks = np.zeros(classes, dtype=int)
        ranks[order] = np.arange(classes)
        hits = np.zeros(classes, dtype=bool)
        hits[ranks[pos]] = True
        cumulative = np.cumsum(hits)
        precisions[i, pos] = cumulative[ranks[pos]] / (1 + ranks[pos]).astype(float)
    per_class = precisions.sum(axis=0) / np.maximum(1, truth.sum(axis=0))
    weights = truth.sum(axis=0) / truth.sum()
    return float((per_class * weights).sum())


def test_lwlrap_matches_the_dcase2019_reference_code():
    rng = np.random.default_rng(3)
    truth = (rng.random((120, 9)) < 0.25).astype(float)
    truth[~truth.any(axis=1), 2] = 1
    scores = rng.random((120, 9))  # continuous scores: no ties (the reference breaks them)
    assert lwlrap(truth, scores) == pytest.approx(_dcase2019_lwlrap(truth, scores), abs=1e-12)


def test_psds1_hand_worked_roc():
    # one hour, one class: a true event 10-20 s scored 0.9 and a false alarm 100-110 s
    # scored 0.95. ROC: threshold > 0.95 nothing; (0.9, 0.95] the false alarm only
    # (TPR 0 at 1 FP/h); <= 0.9 both (TPR 1 at 1 FP/h). Area up to 100 FP/h = 99/100.
    scores = np.zeros((3600, 1))
    scores[10:20], scores[100:110] = 0.9, 0.95
    value = psds1([[(10.0, 20.0, "a")]], [scores], [np.arange(3601.0)], [3600.0], classes=["a"])
    assert value == pytest.approx(0.99)


def test_psds1_hand_worked_two_classes_with_the_instability_penalty():
    # class a: one event 200-210 s scored 0.8, nothing else: TPR 1 at 0 FP/h.
    # class b: as above (TPR 0 below 1 FP/h, then 1). Scenario 1 subtracts the std over
    # classes (alpha_st = 1): below 1 FP/h mean 0.5 - std 0.5 = 0, above it 1 - 0 = 1:
    # PSDS = 99/100. Without the penalty it would be (0.5 * 1 + 99) / 100 = 0.995.
    scores = np.zeros((3600, 2))
    scores[200:210, 0] = 0.8
    scores[10:20, 1], scores[100:110, 1] = 0.9, 0.95
    refs = [[(200.0, 210.0, "a"), (10.0, 20.0, "b")]]
    value = psds1(refs, [scores], [np.arange(3601.0)], [3600.0], classes=["a", "b"])
    assert value == pytest.approx(0.99)
    constant = np.full((3600, 2), 0.3)  # one threshold, detections spanning the hour
    assert psds1(refs, [constant], [np.arange(3601.0)], [3600.0], classes=["a", "b"]) == 0.0


def _tone_grid(clips: int = 12, rate: float = 50.0, seconds: float = 10.0):
    """mini-dcase's test grid: 10 s clips, 501 centred 20 ms frames, boundaries from
    ``frame_times`` (T + 1 of them), three classes each with one event per clip."""
    from speechbench.downstreams.scenes import frame_times

    rng = np.random.default_rng(0)
    classes, index = ["a", "b", "c"], {"a": 0, "b": 1, "c": 2}
    frames = int(seconds * rate) + 1
    refs, perfect = [], []
    for _ in range(clips):
        events = []
        for label in classes:
            onset = round(float(rng.uniform(0, 8)), 2)
            events.append((label, onset, round(onset + float(rng.uniform(0.1, 1.5)), 2)))
        refs.append([(on, off, label) for label, on, off in events])
        perfect.append(frame_targets(events, frames, rate, index).numpy())
    times = [frame_times(frames, rate) for _ in range(clips)]
    return refs, perfect, times, [seconds] * clips, classes


def test_psds1_on_the_mini_dcase_grid_against_sed_scores_eval_directly():
    # issue #14: PSDS1 = 0 for every mini-dcase system. The grid and timestamps are not
    # the cause: a perfect detector scores 1 and a constant one 0. The cause is scenario
    # 1's instability penalty: a system perfect on one class of three and silent on the
    # others has mean TPR 1/3 and std 0.47 at every eFPR, clipped to PSDS1 = 0, while
    # its unpenalised class mean (psds1_st0) is 1/3, as sed_scores_eval gives directly.
    from sed_scores_eval.base_modules.scores import create_score_dataframe
    from sed_scores_eval.intersection_based import psds
    from speechbench.metrics.sed import PSDS1, psds1_st0

    refs, perfect, times, durations, classes = _tone_grid()
    assert psds1(refs, perfect, times, durations, classes=classes) == pytest.approx(1.0)
    constant = [np.full_like(p, 0.4) for p in perfect]
    assert psds1(refs, constant, times, durations, classes=classes) == 0.0
    one_class = [p * np.array([1.0, 0.0, 0.0]) for p in perfect]
    assert psds1(refs, one_class, times, durations, classes=classes) == 0.0
    mean = psds1_st0(refs, one_class, times, durations, classes=classes)
    assert mean == pytest.approx(1 / 3)
    names = [f"clip{i}" for i in range(len(refs))]
    tables = zip(names, one_class, times, strict=True)
    direct, *_ = psds(
        scores={n: create_score_dataframe(s, t, classes) for n, s, t in tables},
        ground_truth=dict(zip(names, refs, strict=True)),
        audio_durations=dict(zip(names, durations, strict=True)),
        **{**PSDS1, "alpha_st": 0.0},
    )
    assert mean == pytest.approx(direct, abs=1e-12)


def _score_tables(folder, refs, scores, times, classes):
    folder.mkdir()
    for i, (score, t) in enumerate(zip(scores, times, strict=True)):
        rows = ["onset\toffset\t" + "\t".join(classes)]
        rows += [
            f"{t[k]:.2f}\t{t[k + 1]:.2f}\t" + "\t".join(map(str, score[k]))
            for k in range(len(score))
        ]
        (folder / f"clip{i}.tsv").write_text("\n".join(rows) + "\n")


def test_psds_from_files_bootstraps_over_files_not_classes(tmp_path):
    # `speechbench score psds1` passed the class list as a per-file input, so the
    # bootstrap failed on any real input ("different numbers of items: [3, 4]")
    import typer
    from speechbench.metrics.sed import psds1_st0
    from typer.testing import CliRunner

    from speechbench.score import score_command

    refs, perfect, times, durations, classes = _tone_grid(clips=4, rate=10.0, seconds=5.0)
    rng = np.random.default_rng(0)
    noisy = [np.clip(p + rng.uniform(0, 0.6, p.shape), 0, 1) for p in perfect]
    lines = [f"clip{i}\t{on}\t{off}\t{lab}\n" for i, r in enumerate(refs) for on, off, lab in r]
    (tmp_path / "ref.tsv").write_text("".join(lines))
    _score_tables(tmp_path / "scores", refs, noisy, times, classes)
    app = typer.Typer()
    app.callback()(lambda: None)
    app.command("score")(score_command)
    args = ["score", "psds1_st0", "--ref", str(tmp_path / "ref.tsv")]
    args += ["--hyp", str(tmp_path / "scores")]
    result = CliRunner().invoke(app, [*args, "--format", "json", "--bootstrap", "20"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    durations = [t[-1] for t in times]  # a file's duration is its last frame offset
    assert found["value"] == pytest.approx(
        psds1_st0(refs, noisy, times, durations, classes=classes)
    )
    assert found["ci_low"] <= found["value"] <= found["ci_high"] and found["items"] == 4
    assert set(found["per_class_psds"]) == set(classes)
    # a table the reference does not list is an error, not silently left out of the eFPR
    first = (tmp_path / "scores" / "clip0.tsv").read_text()
    (tmp_path / "scores" / "clip9.tsv").write_text(first)
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0 and "clip9" in str(result.exception)


def test_psds1_unknown_reference_class_is_one_line():
    with pytest.raises(ConfigError, match=r"class\(es\) \['dog'\] that the scores lack"):
        psds1(
            [[(0.0, 1.0, "dog")]], [np.zeros((10, 1))], [np.arange(11) / 10], [1.0], classes=["a"]
        )


# ------------------------------------------------------------------ mel128
def test_mel128_matches_librosa_and_frames_at_50_per_second():
    import librosa

    rng = np.random.default_rng(0)
    wav = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    hidden, lengths = Mel128()(torch.from_numpy(wav)[None], torch.tensor([16000]))
    assert hidden[0].shape == (1, 51, 128) and lengths.tolist() == [51]  # 1 + 16000 // 320
    reference = librosa.feature.melspectrogram(
        y=wav, sr=16000, n_fft=2048, win_length=640, hop_length=320, n_mels=128,
        htk=True, norm=None, center=True, pad_mode="reflect", power=2.0,
    )  # fmt: skip
    np.testing.assert_allclose(hidden[0][0].numpy(), np.log(reference.T + 1e-6), atol=2e-3)


# ------------------------------------------------------------------ frame grid helpers
def test_frame_targets_decode_and_segments_round_trip():
    index = {"a": 0, "b": 1}
    target = frame_targets([("a", 0.2, 0.6), ("b", 0.0, 0.1)], 20, 20.0, index)
    assert target[:, 0].nonzero().flatten().tolist() == list(range(4, 12))  # centres 0.225..
    assert target[:, 1].nonzero().flatten().tolist() == [0, 1]
    events = decode_events(target.numpy() > 0.5, 20.0, ["a", "b"], 1.0)
    assert events == [(0.0, 0.1, "b"), (0.2, 0.6, "a")]
    segments = segment_activity([(0.2, 1.6, "a")], 3.0, index)
    assert segments[:, 0].tolist() == [True, True, False]
    post = SedPost(3, (0.5, 0.5))
    noisy = np.zeros((20, 2))
    noisy[5:12, 0], noisy[8, 0] = 1.0, 0.0  # a one-frame gap the median filter closes
    assert post.events(noisy, 20.0, ["a", "b"], 1.0) == [(0.25, 0.6, "a")]


def _record(events, split="test"):
    return Utterance("clip-1", "x.wav", 16000, 10.0, split, labels={"events": events})


def test_bad_event_labels_are_one_line():
    with pytest.raises(CorpusError, match=r"clip-1 \(test\).*reversed or outside"):
        checked_events(_record([["a", 3.0, 2.0]]), ["a"])
    with pytest.raises(CorpusError, match="of one class overlap; merge them"):
        checked_events(_record([["a", 1.0, 3.0], ["a", 2.0, 4.0]]), ["a"])
    with pytest.raises(CorpusError, match=r"class\(es\) \['zebra'\] that no training clip"):
        checked_events(_record([["zebra", 1.0, 2.0]]), ["a"])
    assert checked_events(_record([["a", 1.0, 2.0], ["a", 2.0, 3.0]]), ["a"])  # touching


# ------------------------------------------------------------------ the tasks end to end
@pytest.fixture
def fakes(sb_home):
    register_fakes()
    return sb_home


def _training(result):
    return json.loads((paths.results_dir() / "runs" / result.run_id / "training.json").read_text())


def test_asc_and_tag_learn_the_tone_scenes(fakes):
    args = ["upstream=mel128", "threads=1", "downstream.max_epochs=12", "downstream.bootstrap=50"]
    asc = run([*args, "downstream=asc", "corpus=tones-asc"]).row["metrics"]
    assert asc["accuracy"] >= 0.8 and asc["uar"] >= 0.8, asc
    assert asc["accuracy_ci_low"] <= asc["accuracy"] <= asc["accuracy_ci_high"]
    tag = run([*args, "downstream=tag", "corpus=tones-tag"]).row["metrics"]
    assert tag["lwlrap"] > 0.85 and tag["map"] > 0.8, tag


def test_sed_beats_both_trivial_systems_and_stores_its_post_processing(fakes):
    result = run(["upstream=mel128", "downstream=sed", "corpus=tones-sed", "threads=1",
                  "downstream.max_epochs=15", "downstream.bootstrap=20"])  # fmt: skip
    m = result.row["metrics"]
    assert result.row["primary_metric"] == "segment_er"
    assert m["segment_er_allzero"] == pytest.approx(1.0) and m["segment_f1_allzero"] == 0.0
    assert m["segment_er"] < 0.5 and m["segment_er"] < m["segment_er_prior"], m
    assert m["segment_f1"] > 0.7 and m["segment_f1"] > m["segment_f1_prior"]
    assert m["event_f1"] > 0.3 and m["psds1"] > m["psds1_prior"]
    post = next(s for s in _training(result)["stages"] if s["name"] == "postprocess:sed")
    assert set(post["final"]["thresholds"]) == {"high", "low"}
    assert post["final"]["median_filter_frames"] % 2 == 1
    run_dir = paths.results_dir() / "runs" / result.run_id
    first = json.loads((run_dir / "predictions.jsonl").read_text().splitlines()[0])
    assert {"id", "events"} <= set(first)


def test_a_corpus_without_the_task_labels_is_one_line(fakes):
    with pytest.raises(CorpusError, match="has no labels.events, which downstream sed"):
        run(["upstream=mel128", "downstream=sed", "corpus=tones-asc", "downstream.max_epochs=1"])


def test_unknown_test_scene_is_one_line(fakes, monkeypatch):
    original = tone_scenes.TonesAsc.build

    def with_unknown_scene(self, root):
        records, text = original(self, root)
        next(r for r in records if r.split == "test").labels["scene"] = "beach"
        return records, text

    monkeypatch.setattr(tone_scenes.TonesAsc, "build", with_unknown_scene)
    with pytest.raises(CorpusError, match=r"asc class\(es\) \['beach'\] that no training"):
        run(["upstream=mel128", "downstream=asc", "corpus=tones-asc", "downstream.max_epochs=1"])


def test_psds1_from_files_through_the_score_command(tmp_path):
    import typer
    from typer.testing import CliRunner

    from speechbench.score import score_command

    app = typer.Typer()
    app.callback()(lambda: None)
    app.command("score")(score_command)
    (tmp_path / "ref.tsv").write_text("f1\t10.0\t20.0\ta\n")
    tables = tmp_path / "scores"
    tables.mkdir()
    rows = ["onset\toffset\ta"] + [
        f"{k}\t{k + 1}\t{0.9 if 10 <= k < 20 else 0.95 if 100 <= k < 110 else 0.0}"
        for k in range(3600)
    ]
    (tables / "f1.tsv").write_text("\n".join(rows) + "\n")
    args = ["score", "psds1", "--ref", str(tmp_path / "ref.tsv"), "--hyp", str(tables)]
    args += ["--format", "json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["value"] == pytest.approx(0.99)  # the hand-worked ROC
