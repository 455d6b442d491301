"""The seeded loan-applications generator and its schema (a lender's own format)."""

from __future__ import annotations

import pandas as pd
import pytest

from app.config import PROJECT_ROOT
from app.core.schema import DatasetSchema
from app.core.validate import rename_source_columns, validate
from app.datasets import LOAN_TARGET, generate_loan_applications

SCHEMA = PROJECT_ROOT / "data" / "schemas" / "loan_applications.yaml"


@pytest.fixture(scope="module")
def loans() -> pd.DataFrame:
    return generate_loan_applications(6000, seed=7)


def test_same_seed_same_frame_other_seed_other_frame(loans):
    pd.testing.assert_frame_equal(generate_loan_applications(6000, seed=7), loans)
    assert not generate_loan_applications(6000, seed=8).equals(loans)


def test_lender_format(loans):
    assert {"Loan Amount (EUR)", "Employment Type", "Loan Purpose", "Home Ownership", "Annual Income", "Age",
            "Months at Address", LOAN_TARGET} <= set(loans.columns)
    assert {"self-employed", "café owner"} <= set(loans["Employment Type"].dropna())
    assert "home/improvement" in set(loans["Loan Purpose"])
    assert set(loans[LOAN_TARGET]) == {"repaid", "charged off"}
    assert 0.26 < (loans[LOAN_TARGET] == "charged off").mean() < 0.34
    for col in ("Annual Income", "Months at Address", "Employment Type"):
        assert 0.01 < loans[col].isna().mean() < 0.1, col


def test_the_signal_is_learnable(loans):
    bad = loans[LOAN_TARGET] == "charged off"
    by_job = bad.groupby(loans["Employment Type"]).mean()
    assert by_job["unemployed"] > by_job["salaried"] + 0.15
    assert bad[loans["Late Payments (12m)"] >= 2].mean() > bad[loans["Late Payments (12m)"] == 0].mean() + 0.15


def test_the_schema_describes_the_file(loans):
    schema = DatasetSchema.load(SCHEMA)
    assert schema.target.classes == ["repaid", "charged off"] and schema.target.bad_class == "charged off"
    assert "gender" in schema.protected_features
    assert isinstance(schema.feature("gender").categories[0], str)
    assert {f.name for f in schema.features if f.nullable} == {"annual_income", "months_at_address",
                                                               "employment_type"}
    clean, report = validate(rename_source_columns(loans, schema), schema)
    assert report.ok, report.render()
    assert len(clean) == len(loans)
