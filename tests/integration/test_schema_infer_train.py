"""Acceptance 3 of issue 13: `schema infer` on the UCI file and on the loan-applications set drafts schemas that
pass `schema check`, validate their file and train with no edit; a column of unique strings is left out as an
identifier. Then (acceptance 1, the batch part) `credit-score predict` scores the loan file in its own format
without the target. The user's three commands: infer, check, train (README, section Data)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from app.config import PROJECT_ROOT
from app.datasets import generate_loan_applications, generate_synthetic
from app.schema import DatasetSchema
from tests.cli_runner import invoke_cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SHARED_UCI = PROJECT_ROOT.parent / "shared" / "data" / "uci_credit_default.csv"
TINY = {"cv_folds": 2, "classifiers": ["xgboost"], "samplers": ["none"], "xgboost": {"n_estimators": 30},
        "gate": {"floors": {"roc_auc": 0.6}}}


@pytest.fixture
def tiny(tmp_path):
    p = tmp_path / "tiny.yaml"
    p.write_text(yaml.safe_dump(TINY))
    return p


def _infer_check_train(data, target, tmp_path, tiny) -> tuple[DatasetSchema, dict, str]:
    draft = tmp_path / "draft.yaml"
    infer = invoke_cli(["schema", "infer", "--data", data, "--target", target, "-o", draft])
    assert infer.returncode == 0, infer.stderr
    check = invoke_cli(["schema", "check", draft])
    assert check.returncode == 0 and ": ok: schema" in check.stdout, check.stderr
    valid = invoke_cli(["data", "validate", "--data", data, "--schema", draft])
    assert valid.returncode == 0 and " 0 error(s)" in valid.stdout, valid.stdout
    train = invoke_cli(["train", "--config", tiny, "--data", data, "--schema", draft, "--json", "-q"])
    assert train.returncode == 0, train.stderr[-3000:]
    out = json.loads(train.stdout)
    assert out["gate"]["passed"] and out["alias"] == "champion"
    return DatasetSchema.load(draft), out, infer.stderr


def test_uci_file_drafts_a_schema_that_trains(tmp_path, cli_env, tiny):
    if SHARED_UCI.exists():
        data = SHARED_UCI
    else:  # the synthetic generator's data in the UCI layout (codes X1..X23, Y)
        uci = DatasetSchema.load(PROJECT_ROOT / "data/schemas/uci_credit.yaml")
        data = tmp_path / "uci.csv"
        codes = {name: code for code, name in uci.source_columns.items()}
        generate_synthetic(6000, seed=8).rename(columns=codes).to_csv(data, index=False)
    schema, out, _ = _infer_check_train(data, "Y", tmp_path, tiny)
    assert schema.target.source == "Y" and schema.classes == [0, 1] and schema.target.bad_class == 1
    assert len(schema.features) == 23 and schema.feature("x1").source == "X1"
    assert out["holdout"]["roc_auc"] > 0.7


def test_loan_file_drafts_a_schema_that_trains_and_scores_in_its_own_format(tmp_path, cli_env, tiny):
    frame = generate_loan_applications(5000, seed=13)
    frame.insert(0, "Application ID", [f"L-{i:07d}" for i in range(len(frame))])
    data = tmp_path / "loans.csv"
    frame.to_csv(data, index=False)
    schema, out, note = _infer_check_train(data, "Loan Status", tmp_path, tiny)
    assert "left out Application ID: looks like an identifier" in note
    assert "application_id" not in schema.feature_names
    assert schema.target.bad_class == "charged off" and schema.feature("employment_type").nullable

    inp, scored = tmp_path / "to-score.csv", tmp_path / "scored.csv"
    frame.drop(columns=["Loan Status"]).head(1000).to_csv(inp, index=False)
    proc = invoke_cli(["predict", "-i", inp, "-o", scored, "-q"])
    assert proc.returncode == 0, proc.stderr
    result = pd.read_csv(scored)
    assert list(result.columns) == [*frame.columns.drop("Loan Status"), "prediction", "probability"]
    assert set(result["prediction"]) == {"repaid", "charged off"} and result["probability"].between(0, 1).all()
