"""The seeded loan-applications generator and its schema (a lender's own format)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

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


@pytest.fixture(scope="module")
def schema_loans() -> DatasetSchema:
    return DatasetSchema.load(SCHEMA)


def test_string_categories_are_coded_by_their_position_and_remaps_take_their_targets_code(schema_loans):
    job = schema_loans.feature("employment_type")
    assert job.string_coded and job.matrix_codes["salaried"] == 0.0 and job.matrix_codes["café owner"] == 2.0
    remapped = job.model_copy(update={"remap": {"freelance": "self-employed"}, "remap_reason": "old form"})
    assert remapped.matrix_codes["freelance"] == remapped.matrix_codes["self-employed"] == 1.0
    uci = DatasetSchema.load(PROJECT_ROOT / "data" / "schemas" / "uci_credit.yaml").feature("education")
    assert not uci.string_coded and uci.matrix_codes[2] == 2.0 and uci.matrix_codes[0] == 4.0  # remap 0 -> 4


def test_an_unknown_string_category_is_an_error_naming_the_value_and_the_allowed_ones(schema_loans, loans):
    raw = rename_source_columns(loans.head(400), schema_loans)
    raw.loc[[3, 7], "loan_purpose"] = "holiday/travel"
    clean, report = validate(raw, schema_loans, cv_folds=2)
    [err] = report.errors
    assert err.code == "unknown_category" and err.column == "loan_purpose" and err.count == 2
    assert "holiday/travel" in err.message and "home/improvement" in err.message
    assert [e["line"] for e in err.examples] == [5, 9] and report.rows_out == 398


def test_a_remapped_string_code_is_counted_and_coded_as_its_target(loans):
    raw = loans.head(300).copy()
    raw.loc[[1, 2, 4], "Home Ownership"] = "council flat"
    spec = yaml.safe_load(SCHEMA.read_text())
    home = next(f for f in spec["features"] if f["name"] == "home_ownership")
    home.update(remap={"council flat": "rent"}, remap_reason="the old export's name for renting")
    schema = DatasetSchema.from_dict(spec)
    clean, report = validate(rename_source_columns(raw, schema), schema, cv_folds=2)
    assert report.ok, report.render()
    [note] = [p for p in report.problems if p.code == "remapped"]
    assert note.count == 3 and note.column == "home_ownership"
    assert set(clean.loc[[1, 2, 4], "home_ownership"]) == {schema.feature("home_ownership").matrix_codes["rent"]}


def test_source_names_are_accepted_without_the_target(schema_loans, loans):
    renamed = rename_source_columns(loans.drop(columns=[LOAN_TARGET]), schema_loans)
    assert list(renamed.columns) == schema_loans.feature_names
    clean, report = validate(renamed, schema_loans, require_target=False)
    assert report.ok and np.isnan(clean["annual_income"]).mean() > 0.01


def test_the_three_class_variant(loans):
    three = generate_loan_applications(6000, seed=7, classes=3)
    shares = three[LOAN_TARGET].value_counts(normalize=True)
    assert set(shares.index) == {"repaid", "repaid late", "charged off"}
    assert 0.2 < shares["repaid late"] < 0.3 and 0.26 < shares["charged off"] < 0.34
    pd.testing.assert_frame_equal(three.drop(columns=[LOAN_TARGET]), loans.drop(columns=[LOAN_TARGET]))


def test_the_mlflow_pyfunc_encodes_string_categories_as_training_does(schema_loans, loans):
    from app.mlflow_pyfunc import model_matrix

    raw = rename_source_columns(loans.head(200).drop(columns=[LOAN_TARGET]), schema_loans)
    clean, _ = validate(raw, schema_loans, require_target=False)
    expected = clean[schema_loans.feature_names].to_numpy()
    assert np.array_equal(model_matrix(raw, schema_loans), expected, equal_nan=True)
    raw.loc[0, "region"] = "Atlantis"
    with pytest.raises(ValueError, match=r"region: unknown categories \['Atlantis'\]"):
        model_matrix(raw, schema_loans)


def test_fairness_groups_by_a_string_protected_attribute_given_as_codes_or_text(schema_loans, loans):
    from app.core.fairness import fairness_table

    raw = rename_source_columns(loans.head(600).drop(columns=[LOAN_TARGET]), schema_loans)
    clean, _ = validate(raw, schema_loans, require_target=False)
    pred_bad = (raw["late_payments_12m"] > 0).to_numpy()
    is_bad = (loans.head(600)[LOAN_TARGET] == "charged off").to_numpy()
    by_code = fairness_table(schema_loans, clean[schema_loans.feature_names].to_numpy(), is_bad, pred_bad)
    by_text = fairness_table(schema_loans, raw[schema_loans.feature_names].to_numpy(dtype=object), is_bad, pred_bad)
    assert by_code == by_text
    gender = {r["group"]: r for r in by_code if r["feature"] == "gender"}
    assert set(gender) == {"female", "male", "non-binary"}
    assert sum(r["rows"] for r in gender.values()) == 600
    female = (raw["gender"] == "female").to_numpy()
    assert gender["female"]["approval_rate"] == pytest.approx(1 - pred_bad[female].mean())
