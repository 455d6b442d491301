"""`schema infer` (app.schema_infer) drafts a schema that loads and validates its own file; `schema check`
(app.schema_check) lists every problem of a hand-written schema in one pass. Training on the drafts:
tests/integration/test_schema_infer_train.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from app.config import PROJECT_ROOT
from app.core.schema import DatasetSchema
from app.core.validate import validate
from app.datasets import generate_loan_applications, generate_synthetic, read_table
from app.schema_check import check_schema_dict, check_schema_file
from app.schema_infer import InferError, infer_schema, render_yaml, snake_case
from tests.cli_runner import invoke_cli

UCI = DatasetSchema.load(PROJECT_ROOT / "data/schemas/uci_credit.yaml")


@pytest.fixture(scope="module")
def loan_csv(tmp_path_factory):
    df = generate_loan_applications(1500, seed=4)
    df.insert(0, "Application ID", [f"APP-{i:06d}" for i in range(len(df))])
    df["Comment"] = [f"note {i % 97}" for i in range(len(df))]  # free text: 97 distinct values
    p = tmp_path_factory.mktemp("loan") / "loans.csv"
    df.to_csv(p, index=False)
    return p


@pytest.mark.parametrize("header, name", [
    ("Loan Amount (EUR)", "loan_amount_eur"), ("Card Utilisation (%)", "card_utilisation_pct"),
    ("Late Payments (12m)", "late_payments_12m"), ("X1", "x1"), ("PAY_0", "pay_0"), ("Région d'origine",
                                                                                      "region_d_origine"),
    ("monthlyIncome", "monthly_income"), ("2nd Applicant", "col_2nd_applicant"), ("???", "column"),
])
def test_snake_case(header, name):
    assert snake_case(header) == name


def test_loan_draft_loads_validates_its_file_and_marks_its_guesses(loan_csv, tmp_path):
    out = tmp_path / "loan.yaml"
    proc = invoke_cli(["schema", "infer", "--data", loan_csv, "--target", "Loan Status", "-o", out])
    assert proc.returncode == 0, proc.stderr
    assert "left out Application ID: looks like an identifier (every value is a different string)" in proc.stderr
    assert "left out Comment: 97 distinct strings, more than the category limit of 30" in proc.stderr
    text = out.read_text()
    assert "#   Application ID: looks like an identifier" in text
    schema = DatasetSchema.load(out)
    assert schema.target.name == "loan_status" and schema.target.source == "Loan Status"
    assert schema.classes == ["charged off", "repaid"] and schema.target.bad_class == "charged off"
    assert "bad_class: charged off  # review: guessed as the minority class" in text
    assert "application_id" not in schema.feature_names and "comment" not in schema.feature_names
    emp = schema.feature("employment_type")
    assert emp.source == "Employment Type" and emp.type == "categorical" and emp.nullable
    assert set(emp.categories) == {"salaried", "self-employed", "café owner", "retired", "student", "unemployed"}
    assert schema.feature("annual_income").type == "numeric" and schema.feature("annual_income").nullable
    assert schema.feature("loan_term_months").type == "integer" and schema.feature("loan_term_months").min == 0
    assert schema.feature("loan_term_months").max is None
    assert schema.feature("gender").protected and schema.feature("age").protected
    assert not schema.feature("region").protected
    assert text.count("# review:") >= len(schema.features) + 1  # every feature's type or categories, the target
    raw = read_table(loan_csv, schema)
    _, report = validate(raw, schema)
    assert report.ok, report.render()
    assert invoke_cli(["schema", "check", out]).returncode == 0


def test_uci_codes_draft_validates_its_file(tmp_path):
    frame = generate_synthetic(800, seed=2).rename(columns={f.name: f.source for f in UCI.features} | {"default": "Y"})
    frame.insert(0, "ID", np.arange(1, len(frame) + 1))
    draft = infer_schema(frame, "Y", "uci")
    assert draft.left_out == ["ID: looks like an identifier (every value unique, increasing)"]
    schema = DatasetSchema.model_validate(yaml.safe_load(render_yaml(draft)))
    assert schema.feature_names == [f"x{i}" for i in range(1, 24)] and schema.feature("x2").source == "X2"
    assert schema.classes == [0, 1] and schema.target.bad_class == 1
    assert all(f.type == "integer" for f in schema.features)
    assert schema.feature("x6").min is None  # pay_0 goes down to -2: no min
    p = tmp_path / "uci.csv"
    frame.to_csv(p, index=False)
    _, report = validate(read_table(p, schema), schema)
    assert report.ok, report.render()


@pytest.mark.parametrize("frame, target, message", [
    (pd.DataFrame({"a": [1, 2], "y": [0, 1]}), "Y", "target column 'Y' is not in the file; did you mean 'y'?"),
    (pd.DataFrame({"a": [1, 2], "y": [0, 1]}), "b", "the columns are ['a', 'y']"),
    (pd.DataFrame({"a": [1, 2], "y": [0.5, 1.5]}), "y", "fractional numbers"),
    (pd.DataFrame({"a": [1, 2], "y": [1, 1]}), "y", "has one value (1)"),
    (pd.DataFrame({"a": [None, None], "y": [0, 1]}), "y", "no column can be a feature: a: no values at all"),
])
def test_infer_refuses_what_cannot_be_a_schema(frame, target, message):
    with pytest.raises(InferError) as e:
        infer_schema(frame, target)
    assert message in str(e.value)


def test_check_lists_every_problem_in_one_pass(tmp_path):
    p = tmp_path / "wrong.yaml"
    p.write_text(yaml.safe_dump({
        "name": "wrong", "duplicats": "drop", "target": {"name": "default", "classes": [0, 1], "bad_class": 2},
        "features": [{"name": "age", "type": "int"}, {"name": "sex", "type": "categorical"},
                     {"name": "age", "type": "numeric", "min": 5, "max": 1, "catgories": [1]},
                     {"name": "pay", "type": "categorical", "categories": ["a", "b", "a"], "source": "X1"},
                     {"name": "pay2", "type": "integer", "source": "X1", "nullable": "maybe"}]}))
    schema, problems = check_schema_file(p)
    assert schema is None
    assert problems == [
        "schema: unknown key 'duplicats' (did you mean 'duplicates'?)",
        "target: bad_class 2 is not one of the classes [0, 1]",
        "features[0] ('age').type: Input should be 'numeric', 'integer' or 'categorical' (given 'int')",
        "features[1] ('sex'): feature 'sex': categorical needs 'categories'",
        "features[2] ('age'): unknown key 'catgories' (did you mean 'categories'?)",
        "features[2] ('age'): feature 'age': min > max",
        "features[3] ('pay'): category 'a' is given more than once",
        "features[4] ('pay2').nullable: Input should be a valid boolean, unable to interpret input (given 'maybe')",
        "schema: column name 'age' is given more than once",
        "schema: source 'X1' is given more than once",
    ]
    proc = invoke_cli(["schema", "check", p])
    assert proc.returncode == 1 and proc.stderr.startswith(f"credit-score: error: {p}: 10 problem(s):")


@pytest.mark.parametrize("raw, problem", [
    ([1, 2], "the schema must be a mapping"),
    ({"features": []}, "schema: the key 'name' is missing"),
    ({"name": "x", "target": "y", "features": "z"}, "features: must be a list of features"),
    ({"name": "x", "target": {"name": "t", "classes": [0, 1], "bad_class": 1}, "features": [7]},
     "features[0]: must be a mapping with name and type"),
])
def test_check_explains_the_shape(raw, problem):
    problems = check_schema_dict(raw)
    assert any(problem in p for p in problems), problems


@pytest.mark.parametrize("path", sorted((PROJECT_ROOT / "data/schemas").glob("*.yaml")), ids=lambda p: p.name)
def test_the_project_schemas_pass_the_check(path):
    schema, problems = check_schema_file(path)
    assert problems == [] and schema is not None
