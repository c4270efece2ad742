"""The shared local-corpus behaviour: registry entries, stable splits, missing lhotse."""

import sys
from collections import Counter

import pytest

from speechbench import registry
from speechbench.corpora.public.lhotse_bridge import run_recipe
from speechbench.corpora.public.local import LocalCorpus, hash_fraction, split_by_hash
from speechbench.errors import CorpusError

PUBLIC = [
    "aishell3",
    "bvcc",
    "fsdkaggle2019",
    "grid",
    "libri2mix",
    "librispeech",
    "tau-asc2020-mobile",
    "tau-nigens-dcase2020",
    "tmhint-qi",
    "vctk",
    "voxceleb1",
    "voxlingua107",
]


def test_every_public_corpus_is_registered_with_its_variable():
    variables = set()
    for name in PUBLIC:
        cls = registry.get("corpora", name)
        assert issubclass(cls, LocalCorpus) and cls.name == name
        assert cls.env_var.startswith("SPEECHBENCH_") and cls.env_var.endswith("_DIR")
        assert cls.layout and cls.citation and cls.license and cls.sample_rate > 0
        variables.add(cls.env_var)
    assert len(variables) == len(PUBLIC)


def test_hash_split_fractions_and_stability():
    keys = [f"utt{i}" for i in range(20000)]
    counts = Counter(split_by_hash(k, dev=0.1, test=0.05) for k in keys)
    assert abs(counts["dev"] / len(keys) - 0.1) < 0.01
    assert abs(counts["test"] / len(keys) - 0.05) < 0.01
    assert split_by_hash("utt7", 0.1, 0.05) == split_by_hash("utt7", 0.1, 0.05)
    # the hash is of the key alone, so listing order and other files do not matter
    assert hash_fraction("p225_001") == hash_fraction("p225_001")
    assert 0.0 <= min(map(hash_fraction, keys)) and max(map(hash_fraction, keys)) < 1.0


def test_missing_lhotse_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "lhotse.recipes", None)  # import fails like an absent package
    with pytest.raises(CorpusError, match="needs the lhotse package.*pip install lhotse"):
        run_recipe("librispeech", "prepare_librispeech", corpus_dir=".")
