"""Classification metrics: accuracy, unweighted average recall (UAR), macro F1.

Labels are compared as given (strings or integers). These are corpus-level:
each is computed once over the whole test set. UAR is the mean of per-class recalls
over the classes present in the references (Schuller et al., INTERSPEECH 2009
Emotion Challenge; sklearn ``balanced_accuracy_score``), so a majority-class
predictor scores 1/K rather than the class prior. Macro F1 averages per-class F1 over
the union of reference and predicted classes, a class with no predictions and no
references cannot occur and a class never predicted gets F1 = 0 (sklearn
``f1_score(average="macro", zero_division=0)``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import balanced_accuracy_score, f1_score
from speechbench.metrics._checks import same_length
from speechbench.metrics.base import metric


def _pair(references: Sequence[Any], predictions: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    same_length("references", references, "predictions", predictions)
    return np.asarray(references), np.asarray(predictions)


@metric(
    "accuracy",
    higher_is_better=True,
    range=(0.0, 1.0),
    definition="fraction of items whose predicted label equals the reference label",
    inputs="labels",
)
def accuracy(references: Sequence[Any], predictions: Sequence[Any]) -> float:
    """Fraction of items predicted correctly."""
    refs, preds = _pair(references, predictions)
    return float(np.mean(refs == preds))


@metric(
    "uar",
    higher_is_better=True,
    range=(0.0, 1.0),
    definition="unweighted average recall: mean per-class recall over reference classes "
    "(Schuller et al. 2009; balanced accuracy)",
    inputs="labels",
)
def unweighted_average_recall(references: Sequence[Any], predictions: Sequence[Any]) -> float:
    """Mean of per-class recalls, each reference class weighted equally (class-imbalance proof)."""
    refs, preds = _pair(references, predictions)
    with warnings.catch_warnings():  # sklearn warns when predictions hold unseen classes
        warnings.simplefilter("ignore", UserWarning)
        return float(balanced_accuracy_score(refs, preds))


@metric(
    "macro_f1",
    higher_is_better=True,
    range=(0.0, 1.0),
    definition="unweighted mean of per-class F1 over reference and predicted classes",
    inputs="labels",
)
def macro_f1(references: Sequence[Any], predictions: Sequence[Any]) -> float:
    """Mean per-class F1; a class never predicted contributes 0."""
    refs, preds = _pair(references, predictions)
    with warnings.catch_warnings():  # sklearn warns about a single class; F1 is still defined
        warnings.simplefilter("ignore", UserWarning)
        return float(f1_score(refs, preds, average="macro", zero_division=0))
