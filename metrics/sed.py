"""Sound event detection metrics through sed_eval (Mesaros et al., Applied Sciences 2016).

Inputs are two sequences aligned by file: ``references[i]`` and ``estimates[i]`` are the
event lists of file i, each event an ``(onset_s, offset_s, label)`` tuple. Files are the
unit a bootstrap resamples.

- Segment-based: activity compared in 1 s segments; F1 from segment-level TP/FP/FN
  pooled over classes (micro), error rate ER = (S + D + I) / N with per-segment
  substitutions (DCASE 2016-2017 definition).
- Event-based: an estimate matches a reference of the same label when its onset is
  within a 200 ms collar and its offset within max(200 ms, 20 % of the reference
  length) (DCASE 2017 task 3 / sed_eval ``EventBasedMetrics(t_collar=0.2,
  percentage_of_length=0.2)``, optimal matching).

Segment-based evaluation covers each file up to ``durations[i]`` when given, else up
to the last event offset (sed_eval's default).

With no reference event at all (N = 0) the error rates are undefined and return NaN
(sed_eval would divide by its epsilon and report ~4.5e15); ``speechbench score`` then
says so in one line, and a bootstrap drops the resamples that draw only such files.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from speechbench.metrics._checks import same_length
from speechbench.metrics.base import metric

from speechbench.errors import ConfigError

Event = tuple[float, float, str]
SEGMENT_SECONDS = 1.0
ONSET_COLLAR_SECONDS = 0.2
OFFSET_LENGTH_FRACTION = 0.2


def _event_dicts(events: Sequence[Event], filename: str, which: str) -> list[dict[str, Any]]:
    out = []
    for event in events:
        try:
            onset, offset, label = event
            onset, offset = float(onset), float(offset)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{which} event {event!r} in {filename} is not (onset, offset, label)"
            ) from None
        if not (np.isfinite(onset) and np.isfinite(offset)) or onset < 0 or offset <= onset:
            raise ConfigError(
                f"{which} event {event!r} in {filename}: need 0 <= onset < offset, finite"
            )
        out.append(
            {
                "filename": filename,
                "event_onset": onset,
                "event_offset": offset,
                "event_label": str(label),
            }
        )
    return out


def sed_metrics(
    references: Sequence[Sequence[Event]],
    estimates: Sequence[Sequence[Event]],
    durations: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Segment- and event-based F1 / ER, overall and per class, in one sed_eval pass."""
    with warnings.catch_warnings():  # dcase_util imports the deprecated pkg_resources
        warnings.simplefilter("ignore")
        import sed_eval  # slow import (dcase_util); only when SED is scored

    same_length("reference files", references, "estimated files", estimates)
    if durations is not None:
        same_length("reference files", references, "durations", durations)
    refs = [_event_dicts(r, f"file{i}", "reference") for i, r in enumerate(references)]
    ests = [_event_dicts(e, f"file{i}", "estimated") for i, e in enumerate(estimates)]
    labels = sorted({e["event_label"] for file in refs + ests for e in file})
    if not labels:
        raise ConfigError("no events in references or estimates; nothing to score")
    segment = sed_eval.sound_event.SegmentBasedMetrics(labels, time_resolution=SEGMENT_SECONDS)
    event = sed_eval.sound_event.EventBasedMetrics(
        labels, t_collar=ONSET_COLLAR_SECONDS, percentage_of_length=OFFSET_LENGTH_FRACTION
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, (ref, est) in enumerate(zip(refs, ests, strict=True)):
            length = None if durations is None else float(durations[i])
            segment.evaluate(ref, est, evaluated_length_seconds=length)
            event.evaluate(ref, est)
        seg_overall = segment.results_overall_metrics()
        ev_overall = event.results_overall_metrics()
        seg_class = segment.results_class_wise_metrics()
        ev_class = event.results_class_wise_metrics()
    return {
        "segment_f1": float(seg_overall["f_measure"]["f_measure"]),
        # sed_eval divides by N + eps: with no reference event (N = 0) it reports ~4.5e15;
        # the error rate is undefined there, so it is NaN (bootstrap drops such resamples)
        "segment_er": _overall_error_rate(seg_overall, segment.overall["Nref"]),
        "event_f1": float(ev_overall["f_measure"]["f_measure"]),
        "event_er": _overall_error_rate(ev_overall, event.overall["Nref"]),
        "class_wise": {
            label: {
                "segment_f1": float(seg_class[label]["f_measure"]["f_measure"]),
                "segment_er": _class_error_rate(seg_class[label]),
                "event_f1": float(ev_class[label]["f_measure"]["f_measure"]),
                "event_er": _class_error_rate(ev_class[label]),
            }
            for label in labels
        },
    }


def _overall_error_rate(result: dict[str, Any], n_reference: float) -> float:
    if n_reference == 0:
        return float("nan")
    return float(result["error_rate"]["error_rate"])


def _class_error_rate(result: dict[str, Any]) -> float:
    # sed_eval divides by N + eps, giving ~1e15 for a class with no reference: undefined.
    if result["count"]["Nref"] == 0:
        return float("nan")
    return float(result["error_rate"]["error_rate"])


def _nan_to_zero(value: float) -> float:
    # sed_eval gives F1 = NaN when there is neither a reference nor an estimate active: 0 TP.
    return 0.0 if np.isnan(value) else value


@metric(
    "segment_f1",
    higher_is_better=True,
    range=(0.0, 1.0),
    definition="segment-based (1 s) micro F1 over classes, sed_eval (Mesaros et al. 2016)",
    inputs="events",
)
def segment_f1(references, estimates, durations=None) -> float:
    """Segment-based F1 in 1 s segments, pooled over classes."""
    return _nan_to_zero(sed_metrics(references, estimates, durations)["segment_f1"])


@metric(
    "segment_er",
    higher_is_better=False,
    range=(0.0, float("inf")),
    definition="segment-based (1 s) error rate (S+D+I)/N, sed_eval (Mesaros et al. 2016)",
    inputs="events",
)
def segment_error_rate(references, estimates, durations=None) -> float:
    """Segment-based error rate in 1 s segments: (S + D + I) / N active reference segments."""
    return sed_metrics(references, estimates, durations)["segment_er"]


@metric(
    "event_f1",
    higher_is_better=True,
    range=(0.0, 1.0),
    definition="event-based micro F1, 200 ms onset collar, offset within 20 % length (sed_eval)",
    inputs="events",
)
def event_f1(references, estimates, durations=None) -> float:
    """Event-based F1: onset within 200 ms, offset within max(200 ms, 20 % of length)."""
    return _nan_to_zero(sed_metrics(references, estimates, durations)["event_f1"])


@metric(
    "event_er",
    higher_is_better=False,
    range=(0.0, float("inf")),
    definition="event-based error rate (S+D+I)/N, 200 ms onset collar, 20 % offset (sed_eval)",
    inputs="events",
)
def event_error_rate(references, estimates, durations=None) -> float:
    """Event-based error rate with the same matching rule as event_f1."""
    return sed_metrics(references, estimates, durations)["event_er"]


# -- PSDS (threshold-independent) -----------------------------------------------------------
# DCASE 2021-2023 task 4 scenario 1: detection and ground-truth intersection criteria 0.7,
# no cross-trigger penalty, instability across classes weighted 1, eFPR up to 100 per hour.
PSDS1 = {
    "dtc_threshold": 0.7,
    "gtc_threshold": 0.7,
    "cttc_threshold": None,
    "alpha_ct": 0.0,
    "alpha_st": 1.0,
    "max_efpr": 100.0,
}


class PsdsResult(NamedTuple):
    """PSDS and each class's own PSD-ROC area (normalised by ``max_efpr``, no penalty)."""

    value: float
    per_class: dict[str, float]


def psds_scenario1(
    references: Sequence[Sequence[Event]],
    scores: Sequence[Any],
    frame_times: Sequence[Any],
    durations: Sequence[float],
    *,
    classes: Sequence[str],
) -> PsdsResult:
    """PSDS scenario 1 (Bilen et al. 2020) of frame-level scores, computed exactly by
    sed_scores_eval (Ebbers et al. 2022) over every threshold the scores hold.

    ``scores[i]`` is a T_i x C array of class scores of file i, ``frame_times[i]`` its
    T_i + 1 frame boundaries in seconds; ``classes`` names the C columns (keyword: it is
    one list for the data set, not a per-file input a bootstrap resamples).
    """
    from sed_scores_eval.base_modules.scores import create_score_dataframe
    from sed_scores_eval.intersection_based import psds

    _writable_scores_for_cython()

    same_length("reference files", references, "score files", scores)
    same_length("reference files", references, "frame times", frame_times)
    same_length("reference files", references, "durations", durations)
    names = [f"file{i}" for i in range(len(references))]
    truth, frames = {}, {}
    for name, ref, score, times in zip(names, references, scores, frame_times, strict=True):
        events = _event_dicts(ref, name, "reference")
        truth[name] = [(e["event_onset"], e["event_offset"], e["event_label"]) for e in events]
        unknown = {e[2] for e in truth[name]} - set(classes)
        if unknown:
            raise ConfigError(
                f"reference of {name} has class(es) {sorted(unknown)} that the scores lack "
                f"(scored: {', '.join(classes)})"
            )
        frames[name] = create_score_dataframe(
            np.asarray(score, float), np.asarray(times), list(classes)
        )
    if not any(truth.values()):
        raise ConfigError("no reference event in any file; PSDS needs some")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value, per_class, *_ = psds(
            scores=frames,
            ground_truth=truth,
            audio_durations={n: float(d) for n, d in zip(names, durations, strict=True)},
            **PSDS1,
        )
    return PsdsResult(float(value), {c: float(v) for c, v in per_class.items()})


def class_mean(result: PsdsResult) -> float:
    """The PSDS of the same ROCs without the instability penalty (alpha_st = 0): the
    mean curve's area is the mean of the classes' areas."""
    return float(np.mean(list(result.per_class.values())))


def _writable_scores_for_cython() -> None:
    """sed_scores_eval 0.0.4 hands ``DataFrame.to_numpy()`` to a Cython function typed for
    writable buffers; under pandas 3 (copy-on-write) that array is read-only and the call
    fails ("buffer source array is read-only"). Copying the two arrays first is the whole
    fix; the computation is unchanged."""
    from sed_scores_eval.base_modules import statistics

    original = statistics.onset_offset_curves
    if getattr(original, "_speechbench_copy", False):
        return

    def onset_offset_curves(scores, timestamps, change_point_candidates=None):
        return original(np.array(scores), np.array(timestamps), change_point_candidates)

    onset_offset_curves._speechbench_copy = True  # type: ignore[attr-defined]
    statistics.onset_offset_curves = onset_offset_curves


@metric(
    "psds1",
    higher_is_better=True,
    range=(0.0, 1.0),
    definition="PSDS scenario 1 (DTC=GTC=0.7, alpha_st=1, eFPR<=100/h), sed_scores_eval",
    inputs="sed_scores",
)
def psds1(references, scores, frame_times, durations, *, classes) -> float:
    """Polyphonic sound detection score, DCASE task 4 scenario 1, threshold-independent."""
    return psds_scenario1(references, scores, frame_times, durations, classes=classes).value


@metric(
    "psds1_st0",
    higher_is_better=True,
    range=(0.0, 1.0),
    definition="PSDS scenario 1 without the instability penalty (alpha_st=0): mean class area",
    inputs="sed_scores",
)
def psds1_st0(references, scores, frame_times, durations, *, classes) -> float:
    """Scenario 1's criteria and eFPR range, alpha_st = 0: the mean over classes of each
    class's PSD-ROC area. Scenario 1 subtracts the across-class std of the TPR and clips
    at 0, so a system strong on few classes scores PSDS1 = 0; this keeps what it finds."""
    return class_mean(psds_scenario1(references, scores, frame_times, durations, classes=classes))
