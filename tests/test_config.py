import pytest

from speechbench.config import parse_overrides, resolve
from speechbench.errors import ConfigError


def test_defaults_and_overrides_are_typed():
    config = resolve(["upstream=fbank", "downstream.lr=0.01", "seed=3", "upstream.num_mel_bins=40"])
    assert config.settings.seed == 3
    assert config.downstream_options.lr == pytest.approx(0.01)
    assert config.upstream_options.num_mel_bins == 40
    as_dict = config.as_dict()
    assert as_dict["upstream"] == {"name": "fbank", "num_mel_bins": 40, "cmvn": True}


def test_unknown_key_names_the_valid_keys():
    with pytest.raises(ConfigError, match=r"downstream\.lrr.*valid keys: downstream\.lr"):
        resolve(["downstream.lrr=1"])
    with pytest.raises(ConfigError, match="valid keys: upstream, downstream, corpus, seed"):
        resolve(["sede=1"])
    with pytest.raises(ConfigError, match="nested keys start with upstream. or downstream."):
        resolve(["model.x=1"])


def test_bad_values_and_names_are_clear():
    with pytest.raises(ConfigError, match="bad value 'abc' for downstream.lr: expected float"):
        resolve(["downstream.lr=abc"])
    with pytest.raises(ConfigError, match="unknown upstream 'nope'; valid choices: .*fbank.*mfcc"):
        resolve(["upstream=nope"])
    with pytest.raises(ConfigError, match="not KEY=VALUE"):
        parse_overrides(["fbank"])


def test_hash_changes_with_any_option_and_ignores_threads():
    base = resolve(["upstream=fbank"]).hash()
    assert resolve(["upstream=fbank", "upstream.cmvn=false"]).hash() != base
    assert resolve(["upstream=fbank", "seed=1"]).hash() != base
    assert resolve(["upstream=fbank", "threads=2"]).hash() == base
    assert resolve(["upstream=fbank"]).hash({"corpus_version": "2"}) != base
