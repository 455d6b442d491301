import numpy as np
import pandas as pd
import pytest

from app.training.validate import min_rows_per_class, validate


def _problems(report, code):
    return [p for p in report.problems if p.code == code]


def test_clean_synthetic_passes_with_treatments_counted(schema, small_frame):
    df, report = validate(small_frame, schema)
    assert report.ok, report.render()
    remapped = sum(p.count for p in _problems(report, "remapped"))
    raw_undoc = int(small_frame["education"].isin([0, 5, 6]).sum() + (small_frame["marriage"] == 0).sum())
    assert remapped == raw_undoc > 0
    assert set(df["education"].unique()) <= {1, 2, 3, 4}
    dups = int(small_frame.duplicated().sum())
    assert report.rows_out == len(small_frame) - dups


def test_wrong_type_is_reported_with_line_and_value(schema, small_frame):
    raw = small_frame.astype({"age": object}).copy()
    raw.loc[10, "age"] = "thirty"
    _, report = validate(raw, schema)
    assert not report.ok
    (p,) = _problems(report, "wrong_type")
    assert p.column == "age" and p.count == 1
    assert p.examples[0] == {"line": 12, "value": "thirty"}
    assert "age" in p.one_line() and "line 12='thirty'" in p.one_line()


def test_non_integer_in_integer_column(schema, small_frame):
    raw = small_frame.astype({"pay_0": float}).copy()
    raw.loc[3, "pay_0"] = 1.5
    _, report = validate(raw, schema)
    assert [p.column for p in _problems(report, "wrong_type")] == ["pay_0"]


def test_out_of_range(schema, small_frame):
    raw = small_frame.copy()
    raw.loc[[1, 2], "limit_bal"] = -5
    _, report = validate(raw, schema)
    (p,) = _problems(report, "out_of_range")
    assert p.column == "limit_bal" and p.count == 2 and "outside [0, 10000000]" in p.message


def test_unknown_category(schema, small_frame):
    raw = small_frame.copy()
    raw.loc[5, "sex"] = 3
    _, report = validate(raw, schema)
    (p,) = _problems(report, "unknown_category")
    assert p.column == "sex" and "unknown codes [3]" in p.message


def test_missing_values_and_missing_column(schema, small_frame):
    raw = small_frame.copy()
    raw.loc[0, "bill_amt3"] = np.nan
    _, report = validate(raw, schema)
    assert [p.column for p in _problems(report, "missing")] == ["bill_amt3"]
    _, report = validate(small_frame.drop(columns=["age"]), schema)
    assert [p.column for p in _problems(report, "missing_column")] == ["age"]


def test_missing_target_class(schema, small_frame):
    raw = small_frame[small_frame["default"] == 0]
    _, report = validate(raw, schema)
    (p,) = _problems(report, "class_missing")
    assert "class 1 has no rows" in p.message


def test_too_few_rows_for_cv(schema, small_frame):
    raw = pd.concat([small_frame[small_frame["default"] == 0], small_frame[small_frame["default"] == 1].head(3)])
    _, report = validate(raw, schema, cv_folds=5)
    (p,) = _problems(report, "class_too_small")
    assert p.count == 3 and f"at least {min_rows_per_class(5, 0.2)}" in p.message


def test_unknown_target_value(schema, small_frame):
    raw = small_frame.copy()
    raw.loc[4, "default"] = 2
    _, report = validate(raw, schema)
    (p,) = _problems(report, "unknown_class")
    assert p.count == 1


def test_empty_frame(schema, small_frame):
    _, report = validate(small_frame.head(0), schema)
    assert [p.code for p in report.errors] == ["empty"]


@pytest.mark.parametrize("policy, severity, kept", [("drop", "treated", 3), ("keep", "warning", 4),
                                                    ("error", "error", None)])
def test_duplicate_policy(schema, small_frame, policy, severity, kept):
    raw = pd.concat([small_frame.head(3), small_frame.head(1)], ignore_index=True)
    s = schema.model_copy(update={"duplicates": policy})
    df, report = validate(raw, s, cv_folds=2, holdout_fraction=0.2)
    (p,) = _problems(report, "duplicates")
    assert p.severity == severity and p.count == 1
    if kept is not None:
        assert len(df) == kept


def test_multiclass_string_target(schema3):
    from app.datasets import generate_synthetic

    raw = generate_synthetic(2000, seed=3, classes=3)
    df, report = validate(raw, schema3)
    assert report.ok, report.render()
    assert set(df["rating"]) == {"Good", "Standard", "Poor"}
    raw.loc[0, "rating"] = "Excellent"
    _, report = validate(raw, schema3)
    assert [p.code for p in report.errors] == ["unknown_class"]


def test_every_problem_is_reported_not_only_the_first(schema, small_frame):
    raw = small_frame.copy()
    raw.loc[1, "limit_bal"] = -1
    raw.loc[2, "sex"] = 9
    raw.loc[3, "pay_amt1"] = np.nan
    _, report = validate(raw, schema)
    assert {p.code for p in report.errors} == {"out_of_range", "unknown_category", "missing"}
