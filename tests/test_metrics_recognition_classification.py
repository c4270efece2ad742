"""WER/CER/PER and accuracy/UAR/macro-F1 against hand-counted edits and confusion counts."""

import pytest
from speechbench.metrics.classification import accuracy, macro_f1, unweighted_average_recall
from speechbench.metrics.recognition import (
    character_error_rate,
    phone_error_rate,
    word_error_rate,
)

from speechbench.errors import ConfigError


def test_wer_pools_edits_over_the_corpus_like_sclite():
    # utt1: "the cat sat" -> "the bat sat on": 1 substitution + 1 insertion over 3 words
    # utt2: "hello world" -> "hello": 1 deletion over 2 words
    refs = ["the cat sat", "hello world"]
    hyps = ["the bat sat on", "hello"]
    assert word_error_rate(refs, hyps) == pytest.approx(3 / 5)  # not the mean (2/3 + 1/2) / 2


def test_empty_hypothesis_is_all_deletions():
    assert word_error_rate(["a b c"], [""]) == pytest.approx(1.0)
    assert character_error_rate(["ab"], [""]) == pytest.approx(1.0)


def test_cer_counts_spaces_and_per_counts_phones():
    # "ab c" -> "abc": one deleted space out of 4 characters
    assert character_error_rate(["ab c"], ["abc"]) == pytest.approx(1 / 4)
    assert phone_error_rate(["k ae t"], ["k ah t"]) == pytest.approx(1 / 3)


def test_recognition_bad_input_is_a_clear_error():
    with pytest.raises(ConfigError, match="pair up"):
        word_error_rate(["a"], ["a", "b"])
    with pytest.raises(ConfigError, match="empty"):
        word_error_rate([" "], ["a"])


def test_classification_hand_computed():
    refs = ["a", "a", "a", "b"]
    preds = ["a", "a", "b", "b"]
    assert accuracy(refs, preds) == pytest.approx(0.75)
    # recall a = 2/3, recall b = 1 -> UAR = 5/6 (accuracy would reward the majority class)
    assert unweighted_average_recall(refs, preds) == pytest.approx(5 / 6)
    # F1 a = 2 * 1 * (2/3) / (1 + 2/3) = 0.8; F1 b = 2 * 0.5 * 1 / 1.5 = 2/3
    assert macro_f1(refs, preds) == pytest.approx((0.8 + 2 / 3) / 2)


def test_majority_predictor_gets_chance_uar_and_one_class_edge_case():
    refs = ["x"] * 9 + ["y"]
    preds = ["x"] * 10
    assert accuracy(refs, preds) == pytest.approx(0.9)
    assert unweighted_average_recall(refs, preds) == pytest.approx(0.5)
    assert macro_f1(refs, preds) == pytest.approx((2 * 0.9 / 1.9 + 0.0) / 2)
    # a single class, all correct: every metric is 1
    assert unweighted_average_recall(["x", "x"], ["x", "x"]) == 1.0
    assert macro_f1(["x", "x"], ["x", "x"]) == 1.0


def test_classification_length_mismatch_and_empty():
    with pytest.raises(ConfigError, match="pair up"):
        accuracy([1, 2], [1])
    with pytest.raises(ConfigError, match="at least one"):
        macro_f1([], [])
