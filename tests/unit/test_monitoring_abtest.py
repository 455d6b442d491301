"""A/B statistics: DeLong AUC variance and test, intervals, the verdict and its guards."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy.stats import rankdata
from sklearn.metrics import f1_score, roc_auc_score

from app.monitoring.abtest import (
    CHALLENGER_BETTER,
    CHAMPION_BETTER,
    INSUFFICIENT,
    NO_DIFFERENCE,
    ab_report,
    compare,
    delong,
    f1_macro,
    render,
    wilson,
)
from app.monitoring.store import PredictionRecord, PredictionStore, item_rows


def scores(n, strength, seed):
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.25
    return y, 1 / (1 + np.exp(-(strength * y + rng.normal(0, 1, n) - 1)))


def test_delong_auc_matches_sklearn_and_bootstrap_variance():
    y, s1 = scores(600, 1.0, 0)
    _, s2 = scores(600, 2.0, 0)
    aucs, cov = delong(y, np.vstack([s1, s2]))
    assert aucs == pytest.approx([roc_auc_score(y, s1), roc_auc_score(y, s2)])
    assert rank_auc(y, s1) == pytest.approx(roc_auc_score(y, s1))  # the bootstrap's AUC, checked once
    rng = np.random.default_rng(1)
    boots = []
    for _ in range(400):
        i = rng.integers(0, len(y), len(y))
        boots.append(rank_auc(y[i], s1[i]))
    assert cov[0, 0] == pytest.approx(np.var(boots), rel=0.25)


def rank_auc(y, s):
    """AUC as the Mann-Whitney statistic (tied scores share their mean rank): roc_auc_score without its
    argument checks, which would take most of this test's time over 400 bootstrap samples."""
    ranks = rankdata(s)
    m = int(y.sum())
    return (ranks[y].sum() - m * (m + 1) / 2) / (m * (len(y) - m))


def test_delong_handles_ties():
    y = np.array([0, 0, 1, 1, 0, 1, 0, 1])
    s = np.array([0.1, 0.5, 0.5, 0.9, 0.1, 0.5, 0.3, 0.7])
    assert delong(y, s[None, :])[0][0] == pytest.approx(roc_auc_score(y, s))


def test_compare_detects_a_better_model_and_not_an_equal_one():
    y, s1 = scores(2000, 1.0, 2)
    _, s2 = scores(2000, 2.5, 2)
    better = compare({"y": y, "p": s1}, {"y": y, "p": s2}, paired=True)
    assert better["difference"] > 0 and better["p_value"] < 1e-6 and better["ci"][0] > 0
    y2, s3 = scores(2000, 1.0, 3)
    same = compare({"y": y, "p": s1}, {"y": y2, "p": s3}, paired=False)
    assert same["p_value"] > 0.05 and same["ci"][0] < 0 < same["ci"][1]


def test_f1_macro_matches_sklearn():
    rng = np.random.default_rng(5)
    cases = [(rng.random(n) < rate, rng.random(n) < prate) for n in (1, 2, 7, 300) for rate in (0.0, 0.2, 1.0)
             for prate in (0.0, 0.5, 1.0)]
    for y, pred in cases:
        expected = f1_score(y, pred, average="macro", labels=[False, True], zero_division=0)
        assert f1_macro(y, pred) == pytest.approx(expected, abs=1e-12), (y, pred)


def test_wilson_interval():
    lo, hi = wilson(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-3) and hi == pytest.approx(0.5962, abs=1e-3)
    assert np.isnan(wilson(0, 0)[0])


def _fill(store, version, variant, y, p, prefix, shadow=False):
    items, outcomes = [], []
    for i, (yy, pp) in enumerate(zip(y, p, strict=True)):
        rid = f"{prefix}{i}"
        items.append(PredictionRecord(rid, time.time(), "credit-score", version, variant, shadow, False,
                                      ["1" if pp >= 0.5 else "0"], np.array([1 - pp, pp]), 1, None, []))
        outcomes.append((rid, "1" if yy else "0", None))
    store.insert_predictions([r for it in items for r in item_rows(it)])
    store.record_feedback(outcomes)


@pytest.fixture
def store(tmp_path):
    return PredictionStore(f"sqlite:///{tmp_path / 'ab.db'}")


def test_report_split_challenger_better(store):
    y, s = scores(800, 0.6, 10)
    _fill(store, "1", "champion", y, s, "a")
    y, s = scores(800, 2.5, 11)
    _fill(store, "2", "challenger", y, s, "b")
    rep = ab_report(store, "1", "2", "1", min_samples=200, min_positives=20)
    assert rep["verdict"] == CHALLENGER_BETTER and rep["mode"] == "split" and rep["test"]["test"] == "delong_unpaired"
    ch, cl = rep["variants"]["champion"], rep["variants"]["challenger"]
    assert ch["n"] == cl["n"] == 800 and cl["roc_auc"]["value"] > ch["roc_auc"]["value"]
    assert cl["roc_auc"]["ci"][0] < cl["roc_auc"]["value"] < cl["roc_auc"]["ci"][1]
    assert "challenger_better" in render(rep)
    # rows count for a variant only with that variant's current version: swapped aliases have no data yet
    assert ab_report(store, "2", "1", "1")["verdict"] == INSUFFICIENT


def test_report_champion_better_and_no_difference(store):
    y, s = scores(600, 2.5, 12)
    _fill(store, "1", "champion", y, s, "a")
    y, s = scores(600, 0.5, 13)
    _fill(store, "2", "challenger", y, s, "b")
    assert ab_report(store, "1", "2", "1")["verdict"] == CHAMPION_BETTER
    y, s = scores(600, 2.5, 14)
    _fill(store, "3", "challenger", y, s, "c")
    assert ab_report(store, "1", "3", "1")["verdict"] == NO_DIFFERENCE


def test_report_shadow_is_paired(store):
    y, s1 = scores(500, 1.0, 20)
    _, s2 = scores(500, 2.5, 20)
    _fill(store, "1", "champion", y, s1, "r")
    # the challenger scored the same requests in shadow mode (same request ids, outcome recorded once)
    items = [PredictionRecord(f"r{i}", time.time(), "credit-score", "2", "challenger", True, False, ["0"],
                              np.array([1 - p, p]), 1, None, []) for i, p in enumerate(s2)]
    store.insert_predictions([r for it in items for r in item_rows(it)])
    rep = ab_report(store, "1", "2", "1", min_samples=200)
    assert rep["mode"] == "shadow" and rep["test"]["test"] == "delong_paired" and rep["test"]["paired_rows"] == 500
    assert rep["verdict"] == CHALLENGER_BETTER


def test_guards_minimum_samples(store):
    y, s = scores(100, 0.5, 30)
    _fill(store, "1", "champion", y, s, "a")
    y, s = scores(100, 3.0, 31)
    _fill(store, "2", "challenger", y, s, "b")
    rep = ab_report(store, "1", "2", "1", min_samples=200)
    assert rep["verdict"] == INSUFFICIENT and "need at least 200 outcomes" in rep["reason"]
    assert ab_report(store, "1", "2", "1", min_samples=50)["verdict"] == CHALLENGER_BETTER
    assert ab_report(store, "1", None, "1")["verdict"] == INSUFFICIENT
