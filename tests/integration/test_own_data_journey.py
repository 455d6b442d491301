"""A lender's own data, end to end (issue 13, acceptance 1 and 2): the seeded loan applications as exported
(column names with spaces and brackets, string categories with spaces, slashes and accents, nulls, a string
target), binary and three-class. For each: `credit-score data validate`, `credit-score train` (the whole default
grid, small models) into a throw-away registry, the real service (`credit-score serve`: gunicorn, 2 workers) on
the champion it registered: /predict with string categories and reason codes, an unknown category (422),
/openapi.json, /v2 with BYTES inputs, /predict/batch; `credit-score predict` on the training file's own format
without the target; a shifted window scored through the service, its outcomes posted to /feedback, and
`credit-score monitor` flagging the shifted string feature with fairness by the string protected attribute.
The binary case is then read in depth (bundle, registry tags, profile, drift). Seconds of training each:
`make test`, not the inner loop."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from app.config import PROJECT_ROOT
from app.core.safe_skops import FEATURES_ALLOWED, MODEL_ALLOWED, schema_types
from app.core.schema import DatasetSchema
from app.core.validate import rename_source_columns, validate
from app.datasets import generate_loan_applications
from app.monitoring.drift import drift_report
from app.registry import CHAMPION, Registry
from tests.cli_runner import invoke_cli
from tests.conftest import make_settings, small_training_config
from tests.integration.test_serve_gunicorn import Server, http, server_env
from tests.monitoring_helpers import wait_for
from tests.stores import seed_mlflow_store
from tests.tools import free_port
from tests.unit.test_api_loan import NULLS, ROW, TEXT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCHEMAS = PROJECT_ROOT / "data" / "schemas"
ROWS = 5000
FEEDBACK = "feedback-token-for-the-journey"
CASES = {"binary": ("loan_applications.yaml", 2, ["repaid", "charged off"]),
         "three_class": ("loan_applications_3class.yaml", 3, ["repaid", "repaid late", "charged off"])}


class Journey:
    """One lender's file through validate and train (in this process, as the CLI), then served by gunicorn."""

    def __init__(self, root: Path, case: str):
        schema_file, self.n_classes, self.classes = CASES[case]
        self.schema_path = SCHEMAS / schema_file
        self.schema = DatasetSchema.load(self.schema_path)
        self.root = root
        self.data = root / "loan applications.csv"
        self.frame = generate_loan_applications(ROWS, seed=3, classes=self.n_classes)
        self.frame.to_csv(self.data, index=False)
        config = root / "training.yaml"
        config.write_text(yaml.safe_dump(small_training_config().model_dump(include={
            "cv_folds", "random_forest", "xgboost", "classifiers", "samplers"})))
        seed_mlflow_store(root / "models" / "mlflow.db")
        self.env = server_env(root, CREDIT_SCORE_N_JOBS="2", CREDIT_SCORE_FEEDBACK_TOKEN=FEEDBACK,
                              CREDIT_SCORE_STORE_FLUSH_INTERVAL="0.2", CREDIT_SCORE_LOG_LEVEL="WARNING")
        self.validated = invoke_cli(["data", "validate", "--data", self.data, "--schema", self.schema_path,
                                     "--json"], env=self.env)
        self.run = invoke_cli(["train", "--config", config, "--data", self.data, "--schema", self.schema_path,
                               "--json", "-q"], env=self.env)
        self.settings = make_settings(root)
        self.server: Server | None = None

    @property
    def result(self) -> dict:
        assert self.run.returncode == 0 and "Traceback" not in self.run.stderr, self.run.stdout + self.run.stderr
        return json.loads(self.run.stdout)

    def serve(self) -> Server:
        if self.server is None:
            self.result  # noqa: B018 (a failed training fails here, with its output)
            self.server = Server(self.env, free_port(), self.root / "server.log")
        return self.server

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


@pytest.fixture(scope="module")
def binary(tmp_path_factory):
    j = Journey(tmp_path_factory.mktemp("loans"), "binary")
    yield j
    j.stop()


@pytest.fixture(scope="module")
def three_class(tmp_path_factory):
    j = Journey(tmp_path_factory.mktemp("loans3"), "three_class")
    yield j
    j.stop()


@pytest.fixture(params=list(CASES))
def journey(request) -> Journey:
    return request.getfixturevalue(request.param)


def _instances(frame: pd.DataFrame, names: list[str]) -> list[dict]:
    """Rows as a client would send them: the values as given, null where missing."""
    rows = frame[names].astype(object).where(frame[names].notna(), None).to_dict("records")
    return [{k: (v.item() if isinstance(v, np.generic) else v) for k, v in r.items()} for r in rows]


def _window(schema: DatasetSchema, n_classes: int, seed: int, unemployed: float = 0.0) -> pd.DataFrame:
    """A window of new applications (schema names, the values as given), a share of them moved to unemployed."""
    raw = rename_source_columns(generate_loan_applications(3000, seed=seed, classes=n_classes), schema)
    if unemployed:
        hit = np.random.default_rng(seed).random(len(raw)) < unemployed
        raw.loc[hit, "employment_type"] = "unemployed"
    return raw


# ---- the journey, binary and three-class ------------------------------------------------------------------------
def test_the_lenders_file_validates_as_exported(journey):
    proc = journey.validated
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] and report["rows_in"] == ROWS
    assert not [p for p in report["problems"] if p["code"] == "missing_column"]


def test_the_whole_grid_trains_registers_and_is_gated(journey):
    result = journey.result
    assert len(result["grid"]) == 10 and not [g["label"] for g in result["grid"] if g["error"]]
    assert result["version"] == "1" and result["alias"] == CHAMPION
    assert result["gate"]["passed"], result["gate"]["reasons"]
    assert result["holdout"]["roc_auc"] > 0.7
    if journey.n_classes == 2:
        assert 0 < result["threshold"] < 1
    else:
        assert result["threshold"] is None and result["holdout"]["f1_macro"] > 0.45
    html = Path(result["report"]).read_text(encoding="utf-8")
    fairness = html[html.index("Fairness"):]
    for group in ("female", "male", "non-binary"):  # fairness by the string protected attribute
        assert f"<td>{group}</td>" in fairness, group
    assert "<img" in html and all(c in html for c in journey.classes)


def test_the_service_scores_string_categories_with_reason_codes(journey):
    s = journey.serve()
    status, body, _ = http("POST", s.base + "/predict", ROW)
    out = json.loads(body)
    assert status == 200 and out["prediction"] in journey.classes, out
    assert out["model"]["version"] == "1"
    assert out["reason_codes"] and all(rc["value"] == ROW[rc["feature"]] for rc in out["reason_codes"])
    assert {rc["feature"] for rc in out["reason_codes"]} <= set(journey.schema.feature_names)


def test_an_unknown_category_is_a_422_naming_the_field_and_the_allowed_values(journey):
    s = journey.serve()
    status, body, _ = http("POST", s.base + "/predict", {**ROW, "loan_purpose": "holiday"})
    detail = json.loads(body)["details"][0]
    assert status == 422 and detail["field"] == "loan_purpose", body
    assert "'holiday'" in detail["problem"] and "'home/improvement'" in detail["problem"]
    assert http("GET", s.base + "/ready")[0] == 200


def test_openapi_lists_the_real_categories(journey):
    spec = json.loads(http("GET", journey.serve().base + "/openapi.json")[1])
    props = spec["components"]["schemas"]["Applicant"]["properties"]
    assert props["region"]["enum"] == journey.schema.feature("region").categories
    assert "Zürich" in props["region"]["enum"]
    assert {"type": "null"} in props["employment_type"]["anyOf"]


def test_v2_bytes_inputs_score_as_the_batch_endpoint(journey):
    s = journey.serve()
    inputs = [{"name": f.name, "datatype": "BYTES" if f.name in TEXT else "FP64", "shape": [2],
               "data": [ROW[f.name], NULLS[f.name]]} for f in journey.schema.features]
    status, body, _ = http("POST", s.base + "/v2/models/credit-score/infer", {"inputs": inputs})
    assert status == 200, body[:300]
    outputs = {o["name"]: o["data"] for o in json.loads(body)["outputs"]}
    status, body, _ = http("POST", s.base + "/predict/batch", {"instances": [ROW, NULLS]})
    preds = json.loads(body)["predictions"]
    assert status == 200 and [p["probability"] for p in preds] == outputs["probability"]
    assert [p["prediction"] for p in preds] == outputs["prediction"]
    assert set(outputs["prediction"]) <= set(journey.classes)


def test_batch_scoring_in_the_training_files_own_format(journey, tmp_path):
    """`credit-score predict` on the lender's column names, the target dropped: columns and order kept,
    predictions in the schema's class labels, the service's probability of the bad class (one column per class
    for a multiclass schema)."""
    exported = journey.frame.drop(columns=[journey.schema.target.source]).head(300)
    inp, out = tmp_path / "new applications.csv", tmp_path / "scored.csv"
    exported.to_csv(inp, index=False)
    proc = invoke_cli(["predict", "-i", inp, "-o", out, "-q"], env=journey.env)
    assert proc.returncode == 0 and "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    scored = pd.read_csv(out, keep_default_na=False, na_values=[""])
    probability = ["probability"] if journey.n_classes == 2 else [f"probability_{c}" for c in journey.classes]
    assert list(scored.columns) == [*exported.columns, "prediction", *probability]
    assert set(scored["prediction"]) <= set(journey.classes) and scored[probability].stack().between(0, 1).all()
    bad = scored["probability" if journey.n_classes == 2 else "probability_charged off"]
    names = journey.schema.feature_names
    head = _instances(rename_source_columns(exported.head(5), journey.schema), names)
    status, body, _ = http("POST", journey.serve().base + "/predict/batch?explain=none", {"instances": head})
    assert status == 200
    served = [p["probability"] for p in json.loads(body)["predictions"]]
    assert np.allclose(served, bad.head(5), atol=1e-6)


def test_the_monitor_flags_the_shifted_string_feature_from_live_traffic(journey):
    """A shifted window (40 % of applicants now unemployed) scored through the service, its outcomes posted to
    /feedback; `credit-score monitor` reads the prediction store: employment_type drifts, nothing else, and the
    fairness table groups by the string values of gender."""
    s = journey.serve()
    names = journey.schema.feature_names
    window = _window(journey.schema, journey.n_classes, seed=22, unemployed=0.4)
    rows = _instances(window, names)
    outcomes = window[journey.schema.target.name].tolist()
    sent: list[tuple[str, str]] = []
    for start in range(0, len(rows), 1000):
        status, body, _ = http("POST", s.base + "/predict/batch?explain=none", {"instances": rows[start:start + 1000]},
                               timeout=60)
        assert status == 200, body[:300]
        answer = json.loads(body)
        sent += [(f"{answer['prediction_id']}/{i}", outcomes[start + i]) for i in range(len(answer["predictions"]))]
    from app.monitoring.store import PredictionStore

    store = PredictionStore(f"sqlite:///{journey.root / 'models' / 'predictions.db'}")
    assert wait_for(lambda: store.count() >= len(rows), 30)
    for start in range(0, len(sent), 1000):
        body = {"outcomes": [{"prediction_id": p, "outcome": o} for p, o in sent[start:start + 1000]]}
        status, out, _ = http("POST", s.base + "/feedback", body, {"Authorization": f"Bearer {FEEDBACK}"})
        assert status == 200 and json.loads(out)["recorded"] == len(body["outcomes"]), out[:300]
    proc = invoke_cli(["monitor", "--json", "--dry-run"], env=journey.env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["drift"]["drifted"] == ["employment_type"], summary["drift"]
    gender = {f["group"]: f for f in summary["fairness"] if f["feature"] == "gender"}
    assert set(gender) == {"female", "male", "non-binary"}
    assert sum(g["rows"] for g in gender.values()) >= len(rows)  # with the few rows the other tests scored
    assert sum(g["labelled"] for g in gender.values()) == len(rows)


# ---- the binary case in depth -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def champion(binary):
    binary.result  # noqa: B018
    return Registry(binary.settings).load(CHAMPION)


def test_the_registered_bundle_loads_through_the_allow_list_with_a_string_profile(binary, champion):
    loans = binary.schema
    info, bundle = champion
    assert info.version == "1" and bundle.schema.sha256 == loans.sha256
    profile = bundle.reference_profile
    job = profile["features"]["employment_type"]
    assert job["categories"][:-1] == loans.feature("employment_type").categories
    assert "café owner" in job["categories"] and job["missing_rate"] > 0.01
    purpose = profile["features"]["loan_purpose"]
    assert purpose["categories"][-1] == "(other)"  # "other" is a category: the bucket gets another name
    assert purpose["counts"][-1] == 0 and sum(purpose["expected"]) == pytest.approx(1)
    assert profile["features"]["annual_income"]["missing_rate"] > 0.01
    # the registry loaded it through app.core.safe_skops; its files name only allow-listed types
    stored = Registry(binary.settings).bundle_path(info.version)
    assert {t for _, t in schema_types(stored / "features.skops")} <= set().union(*FEATURES_ALLOWED.values())
    if (stored / "model.skops").exists():
        assert {t for _, t in schema_types(stored / "model.skops")} <= set().union(*MODEL_ALLOWED.values())
    fresh = rename_source_columns(generate_loan_applications(50, seed=99).drop(columns=["Loan Status"]), loans)
    clean, report = validate(fresh, loans, require_target=False)
    assert report.ok
    proba = bundle.predict_proba(clean[loans.feature_names].to_numpy())
    assert proba.shape == (50, 2) and np.allclose(proba.sum(axis=1), 1)


def test_registry_tags_name_the_schema(binary):
    from mlflow import MlflowClient

    client = MlflowClient(binary.settings.tracking_uri, registry_uri=binary.settings.registry_uri)
    tags = client.get_model_version(binary.settings.model_name, binary.result["version"]).tags
    assert tags["schema_name"] == "loan_applications" and tags["schema_sha256"] == binary.schema.sha256
    assert tags["gate_passed"] == "true"


def test_drift_reads_codes_and_values_as_given_alike(binary, champion):
    loans = binary.schema
    profile = champion[1].reference_profile
    names = loans.feature_names
    for raw, expect in ((_window(loans, 2, 21), []), (_window(loans, 2, 22, unemployed=0.4), ["employment_type"])):
        raw = raw.drop(columns=[loans.target.name])
        clean, _ = validate(raw, loans, require_target=False)
        as_codes = drift_report(profile, clean[names].to_numpy(), names)
        as_text = drift_report(profile, raw[names].to_numpy(dtype=object), names)  # the values as given
        assert as_codes["drifted"] == expect and as_text["drifted"] == expect
        job = next(d for d in as_text["features"] if d.feature == "employment_type")
        assert job.test == "chi2" and job.bins[:-1] == loans.feature("employment_type").categories
        assert job.missing_rate == pytest.approx(raw["employment_type"].isna().mean())


def test_the_three_class_champion_keeps_its_string_labels(three_class):
    _, bundle = Registry(three_class.settings).load(CHAMPION)
    assert bundle.classes == ["repaid", "repaid late", "charged off"] and bundle.bad_index == 2
    assert bundle.reference_profile["score"]["class"] == "charged off"
    assert three_class.result["gate"]["passed"] and three_class.result["holdout"]["f1_macro"] > 0.45
