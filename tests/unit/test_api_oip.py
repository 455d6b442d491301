"""/v2 inference as the Open Inference Protocol's clients send it, in-process: JSON with or without a
Content-Type, the binary tensor data extension in and out, and every malformed variant as a 4xx naming the
field. (tests/integration/test_oip_clients.py runs the real tritonclient and KServe clients against gunicorn.)
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.registry import Registry
from app.serving.matrix_validation import validate_matrix
from app.serving.validation import ApplicantModels, RequestError
from tests.conftest import clear_mlflow_env, make_settings
from tests.helpers import fit_bundle, register_bundle
from tests.unit.test_api import ROW, make_app, post

URL = "/v2/models/credit-score/infer"
HEADER = "Inference-Header-Content-Length"


@pytest.fixture(scope="module")
def client(tmp_path_factory, schema, small_frame):
    """An XGBoost champion (version 1) in a real MLflow store."""
    clear_mlflow_env()
    tmp = tmp_path_factory.mktemp("oip-store")
    settings = make_settings(tmp)
    Registry(settings).promote(register_bundle(settings, fit_bundle(schema, small_frame), tmp), "champion")
    return make_app(tmp).test_client()


@pytest.fixture(scope="module")
def rows(schema, small_frame):
    """Three applicants in feature order, the first the ROW of test_api, two with undocumented (remapped) codes."""
    X = small_frame[schema.feature_names].to_numpy(dtype=np.float64)[:3].copy()  # noqa: N806
    X[0] = [ROW[f] for f in schema.feature_names]
    X[1, schema.feature_names.index("education")] = 5  # treated as 4
    X[2, schema.feature_names.index("marriage")] = 0  # treated as 3
    return X


def predict_probabilities(client, schema, X):  # noqa: N803
    out = []
    for row in X:
        body = {f: (int(v) if float(v).is_integer() else float(v)) for f, v in zip(schema.feature_names, row,
                                                                                     strict=True)}
        r = post(client, "/predict?explain=none", body)
        assert r.status_code == 200, r.json
        out.append(r.json["probability"])
    return out


def binary_request(inputs, outputs=None, parameters=None, **extra):
    """(body, headers) of the binary tensor data extension: [(name, datatype, array)] sent as raw bytes."""
    head = {"inputs": [{"name": n, "datatype": dt, "shape": list(a.shape),
                        "parameters": {"binary_data_size": a.nbytes}} for n, dt, a in inputs], **extra}
    if outputs is not None:
        head["outputs"] = outputs
    if parameters is not None:
        head["parameters"] = parameters
    header = json.dumps(head).encode()
    return header + b"".join(a.tobytes() for _, _, a in inputs), {HEADER: str(len(header))}


def parse_answer(r):
    """The response's JSON header and each output's values, binary ones decoded."""
    if HEADER not in r.headers:
        head = r.json
        return head, {o["name"]: o["data"] for o in head["outputs"]}
    assert r.mimetype == "application/octet-stream"
    n = int(r.headers[HEADER])
    head, rest, values = json.loads(r.data[:n]), r.data[n:], {}
    for o in head["outputs"]:
        size = o.get("parameters", {}).get("binary_data_size")
        if size is None:
            values[o["name"]] = o["data"]
            continue
        chunk, rest = rest[:size], rest[size:]
        if o["datatype"] == "BYTES":
            labels = []
            while chunk:
                k = int(np.frombuffer(chunk[:4], "<u4")[0])
                labels.append(chunk[4:4 + k].decode())
                chunk = chunk[4 + k:]
            values[o["name"]] = labels
        else:
            values[o["name"]] = np.frombuffer(chunk, "<f8").tolist()
    assert rest == b""
    return head, values


# ---- JSON without a Content-Type ------------------------------------------------------------------------
@pytest.mark.parametrize("ctype", [None, "application/octet-stream", "application/json",
                                   "application/x-www-form-urlencoded"])  # curl -d's label
def test_json_body_with_or_without_content_type(client, schema, rows, ctype):
    body = json.dumps({"id": "r1", "inputs": [{"name": "x", "datatype": "FP64", "shape": [3, 23],
                                               "data": rows.tolist()}]})
    r = client.post(URL, data=body, headers={"Content-Type": ctype} if ctype else {})
    assert r.status_code == 200, r.json
    assert r.mimetype == "application/json" and HEADER not in r.headers
    head, values = parse_answer(r)
    assert head["id"] == "r1" and [o["name"] for o in head["outputs"]] == ["prediction", "probability"]
    assert values["probability"] == predict_probabilities(client, schema, rows)


def test_other_content_types_are_415_and_predict_keeps_its_rule(client):
    body = json.dumps({"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 23], "data": [1] * 23}]})
    r = client.post(URL, data=body, content_type="text/plain")
    assert r.status_code == 415 and r.json["details"][0]["field"] == "Content-Type"
    r = client.post("/predict", data=json.dumps(ROW))  # no Content-Type: /predict still wants application/json
    assert r.status_code == 415 and r.json["details"][0]["field"] == "Content-Type"


# ---- the binary tensor data extension --------------------------------------------------------------------
@pytest.mark.parametrize("dtype, datatype", [("<f8", "FP64"), ("<f4", "FP32"), ("<i8", "INT64"), ("<i4", "INT32")])
def test_binary_matrix_in_binary_out(client, schema, rows, dtype, datatype):
    body, headers = binary_request([("x", datatype, rows.astype(dtype))], parameters={"binary_data_output": True},
                                   id="b1")
    r = client.post(URL, data=body, headers=headers)  # tritonclient sends no Content-Type
    assert r.status_code == 200, r.data[:300]
    head, values = parse_answer(r)
    assert head["id"] == "b1" and all("data" not in o for o in head["outputs"])
    assert values["probability"] == pytest.approx(predict_probabilities(client, schema, rows), abs=5e-7)
    assert values["prediction"] == [str(v) for v in post(client, URL, {"inputs": [
        {"name": "x", "datatype": "FP64", "shape": [3, 23], "data": rows.tolist()}]}).json["outputs"][0]["data"]]


def test_binary_per_feature_tensors_mixed_with_json_and_outputs_chosen(client, schema, rows):
    names = schema.feature_names
    inputs = [{"name": f, "datatype": "FP64", "shape": [3], "data": rows[:, j].tolist()}
              for j, f in enumerate(names) if j % 2]
    binary = [(f, "INT64", rows[:, j].astype("<i8")) for j, f in enumerate(names) if not j % 2]
    body, headers = binary_request(binary, outputs=[{"name": "probability", "parameters": {"binary_data": True}},
                                                    {"name": "prediction"}])
    head_json = json.loads(body[:int(headers[HEADER])])
    head_json["inputs"] += inputs
    header = json.dumps(head_json).encode()
    body = header + body[int(headers[HEADER]):]
    r = client.post(URL, data=body, headers={HEADER: str(len(header)), "Content-Type": "application/octet-stream"})
    assert r.status_code == 200, r.data[:300]
    head, values = parse_answer(r)
    assert [o["name"] for o in head["outputs"]] == ["probability", "prediction"]
    assert "data" in head["outputs"][1] and "parameters" in head["outputs"][0]
    assert values["probability"] == pytest.approx(predict_probabilities(client, schema, rows), abs=5e-7)


def test_json_inputs_binary_outputs_and_json_outputs_by_choice(client, rows):
    inputs = [{"name": "x", "datatype": "FP64", "shape": [3, 23], "data": rows.tolist()}]
    r = post(client, URL, {"inputs": inputs, "parameters": {"binary_data_output": True}})
    assert r.status_code == 200 and HEADER in r.headers
    r = post(client, URL, {"inputs": inputs, "parameters": {"binary_data_output": True},
                           "outputs": [{"name": "probability", "parameters": {"binary_data": False}}]})
    assert r.status_code == 200 and HEADER not in r.headers
    assert [o["name"] for o in r.json["outputs"]] == ["probability"]


def test_ten_thousand_binary_rows_in_one_request(client, rows):
    X = np.repeat(rows, 3334, axis=0)[:10_000]  # noqa: N806
    body, headers = binary_request([("x", "FP64", X)], parameters={"binary_data_output": True})
    r = client.post(URL, data=body, headers=headers)
    assert r.status_code == 200, r.data[:300]
    _, values = parse_answer(r)
    assert len(values["probability"]) == 10_000 and values["probability"][:3] == values["probability"][3:6]


# ---- malformed requests: a 4xx naming the field, never a 500 ---------------------------------------------
def _matrix(n=1):
    return np.array([[ROW[f] for f in ROW]] * n, dtype="<f8")


def _bad(case):
    X = _matrix()  # noqa: N806
    body, headers = binary_request([("x", "FP64", X)])
    n = int(headers[HEADER])
    if case == "header not a number":
        return body, {HEADER: "abc"}
    if case == "header zero":
        return body, {HEADER: "0"}
    if case == "header past the body":
        return body, {HEADER: str(len(body) + 1)}
    if case == "header cuts the JSON":
        return body, {HEADER: str(n - 3)}
    if case == "body shorter":
        return body[:-8], headers
    if case == "body longer":
        return body + b"\0" * 8, headers
    head = json.loads(body[:n])
    if case == "size mismatch":
        head["inputs"][0]["parameters"]["binary_data_size"] = 8 * 22
    elif case == "size negative":
        head["inputs"][0]["parameters"]["binary_data_size"] = -1
    elif case == "data and binary":
        head["inputs"][0]["data"] = [1] * 23
    elif case == "neither data nor binary":
        del head["inputs"][0]["parameters"]
    elif case == "BYTES":
        head["inputs"][0]["datatype"] = "BYTES"
    elif case == "shared memory":
        head["inputs"][0]["parameters"]["shared_memory_region"] = "r0"
    elif case == "unknown output":
        head["outputs"] = [{"name": "score"}]
    elif case == "classification":
        head["outputs"] = [{"name": "probability", "parameters": {"classification": 2}}]
    elif case == "binary without header":
        return json.dumps(head).encode(), {}
    header = json.dumps(head).encode()
    return header + body[n:], {HEADER: str(len(header))}


@pytest.mark.parametrize("case, status, field", [
    ("header not a number", 400, HEADER),
    ("header zero", 400, HEADER),
    ("header past the body", 400, HEADER),
    ("header cuts the JSON", 400, "$"),
    ("body shorter", 400, "inputs[0].parameters.binary_data_size"),
    ("body longer", 400, HEADER),
    ("size mismatch", 400, "inputs[0].parameters.binary_data_size"),
    ("size negative", 400, "inputs[0].parameters.binary_data_size"),
    ("data and binary", 400, "inputs[0].data"),
    ("neither data nor binary", 400, "inputs[0].data"),
    ("BYTES", 422, "inputs[0].datatype"),
    ("shared memory", 400, "inputs[0].parameters.shared_memory_region"),
    ("unknown output", 400, "outputs[0].name"),
    ("classification", 400, "outputs[0].parameters.classification"),
    ("binary without header", 400, HEADER),
])
def test_malformed_binary_requests(client, case, status, field):
    body, headers = _bad(case)
    r = client.post(URL, data=body, headers=headers)
    assert r.status_code == status and r.mimetype == "application/json", (r.status_code, r.data[:300])
    assert r.json["details"][0]["field"] == field, r.json
    if case == "BYTES":
        assert "'x'" in r.json["error"]


@pytest.mark.parametrize("j, value, field, problem", [
    (11, np.nan, "inputs[0].data[11]", "finite numbers only"),
    (11, np.inf, "inputs[0].data[11]", "finite numbers only"),
    (0, -5.0, "rows[0].limit_bal", "greater than or equal"),
    (4, 30.5, "rows[0].age", "integer"),
])
def test_binary_values_meet_the_schema(client, j, value, field, problem):
    X = _matrix()  # noqa: N806
    X[0, j] = value
    body, headers = binary_request([("x", "FP64", X)])
    r = client.post(URL, data=body, headers=headers)
    assert r.status_code == 422 and r.json["details"][0]["field"] == field, r.json
    assert problem in r.json["details"][0]["problem"]


def test_compressed_bodies_are_415(client):
    body, headers = binary_request([("x", "FP64", _matrix())])
    r = client.post(URL, data=body, headers={**headers, "Content-Encoding": "gzip"})
    assert r.status_code == 415 and r.json["details"][0]["field"] == "Content-Encoding"


# ---- the vectorised schema rules equal the applicant model's -----------------------------------------------
def test_matrix_validation_matches_the_applicant_model(schema, small_frame):
    models = ApplicantModels(schema)
    X = small_frame[schema.feature_names].to_numpy(dtype=np.float64)[:500].copy()  # noqa: N806
    X = X[~np.isnan(X).any(axis=1)]  # noqa: N806 (tensors carry no missing values)
    X[::7, schema.feature_names.index("education")] = 0  # undocumented codes, remapped
    X[::5, schema.feature_names.index("marriage")] = 0
    rows = [{f: (int(v) if schema.features[j].type != "numeric" and float(v).is_integer() else float(v))
             for j, (f, v) in enumerate(zip(schema.feature_names, row, strict=True))} for row in X]
    assert np.array_equal(validate_matrix(models, X), models.parse_many(rows))
    bad = X.copy()
    bad[3, schema.feature_names.index("age")] = 30.5  # an integer feature
    bad[9, schema.feature_names.index("sex")] = 7  # not a code
    with pytest.raises(RequestError) as e:
        validate_matrix(models, bad)
    assert e.value.status == 422 and [d["field"] for d in e.value.details] == ["rows[3].age", "rows[9].sex"]


@pytest.mark.parametrize("value, index", [(True, 3), ("7", 3), (None, 3), (10 ** 400, 3), ([1, 2], 4)])
def test_json_tensor_values_are_numbers(client, value, index):
    data = [[ROW[f] for f in ROW]]
    data[0][3] = value
    r = post(client, URL, {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 23], "data": data}]})
    if isinstance(value, list):  # one value too many for the shape
        assert r.status_code == 400 and r.json["details"][0]["field"] == "inputs[0].data", r.json
    else:
        assert r.status_code == 422 and r.json["details"][0]["field"] == f"inputs[0].data[{index}]", r.json


def test_versioned_routes_serve_the_champion_version_only(client, rows):
    """tritonclient calls /v2/models/<name>/versions/<v>/... when given a model_version."""
    assert client.get("/v2/models/credit-score/versions/1").json["versions"] == ["1"]
    assert client.get("/v2/models/credit-score/versions/1/ready").json["ready"] is True
    body, headers = binary_request([("x", "FP64", rows)])
    r = client.post("/v2/models/credit-score/versions/1/infer", data=body, headers=headers)
    assert r.status_code == 200 and r.json["model_version"] == "1"
    for path in ("", "/ready"):
        r = client.get(f"/v2/models/credit-score/versions/9{path}")
        assert r.status_code == 404 and r.json["details"][0]["field"] == "model_version"
    r = client.post("/v2/models/credit-score/versions/9/infer", data=body, headers=headers)
    assert r.status_code == 404 and r.json["details"][0]["field"] == "model_version"


def test_openapi_documents_the_binary_extension(client):
    spec = client.get("/openapi.json").json
    for path in ("/v2/models/{model_name}/infer", "/v2/models/{model_name}/versions/{model_version}/infer"):
        op = spec["paths"][path]["post"]
        assert set(op["requestBody"]["content"]) == {"application/json", "application/octet-stream"}
        assert HEADER in op["requestBody"]["description"]
        assert any(p["name"] == HEADER and p["in"] == "header" for p in op["parameters"])
        ok = op["responses"]["200"]
        assert set(ok["content"]) == {"application/json", "application/octet-stream"} and HEADER in ok["headers"]
