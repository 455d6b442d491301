"""The numpy tree walk (app/serving/xgb_paths.py) against XGBoost itself: same margins, same attributions."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from xgboost import DMatrix

from app.serving.model import PATHS_MAX_ROWS, ServedModel
from app.serving.xgb_paths import TreePaths
from tests.helpers import fit_bundle


@pytest.fixture(scope="module")
def xgb_bundle(schema, small_frame):
    return fit_bundle(schema, small_frame)


def _encoded(bundle, schema, frame, n=200):
    return bundle.features.transform(frame[schema.feature_names].to_numpy(float)[:n])


def test_margins_and_attributions_equal_xgboost_approx_contribs(xgb_bundle, schema, small_frame):
    booster = xgb_bundle.classifier.get_booster()
    paths = TreePaths.from_booster(booster)
    assert paths is not None and paths.depth >= 2
    Z = _encoded(xgb_bundle, schema, small_frame)  # noqa: N806
    Z[::7, ::3] = np.nan  # missing values take each split's default direction
    want = booster.predict(DMatrix(Z), pred_contribs=True, approx_contribs=True)
    margin, contrib, bias = paths.explain(Z)
    assert np.abs(contrib - want[:, :-1]).max() < 1e-5
    assert np.abs(bias - want[:, -1]).max() < 1e-5
    assert np.abs(margin - booster.predict(DMatrix(Z), output_margin=True)).max() < 1e-5
    assert np.allclose(contrib.sum(axis=1) + bias, margin)


def test_served_model_answers_single_rows_from_the_paths_with_xgboost_numbers(xgb_bundle, schema, small_frame):
    m = ServedModel(bundle=xgb_bundle, name="m", version="1", alias="champion")
    assert m.paths is not None
    X = small_frame[schema.feature_names].to_numpy(float)[:30]  # noqa: N806
    proba = xgb_bundle.predict_proba(X)[:, 1]
    booster_contrib = m.booster.predict(DMatrix(m.features.transform(X)), pred_contribs=True, approx_contribs=True)
    for i in range(len(X)):
        fast = m.predict_rows(X[i:i + 1], "fast")[0]
        plain = m.predict_rows(X[i:i + 1], None)[0]
        assert fast.bad_probability == pytest.approx(proba[i], abs=1e-6)
        assert plain.bad_probability == pytest.approx(proba[i], abs=1e-6) and plain.contributions is None
        folded = m.features.fold_contributions(booster_contrib[i:i + 1, :-1])[0]
        assert np.abs(fast.contributions - folded).max() < 1e-5
        assert fast.bias == pytest.approx(booster_contrib[i, -1], abs=1e-5)
    # more rows than PATHS_MAX_ROWS go to XGBoost: the same answers
    many = m.predict_rows(X, "fast")
    assert len(X) > PATHS_MAX_ROWS
    assert np.allclose([p.bad_probability for p in many], proba, atol=1e-6)


@pytest.mark.parametrize(("bad_index", "threshold"), [(1, None), (1, 0.3), (0, None), (0, 0.3)])
def test_one_row_path_answers_as_the_general_path(xgb_bundle, small_frame, schema, bad_index, threshold):
    m = ServedModel(bundle=xgb_bundle, name="m", version="1", alias="champion")
    m.bad_index, m.threshold = bad_index, threshold  # the bad class first, and a decision threshold: both paths
    X = np.array(small_frame[schema.feature_names].to_numpy(float)[:20])  # noqa: N806
    X[3, 5] = np.nan  # a missing value takes the default branch on both paths
    for explain in ("fast", None):
        for i in range(len(X)):
            one = m.predict_rows(X[i:i + 1], explain)[0]
            two = m.predict_rows(np.repeat(X[i:i + 1], 2, axis=0), explain)[0]  # two rows: the general path
            assert one.label == two.label
            assert np.allclose(one.probabilities, two.probabilities, rtol=0, atol=1e-12)  # math.exp vs np.exp
            assert one.bad_probability == pytest.approx(two.bad_probability, abs=1e-12)
            if explain:
                assert np.allclose(one.contributions, two.contributions, rtol=0, atol=1e-12)
                assert one.bias == two.bias and one.margin == pytest.approx(two.margin, abs=1e-12)
            else:
                assert one.contributions is two.contributions is None


def test_paths_that_disagree_with_xgboost_are_not_used(xgb_bundle, monkeypatch):
    parse = TreePaths._parse

    def off_by_a_little(model):
        p = parse(model)
        return dataclasses.replace(p, base_margin=p.base_margin + 1e-3)

    monkeypatch.setattr(TreePaths, "_parse", staticmethod(off_by_a_little))
    assert TreePaths.from_booster(xgb_bundle.classifier.get_booster()) is None


def test_multiclass_boosters_stay_with_xgboost(schema3):
    from app.datasets import generate_synthetic

    b = fit_bundle(schema3, generate_synthetic(1500, 4, classes=3))
    m = ServedModel(bundle=b, name="m", version="1", alias="champion")
    assert m.paths is None
    X = generate_synthetic(5, 5, classes=3)[schema3.feature_names].to_numpy(float)  # noqa: N806
    p = m.predict_rows(X[:1], "fast")[0]
    assert np.allclose(p.probabilities, b.predict_proba(X[:1])[0], atol=1e-6)


def test_missing_values_follow_each_splits_default_direction():
    from xgboost import XGBClassifier

    rng = np.random.default_rng(3)
    X = rng.normal(size=(3000, 6))  # noqa: N806
    gone = rng.random(X.shape) < 0.25
    y = ((X[:, 0] > 0) ^ gone[:, 1]).astype(int)  # a missing value is informative: XGBoost learns where it goes
    X[gone] = np.nan
    booster = XGBClassifier(n_estimators=40, max_depth=3, n_jobs=1).fit(X, y).get_booster()
    paths = TreePaths.from_booster(booster)
    assert paths is not None
    internal = paths.left != np.arange(len(paths.left))
    assert {True, False} <= set((paths.missing == paths.left)[internal])  # both default directions occur
    want = booster.predict(DMatrix(X[:500]), pred_contribs=True, approx_contribs=True)
    margin, contrib, bias = paths.explain(X[:500])
    assert np.abs(np.column_stack([contrib, bias]) - want).max() < 1e-5
    for i in range(50):  # one row at a time: the /predict path
        m1, c1, b1 = paths.explain(X[i:i + 1])
        assert np.abs(np.append(c1[0], b1[0]) - want[i]).max() < 1e-5 and abs(m1[0] - margin[i]) < 1e-5
