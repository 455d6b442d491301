"""The synthetic generator's drift knob (``shift``): the base population is unchanged byte for byte, and a
shifted population has its own truth, so a model of the base loses ROC-AUC on it and a model retrained with
shifted labelled rows wins it back (what `credit-score simulate` shows)."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score

from app.datasets import generate_synthetic

# sha256 of generate_synthetic(3000, 42).to_csv(index=False), before the knob existed
BASE_42 = "79b878a8c23a86603c9084125bee49b65ee4fee744485e223d700c836c9aba35"


def test_the_base_population_is_byte_identical():
    assert hashlib.sha256(generate_synthetic(3000, 42).to_csv(index=False).encode()).hexdigest() == BASE_42
    assert generate_synthetic(500, 7, shift=0.0).equals(generate_synthetic(500, 7))


def test_a_shift_moves_the_population_and_raises_the_bad_rate():
    base, shifted = generate_synthetic(4000, 1), generate_synthetic(4000, 1, shift=1.0)
    assert shifted["limit_bal"].median() < 0.7 * base["limit_bal"].median()  # the income shock
    assert shifted["age"].mean() < base["age"].mean() - 3  # the new product's younger applicants
    assert shifted["default"].mean() > base["default"].mean() + 0.05
    assert generate_synthetic(300, 3, shift=0.5).equals(generate_synthetic(300, 3, shift=0.5))  # seeded
    with pytest.raises(ValueError, match="shift"):
        generate_synthetic(10, 1, shift=1.5)


def test_a_base_model_loses_roc_auc_on_the_shifted_truth_and_retraining_recovers_it():
    base, labelled = generate_synthetic(3000, 42), generate_synthetic(2000, 43, shift=1.0)
    test = generate_synthetic(2000, 44, shift=1.0)

    def auc(train: pd.DataFrame) -> float:
        m = RandomForestClassifier(100, min_samples_leaf=5, random_state=0, n_jobs=1)
        m.fit(train.drop(columns="default"), train["default"])
        return roc_auc_score(test["default"], m.predict_proba(test.drop(columns="default"))[:, 1])

    v1, v2 = auc(base), auc(pd.concat([base, labelled], ignore_index=True))
    assert v1 < 0.75 and v2 - v1 > 0.05, (v1, v2)
