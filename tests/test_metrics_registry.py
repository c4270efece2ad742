"""Every built-in metric loads through the registry with complete, consistent metadata."""

import math

import pytest
from speechbench.metrics import BUILTINS
from speechbench.metrics.base import METRICS, MetricSpec, get_metric

from speechbench import registry

INPUT_KINDS = {
    "text",
    "labels",
    "values",
    "trials",
    "tagging",
    "lid",
    "events",
    "sed_scores",
    "audio",
    "embeddings",
    "scores",  # per-item scores of an evaluator (dnsmos): Python API only
}


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_builtin_metric_metadata(name):
    spec = get_metric(name)
    assert isinstance(spec, MetricSpec) and spec.name == name and METRICS[name] is spec
    low, high = spec.range
    assert low < high and not math.isnan(low) and not math.isnan(high)
    assert spec.level in ("utterance", "corpus")
    assert len(spec.definition) > 15 and spec.fn.__doc__
    assert spec.inputs.split("+")[0] in INPUT_KINDS


def test_registry_lists_the_issue_metrics():
    names = set(registry.names("metrics"))
    required = {
        "wer", "cer", "per", "accuracy", "uar", "macro_f1", "lwlrap", "map", "segment_f1",
        "segment_er", "event_f1", "event_er", "si_sdr", "si_sdri", "sdr", "snr", "pesq_wb",
        "pesq_nb", "stoi", "estoi", "sdi", "lcc", "srcc", "ktau", "mse", "sys_lcc", "sys_srcc",
        "sys_ktau", "sys_mse", "eer", "min_dcf", "cavg", "lid_eer", "lid_accuracy", "mcd",
        "f0_rmse", "msep", "vde", "spk_sim", "f0_corr", "dnsmos",
    }  # fmt: skip
    assert required <= names
