"""The serving path on a lender's own schema (data/schemas/loan_applications.yaml): text categories with spaces,
slashes and accents, nullable numeric and categorical features, string classes. Champion (XGBoost) and
challenger (RandomForest) trained on the seeded loan applications and registered in a real MLflow store (tmp);
/predict, /predict/batch, /openapi.json, /v2 with BYTES inputs, the prediction store, the logs and the monitor's
reading of the stored rows, through the Flask test client."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as fuzz_settings
from hypothesis import strategies as st

from app.api.contracts.predict import Prediction
from app.core.schema import DatasetSchema
from app.core.validate import rename_source_columns
from app.datasets import generate_loan_applications
from app.monitoring.monitor import feature_matrix, run_monitor
from app.registry import Registry
from app.serving.matrix_validation import matrix_from_objects
from app.serving.validation import ApplicantModels
from app.training.validate import validate
from tests.conftest import SCHEMAS, clear_mlflow_env, make_settings
from tests.helpers import fit_bundle, register_bundle
from tests.monitoring_helpers import register_profiled
from tests.unit.test_api import TOKEN, make_app, post

V2 = "/v2/models/credit-score/infer"
HEADER = "Inference-Header-Content-Length"
ROW = {"loan_amount_eur": 12000, "loan_term_months": 48, "annual_income": 31000, "employment_type": "self-employed",
       "loan_purpose": "home/improvement", "home_ownership": "living with parents", "months_at_address": 7,
       "age": 23, "gender": "non-binary", "region": "Zürich", "existing_loans": 3, "card_utilisation_pct": 91.5,
       "late_payments_12m": 2}
NULLS = {**ROW, "employment_type": None, "annual_income": None, "months_at_address": None,
         "region": "Île-de-France", "loan_purpose": "small business"}
TEXT = ("employment_type", "loan_purpose", "home_ownership", "gender", "region")


@pytest.fixture(scope="module")
def loan_schema() -> DatasetSchema:
    return DatasetSchema.load(SCHEMAS / "loan_applications.yaml")


@pytest.fixture(scope="module")
def loan_frame(loan_schema):
    """3,000 applications in the lender's own column names, renamed to the schema's."""
    return rename_source_columns(generate_loan_applications(3000, seed=11), loan_schema)


@pytest.fixture(scope="module")
def store(tmp_path_factory, loan_schema, loan_frame):
    """v1 champion (XGBoost), v2 challenger (RandomForest), both on the loan schema with the reference profile
    training attaches."""
    clear_mlflow_env()
    tmp = tmp_path_factory.mktemp("loan-store")
    settings = make_settings(tmp)
    reg = Registry(settings)
    reg.promote(register_profiled(settings, loan_schema, loan_frame, tmp), "champion")
    reg.promote(register_profiled(settings, loan_schema, loan_frame, tmp, classifier="random_forest"), "challenger")
    return tmp


@pytest.fixture(scope="module")
def client(store):
    return make_app(store, reason_codes=13).test_client()


def _predict(client, row, explain="fast"):
    r = post(client, f"/predict?explain={explain}", row)
    assert r.status_code == 200, r.json
    return r.json


# ---- /predict ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("row", [ROW, NULLS], ids=["strings", "nulls"])
def test_predict_with_text_categories_names_features_with_their_values(client, row):
    out = _predict(client, row)
    assert out["prediction"] in ("repaid", "charged off") and 0 <= out["probability"] <= 1
    given = {rc["feature"]: rc["value"] for rc in out["reason_codes"]}
    assert given == row  # every feature (13 reason codes asked for), each with the value as sent
    assert all(isinstance(rc["contribution"], float) for rc in out["reason_codes"])
    documented = Prediction.model_validate(out)  # the answer meets its documented contract, strings and all
    assert {rc.feature: rc.value for rc in documented.reason_codes} == row


def test_text_categories_change_the_score(client, loan_schema, loan_frame):
    """The categories reach the model: applicants score worse unemployed, renting, for a small business than
    salaried, owning, for a home improvement, all else equal (the generator's effects)."""
    rows = _applicants(loan_schema, loan_frame, 60)

    def mean_probability(change):
        r = post(client, "/predict/batch", {"instances": [{**row, **change} for row in rows]})
        assert r.status_code == 200, r.json
        return np.mean([p["probability"] for p in r.json["predictions"]])

    risky = mean_probability({"employment_type": "unemployed", "loan_purpose": "small business", "home_ownership":
                              "rent"})
    assert risky > mean_probability({"employment_type": "salaried", "loan_purpose": "home/improvement",
                                     "home_ownership": "own"}) + 0.02


@pytest.mark.parametrize("change, field, words", [
    ({"employment_type": "freelancer"}, "employment_type", ["'freelancer'", "'self-employed'", "'café owner'"]),
    ({"region": "zurich"}, "region", ["'zurich'", "'Zürich'", "'Île-de-France'"]),
    ({"loan_purpose": None}, "loan_purpose", []),
    ({"gender": 1}, "gender", ["'female'"]),
    ({"annual_income": "38000"}, "annual_income", []),
])
def test_unknown_or_wrong_category_is_a_422_naming_field_and_allowed_values(client, change, field, words):
    r = post(client, "/predict", {**ROW, **change})
    assert r.status_code == 422, r.json
    detail = r.json["details"][0]
    assert detail["field"] == field and all(w in detail["problem"] for w in words), detail


def test_openapi_lists_the_categories_and_null_where_nullable(client, loan_schema):
    spec = client.get("/openapi.json").json
    props = spec["components"]["schemas"]["Applicant"]["properties"]
    purpose = props["loan_purpose"]
    assert purpose["enum"] == loan_schema.feature("loan_purpose").categories and "anyOf" not in purpose
    employment = props["employment_type"]
    enums = [s for s in employment["anyOf"] if "enum" in s]
    assert enums[0]["enum"] == loan_schema.feature("employment_type").categories
    assert {"type": "null"} in employment["anyOf"]
    assert {"type": "null"} in props["annual_income"]["anyOf"]
    assert "Zürich" in props["region"]["enum"] and "Zürich" in props["region"]["description"]
    example = spec["components"]["schemas"]["Applicant"]["example"]
    assert post(client, "/predict", example).status_code == 200


# ---- /predict/batch ---------------------------------------------------------------------------------------------
def _applicants(schema, frame, n):
    df, _ = validate(frame.head(n), schema, cv_folds=2)
    models = ApplicantModels(schema)
    return [models.codes.as_dict(r) for r in df[schema.feature_names].to_numpy(dtype=float)]


def test_batch_with_text_categories_takes_the_one_pass_and_matches_predict(client, loan_schema, loan_frame):
    rows = _applicants(loan_schema, loan_frame, 40) + [ROW, NULLS]
    assert any(r["employment_type"] is None for r in rows) and {r["region"] for r in rows} >= {"Zürich"}
    models = ApplicantModels(loan_schema)
    valid = [r for r in rows if None not in r.values()]
    fast = matrix_from_objects(models, valid)
    assert fast is not None  # plainly valid rows with text categories: one pass
    np.testing.assert_array_equal(fast, models.parse_many(valid))
    assert matrix_from_objects(models, rows) is None  # a null: the applicant model decides
    r = post(client, "/predict/batch?explain=fast", {"instances": rows})
    assert r.status_code == 200, r.json
    preds = r.json["predictions"]
    assert len(preds) == len(rows)
    for row, p in zip(rows[-2:], preds[-2:], strict=True):
        assert p["probability"] == _predict(client, row, "none")["probability"]
        assert {rc["feature"]: rc["value"] for rc in p["reason_codes"]} == row


def test_batch_unknown_category_names_row_field_and_values(client):
    r = post(client, "/predict/batch", {"instances": [ROW, {**ROW, "home_ownership": "boat"}]})
    assert r.status_code == 422
    d = r.json["details"][0]
    assert d["field"] == "instances[1].home_ownership" and "'living with parents'" in d["problem"], d


# ---- Open Inference Protocol v2 ---------------------------------------------------------------------------------
def _v2_json(rows, schema, datatypes=None):
    inputs = []
    for f in schema.features:
        text = f.name in TEXT
        dt = (datatypes or {}).get(f.name, "BYTES" if text else "FP64")
        inputs.append({"name": f.name, "datatype": dt, "shape": [len(rows)], "data": [r[f.name] for r in rows]})
    return {"inputs": inputs}


def _outputs(body):
    return {o["name"]: o["data"] for o in body["outputs"]}


def test_v2_metadata_says_bytes_for_text_features(client, loan_schema):
    meta = client.get("/v2/models/credit-score").json
    assert {i["name"]: i["datatype"] for i in meta["inputs"]} == {
        f.name: "BYTES" if f.name in TEXT else "FP64" for f in loan_schema.features}


def test_v2_json_bytes_inputs_score_as_predict(client, loan_schema):
    rows = [ROW, NULLS]
    r = post(client, V2, _v2_json(rows, loan_schema))
    assert r.status_code == 200, r.json
    out = _outputs(r.json)
    want = [_predict(client, row, "none") for row in rows]
    assert out["probability"] == [w["probability"] for w in want]
    assert out["prediction"] == [w["prediction"] for w in want]


def test_v2_binary_bytes_inputs(client, loan_schema):
    rows = [ROW, {**ROW, "region": "Cataluña", "loan_purpose": "debt consolidation"}]
    head, chunks = {"inputs": [], "parameters": {"binary_data_output": False}}, []
    for f in loan_schema.features:
        values = [r[f.name] for r in rows]
        if f.name in TEXT:
            raw = b"".join(struct.pack("<I", len(b := v.encode())) + b for v in values)
            dt = "BYTES"
        else:
            raw, dt = np.asarray(values, dtype="<f8").tobytes(), "FP64"
        head["inputs"].append({"name": f.name, "datatype": dt, "shape": [len(rows)],
                               "parameters": {"binary_data_size": len(raw)}})
        chunks.append(raw)
    header = json.dumps(head).encode()
    r = client.post(V2, data=header + b"".join(chunks), headers={HEADER: str(len(header))})
    assert r.status_code == 200, r.data[:300]
    assert _outputs(r.json)["probability"] == [_predict(client, row, "none")["probability"] for row in rows]
    # lengths that do not add up to the tensor's bytes: a 400 naming the input
    head["inputs"][3]["parameters"]["binary_data_size"] -= 1
    header = json.dumps(head).encode()
    body = header + b"".join(chunks[:3]) + chunks[3][:-1] + b"".join(chunks[4:])
    bad = client.post(V2, data=body, headers={HEADER: str(len(header))})
    assert bad.status_code == 400 and bad.json["details"][0]["field"] == "inputs[3].parameters.binary_data_size"


@pytest.mark.parametrize("change, status, field, words", [
    ({"region": "Zurich"}, 422, "rows[1].region", ["'Zurich'", "'Zürich'"]),
    ({"loan_purpose": None}, 422, "rows[1].loan_purpose", ["not nullable"]),
])
def test_v2_bad_categories(client, loan_schema, change, status, field, words):
    r = post(client, V2, _v2_json([ROW, {**ROW, **change}], loan_schema))
    assert r.status_code == status, r.json
    d = r.json["details"][0]
    assert d["field"] == field and all(w in d["problem"] for w in words), d


def test_v2_wrong_forms(client, loan_schema):
    numeric = post(client, V2, _v2_json([{**ROW, "gender": 1}], loan_schema, {"gender": "INT64"}))
    assert numeric.status_code == 422 and numeric.json["details"][0]["field"] == "inputs[8].datatype"
    as_text = post(client, V2, _v2_json([{**ROW, "age": "23"}], loan_schema, {"age": "BYTES"}))
    assert as_text.status_code == 422 and "takes numbers" in as_text.json["details"][0]["problem"]
    matrix = post(client, V2, {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 13], "data": [1] * 13}]})
    assert matrix.status_code == 422 and "employment_type" in matrix.json["details"][0]["problem"]
    number_in_bytes = post(client, V2, _v2_json([{**ROW, "region": 3}], loan_schema))
    assert number_in_bytes.status_code == 422 and number_in_bytes.json["details"][0]["field"] == "inputs[9].data[0]"


# ---- store, logs, A/B -------------------------------------------------------------------------------------------
def test_stored_rows_and_logs_keep_the_strings(store, tmp_path, loan_schema, capsys):
    app = make_app(store, store_url=f"sqlite:///{tmp_path / 'p.db'}", store_flush_interval=0.05, ab_mode="shadow",
                   log_features=True)
    c = app.test_client()
    try:
        _predict(c, ROW)
        assert post(c, "/predict/batch", {"instances": [NULLS]}).status_code == 200
        assert post(c, V2, _v2_json([ROW], loan_schema)).status_code == 200
        st = app.extensions["credit_score"]
        assert st.writer.flush(10)
        from datetime import timedelta

        from app.monitoring.store import utcnow

        rows = st.store.read_predictions(utcnow() - timedelta(days=1), utcnow() + timedelta(days=1))
    finally:
        app.extensions["credit_score"].writer.close()
    # /predict scored by champion and challenger (shadow); /predict/batch and /v2 by the champion
    assert sorted((r["variant"], r["shadow"]) for r in rows) == [("challenger", True)] + [("champion", False)] * 3
    stored = [json.loads(r["features"]) for r in rows]
    assert stored.count(ROW) == 3 and stored.count(NULLS) == 1
    assert {r["predicted_class"] for r in rows} <= {"repaid", "charged off"}
    # the monitor reads them back as the numbers the model (and the training profile) read
    X = feature_matrix(rows, loan_schema)  # noqa: N806
    models = ApplicantModels(loan_schema)
    for r, x in zip(rows, X, strict=True):
        want = models.parse(json.loads(r["features"]))
        np.testing.assert_array_equal(x, want)
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    logged = [x["prediction.features"] for x in lines if x["message"] == "prediction" and "prediction.features" in x]
    assert ROW in logged


def test_the_monitor_flags_a_shifted_text_feature(store, loan_schema, tmp_path):
    """A window where most applicants come from one region: the monitor reads the stored strings back, flags
    ``region`` (chi-square and PSI against the training profile) and groups fairness by the string genders."""
    url = f"sqlite:///{tmp_path / 'p.db'}"
    app = make_app(store, store_url=url, store_flush_interval=0.05, log_level="WARNING")
    frame = rename_source_columns(generate_loan_applications(600, seed=21), loan_schema)
    rows = [{**r, "region": r["region"] if i % 5 == 0 else "Zürich"}
            for i, r in enumerate(_applicants(loan_schema, frame, 600))]
    truth, _ = validate(frame, loan_schema, cv_folds=2)
    c = app.test_client()
    try:
        r = post(c, "/predict/batch", {"instances": rows})
        assert r.status_code == 200, r.json
        assert app.extensions["credit_score"].writer.flush(20)
        pid = r.json["prediction_id"]
        outcomes = [{"prediction_id": f"{pid}/{i}", "outcome": y} for i, y in enumerate(truth["loan_status"])]
        fed = post(c, "/feedback", {"outcomes": outcomes}, headers={"Authorization": f"Bearer {TOKEN}"})
        assert fed.status_code == 200 and fed.json["recorded"] == len(rows), fed.json
    finally:
        app.extensions["credit_score"].writer.close()
    settings = make_settings(store).model_copy(update={
        "store_url": url, "reports_dir": tmp_path / "reports", "state_dir": tmp_path / "jobs", "monitor_min_rows": 200})
    summary = run_monitor(settings, dry_run=True)
    assert summary["drift"]["status"] == "ok" and "region" in summary["drift"]["drifted"], summary["drift"]["drifted"]
    assert not {"gender", "home_ownership", "loan_purpose"} & set(summary["drift"]["drifted"])
    region = next(d for d in summary["drift"]["features"] if d["feature"] == "region")
    assert "Zürich" in region["bins"] and region["actual"][region["bins"].index("Zürich")] > 0.7
    assert {g["group"] for g in summary["fairness"] if g["feature"] == "gender"} == {"female", "male", "non-binary"}
    live = summary["live"]["champion"]  # outcomes given as the schema's string classes
    assert live["n"] == len(rows) and 0.5 < live["roc_auc"] <= 1 and live["bad"] == (truth["loan_status"] ==
                                                                                       "charged off").sum()


# ---- three classes with string labels ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def three_class(tmp_path_factory):
    """A champion on the three-class loan schema (repaid / repaid late / charged off)."""
    schema = DatasetSchema.load(SCHEMAS / "loan_applications_3class.yaml")
    frame = rename_source_columns(generate_loan_applications(3000, seed=12, classes=3), schema)
    clear_mlflow_env()
    tmp = tmp_path_factory.mktemp("loan-3class")
    settings = make_settings(tmp)
    Registry(settings).promote(register_bundle(settings, fit_bundle(schema, frame), tmp), "champion")
    return make_app(tmp).test_client()


def test_three_string_classes_serve_every_class_probability(three_class, loan_schema):
    out = _predict(three_class, ROW)
    assert set(out["probabilities"]) == {"repaid", "repaid late", "charged off"}
    assert sum(out["probabilities"].values()) == pytest.approx(1, abs=1e-5)
    assert out["probability"] == out["probabilities"]["charged off"]
    assert out["prediction"] in out["probabilities"] and out["reason_codes"]
    r = post(three_class, V2, _v2_json([ROW, NULLS], loan_schema))
    assert r.status_code == 200, r.json
    got = _outputs(r.json)
    assert len(got["probabilities"]) == 6 and got["prediction"][0] == out["prediction"]
    batch = post(three_class, "/predict/batch", {"instances": [ROW, NULLS]}).json
    assert batch["predictions"][0]["probabilities"] == out["probabilities"]


# ---- odd input: a 4xx naming a field, never a 5xx ---------------------------------------------------------------
_odd = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30), st.floats(allow_nan=False),
                 st.text(max_size=8), st.sampled_from(["Zürich", "self-employed", "home/improvement", "", "rent"]),
                 st.lists(st.text(max_size=3), max_size=2))


@fuzz_settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(changes=st.dictionaries(st.sampled_from(sorted(ROW)), _odd, max_size=3),
       datatypes=st.dictionaries(st.sampled_from(sorted(ROW)), st.sampled_from(["BYTES", "FP64", "INT64"]),
                                 max_size=2),
       raw=st.binary(max_size=24), shape=st.sampled_from([[1], [2], [1, 1]]))
def test_odd_values_get_a_4xx_naming_a_field(client, loan_schema, changes, datatypes, raw, shape):
    row = {**ROW, **changes}
    for r in (post(client, "/predict", row), post(client, "/predict/batch", {"instances": [ROW, row]}),
              post(client, V2, _v2_json([row], loan_schema, datatypes))):
        assert r.status_code < 500 and (r.status_code == 200 or r.json["details"][0]["field"]), r.json
    body = _v2_json([ROW], loan_schema)  # one BYTES input as arbitrary bytes, of an arbitrary shape
    del body["inputs"][9]["data"]
    body["inputs"][9].update(shape=shape, parameters={"binary_data_size": len(raw)})
    header = json.dumps(body).encode()
    r = client.post(V2, data=header + raw, headers={HEADER: str(len(header))})
    assert r.status_code < 500 and (r.status_code == 200 or r.json["details"][0]["field"]), r.json
