import numpy as np
import pytest
from sklearn import metrics as skm

from app.training.metrics import compute_metrics, ks_statistic, predict_labels, tune_threshold

RNG = np.random.default_rng(0)
Y = RNG.integers(0, 2, 400)
SCORE = np.clip(0.3 * Y + RNG.normal(0.35, 0.2, 400), 0, 1)
PROBA = np.column_stack([1 - SCORE, SCORE])


def test_binary_metrics_match_sklearn():
    m = compute_metrics(Y, PROBA, bad_index=1, threshold=0.5)
    pred = (SCORE >= 0.5).astype(int)
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(Y, SCORE))
    assert m["pr_auc"] == pytest.approx(skm.average_precision_score(Y, SCORE))
    assert m["f1_macro"] == pytest.approx(skm.f1_score(Y, pred, average="macro"))
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(Y, pred))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(Y, pred))
    assert m["precision_bad"] == pytest.approx(skm.precision_score(Y, pred))
    assert m["recall_bad"] == pytest.approx(skm.recall_score(Y, pred))
    assert m["brier"] == pytest.approx(skm.brier_score_loss(Y, SCORE))
    assert m["gini"] == pytest.approx(2 * m["roc_auc"] - 1)
    assert m["confusion_matrix"] == skm.confusion_matrix(Y, pred).tolist()


def test_ks_matches_two_sample_ks():
    from scipy.stats import ks_2samp

    assert ks_statistic(Y, SCORE) == pytest.approx(ks_2samp(SCORE[Y == 1], SCORE[Y == 0]).statistic)


def test_bad_class_can_be_index_zero():
    flipped = PROBA[:, ::-1]
    m = compute_metrics(1 - Y, flipped, bad_index=0, threshold=0.5)
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(Y, SCORE))
    assert m["recall_bad"] == pytest.approx(skm.recall_score(Y, (SCORE >= 0.5).astype(int)))


def test_multiclass_metrics_match_sklearn():
    y = RNG.integers(0, 3, 300)
    logits = RNG.normal(0, 1, (300, 3)) + 1.5 * np.eye(3)[y]
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    m = compute_metrics(y, proba, bad_index=2, threshold=0.5)
    pred = proba.argmax(1)
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr"))
    assert m["f1_macro"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert "ks" not in m and "gini" not in m
    assert m["brier"] == pytest.approx(np.mean(np.sum((proba - np.eye(3)[y]) ** 2, 1)))


def test_threshold_f1_is_the_best_cut():
    t, f1 = tune_threshold(Y, PROBA, 1, "f1_bad")
    assert f1 == pytest.approx(skm.f1_score(Y, (SCORE >= t).astype(int)))
    # every cut, scored by the F1 formula in numpy (scikit-learn's argument checks would dominate this test)
    bad = Y == 1
    best = max(2 * np.sum(p & bad) / (np.sum(p) + np.sum(bad)) for p in (SCORE >= g for g in np.unique(SCORE)))
    assert f1 == pytest.approx(best)


def test_threshold_cost_minimises_expected_cost():
    t, cost = tune_threshold(Y, PROBA, 1, "cost", cost_fn=5, cost_fp=1)
    pred = SCORE >= t
    fn = np.sum(~pred & (Y == 1))
    fp = np.sum(pred & (Y == 0))
    assert cost == pytest.approx((5 * fn + fp) / len(Y))
    for g in np.unique(SCORE):
        p = SCORE >= g
        assert (5 * np.sum(~p & (Y == 1)) + np.sum(p & (Y == 0))) / len(Y) >= cost - 1e-12


def test_predict_labels():
    proba = np.array([[0.7, 0.3], [0.2, 0.8]])
    assert predict_labels(proba, 1, 0.25).tolist() == [1, 1]
    assert predict_labels(proba, 1, 0.5).tolist() == [0, 1]
    assert predict_labels(np.array([[0.1, 0.2, 0.7]]), 2, None).tolist() == [2]
