"""The Flask app through its test client, with models registered in a real MLflow store (tmp)."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from app import create_app
from app.registry import Registry
from tests.conftest import make_settings
from tests.helpers import fit_bundle, register_bundle
from tests.stores import seed_mlflow_store

ROW = {"limit_bal": 20000, "sex": 2, "education": 2, "marriage": 1, "age": 24, "pay_0": 2, "pay_2": 2, "pay_3": -1,
       "pay_4": -1, "pay_5": -2, "pay_6": -2, "bill_amt1": 3913, "bill_amt2": 3102, "bill_amt3": 689,
       "bill_amt4": 0, "bill_amt5": 0, "bill_amt6": 0, "pay_amt1": 0, "pay_amt2": 689, "pay_amt3": 0,
       "pay_amt4": 0, "pay_amt5": 0, "pay_amt6": 0}
TOKEN = "test-admin-token-0123456789"


@pytest.fixture(scope="module")
def store(tmp_path_factory, schema, small_frame):
    """A store with v1 (champion, XGBoost) and v2 (challenger, RandomForest)."""
    import os

    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        os.environ.pop(var, None)
    tmp = tmp_path_factory.mktemp("api-store")
    settings = make_settings(tmp)
    reg = Registry(settings)
    v1 = register_bundle(settings, fit_bundle(schema, small_frame), tmp)
    v2 = register_bundle(settings, fit_bundle(schema, small_frame, classifier="random_forest"), tmp)
    reg.promote(v1, "champion")
    reg.promote(v2, "challenger")
    return tmp


@pytest.fixture(autouse=True)
def _migrated_store_in_tmp_path(request):
    """A test that starts the app on its own empty tmp_path store finds it migrated already (a copy)."""
    if "tmp_path" in request.fixturenames:
        seed_mlflow_store(request.getfixturevalue("tmp_path") / "models" / "mlflow.db")


def make_app(store, **over):
    cfg = {"models_dir": store / "models", "reports_dir": store / "reports", "admin_token": TOKEN}
    cfg.update(over)
    return create_app(cfg, start_reload=False)


@pytest.fixture(scope="module")
def client(store):
    return make_app(store).test_client()


def post(client, path, body, **kw):
    return client.post(path, data=json.dumps(body), content_type="application/json", **kw)


# ---- health and readiness ------------------------------------------------------------------------------
def test_health_and_ready(client):
    assert client.get("/health").json == {"status": "ok", "live": True}
    assert client.get("/v2/health/live").status_code == 200
    r = client.get("/ready")
    assert r.status_code == 200 and r.json["model"] == {"name": "credit-score", "version": "1"}
    assert client.get("/v2/health/ready").status_code == 200


def test_no_model_registered_gives_503(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    app = create_app({"models_dir": tmp_path / "models"}, start_reload=False)
    c = app.test_client()
    assert c.get("/health").status_code == 200
    r = c.get("/ready")
    assert r.status_code == 503 and r.json["ready"] is False and "no champion" in r.json["reason"]
    r = post(c, "/predict", ROW)
    assert r.status_code == 503 and "no model is loaded" in r.json["error"]
    assert r.json["details"] == [{"field": "model", "problem": "no champion registered"}]
    assert c.get("/openapi.json").status_code == 200  # documented from the configured schema


# ---- predict -------------------------------------------------------------------------------------------
def test_predict_response(client, schema):
    r = post(client, "/predict", ROW, headers={"X-Request-ID": "req-42"})
    assert r.status_code == 200, r.json
    body = r.json
    assert body["request_id"] == "req-42" and r.headers["X-Request-ID"] == "req-42"
    assert body["prediction"] in (0, 1) and 0 <= body["probability"] <= 1
    assert body["threshold"] == pytest.approx(0.3)
    assert body["prediction"] == int(body["probability"] >= 0.3)
    assert body["risk_band"] in ("low", "medium", "high", "very_high")
    assert body["model"] == {"name": "credit-score", "version": "1"} and body["variant"] == "champion"
    codes = body["reason_codes"]
    assert len(codes) == 4 and all(c["feature"] in schema.feature_names for c in codes)
    assert abs(codes[0]["contribution"]) >= abs(codes[-1]["contribution"])
    assert body["explanation"]["method"] == "approximate" and body["explanation"]["units"] == "log-odds"
    margin = body["explanation"]["margin"]
    assert 1 / (1 + math.exp(-margin)) == pytest.approx(body["probability"], abs=1e-5)


def test_request_id_generated_when_absent(client):
    r = post(client, "/predict", ROW)
    assert len(r.json["request_id"]) == 32 and r.headers["X-Request-ID"] == r.json["request_id"]


@pytest.mark.parametrize("mode, method", [("exact", "exact_treeshap"), ("none", None)])
def test_explain_modes(client, mode, method):
    r = post(client, f"/predict?explain={mode}", ROW)
    assert r.status_code == 200
    if method:
        assert r.json["explanation"]["method"] == method and r.json["reason_codes"]
    else:
        assert "reason_codes" not in r.json


def test_integral_floats_are_integers(client):
    assert post(client, "/predict", dict(ROW, age=24.0)).json["probability"] == post(client, "/predict", ROW).json[
        "probability"]


def test_undocumented_code_is_accepted_and_remapped(client):
    a = post(client, "/predict", dict(ROW, education=5)).json
    b = post(client, "/predict", dict(ROW, education=4)).json
    assert a["probability"] == b["probability"]


# ---- bad input -----------------------------------------------------------------------------------------
def _problem(r, field):
    return [d["problem"] for d in r.json["details"] if d["field"] == field]


@pytest.mark.parametrize("change, field, fragment", [
    (lambda r: r.pop("age"), "age", "required field is missing"),
    (lambda r: r.update(age="old"), "age", "valid integer"),
    (lambda r: r.update(age=30.5), "age", "valid integer"),
    (lambda r: r.update(age=True), "age", "boolean is not a number"),
    (lambda r: r.update(limit_bal="120000"), "limit_bal", "valid number"),
    (lambda r: r.update(age=150), "age", "less than or equal to 100"),
    (lambda r: r.update(limit_bal=-1), "limit_bal", "greater than or equal to 0"),
    (lambda r: r.update(sex=3), "sex", "unknown category 3"),
    (lambda r: r.update(sex=True), "sex", "boolean is not a category code"),
    (lambda r: r.update(nickname="x"), "nickname", "unknown field"),
])
def test_invalid_fields_give_422_with_field_and_problem(client, change, field, fragment):
    row = dict(ROW)
    change(row)
    r = post(client, "/predict", row)
    assert r.status_code == 422 and r.json["error"] == "invalid applicant"
    assert any(fragment in p for p in _problem(r, field)), r.json


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused(client, literal):
    text = json.dumps(ROW).replace('"bill_amt1": 3913', f'"bill_amt1": {literal}')
    r = client.post("/predict", data=text, content_type="application/json")
    assert r.status_code == 422
    assert _problem(r, "bill_amt1") == ["NaN and Infinity are not allowed"]


def test_extra_fields_can_be_ignored(store):
    c = make_app(store, extra_fields="ignore").test_client()
    assert post(c, "/predict", dict(ROW, nickname="x")).status_code == 200


@pytest.mark.parametrize("data, ctype, status, error", [
    ("{}", "text/plain", 415, "Content-Type must be application/json"),
    ("", "application/json", 400, "the request body is empty"),
    ("   ", "application/json", 400, "the request body is empty"),
    ('{"age": 3', "application/json", 400, "the body is not valid JSON"),
    ("[1, 2]", "application/json", 400, "the body must be a JSON object"),
    (b"\xff\xfe", "application/json", 400, "not UTF-8"),
])
def test_malformed_bodies(client, data, ctype, status, error):
    r = client.post("/predict", data=data, content_type=ctype)
    assert r.status_code == status and error in r.json["error"] and r.json["details"]


def test_body_over_size_limit_is_413(store):
    c = make_app(store, max_body_bytes=200).test_client()
    r = post(c, "/predict", ROW)
    assert r.status_code == 413 and r.json["error"] == "request body is too large"


def test_unknown_route_and_method_are_json(client):
    r = client.get("/nope")
    assert r.status_code == 404 and r.json["error"] == "no such endpoint"
    r = client.get("/predict")
    assert r.status_code == 405 and "POST" in r.json["details"][0]["problem"]
    assert client.get("/health").status_code == 200  # still healthy after all of the above


V2_INFER = "/v2/models/credit-score/infer"
HUGE = "1" + "0" * 5000  # past Python's 4,300-digit limit for int(str): json.loads raised a ValueError (a 500)
HUGE_ROW = json.dumps(ROW).replace('"limit_bal": 20000', f'"limit_bal": {HUGE}')


def tensor_text(data: str) -> str:
    """A /v2 infer body with one [1, 23] FP64 tensor whose ``data`` is the JSON text given."""
    return '{"inputs": [{"name": "x", "shape": [1, 23], "datatype": "FP64", "data": ' + data + "}]}"


@pytest.mark.parametrize("path, body", [
    ("/predict", HUGE_ROW),
    ("/predict/batch", '{"instances": [' + HUGE_ROW + "]}"),
    (V2_INFER, tensor_text(f"[{HUGE}{', 1' * 22}]")),
    ("/feedback", '{"prediction_id": "x", "outcome": ' + HUGE + "}"),
    ("/model/retrain", '{"reason": ' + HUGE + "}"),
])
def test_a_5000_digit_integer_is_a_4xx_naming_the_field(client, path, body):
    r = client.post(path, data=body, content_type="application/json", headers={"Authorization": f"Bearer {TOKEN}"})
    assert 400 <= r.status_code < 500 and r.json["details"], (r.status_code, r.json)
    assert r.json["details"][0]["field"] in {"limit_bal", "instances[0].limit_bal", "rows[0].limit_bal",
                                             "inputs[0].data[0]", "outcome", "reason"}, r.json
    assert client.get("/health").status_code == 200


@pytest.mark.parametrize("body, status, field", [
    ({"inputs": [{"name": "x", "shape": [0, 23], "datatype": "FP64", "data": []}]}, 400, "inputs[0].shape"),
    (tensor_text(f"[1{'0' * 400}{', 1' * 22}]"), 422, "inputs[0].data[0]"),
    (tensor_text("[" * 1000 + "1" + "]" * 1000), 400, "inputs[0].data"),
    (tensor_text("[" * 100000 + "1" + "]" * 100000), 400, "$"),
])
def test_v2_the_review_cases_are_4xx(client, body, status, field):
    """Shape [0, n], a 400-digit value, data nested about 1,000 (and 100,000) deep: each answered 500 once."""
    r = client.post(V2_INFER, data=body if isinstance(body, str) else json.dumps(body), content_type="application/json")
    assert r.status_code == status and r.json["details"][0]["field"] == field, r.json


def test_made_up_http_methods_do_not_create_metric_series(client):
    from prometheus_client.parser import text_string_to_metric_families

    def methods() -> set[str]:
        text = client.get("/metrics").data.decode()
        return {smp.labels["method"] for f in text_string_to_metric_families(text) for smp in f.samples
                if smp.name.startswith("credit_score_http_request") and "method" in smp.labels}

    for i in range(30):
        assert client.open("/predict", method=f"MADEUP{i}").status_code == 405
    found = methods()
    assert "other" in found and not any(m.startswith("MADEUP") for m in found), found
    assert found <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}


def test_invalid_explain_parameter(client):
    r = post(client, "/predict?explain=maybe", ROW)
    assert r.status_code == 400 and r.json["details"][0]["field"] == "explain"


# ---- batch ---------------------------------------------------------------------------------------------
def test_batch(client):
    rows = [ROW, dict(ROW, pay_0=-1, pay_2=-1), dict(ROW, limit_bal=500000)]
    r = post(client, "/predict/batch", {"instances": rows})
    assert r.status_code == 200 and r.json["count"] == 3
    single = [post(client, "/predict?explain=none", x).json["probability"] for x in rows]
    assert [p["probability"] for p in r.json["predictions"]] == single
    assert "reason_codes" not in r.json["predictions"][0]
    r = post(client, "/predict/batch?explain=fast", {"instances": rows[:1]})
    assert len(r.json["predictions"][0]["reason_codes"]) == 4


@pytest.mark.parametrize("body, status, field", [
    ({"rows": []}, 400, "instances"),
    ({"instances": []}, 422, "instances"),
    ({"instances": "x"}, 400, "instances"),
    ({"instances": [ROW, dict(ROW, age=-5)]}, 422, "instances[1].age"),
    ({"instances": [ROW], "extra": 1}, 422, "extra"),
])
def test_batch_errors(client, body, status, field):
    r = post(client, "/predict/batch", body)
    assert r.status_code == status and any(d["field"] == field for d in r.json["details"]), r.json


def test_batch_over_row_limit(store):
    c = make_app(store, max_batch_rows=5).test_client()
    r = post(c, "/predict/batch", {"instances": [ROW] * 6})
    assert r.status_code == 422 and "at most 5" in r.json["error"]


# ---- model info, metrics, docs -------------------------------------------------------------------------
def test_model_info(client, schema):
    info = client.get("/model/info").json
    champ = info["champion"]
    assert champ["version"] == "1" and champ["alias"] == "champion" and champ["classifier"] == "xgboost"
    assert champ["threshold"] == pytest.approx(0.3) and champ["lineage"]["artifact_sha256"]
    assert [f["name"] for f in champ["features"]] == schema.feature_names
    assert champ["features"][0] == {"name": "limit_bal", "type": "numeric", "min": 0.0, "max": 10000000.0,
                                    "categories": None, "nullable": False,
                                    "description": schema.features[0].description}
    assert info["challenger"]["version"] == "2" and champ["loaded_at"].endswith("Z")
    assert TOKEN not in json.dumps(info)


def test_metrics_exposition(client):
    post(client, "/predict", ROW)
    text = client.get("/metrics").data.decode()
    assert 'credit_score_http_requests_total{endpoint="/predict",method="POST",status="200"}' in text
    assert 'credit_score_predictions_total{model_version="1"' in text
    assert "credit_score_prediction_probability_bucket" in text
    assert 'credit_score_model_info{alias="champion",classifier="xgboost",sampler="none",version="1"} 1.0' in text
    assert "credit_score_http_request_duration_seconds_bucket" in text


def test_openapi_from_schema(client, schema):
    spec = client.get("/openapi.json").json
    applicant = spec["components"]["schemas"]["Applicant"]
    assert set(applicant["properties"]) == set(schema.feature_names)
    assert applicant["properties"]["age"]["maximum"] == 100 and applicant["properties"]["age"]["type"] == "integer"
    assert applicant["properties"]["sex"]["enum"] == [1, 2]
    assert applicant["additionalProperties"] is False and set(applicant["required"]) == set(schema.feature_names)
    assert {"/predict", "/predict/batch", "/model/info", "/model/retrain", "/v2/models/{model_name}/infer"} <= set(
        spec["paths"])
    docs = client.get("/docs")
    assert docs.status_code == 200 and b"swagger-ui-bundle.js" in docs.data
    assert client.get("/docs/static/swagger-ui-bundle.js").status_code == 200


# ---- admin ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("headers, status", [({}, 401), ({"Authorization": "Basic abc"}, 401),
                                             ({"Authorization": "Bearer wrong"}, 403)])
def test_retrain_requires_the_admin_token(client, headers, status):
    r = client.post("/model/retrain", headers=headers)
    assert r.status_code == status
    assert TOKEN not in r.get_data(as_text=True)
    if status == 401:
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/model/retrain/abc", headers=headers).status_code == status


def test_retrain_without_configured_token_is_forbidden(store):
    c = make_app(store, admin_token=None).test_client()
    assert c.post("/model/retrain", headers={"Authorization": "Bearer anything"}).status_code == 403


def test_unknown_job_is_404(client):
    r = client.get("/model/retrain/deadbeef", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 404 and r.json["details"][0]["field"] == "job_id"


# ---- Open Inference Protocol v2 ------------------------------------------------------------------------
def test_v2_metadata_and_infer(client, schema):
    meta = client.get("/v2/models/credit-score").json
    assert meta["name"] == "credit-score" and [i["name"] for i in meta["inputs"]] == schema.feature_names
    assert client.get("/v2/models/other").status_code == 404
    values = [ROW[f] for f in schema.feature_names]
    one = post(client, "/v2/models/credit-score/infer",
               {"id": "x1", "inputs": [{"name": "input-0", "shape": [2, 23], "datatype": "FP64",
                                        "data": [values, values]}]}).json
    assert one["id"] == "x1" and one["model_version"] == "1"
    probs = next(o for o in one["outputs"] if o["name"] == "probability")
    single = post(client, "/predict", ROW).json["probability"]
    assert probs["shape"] == [2] and probs["data"][0] == pytest.approx(single)
    named = post(client, "/v2/models/credit-score/infer",
                 {"inputs": [{"name": f, "shape": [1], "datatype": "FP64", "data": [ROW[f]]}
                             for f in schema.feature_names]}).json
    assert next(o for o in named["outputs"] if o["name"] == "probability")["data"] == probs["data"][:1]


@pytest.mark.parametrize("body, status", [
    ({"inputs": []}, 400),
    ({"inputs": [{"name": "x", "shape": [1, 23], "datatype": "BYTES", "data": ["a"] * 23}]}, 422),
    ({"inputs": [{"name": "", "shape": [], "datatype": {}, "data": [None, None]}]}, 400),
    ({"inputs": [{"name": "x", "shape": [1, 23], "datatype": "FP64", "data": [1] * 22}]}, 400),
    ({"inputs": [{"name": "x", "shape": [1, 22], "datatype": "FP64", "data": [1] * 22}]}, 422),
    ({"inputs": [{"name": "age", "shape": [1], "datatype": "FP64", "data": [30]}]}, 422),
    ({"inputs": [{"name": "x", "shape": [1, 23], "datatype": "FP64", "data": [-5] * 23}]}, 422),
])
def test_v2_bad_requests(client, body, status):
    r = post(client, "/v2/models/credit-score/infer", body)
    assert r.status_code == status and r.json["details"], r.json


# ---- A/B and shadow ------------------------------------------------------------------------------------
def test_split_routing_is_sticky_on_the_gateway_key_and_counts_variants(store):
    c = make_app(store, ab_mode="split", ab_split=0.5, ab_key_header="X-Applicant-Key").test_client()
    seen = {}
    for i in range(40):
        key = f"applicant-{i}"
        variants = {post(c, "/predict", ROW, headers={"X-Applicant-Key": key}).json["variant"] for _ in range(3)}
        assert len(variants) == 1  # sticky
        seen[key] = variants.pop()
    assert set(seen.values()) == {"champion", "challenger"}
    r = post(c, "/predict", ROW, headers={"X-Applicant-Key": next(k for k, v in seen.items() if v == "challenger")})
    assert r.json["model"]["version"] == "2" and r.json["explanation"]["units"] == "probability"
    text = c.get("/metrics").data.decode()
    assert 'variant="challenger"' in text and 'variant="champion"' in text


def test_a_client_cannot_choose_its_variant_without_a_trusted_key_header(store):
    """No gateway header configured: a client's X-Applicant-Key or X-Request-ID does not decide the model (else an
    applicant could shop between models), each prediction is routed by its server-side id."""
    c = make_app(store, ab_mode="split", ab_split=0.5).test_client()
    headers = {"X-Applicant-Key": "applicant-7", "X-Request-ID": "same-id"}
    variants = [post(c, "/predict", ROW, headers=headers).json["variant"] for _ in range(30)]
    assert set(variants) == {"champion", "challenger"}  # 30 fair coin flips all alike: p = 2e-9


def test_shadow_scores_challenger_but_answers_with_champion(store, capsys):
    c = make_app(store, ab_mode="shadow").test_client()
    r = post(c, "/predict", ROW)
    assert r.json["variant"] == "champion" and r.json["model"]["version"] == "1"
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    preds = [x for x in lines if x["message"] == "prediction"]
    assert {(p["model.version"], p["prediction.shadow"]) for p in preds} == {("1", False), ("2", True)}


# ---- logs ----------------------------------------------------------------------------------------------
def test_json_logs_with_ecs_fields_and_no_features(store, capsys):
    c = make_app(store).test_client()
    post(c, "/predict", ROW, headers={"X-Request-ID": "log-test"})
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    req = next(x for x in lines if x["message"] == "request" and x.get("trace.id") == "log-test")
    for key in ("@timestamp", "log.level", "service.name", "service.version", "event.duration",
                "http.request.method", "url.path", "http.response.status_code"):
        assert key in req, key
    pred = next(x for x in lines if x["message"] == "prediction" and x.get("trace.id") == "log-test")
    assert {"model.version", "model.variant", "prediction.class", "prediction.probability"} <= set(pred)
    assert "prediction.features" not in pred and "3913" not in json.dumps(pred)


def test_a_batch_logs_one_json_line_per_prediction(store, capsys):
    c = make_app(store).test_client()

    def counted() -> float:  # metrics live as long as the process: compare before and after
        text = c.get("/metrics").data.decode()
        return sum(float(v) for v in re.findall(r'credit_score_predictions_total\{[^}]*version="1"[^}]*\} (\S+)', text))

    before = counted()
    rows = [ROW, {**ROW, "pay_0": -1, "pay_2": -1}, {**ROW, "limit_bal": 500000}]
    r = post(c, "/predict/batch", {"instances": rows}, headers={"X-Request-ID": "batch-log"})
    assert r.status_code == 200
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    preds = [x for x in lines if x["message"] == "prediction" and x.get("trace.id") == "batch-log"]
    assert [(p["prediction.class"], p["prediction.probability"]) for p in preds] == \
        [(str(p["prediction"]), p["probability"]) for p in r.json["predictions"]]
    for p in preds:
        assert p["model.version"] == "1" and p["log.level"] == "info" and "@timestamp" in p
    assert counted() - before == 3


# ---- the model object: reason codes --------------------------------------------------------------------
def test_xgb_contributions_add_up_to_the_margin(store, schema, small_frame):
    from app.config import Settings

    reg = Registry(Settings(models_dir=store / "models"))
    info, bundle = reg.load("1")
    from app.serving.model import ServedModel

    m = ServedModel(bundle=bundle, name="credit-score", version="1", alias="champion")
    X = small_frame[schema.feature_names].to_numpy(float)[:50]
    margin = m.booster.predict(__import__("xgboost").DMatrix(m.features.transform(X)), output_margin=True)
    for mode in ("fast", "exact"):
        preds = m.predict_rows(X, mode)
        sums = np.array([p.contributions.sum() + p.bias for p in preds])
        assert np.allclose(sums, margin, atol=1e-4), mode
        assert np.allclose([p.bad_probability for p in preds], bundle.predict_proba(X)[:, 1], atol=1e-6)


def test_top_reason_for_long_delays_is_payment_status(client):
    late = dict(ROW, pay_0=6, pay_2=5, pay_3=4, pay_4=3, pay_5=2, pay_6=2)
    top = post(client, "/predict", late).json["reason_codes"][0]
    assert top["feature"].startswith("pay_") and not top["feature"].startswith("pay_amt")
    assert top["direction"] == "increases risk"


def test_forest_contributions_add_up_to_the_probability(schema, small_frame):
    from app.serving.model import ServedModel

    b = fit_bundle(schema, small_frame, classifier="random_forest")
    m = ServedModel(bundle=b, name="m", version="1", alias="champion")
    X = small_frame[schema.feature_names].to_numpy(float)[:20]
    for mode in ("fast", "exact"):
        preds = m.predict_rows(X, mode)
        sums = np.array([p.contributions.sum() + p.bias for p in preds])
        assert np.allclose(sums, b.predict_proba(X)[:, 1], atol=1e-6), mode


def test_multiclass_model_returns_all_probabilities(tmp_path, schema3, monkeypatch):
    from app.datasets import generate_synthetic

    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        monkeypatch.delenv(var, raising=False)
    settings = make_settings(tmp_path)
    v = register_bundle(settings, fit_bundle(schema3, generate_synthetic(2000, 4, classes=3)), tmp_path)
    Registry(settings).promote(v, "champion")
    c = create_app({"models_dir": tmp_path / "models"}, start_reload=False).test_client()
    body = post(c, "/predict", ROW).json
    assert set(body["probabilities"]) == {"Good", "Standard", "Poor"}
    assert sum(body["probabilities"].values()) == pytest.approx(1, abs=1e-5)
    assert body["probability"] == body["probabilities"]["Poor"] and body["prediction"] in body["probabilities"]
    assert body["threshold"] is None


def test_v2_a_header_length_in_non_ascii_digits_is_a_400(client):
    """'¹'.isdigit() is True and int('¹') raises: found by the fuzz test (a 500 before)."""
    r = client.post(V2_INFER, data=b'{"inputs": []}', content_type="application/octet-stream",
                    headers={"Inference-Header-Content-Length": "\u00b9"})
    assert r.status_code == 400 and r.json["details"][0]["field"] == "Inference-Header-Content-Length", r.json
