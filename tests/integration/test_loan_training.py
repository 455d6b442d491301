"""A lender's own data through the training path (issue 13): the seeded loan applications (column names with
spaces and brackets, string categories, nulls, string target) validate, train the whole grid, register, and
carry a reference profile with string categories that drift reads; the three-class variant trains too. The
whole grid on 5,000 rows takes seconds: `make test`, not the inner loop."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from app.config import PROJECT_ROOT
from app.core.safe_skops import FEATURES_ALLOWED, MODEL_ALLOWED, schema_types
from app.core.schema import DatasetSchema
from app.core.validate import rename_source_columns, validate
from app.datasets import generate_loan_applications
from app.monitoring.drift import drift_report
from app.registry import CHAMPION, Registry
from app.training.train import train
from tests.cli_runner import invoke_cli
from tests.conftest import make_settings, small_training_config
from tests.stores import seed_mlflow_store

pytestmark = [pytest.mark.slow]

SCHEMAS = PROJECT_ROOT / "data" / "schemas"
ROWS = 5000


@pytest.fixture(scope="module")
def loans() -> DatasetSchema:
    return DatasetSchema.load(SCHEMAS / "loan_applications.yaml")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, loans):
    """`credit-score data validate` and `credit-score train` (the whole default grid, small models) in this
    process, on the lender's file as exported, into a throw-away registry."""
    root = tmp_path_factory.mktemp("loans")
    data = root / "loan applications.csv"
    generate_loan_applications(ROWS, seed=3).to_csv(data, index=False)
    config = root / "training.yaml"
    config.write_text(yaml.safe_dump(small_training_config().model_dump(include={
        "cv_folds", "random_forest", "xgboost", "classifiers", "samplers"})))
    seed_mlflow_store(root / "models" / "mlflow.db")
    env = {**os.environ, "CREDIT_SCORE_MODELS_DIR": str(root / "models"),
           "CREDIT_SCORE_REPORTS_DIR": str(root / "reports"), "CREDIT_SCORE_N_JOBS": "2"}
    checked = invoke_cli(["data", "validate", "--data", data, "--schema", SCHEMAS / "loan_applications.yaml",
                          "--json"], env=env)
    run = invoke_cli(["train", "--config", config, "--data", data, "--schema", SCHEMAS / "loan_applications.yaml",
                      "--json", "-q"], env=env)
    settings = make_settings(root)
    return {"validate": checked, "run": run, "settings": settings, "root": root}


@pytest.fixture(scope="module")
def result(trained) -> dict:
    run = trained["run"]
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    return json.loads(run.stdout)


@pytest.fixture(scope="module")
def champion(trained, result):
    return Registry(trained["settings"]).load(CHAMPION)


def test_the_lenders_file_validates_as_exported(trained):
    proc = trained["validate"]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] and report["rows_in"] == ROWS
    assert not [p for p in report["problems"] if p["code"] == "missing_column"]


def test_the_whole_grid_trains_registers_and_is_gated(result):
    assert len(result["grid"]) == 10 and not [g["label"] for g in result["grid"] if g["error"]]
    assert result["version"] == "1" and result["alias"] == CHAMPION
    assert result["gate"]["passed"], result["gate"]["reasons"]
    assert result["holdout"]["roc_auc"] > 0.7 and 0 < result["threshold"] < 1


def test_the_report_shows_fairness_by_the_string_protected_attribute(result):
    html = Path(result["report"]).read_text(encoding="utf-8")
    fairness = html[html.index("Fairness"):]
    for group in ("female", "male", "non-binary"):
        assert f"<td>{group}</td>" in fairness, group
    assert "<img" in html  # the plots


def test_the_registered_bundle_loads_through_the_allow_list_with_a_string_profile(trained, result, champion, loans):
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
    stored = Registry(trained["settings"]).bundle_path(info.version)
    assert {t for _, t in schema_types(stored / "features.skops")} <= set().union(*FEATURES_ALLOWED.values())
    if (stored / "model.skops").exists():
        assert {t for _, t in schema_types(stored / "model.skops")} <= set().union(*MODEL_ALLOWED.values())
    fresh = rename_source_columns(generate_loan_applications(50, seed=99).drop(columns=["Loan Status"]), loans)
    clean, report = validate(fresh, loans, require_target=False)
    assert report.ok
    proba = bundle.predict_proba(clean[loans.feature_names].to_numpy())
    assert proba.shape == (50, 2) and np.allclose(proba.sum(axis=1), 1)


def test_registry_tags_name_the_schema(trained, result, loans):
    from mlflow import MlflowClient

    client = MlflowClient(trained["settings"].tracking_uri)
    tags = client.get_model_version(trained["settings"].model_name, result["version"]).tags
    assert tags["schema_name"] == "loan_applications" and tags["schema_sha256"] == loans.sha256
    assert tags["gate_passed"] == "true"


def _window(loans: DatasetSchema, seed: int, unemployed: float = 0.0):
    raw = rename_source_columns(generate_loan_applications(3000, seed=seed).drop(columns=["Loan Status"]), loans)
    if unemployed:
        hit = np.random.default_rng(seed).random(len(raw)) < unemployed
        raw.loc[hit, "employment_type"] = "unemployed"
    return raw


def test_drift_flags_the_shifted_string_feature_only(champion, loans):
    profile = champion[1].reference_profile
    names = loans.feature_names
    for raw, expect in ((_window(loans, 21), []), (_window(loans, 22, unemployed=0.4), ["employment_type"])):
        clean, _ = validate(raw, loans, require_target=False)
        as_codes = drift_report(profile, clean[names].to_numpy(), names)
        as_text = drift_report(profile, raw[names].to_numpy(dtype=object), names)  # the values as given
        assert as_codes["drifted"] == expect and as_text["drifted"] == expect
        job = next(d for d in as_text["features"] if d.feature == "employment_type")
        assert job.test == "chi2" and job.bins[:-1] == loans.feature("employment_type").categories
        assert job.missing_rate == pytest.approx(raw["employment_type"].isna().mean())


def test_the_three_class_string_label_schema_trains_and_registers(tmp_path_factory):
    schema = DatasetSchema.load(SCHEMAS / "loan_applications_3class.yaml")
    root = tmp_path_factory.mktemp("loans3")
    data = root / "loans3.parquet"
    generate_loan_applications(3000, seed=5, classes=3).to_parquet(data)
    settings = make_settings(root)
    cfg = small_training_config(samplers=["smote"])  # each classifier after a sampler, on encoded rows
    res = train(settings, cfg, data, schema, progress=False)
    assert res.version == "1" and res.threshold is None
    assert {c["metric"] for c in res.gate.checks if c["check"] == "floor"} == {"roc_auc", "f1_macro"}
    assert res.holdout["roc_auc"] > 0.75 and res.holdout["f1_macro"] > 0.5
    _, bundle = Registry(settings).load(res.version)
    assert bundle.classes == ["repaid", "repaid late", "charged off"] and bundle.bad_index == 2
    assert bundle.reference_profile["score"]["class"] == "charged off"
    html = Path(res.report).read_text(encoding="utf-8")
    assert "repaid late" in html
