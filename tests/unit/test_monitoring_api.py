"""The service's side of monitoring through the Flask test client: predictions reach the store, POST /feedback,
the monitor's gauges on /metrics, and a store that is down or disabled."""

from __future__ import annotations

import pytest

from app import create_app
from app.monitoring.monitor import run_monitor
from app.monitoring.store import PredictionStore
from app.registry import Registry
from tests.conftest import make_settings
from tests.monitoring_helpers import post_json, register_profiled, wait_for
from tests.unit.test_api import ROW, TOKEN

FEEDBACK_TOKEN = "feedback-token-0123456789"
AUTH = {"Authorization": f"Bearer {FEEDBACK_TOKEN}"}


@pytest.fixture(scope="module")
def registry_dir(tmp_path_factory, schema, small_frame):
    import os

    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        os.environ.pop(var, None)
    tmp = tmp_path_factory.mktemp("monitoring-api")
    settings = make_settings(tmp)
    v1 = register_profiled(settings, schema, small_frame, tmp)
    v2 = register_profiled(settings, schema, small_frame, tmp, classifier="random_forest")
    reg = Registry(settings)
    reg.promote(v1, "champion")
    reg.promote(v2, "challenger")
    return tmp


def make_app(tmp, **over):
    cfg = {"models_dir": tmp / "models", "reports_dir": tmp / "reports", "admin_token": TOKEN,
           "feedback_token": FEEDBACK_TOKEN, "store_flush_interval": 0.05, "monitor_metrics_refresh": 0.1}
    cfg.update(over)
    return create_app(cfg, start_reload=False)


@pytest.fixture
def app(registry_dir, tmp_path):
    a = make_app(registry_dir, store_url=f"sqlite:///{tmp_path / 'p.db'}")
    yield a
    a.extensions["credit_score"].writer.close()


def flushed(app):
    st = app.extensions["credit_score"]
    assert st.writer.flush(10)
    return st.store


def test_predictions_reach_the_store(app):
    c = app.test_client()
    r1 = post_json(c, "/predict", ROW, headers={"X-Request-ID": "one"})
    assert r1.status_code == 200 and r1.json["request_id"] == "one" and r1.headers["X-Request-ID"] == "one"
    one_id = r1.json["prediction_id"]
    r = post_json(c, "/predict/batch", {"instances": [ROW, ROW]}, headers={"X-Request-ID": "many"})
    assert r.status_code == 200 and r.json["request_id"] == "many"
    many_id = r.json["prediction_id"]
    r = post_json(c, "/v2/models/credit-score/infer", {"inputs": [
        {"name": k, "datatype": "FP64", "shape": [1], "data": [v]} for k, v in ROW.items()]},
        headers={"X-Request-ID": "oip"})
    assert r.status_code == 200
    oip_id = r.json["parameters"]["prediction_id"]
    assert len({one_id, many_id, oip_id}) == 3 and all(len(x) == 32 for x in (one_id, many_id, oip_id))
    store = flushed(app)
    rows = {r["request_id"]: r for r in store.read_predictions(*_all())}
    assert set(rows) == {one_id, f"{many_id}/0", f"{many_id}/1", f"{oip_id}/0"}  # the server's ids, not the client's
    one = rows[one_id]
    assert one["model_version"] == "1" and one["variant"] == "champion" and not one["shadow"]
    assert __import__("json").loads(one["features"])["age"] == ROW["age"]


def test_the_api_record_fills_each_column(app):
    """The record the API builds (/predict/batch: two different applicants) is stored field by field in the right
    columns: ids with the row suffix, time, model, variant, class, probabilities and features of each row."""
    import json

    import sqlalchemy as sa

    from app.monitoring.store import PREDICTION_COLUMNS, predictions, utcnow

    other = {**ROW, "age": 51, "limit_bal": 90000, "pay_0": -1}
    before = utcnow()
    r = post_json(app.test_client(), "/predict/batch", {"instances": [ROW, other]}, headers={"X-Request-ID": "cols"})
    after = utcnow()
    assert r.status_code == 200
    store = flushed(app)
    with store.engine.connect() as conn:
        rows = [dict(x._mapping) for x in conn.execute(
            sa.select(*(predictions.c[c] for c in PREDICTION_COLUMNS)).order_by(predictions.c.request_id))]
    model = app.extensions["credit_score"].manager.snapshot().champion
    assert [x["request_id"] for x in rows] == [f"{r.json['prediction_id']}/0", f"{r.json['prediction_id']}/1"]
    for row, applicant, answer in zip(rows, [ROW, other], r.json["predictions"], strict=True):
        assert before <= row["ts"] <= after
        assert (row["model_name"], row["model_version"], row["variant"], row["shadow"]) == (
            r.json["model"]["name"], r.json["model"]["version"], "champion", False) == (model.name, "1", "champion",
                                                                                        False)
        assert row["predicted_class"] == str(answer["prediction"])
        assert row["probability"] == pytest.approx(answer["probability"], abs=1e-6)
        probabilities = json.loads(row["probabilities"])
        assert len(probabilities) == len(model.classes) and sum(probabilities) == pytest.approx(1, abs=1e-5)
        assert probabilities[model.bad_index] == pytest.approx(answer["probability"], abs=1e-6)
        assert json.loads(row["features"]) == {k: float(applicant[k]) for k in model.schema.feature_names}
    assert rows[0]["probability"] != rows[1]["probability"]  # two applicants, two scores: rows are not swapped


def test_shadow_predictions_are_stored_beside_the_champion(registry_dir, tmp_path):
    a = make_app(registry_dir, store_url=f"sqlite:///{tmp_path / 's.db'}", ab_mode="shadow")
    r = post_json(a.test_client(), "/predict", ROW, headers={"X-Request-ID": "s1"})
    assert r.status_code == 200
    pid = r.json["prediction_id"]
    rows = flushed(a).read_predictions(*_all())
    assert sorted((r["request_id"], r["variant"], r["shadow"], r["model_version"]) for r in rows) == [
        (pid, "challenger", True, "2"), (pid, "champion", False, "1")]
    a.extensions["credit_score"].writer.close()


def test_features_can_be_left_out(registry_dir, tmp_path):
    a = make_app(registry_dir, store_url=f"sqlite:///{tmp_path / 'f.db'}", store_features=False)
    post_json(a.test_client(), "/predict", ROW)
    assert [r["features"] for r in flushed(a).read_predictions(*_all())] == [None]
    a.extensions["credit_score"].writer.close()


def _all():
    from datetime import timedelta

    from app.monitoring.store import utcnow

    now = utcnow()
    return now - timedelta(days=1), now + timedelta(days=1)


# ---- POST /feedback ----------------------------------------------------------------------------------------
def _counter(c, result):
    from prometheus_client.parser import text_string_to_metric_families

    text = c.get("/metrics").data.decode()
    return sum(smp.value for f in text_string_to_metric_families(text) for smp in f.samples
               if smp.name == "credit_score_feedback_total" and smp.labels.get("result") == result)


def test_feedback_records_reports_unknown_and_is_idempotent(app):
    c = app.test_client()
    before = {k: _counter(c, k) for k in ("recorded", "unknown")}
    f1, f2 = (post_json(c, "/predict", ROW).json["prediction_id"] for _ in range(2))
    fb = post_json(c, "/predict/batch", {"instances": [ROW, ROW]}).json["prediction_id"]
    flushed(app)
    body = {"outcomes": [{"prediction_id": f1, "outcome": 1, "observed_at": "2026-03-01T00:00:00Z"},
                         {"prediction_id": f2, "outcome": "0"}, {"prediction_id": f"{fb}/1", "outcome": 0},
                         {"prediction_id": "nope", "outcome": 1}]}
    r = post_json(c, "/feedback", body, headers=AUTH)
    assert r.status_code == 200
    assert r.json == {"received": 4, "recorded": 3, "duplicates": 0, "unknown": ["nope"], "conflicts": []}
    r = post_json(c, "/feedback", body, headers=AUTH)  # the same again: nothing changes
    assert r.json["recorded"] == 0 and r.json["duplicates"] == 3 and r.json["unknown"] == ["nope"]
    r = post_json(c, "/feedback", {"prediction_id": f1, "outcome": 0}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200 and r.json["conflicts"] == [{"prediction_id": f1, "recorded": "1", "received": "0"}]
    assert _counter(c, "recorded") - before["recorded"] == 3 and _counter(c, "unknown") - before["unknown"] == 2


def test_a_client_id_cannot_label_predictions_it_did_not_receive(app):
    """The review's forgery: three anonymous predictions sent with one X-Request-ID, then one outcome for that id,
    labelled all of them. The store keeps the server's prediction ids: the client's id labels nothing, and an
    outcome for a prediction id labels exactly its own row."""
    c = app.test_client()
    answers = [post_json(c, "/predict", ROW, headers={"X-Request-ID": "victim"}).json for _ in range(3)]
    ids = [a["prediction_id"] for a in answers]
    assert len(set(ids)) == 3 and {a["request_id"] for a in answers} == {"victim"}
    store = flushed(app)
    r = post_json(c, "/feedback", {"prediction_id": "victim", "outcome": 1}, headers=AUTH)
    assert r.status_code == 200 and r.json["recorded"] == 0 and r.json["unknown"] == ["victim"]
    r = post_json(c, "/feedback", {"prediction_id": ids[1], "outcome": 1}, headers=AUTH)
    assert r.json["recorded"] == 1
    labelled = [x["request_id"] for x in store.read_predictions(*_all(), labelled_only=True)]
    assert labelled == [ids[1]]


@pytest.mark.parametrize("headers, status", [({}, 401), ({"Authorization": "Basic abc"}, 401),
                                             ({"Authorization": "Bearer wrong"}, 403)])
def test_feedback_needs_a_token(app, headers, status):
    r = post_json(app.test_client(), "/feedback", {"prediction_id": "x", "outcome": 1}, headers=headers)
    assert r.status_code == status and r.json["details"][0]["field"] == "Authorization"


@pytest.mark.parametrize("body, status, field", [
    ([1, 2], 400, "$"),
    ({"prediction_id": "x"}, 422, "outcome"),
    ({"prediction_id": "x", "outcome": 7}, 422, "outcome"),
    ({"prediction_id": "x", "outcome": True}, 422, "outcome"),
    ({"prediction_id": "", "outcome": 1}, 422, "prediction_id"),
    ({"prediction_id": "x" * 200, "outcome": 1}, 422, "prediction_id"),
    ({"prediction_id": "x", "outcome": 1, "observed_at": "yesterday"}, 422, "observed_at"),
    ({"prediction_id": "x", "outcome": 1, "extra": 1}, 422, "extra"),
    ({"outcomes": []}, 422, "outcomes"),
    ({"outcomes": [{"prediction_id": "x", "outcome": 1}, 5]}, 422, "outcomes[1]"),
    ({"outcomes": [{"prediction_id": "x", "outcome": 9}]}, 422, "outcomes[0].outcome"),
])
def test_feedback_validation(app, body, status, field):
    r = post_json(app.test_client(), "/feedback", body, headers=AUTH)
    assert r.status_code == status, r.json
    assert r.json["details"][0]["field"] == field


def test_feedback_batch_limit(registry_dir, tmp_path):
    a = make_app(registry_dir, store_url=f"sqlite:///{tmp_path / 'l.db'}", max_batch_rows=3)
    r = post_json(a.test_client(), "/feedback", {"outcomes": [{"prediction_id": "x", "outcome": 1}] * 4}, headers=AUTH)
    assert r.status_code == 422 and "at most 3" in r.json["error"]


def test_feedback_with_the_store_disabled_or_down(registry_dir, tmp_path):
    off = make_app(registry_dir, store_url="none")
    assert off.extensions["credit_score"].writer is None
    r = post_json(off.test_client(), "/feedback", {"prediction_id": "x", "outcome": 1}, headers=AUTH)
    assert r.status_code == 503 and "disabled" in r.json["error"]
    assert post_json(off.test_client(), "/predict", ROW).status_code == 200  # serving does not need the store
    (tmp_path / "file").write_text("x")
    down = make_app(registry_dir, store_url=f"sqlite:///{tmp_path / 'file' / 'p.db'}")
    r = post_json(down.test_client(), "/feedback", {"prediction_id": "x", "outcome": 1}, headers=AUTH)
    assert r.status_code == 503 and r.headers["Retry-After"] and "unavailable" in r.json["error"]
    assert post_json(down.test_client(), "/predict", ROW).status_code == 200
    down.extensions["credit_score"].writer.close()


def test_feedback_token_from_the_secret_provider(registry_dir, tmp_path):
    class Secrets:
        def get(self, name):
            return {"feedback_token": "from-vault-0123456789", "admin_token": None}.get(name)

    a = create_app({"models_dir": registry_dir / "models", "store_url": f"sqlite:///{tmp_path / 'v.db'}"},
                   secrets=Secrets(), start_reload=False)
    c = a.test_client()
    ok = post_json(c, "/feedback", {"prediction_id": "x", "outcome": 1},
                   headers={"Authorization": "Bearer from-vault-0123456789"})
    assert ok.status_code == 200 and ok.json["unknown"] == ["x"]
    assert post_json(c, "/feedback", {"prediction_id": "x", "outcome": 1}, headers=AUTH).status_code == 403


# ---- the monitor's results on /metrics ---------------------------------------------------------------------
def test_monitor_gauges_are_served_on_metrics(registry_dir, app, tmp_path):
    c = app.test_client()
    for i in range(30):
        post_json(c, "/predict?explain=none", dict(ROW, age=20 + i), headers={"X-Request-ID": f"m{i}"})
    store = flushed(app)
    settings = make_settings(registry_dir).model_copy(update={
        "store_url": store.url, "monitor_min_rows": 10, "reports_dir": tmp_path / "reports",
        "state_dir": tmp_path / "jobs"})
    summary = run_monitor(settings, dry_run=True)
    assert summary["window"]["predictions"] == 30 and summary["drift"]["status"] == "ok"
    assert (tmp_path / "reports").glob("monitor/*/report.html")
    text = wait_for(lambda: (t := c.get("/metrics").data.decode()) and "credit_score_drift_psi" in t and t, timeout=5)
    assert text and 'credit_score_drift_psi{feature="pay_0"}' in text
    assert "credit_score_monitor_last_run_timestamp_seconds" in text
    from prometheus_client.parser import text_string_to_metric_families

    names = {f.name for f in text_string_to_metric_families(text)}
    assert {"credit_score_http_requests", "credit_score_drift_psi", "credit_score_live_outcomes"} <= names


def test_store_url_is_not_logged_with_its_password():
    s = PredictionStore("postgresql+psycopg://user:s3cret-pass@127.0.0.1:1/db")
    assert "s3cret" not in repr(s)


def test_store_url_from_the_secret_provider(registry_dir, tmp_path):
    class Secrets:
        def get(self, name):
            return {"database_url": f"sqlite:///{tmp_path / 'from-vault.db'}"}.get(name)

    a = create_app({"models_dir": registry_dir / "models"}, secrets=Secrets(), start_reload=False)
    st = a.extensions["credit_score"]
    assert st.store.url.endswith("from-vault.db")
    post_json(a.test_client(), "/predict", ROW)
    assert st.writer.flush(10) and PredictionStore(st.store.url).count() == 1
    st.writer.close()
