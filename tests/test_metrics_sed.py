"""SED metrics: hand-counted segment/event cases with the DCASE collars, through sed_eval."""

import pytest
from speechbench.metrics.sed import (
    event_error_rate,
    event_f1,
    sed_metrics,
    segment_error_rate,
    segment_f1,
)

from speechbench.errors import ConfigError


def test_shifted_event_hand_counted():
    # reference speech 0-2 s, estimate 1-3 s. 1 s segments: ref {0,1}, est {1,2}
    # -> TP 1, FP 1, FN 1: F1 = 2/(2+1+1) = 0.5; ER = (S0 + D1 + I1) / N2 = 1
    refs, ests = [[(0.0, 2.0, "speech")]], [[(1.0, 3.0, "speech")]]
    assert segment_f1(refs, ests) == pytest.approx(0.5)
    assert segment_error_rate(refs, ests) == pytest.approx(1.0)
    # onset 1 s off > 200 ms collar: no match -> F1 0, ER = (D1 + I1) / 1 = 2
    assert event_f1(refs, ests) == pytest.approx(0.0)
    assert event_error_rate(refs, ests) == pytest.approx(2.0)


def test_collars_onset_200ms_and_offset_20_percent():
    ref = [[(1.0, 6.0, "dog")]]  # 5 s long: offset tolerance max(0.2, 0.2 * 5) = 1 s
    assert event_f1(ref, [[(1.15, 6.9, "dog")]]) == pytest.approx(1.0)  # inside both collars
    assert event_f1(ref, [[(1.25, 6.0, "dog")]]) == pytest.approx(0.0)  # onset 250 ms off
    assert event_f1(ref, [[(1.0, 7.2, "dog")]]) == pytest.approx(0.0)  # offset 1.2 s off


def test_substitution_and_class_wise_results():
    # file 0: speech detected; file 1: dog labelled as cat at the same time (a substitution)
    refs = [[(0.0, 2.0, "speech")], [(0.0, 1.0, "dog")]]
    ests = [[(0.0, 2.0, "speech")], [(0.0, 1.0, "cat")]]
    result = sed_metrics(refs, ests)
    # segments: ref active 3 (2 speech + 1 dog), TP 2, FP 1, FN 1 -> F1 = 4/6; ER = S1/N3
    assert result["segment_f1"] == pytest.approx(4 / 6)
    assert result["segment_er"] == pytest.approx(1 / 3)
    assert result["event_f1"] == pytest.approx(0.5)  # TP 1, FP 1, FN 1
    assert result["event_er"] == pytest.approx(1 / 2)  # one substitution over 2 events
    assert result["class_wise"]["speech"]["event_f1"] == pytest.approx(1.0)
    assert result["class_wise"]["dog"]["segment_er"] == pytest.approx(1.0)
    assert result["class_wise"]["cat"]["event_er"] != result["class_wise"]["cat"]["event_er"]  # NaN


def test_empty_estimates_and_durations():
    refs = [[(0.0, 2.0, "speech")]]
    assert segment_f1(refs, [[]]) == 0.0
    assert segment_error_rate(refs, [[]]) == pytest.approx(1.0)
    # a 4 s file with a false alarm at 3-4 s: evaluated up to 4 s either way
    assert segment_error_rate(refs, [[(3.0, 4.0, "speech")]], durations=[4.0]) == pytest.approx(
        (2 + 1) / 2
    )


def test_sed_bad_input():
    with pytest.raises(ConfigError, match="onset"):
        segment_f1([[(2.0, 1.0, "x")]], [[]])
    with pytest.raises(ConfigError, match="pair up"):
        segment_f1([[], []], [[]])
    with pytest.raises(ConfigError, match="not \\(onset"):
        event_f1([[("a", 1.0)]], [[]])
    with pytest.raises(ConfigError, match="no events"):
        event_f1([[]], [[]])
