"""Reference profiles, drift statistics and the retrain policy (fixed seeds; acceptance 3)."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest

from app.config import Settings
from app.datasets import generate_synthetic
from app.monitoring.drift import build_profile, drift_report, feature_drift, psi
from app.monitoring.monitor import retrain_decision
from app.training.validate import validate
from tests.monitoring_helpers import PAY, shift_payments


def matrix(frame, schema):
    df, _ = validate(frame, schema, cv_folds=2)
    return df[schema.feature_names].to_numpy(dtype=float, copy=True)


@pytest.fixture(scope="module")
def profile(schema):
    ref = matrix(generate_synthetic(20_000, seed=1), schema)
    score = np.random.default_rng(0).beta(2, 6, len(ref))
    return build_profile(schema, ref, score, bins=10, seed=0)


def test_profile_shape(profile, schema):
    assert set(profile["features"]) == set(schema.feature_names)
    lim = profile["features"]["limit_bal"]
    assert lim["type"] == "numeric" and len(lim["expected"]) == len(lim["cuts"]) + 1 <= 10
    assert sum(lim["expected"]) == pytest.approx(1) and len(lim["sample"]) == 1000
    sex = profile["features"]["sex"]
    assert sex["categories"] == ["1", "2", "other"] and sum(sex["expected"]) == pytest.approx(1)
    assert sex["protected"] and not lim["protected"]
    assert profile["score"]["class"] == "1" and profile["schema_sha256"] == schema.sha256


def test_psi_basics():
    e = np.array([0.25, 0.25, 0.5])
    assert psi(e, e) == 0
    assert psi(e, [0.5, 0.25, 0.25]) > psi(e, [0.3, 0.25, 0.45]) > 0


def test_reference_window_does_not_drift(profile, schema):
    """A window drawn from the reference distribution (another seed): no feature flagged, no retrain."""
    live = matrix(generate_synthetic(3000, seed=2), schema)
    rep = drift_report(profile, live, schema.feature_names)
    assert rep["drifted"] == []
    assert max(d.psi for d in rep["features"]) < 0.05
    decision = retrain_decision(Settings(), rep["drifted"], None, None, datetime(2026, 1, 1), [])
    assert decision == {"triggered": False, "reasons": {}, "start": False, "skipped": None}


@pytest.mark.parametrize("months", [1, 2])
def test_shifted_payment_delays_drift(profile, schema, months):
    """Payment delays moved by one or two months: the six repayment-status features drift, nothing else."""
    live = matrix(shift_payments(generate_synthetic(3000, seed=3), months), schema)
    rep = drift_report(profile, live, schema.feature_names)
    assert sorted(rep["drifted"]) == sorted(PAY)
    by = {d.feature: d for d in rep["features"]}
    assert by["pay_0"].psi > 0.5 and by["pay_0"].p_value < 1e-10 and by["pay_0"].test == "ks"
    assert not by["limit_bal"].drifted
    decision = retrain_decision(Settings(), rep["drifted"], None, None, datetime(2026, 1, 1), [])
    assert decision["triggered"] and decision["start"] and "drift on 6 feature(s)" in decision["reasons"]["drift"]


def test_categorical_drift_uses_chi_square(profile, schema):
    live = matrix(generate_synthetic(3000, seed=4), schema)
    j = schema.feature_names.index("sex")
    live[:, j] = np.where(np.random.default_rng(0).random(len(live)) < 0.9, 1.0, 2.0)  # 90 % male instead of 40 %
    d = feature_drift("sex", profile["features"]["sex"], live[:, j])
    assert d.test == "chi2" and d.drifted and d.p_value < 1e-10 and d.psi > 0.2


def test_small_windows_need_significance(profile):
    """PSI is noisy on a handful of rows: without a significant test it is not called drift."""
    vals = np.random.default_rng(3).choice(profile["features"]["age"]["sample"], 15, replace=False)
    d = feature_drift("age", profile["features"]["age"], vals)
    assert d.psi > 0.2 and d.p_value > 0.05 and not d.drifted


def test_missing_rates(profile, schema):
    live = matrix(generate_synthetic(1000, seed=5), schema)
    j = schema.feature_names.index("bill_amt1")
    live[:200, j] = np.nan
    d = feature_drift("bill_amt1", profile["features"]["bill_amt1"], live[:, j])
    assert d.missing_rate == pytest.approx(0.2) and d.reference_missing_rate == 0 and d.rows == 800


def test_score_drift(profile):
    rng = np.random.default_rng(1)
    same = feature_drift("score", profile["score"], rng.beta(2, 6, 2000), kind="score")
    moved = feature_drift("score", profile["score"], rng.beta(6, 2, 2000), kind="score")
    assert not same.drifted and moved.drifted and moved.kind == "score"


# ---- retrain policy ----------------------------------------------------------------------------------------
NOW = datetime(2026, 6, 1, 12)


def test_policy_auc_floor_needs_enough_outcomes():
    s = Settings(retrain_auc_floor=0.7, retrain_min_labels=100)
    low = {"n": 150, "roc_auc": 0.62}
    assert "auc" in retrain_decision(s, [], low, None, NOW, [])["reasons"]
    assert not retrain_decision(s, [], {"n": 50, "roc_auc": 0.5}, None, NOW, [])["triggered"]
    assert not retrain_decision(s, [], {"n": 500, "roc_auc": 0.75}, None, NOW, [])["triggered"]


def test_policy_schedule():
    s = Settings(retrain_every_days=7)
    old = (NOW - timedelta(days=8)).strftime("%Y-%m-%dT%H:%M:%SZ")
    fresh = (NOW - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert "schedule" in retrain_decision(s, [], None, old, NOW, [])["reasons"]
    assert not retrain_decision(s, [], None, fresh, NOW, [])["triggered"]
    assert not retrain_decision(Settings(), [], None, old, NOW, [])["triggered"]  # schedule off by default


def test_policy_cool_down_and_running_job():
    s = Settings(retrain_drift_features=1, retrain_cooldown_hours=24)
    recent = {"id": "j1", "status": "succeeded", "reason": "monitor: drift", "created_at": "2026-06-01T02:00:00Z"}
    old = dict(recent, created_at="2026-05-20T00:00:00Z")
    api = dict(recent, reason="api")
    running = dict(api, status="running")
    d = retrain_decision(s, ["pay_0"], None, None, NOW, [recent])
    assert d["triggered"] and not d["start"] and "cool-down" in d["skipped"]
    assert retrain_decision(s, ["pay_0"], None, None, NOW, [old])["start"]
    assert retrain_decision(s, ["pay_0"], None, None, NOW, [api])["start"]  # jobs started by hand do not cool down
    d = retrain_decision(s, ["pay_0"], None, None, NOW, [running])
    assert not d["start"] and "running" in d["skipped"]


def test_a_profile_written_before_string_categories_still_reads(profile, schema):
    old = {k: v for k, v in profile["features"]["marriage"].items() if k != "codes"}  # no "codes" then
    live = matrix(generate_synthetic(2000, seed=8), schema)[:, schema.feature_names.index("marriage")]
    now, then = feature_drift("marriage", profile["features"]["marriage"], live), feature_drift("marriage", old, live)
    assert then.actual == now.actual and then.psi == now.psi


def test_text_values_outside_the_categories_count_in_the_other_bucket():
    from app.core.schema import DatasetSchema
    from app.monitoring.drift import window_values

    schema = DatasetSchema.from_dict({
        "name": "t", "target": {"name": "y", "classes": ["good", "bad"], "bad_class": "bad"},
        "features": [{"name": "housing", "type": "categorical", "categories": ["own", "rent", "free"],
                      "nullable": True}]})
    ref = np.repeat([0.0, 1.0, 2.0, np.nan], [500, 300, 150, 50])[:, None]
    entry = build_profile(schema, ref, None)["features"]["housing"]
    assert entry["categories"] == ["own", "rent", "free", "other"] and entry["codes"] == [0.0, 1.0, 2.0]
    assert entry["missing_rate"] == pytest.approx(0.05)
    values = np.array(["rent", "own", None, "boat", "", "free"], dtype=object)
    assert np.array_equal(window_values(entry, values), [1.0, 0.0, np.nan, np.inf, np.nan, 2.0], equal_nan=True)
    d = feature_drift("housing", entry, np.array(["boat"] * 300 + ["own"] * 300, dtype=object))
    assert d.actual[-1] == pytest.approx(0.5) and d.drifted and d.bins[-1] == "other"
