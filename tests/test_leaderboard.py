import pytest
from speechbench.upstreams.spectral import Fbank

from speechbench import leaderboard, registry
from speechbench.errors import SpeechbenchError


def _row(up, down, corpus, metric, value, seed=0, status="finished"):
    return {
        "upstream": up,
        "downstream": down,
        "corpus": corpus,
        "primary_metric": metric,
        "metrics": {metric: value},
        "seed": seed,
        "status": status,
    }


@registry.register("upstreams", "utterance-probe")
class UtteranceProbe(Fbank):
    name = "utterance-probe"
    level = "utterance"


def test_best_is_marked_by_direction_seeds_are_averaged_and_na_shown():
    rows = [
        _row("mfcc", "asr", "mini-en", "cer", 0.40),
        _row("fbank", "asr", "mini-en", "cer", 0.30, seed=0),
        _row("fbank", "asr", "mini-en", "cer", 0.34, seed=1),
        _row("mfcc", "asr", "mini-phone", "per", 0.5),
        _row("utterance-probe", "asr", "mini-en", "cer", 0.1, status="failed"),
        _row("utterance-probe", "asr", "other", "wer", 0.9),
    ]
    shown, numeric = leaderboard.leaderboard_table(rows)
    column = "asr/mini-en cer ↓"
    assert numeric.loc["fbank", column] == pytest.approx(0.32)
    assert shown.loc["fbank", column].startswith("**0.320 ± 0.028 (n=2)")
    assert shown.loc["mfcc", column] == "0.400"
    assert shown.loc["utterance-probe", column] == "n/a"  # cannot run: not a number
    assert shown.loc["fbank", "asr/mini-phone per ↓"] == "-"  # could run, not run yet
    md = leaderboard.render(rows, "md")
    assert "| fbank" in md and "**0.320" in md
    assert "<b>0.320" in leaderboard.render(rows, "html")
    assert "0.32" in leaderboard.render(rows, "csv")


def test_empty_store_and_bad_format_are_user_errors():
    with pytest.raises(SpeechbenchError, match="no finished runs"):
        leaderboard.leaderboard_table([])
    with pytest.raises(SpeechbenchError, match="valid: md, csv, html"):
        leaderboard.render([_row("mfcc", "asr", "x", "cer", 0.1)], "pdf")
