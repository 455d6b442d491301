"""The typed contracts (app/api/contracts/) and the OpenAPI document generated from them: every route is
documented, each documented request body is the JSON Schema of the model that validates it, and real answers
conform to the documented response schemas."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import pytest
from pydantic import TypeAdapter

from app import create_app
from app.api.contracts.model import RetrainRequest
from app.api.contracts.predict import batch_envelope
from app.api.contracts.requests import RequestContracts
from app.api.contracts.v2 import InferRequest
from app.api.openapi import REF, build_spec
from app.registry import Registry
from app.serving.validation import ApplicantModels
from tests.conftest import make_settings
from tests.helpers import fit_bundle, register_bundle

ROW = {"limit_bal": 20000, "sex": 2, "education": 2, "marriage": 1, "age": 24, "pay_0": 2, "pay_2": 2, "pay_3": -1,
       "pay_4": -1, "pay_5": -2, "pay_6": -2, "bill_amt1": 3913, "bill_amt2": 3102, "bill_amt3": 689,
       "bill_amt4": 0, "bill_amt5": 0, "bill_amt6": 0, "pay_amt1": 0, "pay_amt2": 689, "pay_amt3": 0,
       "pay_amt4": 0, "pay_amt5": 0, "pay_amt6": 0}
UNDOCUMENTED = {"static", "docs.openapi", "docs.docs", "docs.docs_static"}  # the document and its viewer


@pytest.fixture(scope="module")
def app(tmp_path_factory, schema, small_frame):
    """A champion registered; batches of at most 7 rows."""
    import os

    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        os.environ.pop(var, None)
    tmp = tmp_path_factory.mktemp("contracts-store")
    settings = make_settings(tmp)
    Registry(settings).promote(register_bundle(settings, fit_bundle(schema, small_frame), tmp), "champion")
    return create_app({"models_dir": tmp / "models", "reports_dir": tmp / "reports", "store_url": "none",
                       "max_batch_rows": 7}, start_reload=False)


@pytest.fixture(scope="module")
def client(app):
    return app.test_client()


@pytest.fixture(scope="module")
def spec(client) -> dict[str, Any]:
    return client.get("/openapi.json").json


def _normalise(path: str) -> str:
    return re.sub(r"<[^>]*>|\{[^}]*\}", "{}", path)


def test_every_route_is_documented_with_its_methods(app, spec):
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint not in UNDOCUMENTED:
            methods = {m.lower() for m in rule.methods - {"HEAD", "OPTIONS"}}
            routes.setdefault(_normalise(rule.rule), set()).update(methods)
    documented = {_normalise(p): set(ops) for p, ops in spec["paths"].items()}
    assert documented == routes


def _component(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema["$ref"]
    assert ref.startswith("#/components/schemas/")
    return spec["components"]["schemas"][ref.rsplit("/", 1)[1]]


def _same_schema(spec: dict[str, Any], documented: dict[str, Any], adapter: TypeAdapter) -> None:
    """The documented body is the adapter's JSON Schema, and every model it refers to is the component."""
    own = adapter.json_schema(ref_template=REF)
    defs = own.pop("$defs", {})
    assert (_component(spec, documented) if "$ref" in documented else documented) == own
    for name, schema in defs.items():
        assert spec["components"]["schemas"][name] == schema, name


def test_each_request_body_is_the_schema_of_the_model_that_validates_it(app, spec):
    st = app.extensions["credit_score"]
    contracts = st.contracts(st.schema())
    validators = {"/predict": TypeAdapter(contracts.applicants.applicant),
                  "/predict/batch": TypeAdapter(contracts.batch), "/feedback": contracts.feedback,
                  "/model/retrain": TypeAdapter(RetrainRequest),
                  "/v2/models/{model_name}/infer": TypeAdapter(InferRequest),
                  "/v2/models/{model_name}/versions/{model_version}/infer": TypeAdapter(InferRequest)}
    bodies = {p: op["requestBody"]["content"]["application/json"]["schema"]
              for p, ops in spec["paths"].items() for op in ops.values() if "requestBody" in op}
    assert set(bodies) == set(validators)
    for path, adapter in validators.items():
        _same_schema(spec, bodies[path], adapter)
    # requests are checked with the same batch envelope, rows unchecked until routing (then the applicant model)
    envelope = batch_envelope(7, st.settings.extra_fields).model_json_schema()
    documented = _component(spec, bodies["/predict/batch"])
    assert envelope["properties"]["instances"].pop("items") == {}
    assert documented["properties"]["instances"].pop("items") == {"$ref": REF.format(model="Applicant")}
    assert envelope == documented
    assert documented["properties"]["instances"]["maxItems"] == 7


def test_documented_bodies_follow_the_configuration(schema):
    loose = build_spec(RequestContracts(ApplicantModels(schema, "ignore"), 3, "ignore"), 3, "m")
    schemas = loose["components"]["schemas"]
    assert "additionalProperties" not in schemas["Applicant"] and "additionalProperties" not in schemas["BatchRequest"]
    assert schemas["BatchRequest"]["properties"]["instances"]["maxItems"] == 3
    assert schemas["FeedbackItem"]["properties"]["outcome"]["description"].endswith("[0, 1]")
    assert loose["paths"]["/v2/models/{model_name}"]["get"]["parameters"][0]["schema"]["example"] == "m"


# ---- real answers against the documented response schemas --------------------------------------------------
def _conforms(spec: dict[str, Any], path: str, method: str, response) -> None:
    answer = spec["paths"][path][method]["responses"][str(response.status_code)]
    schema = answer["content"]["application/json"]["schema"]
    jsonschema.Draft202012Validator({**schema, "components": spec["components"]}).validate(response.json)


def test_answers_conform_to_the_documented_models(client, spec, schema):
    post = lambda path, body: client.post(path, data=json.dumps(body), content_type="application/json")  # noqa: E731
    values = [ROW[f] for f in schema.feature_names]
    infer = {"id": "i1", "inputs": [{"name": "x", "shape": [1, len(values)], "datatype": "FP64", "data": values}]}
    answers = [
        ("/health", "get", client.get("/health")), ("/ready", "get", client.get("/ready")),
        ("/v2/health/live", "get", client.get("/v2/health/live")),
        ("/v2/health/ready", "get", client.get("/v2/health/ready")),
        ("/predict", "post", post("/predict", ROW)), ("/predict", "post", post("/predict?explain=exact", ROW)),
        ("/predict", "post", post("/predict", {**ROW, "age": 300})),
        ("/predict/batch", "post", post("/predict/batch", {"instances": [ROW, ROW]})),
        ("/predict/batch", "post", post("/predict/batch", {"instances": []})),
        ("/model/info", "get", client.get("/model/info")),
        ("/model/retrain", "post", client.post("/model/retrain")),
        ("/v2/models/{model_name}", "get", client.get("/v2/models/credit-score")),
        ("/v2/models/{model_name}", "get", client.get("/v2/models/other")),
        ("/v2/models/{model_name}/ready", "get", client.get("/v2/models/credit-score/ready")),
        ("/v2/models/{model_name}/infer", "post", post("/v2/models/credit-score/infer", infer)),
        ("/v2/models/{model_name}/infer", "post", post("/v2/models/credit-score/infer", {"inputs": []})),
    ]
    for path, method, response in answers:
        _conforms(spec, path, method, response)
    statuses = [r.status_code for *_, r in answers]
    assert statuses == [200, 200, 200, 200, 200, 200, 422, 200, 422, 200, 401, 200, 404, 200, 200, 400]
