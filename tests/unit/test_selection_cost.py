"""Selection that knows the cost: each candidate's measured scoring cost, and the latency budget of selection.

The rules of selection and of the gate's budget check on hand-made grid results; the measurement on real fitted
models; and whole training runs on a two-candidate grid (an expensive forest that wins on the metric, a cheap
one-stump XGBoost) where a budget between the two measured costs changes the selection.
"""

import math
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.config import GateConfig, LatencyBudget, Settings, TrainingConfig, load_training_config
from app.training.cost import BATCH_CALLS, SINGLE_ROW_CALLS, SINGLE_ROW_MIN_CALLS, ScoringCost, measure_scoring_cost
from app.training.gate import evaluate_gate
from app.training.grid import ComboResult
from app.training.samplers import make_pipeline
from app.training.selection import budget_excess, select_candidate
from app.training.validate import validate
from tests.conftest import make_settings


def _result(label: str, auc: float, single: float, batch: float, brier: float = 0.2) -> ComboResult:
    r = ComboResult("xgboost", "none", label, fold_metrics=[{"roc_auc": auc, "brier": brier}])
    r.cost = ScoringCost(single_row_ms=single, batch_10k_ms=batch, single_row_calls=10, batch_calls=1)
    return r


GRID = [_result("slow", 0.80, 40.0, 400.0, brier=0.15), _result("mid", 0.78, 5.0, 200.0),
        _result("fast", 0.70, 0.5, 100.0, brier=0.25)]


# ---- selection rules -------------------------------------------------------------------------------------------
def test_without_a_budget_the_best_on_the_metric_wins():
    sel = select_candidate(GRID, "roc_auc", LatencyBudget())
    assert sel.best.label == "slow" and sel.over_budget == {} and sel.within_budget


@pytest.mark.parametrize("budget, winner, over", [
    ({"single_row_ms": 10}, "mid", {"slow"}),
    ({"single_row_ms": 1}, "fast", {"slow", "mid"}),
    ({"batch_10k_ms": 250}, "mid", {"slow"}),
    ({"single_row_ms": 10, "batch_10k_ms": 150}, "fast", {"slow", "mid"}),
])
def test_candidates_over_budget_are_not_selected(budget, winner, over):
    sel = select_candidate(GRID, "roc_auc", LatencyBudget(**budget))
    assert sel.best.label == winner and set(sel.over_budget) == over and sel.within_budget
    assert sel.reasons(winner) == []


def test_over_budget_reasons_name_the_cost_and_the_limit():
    assert budget_excess(GRID[0].cost, LatencyBudget(single_row_ms=10, batch_10k_ms=500)) == [
        "single row 40.00 ms > 10 ms"]
    assert budget_excess(GRID[0].cost, LatencyBudget(single_row_ms=10, batch_10k_ms=300)) == [
        "single row 40.00 ms > 10 ms", "10,000 rows 400.00 ms > 300 ms"]
    assert budget_excess(None, LatencyBudget(single_row_ms=10)) == ["single row: cost not measured"]
    assert budget_excess(None, LatencyBudget()) == []


def test_when_no_candidate_is_within_the_budget_the_best_on_the_metric_is_kept_and_flagged():
    sel = select_candidate(GRID, "roc_auc", LatencyBudget(single_row_ms=0.1))
    assert not sel.within_budget and sel.best.label == "slow" and set(sel.over_budget) == {"slow", "mid", "fast"}


def test_a_lower_is_better_metric_selects_the_lowest():
    assert select_candidate(GRID, "brier", LatencyBudget()).best.label == "slow"
    assert select_candidate(GRID, "brier", LatencyBudget(single_row_ms=10)).best.label == "mid"


def test_failed_candidates_are_never_selected():
    failed = _result("failed", 0.99, 0.1, 1.0)
    failed.error = "ValueError: no neighbours"
    assert select_candidate([failed, *GRID], "roc_auc", LatencyBudget()).best.label == "slow"
    with pytest.raises(RuntimeError, match="every combination failed"):
        select_candidate([failed], "roc_auc", LatencyBudget())


# ---- the gate's budget check -----------------------------------------------------------------------------------
def test_gate_checks_the_selected_cost_against_each_limit_set():
    cfg = GateConfig(floors={})
    cost = GRID[1].cost
    ok = evaluate_gate({"roc_auc": 0.8}, cfg, "roc_auc", cost=cost, budget=LatencyBudget(single_row_ms=10))
    assert ok.passed and ok.checks == [{"check": "latency_budget", "metric": "single_row_ms", "value": 5.0,
                                        "limit": 10.0, "passed": True}]
    bad = evaluate_gate({"roc_auc": 0.8}, cfg, "roc_auc", cost=cost,
                        budget=LatencyBudget(single_row_ms=1, batch_10k_ms=300))
    assert not bad.passed and len(bad.reasons) == 1
    assert "scoring cost (single-row) 5.00 ms is over the latency budget of 1 ms" in bad.reasons[0]
    assert "no candidate of the grid is within the budget" in bad.reasons[0]
    assert evaluate_gate({"roc_auc": 0.8}, cfg, "roc_auc", cost=cost, budget=LatencyBudget()).checks == []


# ---- configuration ---------------------------------------------------------------------------------------------
def test_budget_comes_from_yaml_and_environment(tmp_path, monkeypatch):
    assert TrainingConfig().latency_budget == LatencyBudget(single_row_ms=None, batch_10k_ms=None)
    p = tmp_path / "t.yaml"
    p.write_text("latency_budget:\n  single_row_ms: 2.5\n")
    assert load_training_config(p).latency_budget.single_row_ms == 2.5
    monkeypatch.setenv("CREDIT_SCORE_TRAINING__LATENCY_BUDGET__BATCH_10K_MS", "300")
    assert Settings().training.latency_budget.batch_10k_ms == 300


@pytest.mark.parametrize("raw", [{"single_row_ms": 0}, {"batch_10k_ms": -1}, {"single_row": 3}])
def test_bad_budgets_are_refused(raw):
    with pytest.raises(ValidationError):
        TrainingConfig.model_validate({"latency_budget": raw})


# ---- measurement on real models --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def xy(schema, small_frame):
    df, _ = validate(small_frame, schema)
    return df[schema.feature_names].to_numpy(), df["default"].astype(int).to_numpy()


@pytest.mark.parametrize("clf", ["random_forest", "xgboost"])
def test_measuring_gives_positive_costs_and_leaves_the_threads_setting(schema, xy, clf):
    X, y = xy
    cfg = TrainingConfig.model_validate({"random_forest": {"n_estimators": 10}, "xgboost": {"n_estimators": 10}})
    pipe = make_pipeline(clf, "none", schema.feature_names, cfg, 2, seed=0, n_jobs=2).fit(X, y)
    features, classifier = pipe.named_steps["features"], pipe.named_steps["classifier"]
    cost = measure_scoring_cost(features, classifier, X[:300], seed=1)
    assert 0 < cost.single_row_ms < cost.batch_10k_ms
    assert SINGLE_ROW_MIN_CALLS <= cost.single_row_calls <= SINGLE_ROW_CALLS and 1 <= cost.batch_calls <= BATCH_CALLS
    assert classifier.get_params()["n_jobs"] == 2  # measured on one thread, then set back


# ---- whole training runs: the budget changes the selection -----------------------------------------------------
# The forest has many trees (scikit-learn pays a per-tree overhead on every call, tens of ms for one row) and wins
# on the metric; the XGBoost is one stump (well under 1 ms, and a poor model). promote="none": no champion, so
# the gate compares nothing between runs (but the last test, where a model that passed would be promoted).
GRID_CFG = {"classifiers": ["random_forest", "xgboost"], "samplers": ["none"], "cv_folds": 2,
            "random_forest": {"n_estimators": 150, "max_depth": 4, "max_samples": 0.3},
            "xgboost": {"n_estimators": 1, "max_depth": 1}, "gate": {"floors": {"roc_auc": 0.5}}}


@pytest.fixture(scope="module")
def store(tmp_path_factory, schema):
    from app.datasets import generate_synthetic

    root = tmp_path_factory.mktemp("budget")
    data = root / "train.csv"
    generate_synthetic(2000, seed=3).to_csv(data, index=False)
    return make_settings(root), data


def _train(store, schema, promote="none", **budget):
    from app.training.train import train

    settings, data = store
    cfg = TrainingConfig.model_validate({**GRID_CFG, "latency_budget": budget})
    return train(settings, cfg, data, schema, promote=promote, progress=False)


@pytest.fixture(scope="module")
def unbudgeted(store, schema):
    return _train(store, schema)


def _rows(res) -> dict[str, dict]:
    return {r["classifier"]: r for r in res.grid}


@pytest.mark.slow
def test_report_shows_each_candidates_cost(unbudgeted):
    res = unbudgeted
    assert res.selected["classifier"] == "random_forest"
    rows = _rows(res)
    html = Path(res.report).read_text()
    assert "1 row ms" in html and "10,000 rows ms" in html and "Latency budget: none configured." in html
    for r in rows.values():
        assert r["single_row_ms"] > 0 and r["batch_10k_ms"] > 0 and r["over_budget"] == []
        assert f"{r['single_row_ms']:.2f}" in html and f"{r['batch_10k_ms']:.1f}" in html
    assert rows["random_forest"]["single_row_ms"] > 3 * rows["xgboost"]["single_row_ms"]
    assert res.scoring_cost["single_row_ms"] > 0 and res.scoring_cost["batch_10k_ms"] > 0
    assert res.to_json()["scoring_cost"] == res.scoring_cost


@pytest.mark.slow
def test_a_budget_between_the_two_costs_selects_the_cheaper(store, schema, unbudgeted):
    rows = _rows(unbudgeted)
    budget = math.sqrt(rows["random_forest"]["single_row_ms"] * rows["xgboost"]["single_row_ms"])
    res = _train(store, schema, single_row_ms=round(budget, 3))
    assert res.selected["classifier"] == "xgboost" and res.gate.passed
    rows = _rows(res)
    assert rows["random_forest"]["over_budget"] and rows["random_forest"]["over_budget"][0].startswith("single row")
    assert rows["xgboost"]["over_budget"] == [] and rows["xgboost"]["winner"]
    html = Path(res.report).read_text()
    assert html.count("over latency budget: single row") == 1 and "within</td>" in html

    from app.registry import Registry

    info, bundle = Registry(store[0]).load(res.version)
    assert float(info.tags["scoring_single_row_ms"]) == pytest.approx(res.scoring_cost["single_row_ms"], abs=1e-3)
    assert bundle.metrics["scoring_cost"] == res.scoring_cost


@pytest.mark.slow
def test_a_budget_nobody_meets_fails_the_gate_and_is_not_promoted(store, schema):
    res = _train(store, schema, promote="auto", single_row_ms=0.0001)  # auto: would be the first champion
    assert not res.gate.passed and res.alias is None and res.version is not None
    assert any("over the latency budget of 0.0001 ms: no candidate" in r for r in res.gate.reasons)
    assert all(r["over_budget"] for r in res.grid)
    assert "no candidate is within the budget" in Path(res.report).read_text()
