import math

from app.config import GateConfig
from app.training.gate import evaluate_gate

CFG = GateConfig(floors={"roc_auc": 0.75, "f1_macro": 0.65, "brier": 0.2}, epsilon=0.01)


def test_passes_above_floors():
    r = evaluate_gate({"roc_auc": 0.8, "f1_macro": 0.7, "brier": 0.1}, CFG, "roc_auc")
    assert r.passed and r.reasons == []
    assert [c["metric"] for c in r.checks] == ["roc_auc", "f1_macro", "brier"]


def test_fails_each_floor_with_a_reason():
    r = evaluate_gate({"roc_auc": 0.7, "f1_macro": 0.6, "brier": 0.3}, CFG, "roc_auc")
    assert not r.passed and len(r.reasons) == 3
    assert "roc_auc 0.7000 is not >= the floor 0.75" in r.reasons[0]
    assert "brier 0.3000 is not <= the floor 0.2" in r.reasons[2]


def test_missing_or_nan_metric_fails():
    r = evaluate_gate({"roc_auc": math.nan, "brier": 0.1}, CFG, "roc_auc")
    assert not r.passed and any("missing" in x for x in r.reasons) and any("nan" in x for x in r.reasons)


def test_no_regression_against_champion():
    ok = {"roc_auc": 0.80, "f1_macro": 0.7, "brier": 0.1}
    assert evaluate_gate(ok, CFG, "roc_auc", champion={"roc_auc": 0.805}).passed  # within epsilon
    r = evaluate_gate(ok, CFG, "roc_auc", champion={"roc_auc": 0.82})
    assert not r.passed and "worse than the champion" in r.reasons[0]


def test_compare_metric_override_and_lower_is_better():
    cfg = GateConfig(floors={}, compare_metric="brier", epsilon=0.0)
    assert not evaluate_gate({"brier": 0.12}, cfg, "roc_auc", champion={"brier": 0.11}).passed
    assert evaluate_gate({"brier": 0.10}, cfg, "roc_auc", champion={"brier": 0.11}).passed


def test_note_when_champion_not_comparable():
    r = evaluate_gate({"roc_auc": 0.8, "f1_macro": 0.7, "brier": 0.1}, CFG, "roc_auc", champion_note="no champion")
    assert r.passed and r.checks[-1]["note"] == "no champion"
