"""Property-based fuzzing (hypothesis) of every endpoint that reads a body, through the Flask test client: no
generated request may get a 5xx, and every 4xx is the JSON error body naming a field.

Generated: applicants with fields replaced, removed or added (any JSON value, integers up to 400 digits,
NaN and Infinity, nesting), batches of them, Open Inference Protocol v2 tensors with any shape, datatype and data
(JSON, and the binary extension with any header length and bytes), /feedback items and batches, /model/retrain
bodies, raw bytes and other content types. 2,000 requests in all (``EXAMPLES``), derandomized so that CI runs the
same requests every time; ``FUZZ_SEED=<n>`` explores others. A real retrain job (a stand-in training command,
tests/unit/jobs_program.py) holds the job lock, so a valid /model/retrain body gets the runner's real 409 instead
of starting a training run.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from app.config import Settings
from app.config.groups import JOB_ENV_ALLOW
from app.jobs import ProcessRunner
from tests.monitoring_helpers import wait_for
from tests.unit.test_api import ROW, TOKEN, make_app, store  # noqa: F401 (the module's registered models)

pytestmark = [pytest.mark.slow]
FEATURES = list(ROW)
EXAMPLES = {"predict": 450, "batch": 350, "v2": 550, "binary": 150, "feedback": 300, "retrain": 200}
assert sum(EXAMPLES.values()) >= 2000
FUZZ_SEED = os.environ.get("FUZZ_SEED")


def fuzz(examples: int):
    """hypothesis settings for one endpoint: derandomized unless FUZZ_SEED is given, no example database."""
    def wrap(test):
        test = settings(max_examples=examples, deadline=None, database=None, derandomize=FUZZ_SEED is None,
                        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                               HealthCheck.data_too_large])(test)
        return seed(int(FUZZ_SEED))(test) if FUZZ_SEED is not None else test
    return wrap


# ---- values ------------------------------------------------------------------------------------------------
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**400, 10**400), st.integers(-100, 100),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12))
values = st.recursive(scalars, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids,
                                                                                         max_size=3),
                      max_leaves=12)


@st.composite
def applicant(draw) -> dict:
    row = dict(ROW)
    for k in draw(st.lists(st.sampled_from(FEATURES), max_size=4, unique=True)):
        if draw(st.booleans()):
            row[k] = draw(values)
        else:
            del row[k]
    row.update(draw(st.dictionaries(st.text(max_size=10), values, max_size=2)))
    return row


tensor = st.fixed_dictionaries(
    {"name": st.sampled_from([*FEATURES, "input-0"]) | st.text(max_size=6),
     "shape": st.lists(st.integers(-2, 30), max_size=3) | st.lists(st.integers(), max_size=3) | values,
     "datatype": st.sampled_from(["FP64", "FP32", "FP16", "INT64", "INT32", "UINT8", "BOOL", "BYTES", "XX"]) | values,
     "data": st.lists(st.floats() | st.integers(-10**30, 10**30), max_size=30) | st.lists(values, max_size=4)},
    optional={"parameters": values | st.fixed_dictionaries({"binary_data_size": st.integers(-5, 500)})})
infer_body = st.fixed_dictionaries(
    {"inputs": st.lists(tensor, max_size=3) | values},
    optional={"id": values, "parameters": values | st.fixed_dictionaries({"binary_data_output": values}),
              "outputs": st.lists(st.fixed_dictionaries({"name": st.text(max_size=12)},
                                                        optional={"parameters": values}), max_size=3) | values})
feedback_item = st.fixed_dictionaries({"prediction_id": st.text(max_size=170) | values, "outcome": values},
                                      optional={"observed_at": st.text(max_size=30) | values, "extra": values})
content_types = st.sampled_from(["application/json", "application/json", "application/json", "text/plain",
                                 "application/problem+json", "multipart/form-data", ""])


def encode(body) -> bytes:
    return json.dumps(body, allow_nan=True).encode()


def raw_or(strategy):
    """The body as JSON text, or (now and then) bytes that are not JSON, or a number past any limit."""
    return st.one_of(strategy.map(encode), strategy.map(encode), strategy.map(encode), st.binary(max_size=64),
                     st.integers(1, 6000).map(lambda n: ("9" * n).encode()))


# ---- the service -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def client(store, tmp_path_factory):  # noqa: F811 (store: the module's copy of test_api's registered models)
    """The app with its store and job state in a tmp dir, and a running stand-in retrain job holding the lock."""
    tmp = tmp_path_factory.mktemp("fuzz")
    state_dir = tmp / "jobs"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FAKE_TRAIN_COMMAND", json.dumps([sys.executable, "-c", "import time; time.sleep(600)"]))
        mp.setenv("FAKE_TRAIN_OBSERVED", str(tmp / "observed"))
        mp.setenv("PYTHONPATH", os.pathsep.join([str(Path(__file__).parents[2]), os.environ.get("PYTHONPATH", "")]))
        runner = ProcessRunner(Settings(models_dir=store / "models", state_dir=state_dir,
                                        job_env_allow=[*JOB_ENV_ALLOW, "FAKE_*"]),  # the stand-in's variables
                               program="tests.unit.jobs_program")
        job = runner.start("fuzz")
    try:
        assert wait_for(lambda: runner.read_status(job.id).status == "running")
        app = make_app(store, state_dir=state_dir, feedback_token="fuzz-feedback-token-0123",
                       store_url=f"sqlite:///{tmp / 'predictions.db'}", max_batch_rows=50)
        yield app.test_client()
        app.extensions["credit_score"].writer.close()
    finally:
        runner.stop(job.id, timeout=5)


def check(r) -> None:
    """No 5xx; a 4xx is the JSON error body with at least one field named."""
    assert r.status_code < 500, (r.status_code, r.get_data(as_text=True)[:500])
    if r.status_code >= 400:
        body = r.get_json(silent=True)
        assert isinstance(body, dict) and body.get("error") and body["details"][0]["field"], r.get_data()[:300]


def send(client, path, data: bytes, ctype: str, headers: dict | None = None):
    r = client.post(path, data=data, headers={**({"Content-Type": ctype} if ctype else {}), **(headers or {})})
    check(r)
    return r


@fuzz(EXAMPLES["predict"])
@given(data=raw_or(applicant() | values), ctype=content_types,
       explain=st.sampled_from(["", "?explain=fast", "?explain=exact", "?explain=none", "?explain=%00"]))
def test_predict(client, data, ctype, explain):
    send(client, "/predict" + explain, data, ctype)


@fuzz(EXAMPLES["batch"])
@given(data=raw_or(st.fixed_dictionaries({"instances": st.lists(applicant(), max_size=4) | values})
                   | st.fixed_dictionaries({"rows": st.lists(applicant(), max_size=4) | values})
                   | st.dictionaries(st.text(max_size=10), values, max_size=3)),
       ctype=content_types, explain=st.sampled_from(["", "?explain=fast", "?explain=exact", "?explain=bad"]))
def test_predict_batch(client, data, ctype, explain):
    send(client, "/predict/batch" + explain, data, ctype)


@fuzz(EXAMPLES["v2"])
@given(data=raw_or(infer_body | values), ctype=content_types,
       path=st.sampled_from(["/v2/models/credit-score/infer", "/v2/models/credit-score/versions/1/infer",
                             "/v2/models/other/infer"]))
def test_v2_infer_json(client, data, ctype, path):
    send(client, path, data, ctype)


@fuzz(EXAMPLES["binary"])
@given(head=infer_body.map(encode), tail=st.binary(max_size=400),
       declared=st.integers(-3, 600) | st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=5),
       ctype=st.sampled_from(["application/octet-stream", "application/json", ""]))
def test_v2_infer_binary_extension(client, head, tail, declared, ctype):
    send(client, "/v2/models/credit-score/infer", head + tail, ctype,
         {"Inference-Header-Content-Length": str(declared)})


@fuzz(EXAMPLES["feedback"])
@given(data=raw_or(feedback_item | st.fixed_dictionaries({"outcomes": st.lists(feedback_item, max_size=4) | values})
                   | values), ctype=content_types,
       auth=st.sampled_from(["Bearer fuzz-feedback-token-0123", f"Bearer {TOKEN}", "Bearer wrong", "Basic x", ""]))
def test_feedback(client, data, ctype, auth):
    send(client, "/feedback", data, ctype, {"Authorization": auth} if auth else {})


@fuzz(EXAMPLES["retrain"])
@given(data=raw_or(st.fixed_dictionaries({}, optional={"reason": values | st.text(max_size=300), "x": values})
                   | values) | st.just(b""), ctype=content_types,
       auth=st.sampled_from([f"Bearer {TOKEN}", f"Bearer {TOKEN}", "Bearer wrong", ""]))
def test_retrain(client, data, ctype, auth):
    r = send(client, "/model/retrain", data, ctype, {"Authorization": auth} if auth else {})
    assert r.status_code != 202, "a fuzzed body started a retrain job while one holds the lock"


def test_still_healthy_after_the_fuzzing(client):
    assert client.get("/health").status_code == 200 and client.get("/ready").status_code == 200
    assert math.isfinite(client.post("/predict", json=ROW).get_json()["probability"])
