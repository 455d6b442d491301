"""The numpy forest walk (app/serving/forest_paths.py) against scikit-learn: the same probabilities, Saabas
attributions that add up to them, missing values, one row and many; refused (scikit-learn answers) when its
check at load fails. And exact explanations ready when the model loads, capped on large batches."""

from __future__ import annotations

import dataclasses
import gc
import json
import time

import numpy as np
import pytest
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

from app.serving.forest_paths import ForestPaths
from app.serving.model import ServedModel, saabas_forest
from app.serving.validation import RequestError
from tests.conftest import make_settings
from tests.helpers import fit_bundle, register_bundle


def _data(classes: int, missing: float, seed: int = 0, n: int = 2000):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 7))  # noqa: N806
    gone = rng.random(X.shape) < missing
    y = (X[:, 0] > 0).astype(int) ^ gone[:, 1]  # a missing value is informative: the trees learn where it goes
    if classes == 3:
        y = y + (X[:, 2] > 0.8)
    X[gone] = np.nan
    return X, y


FORESTS = {  # name: (estimator, classes, missing share in training)
    "rf-binary-nan": (RandomForestClassifier(n_estimators=25, max_depth=7, random_state=0), 2, 0.2),
    "rf-3class-nan": (RandomForestClassifier(n_estimators=25, max_depth=6, random_state=1), 3, 0.2),
    "rf-binary-clean": (RandomForestClassifier(n_estimators=25, max_depth=8, min_samples_leaf=5,
                                               max_samples=0.5, random_state=2), 2, 0.0),
    "et-3class-nan": (ExtraTreesClassifier(n_estimators=20, max_depth=6, random_state=3), 3, 0.2),
}


@pytest.fixture(scope="module", params=sorted(FORESTS))
def fitted(request):
    est, classes, missing = FORESTS[request.param]
    X, y = _data(classes, missing)  # noqa: N806
    forest = est.fit(X[:1500], y[:1500])
    rows = X[1500:].copy()
    rows[::5, ::2] = np.nan  # missing values at predict time too (a forest fitted without any included)
    return forest, rows


def _saabas_per_row(forest, Z, cls):  # noqa: N803
    """The literal definition, one row and one tree at a time: the reference for both implementations."""
    n, d = Z.shape
    contrib, bias = np.zeros((n, d)), np.zeros(n)
    for est in forest.estimators_:
        t = est.tree_
        share = t.value[:, 0, cls] / t.value[:, 0, :].sum(axis=1)
        paths = est.decision_path(Z.astype(np.float32))
        for i in range(n):
            nodes = paths.indices[paths.indptr[i]:paths.indptr[i + 1]]
            bias[i] += share[nodes[0]]
            for parent, child in zip(nodes[:-1], nodes[1:], strict=True):
                contrib[i, t.feature[parent]] += share[child] - share[parent]
    k = len(forest.estimators_)
    return contrib / k, bias / k


def test_probabilities_and_attributions_equal_scikit_learns(fitted):
    forest, rows = fitted
    paths = ForestPaths.from_forest(forest)
    assert paths is not None and paths.depth >= 5
    assert np.isnan(rows).any()
    want = forest.predict_proba(rows)
    assert np.abs(paths.predict_proba(rows) - want).max() <= 1e-9
    for cls in range(want.shape[1]):
        proba, contrib, bias = paths.explain(rows, cls)
        assert np.abs(proba - want).max() <= 1e-9
        assert np.abs(contrib.sum(axis=1) + bias - want[:, cls]).max() <= 1e-9
        ref_contrib, ref_bias = saabas_forest(forest, rows, cls)
        assert np.abs(contrib - ref_contrib).max() <= 1e-12 and np.abs(bias - ref_bias).max() <= 1e-12
    literal = _saabas_per_row(forest, rows[:40], 1)
    assert np.abs(paths.explain(rows[:40], 1)[1] - literal[0]).max() <= 1e-12
    assert np.abs(saabas_forest(forest, rows[:40], 1)[0] - literal[0]).max() <= 1e-12


@pytest.mark.parametrize("table", [True, False])
def test_one_row_at_a_time_answers_as_the_batch(fitted, table, monkeypatch):
    """One row: each leaf's precomputed path, or (a forest too deep for the table) the walk's own steps."""
    if not table:
        monkeypatch.setattr("app.serving.forest_paths.PATH_TABLE_MAX", 0)
    forest, rows = fitted
    paths = ForestPaths.from_forest(forest)
    assert (paths._path_table(1) is not None) == table
    proba, contrib, bias = paths.explain(rows[:60], 1)
    assert np.abs(contrib - saabas_forest(forest, rows[:60], 1)[0]).max() <= 1e-12  # batches: table or steps
    for i in range(60):
        p1, c1, b1 = paths.explain(rows[i:i + 1], 1)
        assert np.abs(p1[0] - proba[i]).max() <= 1e-12 and np.abs(c1[0] - contrib[i]).max() <= 1e-12
        assert b1[0] == bias[i]
        p2, c2, b2 = paths.explain_one(rows[i], 1)
        assert np.array_equal(p2, p1[0]) and np.array_equal(c2, c1[0]) and b2 == b1[0]
        assert np.array_equal(paths.explain_one(rows[i], None)[0], p1[0])


def test_missing_values_follow_each_splits_learned_direction(fitted):
    forest, _ = fitted
    paths = ForestPaths.from_forest(forest)
    internal = paths.left != np.arange(len(paths.left))
    to_left = (paths.missing == paths.left)[internal]
    assert to_left.any() and (~to_left).any()  # both directions occur, learned or by the larger child


def test_a_forest_that_fails_the_check_at_load_is_served_by_scikit_learn(schema, small_frame, monkeypatch):
    b = fit_bundle(schema, small_frame, classifier="random_forest")
    X = small_frame[schema.feature_names].to_numpy(float)[:40]  # noqa: N806
    assert ServedModel(bundle=b, name="m", version="1", alias="champion").forest is not None
    parse = ForestPaths._parse

    def one_split_wrong(forest):
        p = parse(forest)
        threshold = p.threshold.copy()
        threshold[p.roots[0]] = -np.inf  # the first tree's root sends every row right
        return dataclasses.replace(p, threshold=threshold)

    monkeypatch.setattr(ForestPaths, "_parse", staticmethod(one_split_wrong))
    assert ForestPaths.from_forest(b.classifier) is None
    m = ServedModel(bundle=b, name="m", version="1", alias="champion")
    assert m.forest is None
    want = b.predict_proba(X)
    for mode in ("fast", None):
        preds = m.predict_rows(X, mode) + m.predict_rows(X[:1], mode)
        assert np.abs(np.array([p.probabilities for p in preds]) - np.vstack([want, want[:1]])).max() <= 1e-12
    fast = m.predict_rows(X, "fast")
    assert np.allclose([p.contributions.sum() + p.bias for p in fast], want[:, 1], atol=1e-9)


def test_an_explainer_that_cannot_be_built_at_load_leaves_the_model_serving(rf_bundle, schema, small_frame,
                                                                            monkeypatch):
    import shap

    def broken(model):
        raise ValueError("unsupported model")

    monkeypatch.setattr(shap, "TreeExplainer", broken)
    m = ServedModel(bundle=rf_bundle, name="m", version="1", alias="champion")
    assert m._exact_explainer is None and m.forest is not None
    X = small_frame[schema.feature_names].to_numpy(float)[:3]  # noqa: N806
    assert np.allclose([p.bad_probability for p in m.predict_rows(X, "fast")], rf_bundle.predict_proba(X)[:, 1])
    with pytest.raises(RequestError) as e:  # a 503 naming explain, not a 500
        m.predict_rows(X, "exact")
    assert e.value.status == 503 and e.value.details[0]["field"] == "explain"


def test_what_is_not_a_scikit_learn_forest_classifier_is_refused():
    from sklearn.ensemble import RandomForestRegressor

    X, y = _data(2, 0.0, n=300)  # noqa: N806
    assert ForestPaths.from_forest(RandomForestRegressor(n_estimators=3, max_depth=3).fit(X, y)) is None
    assert ForestPaths.from_forest(object()) is None


@pytest.fixture(scope="module")
def rf_bundle(schema, small_frame):
    return fit_bundle(schema, small_frame, classifier="random_forest")


@pytest.mark.parametrize(("bad_index", "threshold"), [(1, 0.3), (0, 0.3), (1, None)])
def test_served_forest_one_row_and_many_give_scikit_learns_numbers(rf_bundle, schema, small_frame, bad_index,
                                                                   threshold):
    m = ServedModel(bundle=rf_bundle, name="m", version="1", alias="champion")
    assert m.forest is not None and m._exact_explainer is not None  # both ready at load
    m.bad_index, m.threshold = bad_index, threshold
    X = np.array(small_frame[schema.feature_names].to_numpy(float)[:30])  # noqa: N806
    X[4, 3] = np.nan  # imputed by the features, then walked
    want = rf_bundle.predict_proba(X)
    many = m.predict_rows(X, "fast")
    for i in range(len(X)):
        one = m.predict_rows(X[i:i + 1], "fast")[0]
        plain = m.predict_rows(X[i:i + 1], None)[0]
        assert np.abs(one.probabilities - want[i]).max() <= 1e-9 and plain.contributions is None
        assert one.label == many[i].label == plain.label
        assert np.abs(one.contributions - many[i].contributions).max() <= 1e-12 and one.bias == many[i].bias
        assert one.margin == pytest.approx(want[i, bad_index], abs=1e-9)


def test_multiclass_forest_is_served_from_the_walk(schema3):
    from app.datasets import generate_synthetic

    b = fit_bundle(schema3, generate_synthetic(1500, 4, classes=3), classifier="random_forest")
    m = ServedModel(bundle=b, name="m", version="1", alias="champion")
    assert m.forest is not None
    X = generate_synthetic(20, 5, classes=3)[schema3.feature_names].to_numpy(float)  # noqa: N806
    want = b.predict_proba(X)
    preds = m.predict_rows(X, "fast") + [m.predict_rows(X[i:i + 1], "fast")[0] for i in range(len(X))]
    got = np.array([p.probabilities for p in preds])
    assert np.abs(got - np.vstack([want, want])).max() <= 1e-9
    assert np.allclose([p.margin for p in preds], np.concatenate([want, want])[:, m.bad_index], atol=1e-9)
    assert [p.label for p in preds[:20]] == [m.classes[k] for k in want.argmax(axis=1)]


# ---- the service: exact explanations ready at load, capped on batches ----------------------------------
ROW = {"limit_bal": 20000, "sex": 2, "education": 2, "marriage": 1, "age": 24, "pay_0": 2, "pay_2": 2, "pay_3": -1,
       "pay_4": -1, "pay_5": -2, "pay_6": -2, "bill_amt1": 3913, "bill_amt2": 3102, "bill_amt3": 689,
       "bill_amt4": 0, "bill_amt5": 0, "bill_amt6": 0, "pay_amt1": 0, "pay_amt2": 689, "pay_amt3": 0,
       "pay_amt4": 0, "pay_amt5": 0, "pay_amt6": 0}


@pytest.fixture(scope="module")
def forest_store(tmp_path_factory, rf_bundle):
    from app.registry import Registry

    tmp = tmp_path_factory.mktemp("forest-store")
    settings = make_settings(tmp)
    Registry(settings).promote(register_bundle(settings, rf_bundle, tmp), "champion")
    return tmp


def test_first_exact_request_after_load_needs_no_explainer_build(forest_store):
    from app import create_app

    app = create_app({"models_dir": forest_store / "models", "reports_dir": forest_store / "reports",
                      "max_exact_rows": 3}, start_reload=False)
    model = app.extensions["credit_score"].manager.snapshot().champion
    assert model.bundle.classifier_name == "random_forest" and model._exact_explainer is not None
    c = app.test_client()
    gc.collect()  # a full collection of what earlier tests left is not the request's (gunicorn workers freeze it)
    t0 = time.perf_counter()
    r = c.post("/predict?explain=exact", data=json.dumps(ROW), content_type="application/json")
    elapsed = time.perf_counter() - t0
    assert r.status_code == 200 and r.json["explanation"]["method"] == "exact_treeshap"
    assert elapsed < 0.1, f"first exact request took {elapsed:.3f} s"  # generous: a few ms here; the bench measures
    body = {"instances": [ROW] * 4}
    r = c.post("/predict/batch?explain=exact", data=json.dumps(body), content_type="application/json")
    assert r.status_code == 422 and r.json["details"][0]["field"] == "explain"
    body = {"instances": [ROW] * 3}
    r = c.post("/predict/batch?explain=exact", data=json.dumps(body), content_type="application/json")
    assert r.status_code == 200 and r.json["count"] == 3
    r = c.post("/predict/batch?explain=fast", data=json.dumps({"instances": [ROW] * 4}),
               content_type="application/json")
    assert r.status_code == 200 and r.json["count"] == 4  # the cap is for exact explanations only


def test_batch_explanations_are_capped_before_any_work(forest_store, monkeypatch):
    """``max_explain_rows`` caps vectorised fast reason codes; a forest whose numpy walk was refused at load
    explains row by tree in Python, so for it the exact cap applies: a 422 naming explain, before scoring."""
    from app import create_app

    cfg = {"models_dir": forest_store / "models", "reports_dir": forest_store / "reports", "max_exact_rows": 3,
           "max_explain_rows": 5}

    def batch(c, n, mode="fast"):
        return c.post(f"/predict/batch?explain={mode}", data=json.dumps({"instances": [ROW] * n}),
                      content_type="application/json")

    c = create_app(cfg, start_reload=False).test_client()
    assert batch(c, 5).status_code == 200 and batch(c, 6, "none").status_code == 200
    r = batch(c, 6)
    assert r.status_code == 422 and r.json["details"][0]["field"] == "explain" and "limit 5" in r.json["details"][0][
        "problem"]
    parse = ForestPaths._parse

    def one_split_wrong(forest):
        p = parse(forest)
        threshold = p.threshold.copy()
        threshold[p.roots[0]] = -np.inf
        return dataclasses.replace(p, threshold=threshold)

    monkeypatch.setattr(ForestPaths, "_parse", staticmethod(one_split_wrong))
    app = create_app(cfg, start_reload=False)
    assert app.extensions["credit_score"].manager.snapshot().champion.forest is None
    c = app.test_client()
    calls = []
    monkeypatch.setattr("app.serving.model.saabas_forest", lambda *a: calls.append(a))
    r = batch(c, 4)
    assert r.status_code == 422 and "row by row" in r.json["details"][0]["problem"] and not calls
