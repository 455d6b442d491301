"""The monitor run end to end on a real MLflow store and a SQLite prediction store (no server), and the
training side: the reference profile in the bundle and the fairness ratios in the training report."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from app import create_app
from app.config import TrainingConfig
from app.monitoring.fairness import fairness_ratios, fairness_table
from app.monitoring.monitor import MonitorError, last_jobs, live_metrics, run_monitor
from app.monitoring.store import PredictionStore, utcnow
from app.registry import Registry
from tests.conftest import make_settings
from tests.monitoring_helpers import PAY, applicants, post_json, register_profiled, window
from tests.unit.test_api import TOKEN


@pytest.fixture(scope="module")
def champion(tmp_path_factory, schema):
    import os

    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        os.environ.pop(var, None)
    tmp = tmp_path_factory.mktemp("monitor")
    settings = make_settings(tmp)
    v1 = register_profiled(settings, schema, window(4000, seed=1), tmp)
    Registry(settings).promote(v1, "champion")
    return tmp


def serve(tmp, store_url, frame, schema, prefix, feedback=True):
    """Predict every row of ``frame`` through the API (stored), then post the true outcomes."""
    app = create_app({"models_dir": tmp / "models", "admin_token": TOKEN, "store_url": store_url,
                      "store_flush_interval": 0.05, "log_level": "WARNING"}, start_reload=False)
    c = app.test_client()
    rows, ys = applicants(frame, schema)
    ids = []
    for i, r in enumerate(rows):
        resp = post_json(c, "/predict?explain=none", r, headers={"X-Request-ID": f"{prefix}{i}"})
        assert resp.status_code == 200
        ids.append(resp.json["prediction_id"])
    st = app.extensions["credit_score"]
    assert st.writer.flush(20)
    if feedback:
        body = {"outcomes": [{"prediction_id": pid, "outcome": y} for pid, y in zip(ids, ys, strict=True)]}
        assert post_json(c, "/feedback", body, headers={"Authorization": f"Bearer {TOKEN}"}).json["recorded"] == \
            len(ys)
    st.writer.close()
    return len(rows)


def monitor_settings(tmp, run_dir, store_url, **over):
    return make_settings(tmp).model_copy(update={
        "store_url": store_url, "reports_dir": run_dir / "reports", "state_dir": run_dir / "jobs",
        "monitor_min_rows": 200, **over})


def test_reference_traffic_no_drift_and_live_metrics(champion, schema, tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    n = serve(champion, url, window(600, seed=2), schema, "ref")
    s = monitor_settings(champion, tmp_path, url, monitor_textfile=tmp_path / "node" / "credit_score.prom")
    summary = run_monitor(s)
    assert summary["drift"]["status"] == "ok" and summary["drift"]["drifted"] == []
    assert summary["retrain"]["triggered"] is False and summary["retrain"].get("job_id") is None
    live = summary["live"]["champion"]
    assert live["n"] == n and 0.6 < live["roc_auc"] <= 1 and 0 <= live["ece"] < 0.5 and live["calibration"]
    assert summary["drift"]["scores"]["champion"]["drifted"] is False
    # outputs: JSON + HTML report, the textfile, the store's monitor_runs row
    report = tmp_path / "reports" / "monitor"
    data = json.loads(next(report.glob("*/monitor.json")).read_text())
    assert data["live"]["champion"]["n"] == n and "NaN" not in next(report.glob("*/monitor.json")).read_text()
    html = next(report.glob("*/report.html")).read_text()
    assert "Input drift" in html and "Ratios between groups" in html and "Calibration" in html
    prom = (tmp_path / "node" / "credit_score.prom").read_text()
    assert 'credit_score_live_metric{metric="roc_auc",variant="champion"}' in prom
    assert 'credit_score_drift_detected{feature="pay_0"} 0.0' in prom
    ts, text, brief = PredictionStore(url).latest_monitor_run()
    assert text == prom and brief["drifted"] == []
    # fairness: per-group rows and ratios for each protected attribute
    feats = {r["feature"] for r in summary["fairness"]}
    assert feats == {"sex", "marriage", "age"}
    assert {(r["feature"], r["metric"]) for r in summary["fairness_ratios"]} >= {("sex", "approval_rate"),
                                                                                  ("sex", "tpr"), ("age", "fpr")}


def test_shifted_traffic_drifts_and_triggers_a_retrain(champion, schema, tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    serve(champion, url, window(600, seed=3, shifted=True), schema, "sh", feedback=False)
    started, stores = [], []

    def fake_start(settings, reason, store_url=None):  # the real job runner is exercised in tests/integration
        started.append(reason)
        stores.append(store_url)
        return {"id": "job1", "status": "queued", "created_at": "2026-01-01T00:00:00Z"}

    monkeypatch.setattr("app.jobs.start", fake_start)
    s = monitor_settings(champion, tmp_path, url)
    dry = run_monitor(s, dry_run=True)
    assert sorted(dry["drift"]["drifted"]) == sorted(PAY) and dry["retrain"]["triggered"] and not started
    summary = run_monitor(s)
    assert started and started[0].startswith("monitor: drift on 6 feature(s)")
    assert stores == [url]  # the job learns from the store this run read
    assert summary["retrain"]["job_id"] == "job1"
    _, text, _ = PredictionStore(url).latest_monitor_run()
    assert 'credit_score_monitor_retrain_triggered{reason="drift"} 1.0' in text
    assert 'credit_score_monitor_retrain_started 1.0' in text
    assert 'credit_score_drift_features_drifted 6.0' in text


def test_too_few_rows_and_retention(champion, schema, tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    n = serve(champion, url, window(50, seed=4), schema, "few")
    # the service's container sets PROMETHEUS_MULTIPROC_DIR; the monitor's gauges must not depend on it
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "does-not-exist"))
    s = monitor_settings(champion, tmp_path, url, retention_days=1)
    summary = run_monitor(s, now=utcnow() + timedelta(days=2))  # two days later: the window is empty ...
    assert summary["drift"]["status"] == "insufficient_data" and summary["window"]["predictions"] == 0
    assert summary["retention"]["deleted"]["predictions"] == n  # ... and retention removed the old rows
    assert PredictionStore(url).count() == 0


def test_monitor_errors(champion, tmp_path):
    with pytest.raises(MonitorError, match="disabled"):
        run_monitor(monitor_settings(champion, tmp_path, "none"))
    (tmp_path / "f").write_text("x")
    with pytest.raises(MonitorError, match="unavailable"):
        run_monitor(monitor_settings(champion, tmp_path, f"sqlite:///{tmp_path / 'f' / 'p.db'}"))
    empty = make_settings(tmp_path / "empty")
    with pytest.raises(MonitorError, match="no champion"):
        run_monitor(empty.model_copy(update={"store_url": f"sqlite:///{tmp_path / 'e.db'}"}))


def test_last_jobs_reads_status_files(tmp_path):
    s = make_settings(tmp_path).model_copy(update={"state_dir": tmp_path / "jobs"})
    s.jobs_dir.mkdir(parents=True)
    (s.jobs_dir / "a.json").write_text(json.dumps({"id": "a", "created_at": "2026-01-01T00:00:00Z"}))
    (s.jobs_dir / "b.json").write_text(json.dumps({"id": "b", "created_at": "2026-02-01T00:00:00Z"}))
    (s.jobs_dir / "broken.json").write_text("{")
    assert [j["id"] for j in last_jobs(s)] == ["b", "a"]


def test_live_metrics_by_hand():
    rows = [{"outcome": o, "predicted_class": p, "probability": q, "probabilities": json.dumps([1 - q, q])}
            for o, p, q in [("1", "1", 0.9), ("0", "0", 0.2), ("1", "0", 0.4), ("0", "0", 0.1), ("0", "1", 0.6)]]
    m = live_metrics(rows, ["0", "1"], "1", bins=5)
    assert m["n"] == 5 and m["bad"] == 2 and m["accuracy"] == pytest.approx(0.6)
    assert m["precision_bad"] == pytest.approx(0.5) and m["recall_bad"] == pytest.approx(0.5)
    assert m["roc_auc"] == pytest.approx(5 / 6)
    assert m["brier"] == pytest.approx(np.mean([0.01, 0.04, 0.36, 0.01, 0.36]))
    assert m["ece"] == pytest.approx(np.mean([0.1, 0.2, 0.6, 0.1, 0.6]))  # one row per bin: mean |p - y|


def test_fairness_table_and_ratios(schema):
    n = 400
    X = np.zeros((n, len(schema.feature_names)))
    sex = schema.feature_names.index("sex")
    X[:, sex] = np.repeat([1, 2], n // 2)
    X[:, schema.feature_names.index("marriage")] = 1
    X[:, schema.feature_names.index("age")] = 35
    is_bad = np.tile([True, False], n // 2)
    pred_bad = np.zeros(n, dtype=bool)
    pred_bad[: n // 2] = np.tile([True, True, False, False], n // 8)  # men: 50 % rejected; women: none
    rows = fairness_table(schema, X, is_bad, pred_bad)
    men = next(r for r in rows if r["feature"] == "sex" and r["group"] == "male")
    women = next(r for r in rows if r["feature"] == "sex" and r["group"] == "female")
    assert men["approval_rate"] == 0.5 and women["approval_rate"] == 1.0 and men["approval_ratio"] == 0.5
    assert men["tpr"] == 0.5 and women["tpr"] == 0.0
    ratios = {(r["feature"], r["metric"]): r for r in fairness_ratios(rows)}
    assert ratios[("sex", "approval_rate")]["ratio"] == 0.5 and ratios[("sex", "approval_rate")]["flag"]
    assert ratios[("sex", "approval_rate")]["min_group"] == "male"
    assert ("marriage", "approval_rate") not in ratios  # one group only: no ratio


@pytest.mark.slow
def test_training_attaches_the_profile_and_reports_ratios(tmp_path, schema):
    from app.training.train import train

    settings = make_settings(tmp_path)
    data = tmp_path / "train.csv"
    window(2500, seed=9).to_csv(data, index=False)
    cfg = TrainingConfig.model_validate({"classifiers": ["xgboost"], "samplers": ["none"], "cv_folds": 2,
                                         "xgboost": {"n_estimators": 20}, "gate": {"floors": {"roc_auc": 0.5}}})
    res = train(settings, cfg, data, schema, promote="auto", progress=False)
    info, bundle = Registry(settings).load(res.version)
    prof = bundle.reference_profile
    assert prof is not None and set(prof["features"]) == set(schema.feature_names) and prof["score"]["rows"] > 0
    manifest = (Registry(settings).bundle_path(res.version) / "MANIFEST.sha256").read_text()
    assert "reference_profile.json" in manifest
    html = Path(res.report).read_text()
    assert "Ratios between groups" in html and "approval ratio" in html
    # the profile is also an MLflow artifact of the run
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=settings.tracking_uri)
    names = [a.path for a in client.list_artifacts(info.run_id)]
    assert "reference_profile.json" in names
