"""Verification trials: where they come from, checks, and scoring them.

A trial is (enrollment utterance, test utterance, target?). The test split's trials
come from a trial file (``downstream.trials=PATH``, one ``enroll test target|nontarget``
line each, the layout of mini-sv's ``trials.txt`` and VoxCeleb's list with words for
labels) or else from the records themselves (``labels["trials"]`` on each test record,
as ``[enroll_id, "target"|"nontarget"]``). A dev split without trials gets balanced
trials drawn from its speaker labels, so early stopping can watch the same EER the
test reports (dev speakers are training speakers, so dev EER is optimistic; it only
ranks epochs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from speechbench.metrics.bootstrap import bootstrap_ci
from speechbench.metrics.verification import equal_error_rate, min_dcf

from speechbench.corpora.base import Utterance
from speechbench.errors import ConfigError, CorpusError

LABEL_WORDS = {"target": True, "nontarget": False, "1": True, "0": False}
DEV_TRIALS_PER_UTTERANCE = 2  # target and non-target trials per dev utterance, each


@dataclass(frozen=True)
class Trial:
    enroll: str
    test: str
    target: bool


def read_trial_file(path: str | Path) -> list[Trial]:
    """Trials of a ``enroll test target|nontarget`` (or 1/0) file, one per line."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"trial file {path} does not exist; give downstream.trials=PATH to a file of "
            "'enroll_id test_id target|nontarget' lines"
        )
    trials = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 3 or fields[2].lower() not in LABEL_WORDS:
            raise CorpusError(
                f"{path}:{number}: expected 'enroll_id test_id target|nontarget', got {line!r}"
            )
        trials.append(Trial(fields[0], fields[1], LABEL_WORDS[fields[2].lower()]))
    if not trials:
        raise CorpusError(f"trial file {path} has no trials")
    return trials


def trials_from_labels(records: Sequence[Utterance]) -> list[Trial]:
    trials = []
    for record in records:
        for entry in record.labels.get("trials", []) or []:
            if len(entry) != 2 or str(entry[1]).lower() not in LABEL_WORDS:
                raise CorpusError(
                    f"utterance {record.id}: bad trial {entry!r} in labels['trials']; "
                    "expected [enroll_id, 'target'|'nontarget']"
                )
            trials.append(Trial(str(entry[0]), record.id, LABEL_WORDS[str(entry[1]).lower()]))
    return trials


def speaker_trials(records: Sequence[Utterance], seed: int = 0) -> list[Trial]:
    """Balanced trials from speaker labels (the same recipe mini-sv uses for its test)."""
    from speechbench.corpora.mini_sv import make_trials

    unlabelled = [r.id for r in records if not r.speaker]
    if unlabelled:
        raise CorpusError(
            f"utterance {unlabelled[0]} has no speaker, so no dev trials can be drawn; "
            "verification needs speaker labels on dev records"
        )
    drawn = make_trials(list(records), DEV_TRIALS_PER_UTTERANCE, seed)
    return [Trial(e, t, label == "target") for e, t, label in drawn]


def trials_for(records: Sequence[Utterance], stage: str, trial_file: str = "") -> list[Trial]:
    """The trials of the ``stage`` ("dev" | "test") split of ``records``, checked against
    its utterances; a trial file, when given, is the test split's."""
    if not records:
        raise CorpusError("no utterances to score verification trials on")
    split = stage
    if split == "test" and trial_file:
        trials = read_trial_file(trial_file)
        where = f"trial file {trial_file}"
    else:
        trials = trials_from_labels(records)
        where = f"labels['trials'] of the {split} records"
    if not trials:
        if split == "test":
            raise CorpusError(
                "the test split has no trial list (no labels['trials'] on its records); "
                "use a verification corpus such as corpus=mini-sv or give downstream.trials=PATH"
            )
        trials = speaker_trials(records)
        where = f"speaker labels of the {split} records"
    present = {r.id for r in records}
    missing = sorted({t.enroll for t in trials} - present | {t.test for t in trials} - present)
    if missing:
        shown = ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
        raise CorpusError(
            f"{where} name {len(missing)} utterance(s) not in the {split} split ({shown}); "
            "the trial list does not belong to this corpus version: re-prepare the corpus "
            "or fix the trial file"
        )
    kinds = {t.target for t in trials}
    if kinds != {True, False}:
        raise CorpusError(f"{where} need both target and non-target trials; got only one kind")
    return trials


def verification_metrics(
    scores: np.ndarray, trials: Sequence[Trial], n_bootstrap: int = 0
) -> dict[str, float]:
    """EER and minDCF of trial scores (the metrics module's definitions), with percentile
    bootstrap intervals over trials when ``n_bootstrap`` > 0."""
    labels = np.array([t.target for t in trials], dtype=int)
    result: dict[str, float] = {
        "eer": equal_error_rate(scores, labels),
        "min_dcf": min_dcf(scores, labels),
        "num_trials": float(len(trials)),
    }
    if n_bootstrap > 0:
        for name, spec in (("eer", equal_error_rate), ("min_dcf", min_dcf)):
            interval = bootstrap_ci(spec, scores, labels, n_resamples=n_bootstrap, seed=0)
            result[f"{name}_ci_low"], result[f"{name}_ci_high"] = interval.low, interval.high
    return result


FULL = "full"


def condition_metrics(
    scores: np.ndarray,
    trials: Sequence[Trial],
    records: Sequence[Utterance],
    n_bootstrap: int = 0,
) -> dict[str, float]:
    """Verification metrics per test-side duration condition (``labels["condition"]`` of
    the test utterance, as in NIST SRE/LRE: ``full``, ``3s``, ``1s``).

    The unsuffixed keys (``eer``, ``min_dcf``) are every full-length trial, with bootstrap
    intervals. Each cut condition reports ``eer_3s`` etc. on the same trials with the test
    side cut, and ``eer_full`` then scores those same trials at full length, so the three
    conditions differ only in how much test speech the system hears."""
    condition = {r.id: str(r.labels.get("condition") or FULL) for r in records}
    source = {r.id: str(r.labels.get("source_id") or r.id) for r in records}
    kinds = np.array([condition[t.test] for t in trials])
    full = kinds == FULL
    if not full.any():  # a trial list of cut segments only: pool them
        full = np.ones(len(trials), dtype=bool)
    pick = lambda keep: [t for t, k in zip(trials, keep, strict=True) if k]  # noqa: E731
    result = verification_metrics(scores[full], pick(full), n_bootstrap)
    cut_sources = {source[t.test] for t, k in zip(trials, kinds, strict=True) if k != FULL}
    if not cut_sources:
        return result
    same = full & np.array([t.test in cut_sources for t in trials])
    for name, keep in [(FULL, same), *((c, kinds == c) for c in sorted(set(kinds) - {FULL}))]:
        if len({t.target for t in pick(keep)}) < 2:
            continue  # one kind of trial only: no EER
        for key, value in verification_metrics(scores[keep], pick(keep)).items():
            result[f"{key}_{name}"] = value
    return result


def trial_outputs(trials: Sequence[Trial], scores: np.ndarray) -> list[dict[str, Any]]:
    """Per-test-utterance records for predictions.jsonl: its trials and their scores."""
    by_test: dict[str, list[list[Any]]] = {}
    for trial, score in zip(trials, scores.tolist(), strict=True):
        label = "target" if trial.target else "nontarget"
        by_test.setdefault(trial.test, []).append([trial.enroll, label, round(score, 6)])
    return [{"id": test, "trials": rows} for test, rows in by_test.items()]
