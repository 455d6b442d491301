"""/predict/batch: plainly valid rows become a matrix in one pass (matrix_from_objects), and whatever that pass
answers, the applicant model answers the same; reason codes ranked for the whole batch equal one row's."""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.api.predict import describe, describe_batch
from app.serving.codes import plain
from app.serving.matrix_validation import matrix_from_objects
from app.serving.model import Prediction
from app.serving.validation import ApplicantModels, RequestError

ODD_VALUES = [None, True, False, "1", 1.5, 2.0, -1, 10**400, 10**6, -(10**9), math.nan, math.inf, 0, 7, 3]


def _valid_row(schema, rng: np.random.Generator) -> dict:
    row = {}
    for f in schema.features:
        if f.type == "categorical":
            row[f.name] = int(rng.choice([c for c in f.accepted_codes if isinstance(c, int)]))
        else:
            lo, hi = f.min if f.min is not None else -1e6, f.max if f.max is not None else 1e6
            v = rng.uniform(lo, hi)
            row[f.name] = int(round(v)) if f.type == "integer" else float(v)
    return row


def _model_answer(models, rows):
    try:
        return models.parse_many(rows)
    except RequestError as e:
        return e


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 6), faults=st.lists(
    st.tuples(st.integers(0, 5), st.integers(0, 40), st.sampled_from(ODD_VALUES + ["<drop>", "<extra>"])),
    max_size=3), extra=st.sampled_from(["reject", "ignore"]))
def test_the_one_pass_matrix_is_the_applicant_models_answer(schema, seed, n, faults, extra):
    models = ApplicantModels(schema, extra=extra)
    rng = np.random.default_rng(seed)
    rows = [_valid_row(schema, rng) for _ in range(n)]
    names = schema.feature_names
    for r, j, value in faults:
        row = rows[r % n]
        if value == "<drop>":
            row.pop(names[j % len(names)], None)
        elif value == "<extra>":
            row["not_a_feature"] = 1
        else:
            row[names[j % len(names)]] = value
    fast = matrix_from_objects(models, rows)
    want = _model_answer(models, rows)
    if fast is not None:  # what the one pass accepts, the model accepts with the same values
        assert not isinstance(want, RequestError), (rows, want.details)
        np.testing.assert_array_equal(fast, want)
    if not faults:  # plainly valid rows always take the one pass
        assert fast is not None


def test_not_a_list_of_objects_goes_to_the_model(schema):
    models = ApplicantModels(schema)
    for rows in ([], [1, 2], ["a"], [[1, 2]], {"a": 1}, "text"):
        assert matrix_from_objects(models, rows) is None


def test_reason_codes_ranked_for_the_batch_equal_one_rows():
    class Model:  # what describe reads of a served model
        classes, class_names, threshold, is_xgb, name, version = [0, 1], ["0", "1"], 0.4, False, "m", "1"

        class schema:  # noqa: N801
            features = [type("F", (), {"name": f"x{j}", "description": f"feature {j}"})() for j in range(6)]

        class codes:  # noqa: N801 (no text categories: values as plain numbers)
            value = staticmethod(lambda j, v: plain(v))

    rng = np.random.default_rng(3)
    X = rng.normal(size=(50, 6))  # noqa: N806
    X[::7, 2] = np.nan
    X[::5, 1] = np.round(X[::5, 1])
    preds = []
    for i in range(50):
        c = rng.normal(size=6)
        c[i % 6] = c[(i + 1) % 6]  # ties: the stable order decides
        p = float(rng.random())
        preds.append(Prediction(label=int(p > 0.4), probabilities=np.array([1 - p, p]), bad_probability=p,
                                contributions=c, bias=0.1, margin=float(c.sum() + 0.1)))
    for explain in ("fast", None):
        batch = describe_batch(Model, preds, X, "champion", explain, 4)
        assert batch == [describe(Model, p, X[i], "champion", explain, 4) for i, p in enumerate(preds)]
    assert "reason_codes" not in batch[0]  # explain None: no reason codes
    assert describe_batch(Model, preds, X, "champion", "fast", 4)[7]["reason_codes"][0]["feature"] in \
        {f"x{j}" for j in range(6)}


@pytest.mark.parametrize("bad", [True, "2", 2.0])
def test_a_category_code_that_is_not_an_int_goes_to_the_model(schema, bad):
    models = ApplicantModels(schema)
    row = _valid_row(schema, np.random.default_rng(0))
    row["sex"] = bad
    assert matrix_from_objects(models, [row]) is None
