"""The real service (`credit-score serve`, gunicorn, 2 workers) on a lender's own schema: a champion trained on the
seeded loan applications (text categories, nulls, string classes), then /predict, an unknown category,
/openapi.json, /v2 with BYTES inputs and /predict/batch over HTTP. (tests/unit/test_api_loan.py covers the same
paths in-process, in depth.)"""

from __future__ import annotations

import json

import pytest

from app.config import Settings
from app.core.schema import DatasetSchema
from app.core.validate import rename_source_columns
from app.datasets import generate_loan_applications
from app.registry import Registry
from tests.conftest import SCHEMAS
from tests.helpers import fit_bundle, register_bundle
from tests.integration.test_serve_gunicorn import Server, http, server_env
from tests.tools import free_port
from tests.unit.test_api_loan import NULLS, ROW, TEXT

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def server(tmp_path):
    schema = DatasetSchema.load(SCHEMAS / "loan_applications.yaml")
    frame = rename_source_columns(generate_loan_applications(5000, seed=3), schema)
    settings = Settings(models_dir=tmp_path / "models", reports_dir=tmp_path / "reports")
    Registry(settings).promote(register_bundle(settings, fit_bundle(schema, frame), tmp_path), "champion")
    s = Server(server_env(tmp_path), free_port(), tmp_path / "server.log")
    yield s, schema
    s.stop()


def test_a_loan_champion_over_http(server):
    s, schema = server
    status, body, _ = http("POST", s.base + "/predict", ROW)
    out = json.loads(body)
    assert status == 200 and out["prediction"] in ("repaid", "charged off"), out
    assert out["reason_codes"] and all(rc["value"] == ROW[rc["feature"]] for rc in out["reason_codes"])
    status, body, _ = http("POST", s.base + "/predict", {**ROW, "loan_purpose": "holiday"})
    detail = json.loads(body)["details"][0]
    assert status == 422 and detail["field"] == "loan_purpose" and "'home/improvement'" in detail["problem"]
    spec = json.loads(http("GET", s.base + "/openapi.json")[1])
    props = spec["components"]["schemas"]["Applicant"]["properties"]
    assert props["region"]["enum"] == schema.feature("region").categories
    assert {"type": "null"} in props["employment_type"]["anyOf"]
    inputs = [{"name": f.name, "datatype": "BYTES" if f.name in TEXT else "FP64", "shape": [2],
               "data": [ROW[f.name], NULLS[f.name]]} for f in schema.features]
    status, body, _ = http("POST", s.base + "/v2/models/credit-score/infer", {"inputs": inputs})
    assert status == 200, body[:300]
    probability = next(o["data"] for o in json.loads(body)["outputs"] if o["name"] == "probability")
    status, body, _ = http("POST", s.base + "/predict/batch", {"instances": [ROW, NULLS]})
    assert status == 200 and [p["probability"] for p in json.loads(body)["predictions"]] == probability
    assert probability[0] == out["probability"]
