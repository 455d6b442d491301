"""A scripted A/B run against the real service (acceptance 5), and a monitor run that starts a real retrain job.

A/B: champion v1 was trained on shuffled outcomes (no skill), challenger v2 on the real ones. The service splits
traffic 50/50; the script sends applicants, posts their true outcomes to /feedback, and the CLI decides:
`abtest report` says insufficient data (and `promote` refuses) until enough outcomes are in, then declares the
challenger better; `abtest promote` moves champion to v2 and the service follows.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import yaml

from app.monitoring.store import PredictionRecord, PredictionStore, item_rows
from app.registry import Registry
from tests.cli_runner import invoke_cli
from tests.conftest import make_settings
from tests.helpers import register_bundle
from tests.integration.test_serve_gunicorn import Server, http, server_env
from tests.monitoring_helpers import applicants, profiled_bundle, register_profiled, wait_for, window
from tests.tools import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]
FEEDBACK = "feedback-token-for-the-ab-test"


@pytest.fixture
def ab_store(tmp_path, schema):
    settings = make_settings(tmp_path)
    train = window(4000, seed=1)
    shuffled = train.copy()
    shuffled["default"] = np.random.default_rng(0).permutation(shuffled["default"].to_numpy())
    v1 = register_bundle(settings, profiled_bundle(schema, shuffled), tmp_path)
    v2 = register_bundle(settings, profiled_bundle(schema, train, seed=1), tmp_path)
    reg = Registry(settings)
    reg.promote(v1, "champion")
    reg.promote(v2, "challenger")
    return tmp_path, settings, v1, v2


def test_ab_split_feedback_report_and_promote(ab_store, schema):
    tmp, settings, v1, v2 = ab_store
    env = server_env(tmp, CREDIT_SCORE_AB_MODE="split", CREDIT_SCORE_AB_SPLIT="0.5",
                     CREDIT_SCORE_FEEDBACK_TOKEN=FEEDBACK, CREDIT_SCORE_STORE_FLUSH_INTERVAL="0.2",
                     CREDIT_SCORE_ABTEST_MIN_SAMPLES="300", CREDIT_SCORE_LOG_LEVEL="WARNING")
    s = Server(env, free_port(), tmp / "server.log")
    try:
        rows, ys = applicants(window(1600, seed=21), schema)

        def send(i):
            status, body, _ = http("POST", s.base + "/predict?explain=none", rows[i], {"X-Request-ID": f"ab{i}"})
            assert status == 200
            out = json.loads(body)
            return out["variant"], out["model"]["version"], out["prediction_id"]

        with ThreadPoolExecutor(4) as pool:
            served = list(pool.map(send, range(len(rows))))
        variants = [v for v, _, _ in served]
        share = variants.count("challenger") / len(variants)
        assert 0.45 < share < 0.55, share  # a 50/50 split by the server's prediction id
        assert {ver for v, ver, _ in served if v == "challenger"} == {v2}
        store = PredictionStore(f"sqlite:///{tmp / 'models' / 'predictions.db'}")
        assert wait_for(lambda: store.count() == len(rows), 20)

        def feedback(idx):
            body = {"outcomes": [{"prediction_id": served[i][2], "outcome": ys[i]} for i in idx]}
            status, out, _ = http("POST", s.base + "/feedback", body, {"Authorization": f"Bearer {FEEDBACK}"})
            assert status == 200, out
            return json.loads(out)

        # a few outcomes only: no verdict, no promotion
        assert feedback(range(200))["recorded"] == 200
        rep = json.loads(invoke_cli(["abtest", "report", "--json"], env, check=True).stdout)
        assert rep["verdict"] == "insufficient_data" and "need at least 300" in rep["reason"]
        refused = invoke_cli(["abtest", "promote"], env)
        assert refused.returncode == 1 and "not promoting" in refused.stderr
        assert Registry(settings).alias_version("champion") == v1

        # all outcomes (the first 200 again: duplicates are a no-op)
        res = feedback(range(len(rows)))
        assert res["recorded"] == len(rows) - 200 and res["duplicates"] == 200 and not res["unknown"]
        text = invoke_cli(["abtest", "report"], env, check=True).stdout
        assert "verdict: challenger_better" in text
        rep = json.loads(invoke_cli(["abtest", "report", "--json"], env, check=True).stdout)
        ch, cl = rep["variants"]["champion"], rep["variants"]["challenger"]
        assert rep["verdict"] == "challenger_better" and rep["test"]["p_value"] < 0.05
        assert cl["roc_auc"]["ci"][0] > ch["roc_auc"]["ci"][1]  # separate intervals
        assert ch["n"] + cl["n"] == len(rows)

        # the monitor sees the same per variant and exports it
        summary = json.loads(invoke_cli(["monitor", "--json", "--dry-run"], env, check=True).stdout)
        assert summary["live"]["challenger"]["roc_auc"] > summary["live"]["champion"]["roc_auc"]
        assert summary["abtest"]["verdict"] == "challenger_better"

        out = invoke_cli(["abtest", "promote"], env, check=True).stdout
        assert f"champion: v{v1} -> v{v2}" in out
        assert Registry(settings).alias_version("champion") == v2
        assert Registry(settings).alias_version("challenger") is None

        def follows():
            status, body, _ = http("GET", s.base + "/model/info")
            return status == 200 and json.loads(body)["champion"]["version"] == v2

        assert wait_for(follows, 20)
        again = invoke_cli(["abtest", "promote"], env)
        assert again.returncode == 1  # no challenger any more
    finally:
        s.stop()


def test_monitor_starts_a_real_retrain_job_and_then_cools_down(tmp_path, schema):
    """Drift -> `credit-score monitor` starts a retrain job through the job runner of /model/retrain; the job
    trains, gates and registers a challenger; the next run reports the job and does not start another."""
    settings = make_settings(tmp_path)
    v1 = register_profiled(settings, schema, window(3000, seed=1), tmp_path)
    Registry(settings).promote(v1, "champion")
    data = tmp_path / "retrain.csv"
    window(2500, seed=8).to_csv(data, index=False)
    cfg = tmp_path / "retrain.yaml"
    cfg.write_text(yaml.safe_dump({"cv_folds": 2, "classifiers": ["xgboost"], "samplers": ["none"],
                                   "xgboost": {"n_estimators": 30}, "gate": {"floors": {"roc_auc": 0.6}}}))
    env = server_env(tmp_path, CREDIT_SCORE_DATA=str(data), CREDIT_SCORE_RETRAIN_CONFIG=str(cfg),
                     CREDIT_SCORE_LOG_LEVEL="INFO")
    # shifted traffic, written to the store as the service would
    store = PredictionStore(f"sqlite:///{tmp_path / 'models' / 'predictions.db'}")
    rows, _ = applicants(window(400, seed=3, shifted=True), schema)
    items = [PredictionRecord(f"r{i}", time.time(), "credit-score", v1, "champion", False, False, ["0"],
                              np.array([0.8, 0.2]), 1, np.array([r[n] for n in schema.feature_names], dtype=float),
                              schema.feature_names) for i, r in enumerate(rows)]
    store.insert_predictions([x for it in items for x in item_rows(it)])

    proc = invoke_cli(["monitor", "--json"], env, check=True)
    summary = json.loads(proc.stdout)
    job_id = summary["retrain"]["job_id"]
    assert job_id and "drift" in summary["retrain"]["reasons"]
    logs = [json.loads(x) for x in proc.stderr.splitlines() if x.startswith("{")]
    assert any(x["message"] == "retrain triggered" and x["retrain.job_id"] == job_id for x in logs)
    status_file = settings.jobs_dir / f"{job_id}.json"

    def done():
        st = json.loads(status_file.read_text())
        return st if st["status"] in ("succeeded", "gate_failed", "failed") else None

    final = wait_for(done, 300, 0.2)
    assert final and final["status"] == "succeeded", final
    assert final["reason"].startswith("monitor: drift on 6 feature(s)")
    assert Registry(settings).alias_version("challenger") == final["version"]

    again = json.loads(invoke_cli(["monitor", "--json"], env, check=True).stdout)
    assert again["retrain"]["triggered"] and not again["retrain"].get("job_id")
    assert "cool-down" in again["retrain"]["skipped"]
    assert again["last_job"]["id"] == job_id and again["last_job"]["status"] == "succeeded"
    _, text, _ = store.latest_monitor_run()
    assert 'credit_score_retrain_last_status{status="succeeded"} 1.0' in text
    assert "credit_score_monitor_retrain_started 0.0" in text
