"""Metrics: one module per metric family, one copy of each metric.

``BUILTINS`` maps a metric name to the MetricSpec defined by ``@metric`` in its
family module, so the registry imports a family only when one of its metrics is used.
"""

BUILTINS: dict[str, str] = {
    "wer": "speechbench.metrics.recognition:word_error_rate",
    "cer": "speechbench.metrics.recognition:character_error_rate",
    "per": "speechbench.metrics.recognition:phone_error_rate",
}
