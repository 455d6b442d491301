"""Probabilities to class labels: the decision rule training tunes and serving applies.

Labels are class indices (0..K-1 in the schema's class order); ``proba`` is (n, K). For a binary model the
"positive" class is the schema's bad class and the decision is ``proba[:, bad] >= threshold``.
"""

from __future__ import annotations

import numpy as np


def predict_labels(proba: np.ndarray, bad_index: int, threshold: float | None) -> np.ndarray:
    """Binary: bad when P(bad) >= threshold, else the other class. Multiclass: the most probable class."""
    if proba.shape[1] == 2 and threshold is not None:
        good_index = 1 - bad_index
        return np.where(proba[:, bad_index] >= threshold, bad_index, good_index)
    return np.argmax(proba, axis=1)
